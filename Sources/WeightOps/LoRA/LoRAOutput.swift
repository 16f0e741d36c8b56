import Foundation
import EANumerics
import Safetensors

/// The dtype the factors of a LoRA written by extract-lora, resize-lora and combine-lora are stored in
/// (alphas are always F32, so that `alpha / rank` is exact).
public enum LoRADType: String, Sendable, Codable, CaseIterable {
    case f32, f16, bf16

    public var dtype: DType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        }
    }
}

/// One module of a LoRA to write: its kohya name, the shape of the weight it changes, its rank and alpha, and
/// how to compute its factors when the writer reaches them.
struct LoRAModuleOutput {
    /// `lora_unet__…` / `lora_te_…`
    let name: String
    let outFeatures: Int
    let inFeatures: Int
    /// 1×1 convolution: factors are stored (rank, in, 1, 1) and (out, rank, 1, 1).
    let isConv: Bool
    let rank: Int
    let alpha: Float
    /// up (out×rank) and down (rank×in), row-major float32.
    let produce: () throws -> (up: [Float], down: [Float])
}

/// Factors of one module, computed when the writer first asks for either and dropped once both are written.
private final class FactorCache: @unchecked Sendable {
    var factors: (up: [Float], down: [Float])?
    var consumed = 0
}

/// Writes LoRAs in EasyAnimate's kohya format (`<module>.lora_down.weight`, `.lora_up.weight`, `.alpha`), one
/// module at a time and atomically (nothing at the destination until the whole file is written; an error or
/// Ctrl-C leaves nothing behind).
enum LoRAOutputWriter {
    /// The kohya/EasyAnimate training metadata every LoRA written here carries, plus ea-weights' provenance.
    static func metadata(dim: String, alpha: String, operation: String, parameters: JSONValue,
                         provenancePlaceholder: String, extra: [String: String] = [:]) -> [String: String] {
        var m = extra
        m["ss_network_module"] = "networks.lora"
        m["ss_network_dim"] = dim
        m["ss_network_alpha"] = alpha
        if m["ss_base_model_version"] == nil { m["ss_base_model_version"] = "pixart" }
        m["modelspec.sai_model_spec"] = "1.0.0"
        m["modelspec.architecture"] = "pixart-alpha/lora"
        m[LoRAMerge.provenanceKey] = provenancePlaceholder
        m[LoRAMerge.operationKey] = operation
        m["ea_weights.parameters"] = parameters.compactText
        return m
    }

    static func write(_ modules: [LoRAModuleOutput], to path: String, dtype: LoRADType, metadata: [String: String],
                      provenance: PendingProvenance, progress: ProgressHandler?) throws {
        let label = (path as NSString).lastPathComponent
        var tensors: [OutputTensor] = []
        for module in modules {
            let cache = FactorCache()
            func take(_ pick: @escaping ((up: [Float], down: [Float])) -> [Float]) -> () throws -> [Float] {
                {
                    if cache.factors == nil { cache.factors = try module.produce() }
                    guard let factors = cache.factors else { return [] }
                    let values = pick(factors)
                    cache.consumed += 1
                    if cache.consumed == 2 { cache.factors = nil }
                    return values
                }
            }
            let downShape = module.isConv ? [module.rank, module.inFeatures, 1, 1] : [module.rank, module.inFeatures]
            let upShape = module.isConv ? [module.outFeatures, module.rank, 1, 1] : [module.outFeatures, module.rank]
            tensors.append(.floats([module.alpha], name: module.name + ".alpha", dtype: .f32, shape: []))
            tensors.append(.computingFloats(name: module.name + ".lora_down.weight", dtype: dtype.dtype, shape: downShape,
                                            take { $0.down }))
            tensors.append(.computingFloats(name: module.name + ".lora_up.weight", dtype: dtype.dtype, shape: upShape,
                                            take { $0.up }))
        }
        let check: CheckpointStreamer.Check = { tensor, dtype, stats in
            if stats.overflowed > 0 {
                throw WeightOpsError.overflow(tensor: tensor, dtype: dtype.rawValue, count: stats.overflowed)
            }
        }
        try CheckpointStreamer.write(to: path, tensors: tensors, metadata: metadata, finalMetadata: {
            var m = metadata
            m[LoRAMerge.provenanceKey] = try provenance.text()
            return m
        }, check: check, progress: progress.map { p in { p(label, $0, $1) } })
    }

    /// kohya's factors from a truncated SVD: `lora_up = U·diag(S)`, `lora_down = Vh`.
    static func kohyaFactors(_ f: consuming LowRankFactors) -> (up: [Float], down: [Float]) {
        // Scaled in place: the factors are dropped, so `u` is not copied.
        var up = f.u
        f.u = []
        let r = f.rank
        for i in 0..<f.rows { for j in 0..<r { up[i * r + j] *= f.s[j] } }
        return (up, f.vh)
    }
}

/// kohya's outlier clamp (extract_lora_from_models.py, svd_merge_lora.py): `hi = torch.quantile(cat(up, down),
/// q)` over the signed values, then both factors clamped to [-hi, hi]. `q >= 1` turns it off (kohya's own
/// q = 1 would still clip negative values below -max).
enum QuantileClamp {
    /// Returns the threshold used (nil when off) and how many values it changed.
    @discardableResult
    static func apply(up: inout [Float], down: inout [Float], quantile q: Double) -> (threshold: Float?, clamped: Int) {
        guard q < 1 else { return (nil, 0) }
        var all = up + down
        let hi = quantile(&all, q)
        let lo = -hi
        var clamped = 0
        func clamp(_ x: inout [Float]) {
            for i in x.indices {
                let v = x[i]
                // torch.clamp(min, max) = min(max(x, min), max), also when min > max.
                let c = Swift.min(Swift.max(v, lo), hi)
                if c != v { clamped += 1; x[i] = c }
            }
        }
        clamp(&up)
        clamp(&down)
        return (hi, clamped)
    }

    /// `torch.quantile(x, q)` (linear interpolation between the two nearest order statistics) by selection in
    /// O(n), not a sort; `values` is reordered.
    static func quantile(_ values: inout [Float], _ q: Double) -> Float {
        let n = values.count
        guard n > 0 else { return 0 }
        let position = q * Double(n - 1)
        let below = Int(position.rounded(.down)), fraction = Float(position - Double(below))
        let a = select(&values, below)
        // The next order statistic is the smallest value right of the selected one.
        var b = a
        if below + 1 < n, fraction > 0 {
            b = values[(below + 1)...].min() ?? a
        }
        return a + (b - a) * fraction
    }

    /// Puts the k-th smallest value at index k, smaller ones before it and larger ones after (Hoare
    /// quickselect with a median-of-three pivot).
    static func select(_ x: inout [Float], _ k: Int) -> Float {
        var lo = 0, hi = x.count - 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if x[mid] < x[lo] { x.swapAt(mid, lo) }
            if x[hi] < x[lo] { x.swapAt(hi, lo) }
            if x[hi] < x[mid] { x.swapAt(hi, mid) }
            let pivot = x[mid]
            var i = lo, j = hi
            while i <= j {
                while x[i] < pivot { i += 1 }
                while x[j] > pivot { j -= 1 }
                if i <= j { x.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { break }
        }
        return x[k]
    }
}

/// Opens the models and LoRAs the LoRA tools read. Checkpoint layouts are resolved here and only here, so the
/// weights-file resolver can replace `CheckpointLayout` in one place.
enum LoRAToolInputs {
    struct ModelPart {
        /// "model" for a single checkpoint, else the diffusers component ("transformer", "text_encoder").
        let name: String
        let target: LoRATarget
        let dict: any StateDict
        /// Label and path of each weight file, for the provenance.
        let files: [(label: String, path: String)]
    }

    /// The models inside `path` that LoRAs can target: one transformer/motion module/T5, or a diffusers folder's
    /// transformer and text encoder.
    static func openModel(_ path: String, command: String) throws -> [ModelPart] {
        var parts: [ModelPart] = []
        func part(_ name: String, _ weights: WeightFiles, target: LoRATarget?) throws -> ModelPart {
            let opened = try weights.open()
            let kind = ModelKind.detect(opened.dict)
            if try QuantizationMetadata(metadata: opened.dict.metadata, path: opened.dict.path) != nil {
                throw WeightOpsError.invalidInput(path: opened.dict.path, reason: "is quantized; \(command) needs the float checkpoint")
            }
            let resolved: LoRATarget
            switch kind {
            case .pixartTransformer2D, .easyAnimateTransformer3D, .motionModule: resolved = .transformer
            case .t5Encoder: resolved = .textEncoder
            case .kohyaLoRA:
                throw WeightOpsError.invalidInput(path: opened.dict.path, reason: "is a kohya LoRA, not a model; \(command) "
                    + "takes two models (a transformer, a motion module, a T5 encoder or a diffusers folder)")
            default:
                if let target { resolved = target; break }
                throw WeightOpsError.invalidInput(path: opened.dict.path, reason: "is a \(kind.rawValue) checkpoint; \(command) "
                    + "takes a PixArt/EasyAnimate transformer, a motion module, a T5 encoder or a diffusers folder")
            }
            let files = opened.files.map { f in
                (label: (name == "model" && !weights.isFolder) ? f.name : (name == "model" ? "" : name + "/") + f.name,
                 path: weights.path(f.name))
            }
            return ModelPart(name: name, target: resolved, dict: opened.dict, files: files)
        }
        switch try CheckpointLayout.locate(path) {
        case let .weights(weights):
            parts.append(try part("model", weights, target: nil))
        case let .diffusers(root, components, _):
            for (name, weights) in components {
                switch name {
                case "transformer": parts.append(try part(name, weights, target: .transformer))
                case "text_encoder": parts.append(try part(name, weights, target: .textEncoder))
                default: continue
                }
            }
            guard !parts.isEmpty else {
                throw WeightOpsError.invalidInput(path: root, reason: "has neither a transformer/ nor a text_encoder/ with weights")
            }
        }
        return parts
    }

    /// A kohya LoRA, refusing a model given where a LoRA is expected with a message saying so.
    static func openLoRA(_ path: String, command: String) throws -> LoRAFile {
        let file = try SafetensorsFile(path: path)
        let kind = ModelKind.detect(file)
        if kind != .kohyaLoRA && kind != .unknown {
            throw WeightOpsError.invalidInput(path: path, reason: "is a \(kind.rawValue) checkpoint, not a kohya LoRA; "
                + "\(command) takes LoRA files (extract-lora makes one from two models)")
        }
        return try LoRAFile(path: path)
    }
}

/// Per module, what a LoRA tool wrote: for the report.
public struct LoRALayerReport: Sendable, Codable, Equatable {
    /// `lora_unet__…` / `lora_te_…`
    public var module: String
    /// The weight it changes (extract-lora), nil for resize/combine.
    public var tensor: String?
    /// (out, in)
    public var shape: [Int]
    /// Input rank (resize: the module's; combine: the sum over inputs); nil for extract.
    public var inputRank: Int?
    public var rank: Int
    public var alpha: Double
    /// ‖ΔW‖_F of the matrix decomposed (the effective change for resize/combine).
    public var norm: Double
    /// ‖kept‖_F / ‖ΔW‖_F before the clamp; nil in a dry run of extract-lora.
    public var retained: Double?
    /// The largest |ΔW| entry (extract-lora).
    public var maxAbsDiff: Double?
    /// "full", "randomized", "factored".
    public var method: String?
    public var iterations: Int?
    /// The quantile clamp's threshold and how many values it changed.
    public var clampThreshold: Double?
    public var clamped: Int?
    /// ‖ΔW − up·down‖_F / ‖ΔW‖_F of the factors as stored (after the clamp), measured (extract-lora).
    public var relativeError: Double?

    enum CodingKeys: String, CodingKey {
        case module, tensor, shape, inputRank = "input_rank", rank, alpha, norm, retained, maxAbsDiff = "max_abs_diff"
        case method, iterations, clampThreshold = "clamp_threshold", clamped
        case relativeError = "relative_error"
    }

    var line: String {
        var s = "  \(module) \(shape.map(String.init).joined(separator: "x"))"
        if let inputRank { s += " rank \(inputRank) -> \(rank)" } else { s += " rank \(rank)" }
        s += ", alpha \(formatNumber(alpha)), |dW| \(String(format: "%.4g", norm))"
        if let retained { s += ", kept \(String(format: "%.4f", retained * 100))%" }
        if let relativeError { s += ", error \(String(format: "%.2e", relativeError))" }
        if let method { s += " (\(method)\(method == "randomized" ? ", \(iterations ?? 0) power it." : ""))" }
        if let clamped, clamped > 0 { s += ", \(clamped) clamped" }
        return s
    }
}

/// Thread-safe collection of layer reports filled in while the writer computes the modules.
final class LayerReports: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [String: LoRALayerReport] = [:]

    func set(_ report: LoRALayerReport) { lock.withLock { reports[report.module] = report } }
    func get(_ module: String) -> LoRALayerReport? { lock.withLock { reports[module] } }
}

/// The seed of a module's random test vectors: from its name, so that output is reproducible.
func moduleSeed(_ name: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}
