/// Errors of the weight operations: each names the file and what to fix.
public enum WeightOpsError: Error, CustomStringConvertible, Sendable {
    case invalidInput(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidInput(path, reason): return "\(path): \(reason)"
        }
    }
}
