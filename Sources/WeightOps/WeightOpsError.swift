/// Errors of the weight operations: each names the file and what to fix.
public enum WeightOpsError: Error, CustomStringConvertible, Sendable {
    case invalidInput(path: String, reason: String)
    /// A LoRA file that cannot be merged: a module lacks a part, ranks disagree, an unknown element.
    case malformedLoRA(path: String, module: String, reason: String)
    /// A LoRA module whose product does not fit the base weight it names.
    case loraShapeMismatch(path: String, module: String, tensor: String, expected: [Int], actual: [Int])
    /// `--strict`: some LoRA modules name weights the base does not have.
    case unmatchedLoRAModules(path: String, count: Int, examples: [String])
    /// A computed tensor holds NaN or infinity.
    case nonFinite(tensor: String, count: Int)
    /// A tensor's values do not fit the output dtype.
    case overflow(tensor: String, dtype: String, count: Int)
    /// Two inputs do not belong together (block counts, widths, temporal keys in a backbone...).
    case incompatible(path: String, reason: String)
    /// Stopped by Ctrl-C (or SIGTERM) between blocks; nothing was left behind.
    case cancelled(path: String)
    /// Another ea-weights run is changing the folder.
    case busy(path: String)

    public var description: String {
        switch self {
        case let .invalidInput(path, reason): return "\(path): \(reason)"
        case let .malformedLoRA(path, module, reason):
            return "\(path): LoRA module '\(module)' \(reason)"
        case let .loraShapeMismatch(path, module, tensor, expected, actual):
            return "\(path): LoRA module '\(module)' makes a \(expected) update but '\(tensor)' is \(actual)"
                + " (LoRA trained for another model size?)"
        case let .unmatchedLoRAModules(path, count, examples):
            return "\(path): \(count) LoRA module(s) match no weight of the base (--strict), e.g. "
                + examples.prefix(3).joined(separator: ", ")
        case let .nonFinite(tensor, count):
            return "tensor '\(tensor)': the result holds \(count) NaN/infinite value(s); nothing was written"
        case let .overflow(tensor, dtype, count):
            return "tensor '\(tensor)': \(count) value(s) overflow \(dtype) (they would become infinite);"
                + " store it in a wider dtype (f32 or bf16); nothing was written"
        case let .incompatible(path, reason): return "\(path): \(reason)"
        case let .cancelled(path): return "\(path): interrupted; nothing was left behind"
        case let .busy(path):
            return "\(path): another ea-weights run is changing this folder; try again when it has finished"
        }
    }
}
