import Safetensors

/// One low-rank update of a kohya LoRA: `ΔW = (alpha / rank) · up @ down`.
public struct LoRAModule: Sendable {
    public let name: LoRAModuleName
    /// (rank, in) or (rank, in, 1, 1)
    public let down: TensorInfo
    /// (out, rank) or (out, rank, 1, 1)
    public let up: TensorInfo
    /// The stored `.alpha`, nil when the file has none.
    public let alpha: Double?

    public var rank: Int { down.shape[0] }
    public var inFeatures: Int { down.shape[1] }
    public var outFeatures: Int { up.shape[0] }
    /// Shape of `up @ down` as the original computes it.
    public var updateShape: [Int] { down.shape.count == 4 ? [outFeatures, inFeatures, 1, 1] : [outFeatures, inFeatures] }

    /// The factor EasyAnimate's `merge_lora` multiplies `up @ down` by, before the user's multiplier:
    /// `alpha / up.shape[1]` (in double precision, as Python does), or 1 when there is no alpha.
    public var alphaScale: Double {
        guard let alpha else { return 1 }
        return alpha / Double(rank)
    }

    /// The float32 factor applied to `up @ down` for `multiplier`: Python computes `multiplier * alpha`
    /// in double and PyTorch rounds it to the tensor's float32 when multiplying.
    public func scale(multiplier: Double) -> Float {
        Float(multiplier * alphaScale)
    }
}

/// A kohya-format LoRA (`<module>.lora_down.weight`, `<module>.lora_up.weight`, `<module>.alpha`),
/// as EasyAnimate's LoRA network saves it; validated on open so that merging cannot fail halfway.
public struct LoRAFile: Sendable {
    public let path: String
    public let file: SafetensorsFile
    /// Sorted by name.
    public let modules: [LoRAModule]

    public init(path: String) throws {
        let file = try SafetensorsFile(path: path)
        self.path = path
        self.file = file
        self.modules = try LoRAFile.parse(file)
    }

    public var metadata: [String: String] { file.metadata }

    public func modules(for target: LoRATarget) -> [LoRAModule] {
        modules.filter { $0.name.target == target }
    }

    /// `up` and `down` as float32, (out, rank) and (rank, in) row-major.
    public func factors(of module: LoRAModule) throws -> (up: [Float], down: [Float]) {
        (try file.tensor(module.up.name).toFloat32(), try file.tensor(module.down.name).toFloat32())
    }

    /// Hands the whole mapping's pages back to the kernel. Factors are read once each, but a page fault maps its
    /// neighbours too (fault-around), so dropping only the factor's own range lets a large LoRA pile up in memory.
    public func releasePages() {
        file.file.adviseDontNeed(0..<file.fileSize)
    }

    static func parse(_ file: SafetensorsFile) throws -> [LoRAModule] {
        let path = file.path
        var parts: [String: [String: TensorInfo]] = [:]
        for info in file.tensorsInFileOrder {
            guard let dot = info.name.firstIndex(of: ".") else {
                throw WeightOpsError.malformedLoRA(path: path, module: info.name,
                                                   reason: "is a bare tensor name; a kohya LoRA names '<module>.lora_up.weight'")
            }
            let module = String(info.name[..<dot]), element = String(info.name[info.name.index(after: dot)...])
            if element.hasPrefix("lora_A") || element.hasPrefix("lora_B") || info.name.contains(".lora_A.") {
                throw WeightOpsError.invalidInput(
                    path: path, reason: "'\(info.name)' is a diffusers/PEFT LoRA key; ea-weights merges kohya LoRAs "
                        + "(lora_unet_…/lora_te_… with lora_up/lora_down), as EasyAnimate trains them")
            }
            parts[module, default: [:]][element] = info
        }
        guard !parts.isEmpty else {
            throw WeightOpsError.invalidInput(path: path, reason: "holds no tensors, so it is not a LoRA")
        }
        var modules: [LoRAModule] = []
        for (module, elements) in parts.sorted(by: { $0.key < $1.key }) {
            func fail(_ reason: String) -> WeightOpsError { .malformedLoRA(path: path, module: module, reason: reason) }
            guard let name = LoRAModuleName(module) else {
                throw fail("has neither the 'lora_unet_' (transformer) nor the 'lora_te_' (text encoder) prefix")
            }
            for element in elements.keys where !["lora_up.weight", "lora_down.weight", "alpha"].contains(element) {
                throw fail("has '\(element)', which a plain LoRA does not have (LoCon/LoHa/DoRA files are not supported)")
            }
            guard let down = elements["lora_down.weight"] else { throw fail("has no lora_down.weight") }
            guard let up = elements["lora_up.weight"] else { throw fail("has no lora_up.weight") }
            for t in [down, up] where !t.dtype.isFloatingPoint {
                throw fail("stores '\(t.name)' as \(t.dtype.rawValue), not a floating-point type")
            }
            let isConv = down.shape.count == 4
            guard down.shape.count == 2 || (isConv && down.shape[2] == 1 && down.shape[3] == 1) else {
                throw fail("has lora_down of shape \(down.shape); only Linear (rank, in) and 1x1 conv (rank, in, 1, 1) are supported")
            }
            guard up.shape.count == down.shape.count, up.shape.count == 2 || (up.shape[2] == 1 && up.shape[3] == 1) else {
                throw fail("has lora_up of shape \(up.shape) that does not pair with lora_down \(down.shape)")
            }
            guard down.shape[0] == up.shape[1] else {
                throw fail("has rank \(down.shape[0]) in lora_down but \(up.shape[1]) in lora_up")
            }
            guard down.shape[0] > 0 else { throw fail("has rank 0") }
            var alpha: Double?
            if let a = elements["alpha"] {
                guard a.elementCount == 1, a.dtype.isFloatingPoint || a.dtype == .i64 || a.dtype == .i32 else {
                    throw fail("has an alpha of shape \(a.shape) and dtype \(a.dtype.rawValue); it must be one number")
                }
                let view = try file.tensor(a.name)
                // Python's `.item()` gives the stored value exactly; F64 must not pass through float32.
                let value = a.dtype == .f64 ? view.withUnsafeBytes { $0.loadUnaligned(as: Double.self) }
                                            : Double(view.toFloat32()[0])
                // A 4-byte read faults in a whole (possibly 2 MB) page-cache folio: drop it before the next one.
                file.file.adviseDontNeed(0..<file.fileSize)
                guard value.isFinite else { throw fail("has a non-finite alpha") }
                alpha = value
            }
            modules.append(LoRAModule(name: name, down: down, up: up, alpha: alpha))
        }
        return modules
    }
}
