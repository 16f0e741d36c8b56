import Foundation
import Safetensors

/// The sizes and choices of a T5 encoder, from the text encoder's `config.json` (transformers' `T5Config`).
/// Nothing about the model is assumed beyond what this file says (the real PixArt text encoder is T5-v1.1-XXL:
/// 24 layers, d_model 4096, 64 heads of 64, d_ff 10240, gated GELU).
public struct T5Config: Sendable, Equatable {
    public var vocabSize: Int
    public var dModel: Int
    public var dKV: Int
    public var dFF: Int
    public var numLayers: Int
    public var numHeads: Int
    public var relativeAttentionNumBuckets: Int
    public var relativeAttentionMaxDistance: Int
    public var layerNormEpsilon: Float
    public var activation: T5Activation
    /// Gated feed-forward (`wi_0`, `wi_1`) rather than one `wi`.
    public var isGatedActivation: Bool

    /// The attention width, `num_heads · d_kv` (not necessarily d_model).
    public var innerDim: Int { numHeads * dKV }

    public init(vocabSize: Int, dModel: Int, dKV: Int, dFF: Int, numLayers: Int, numHeads: Int,
                relativeAttentionNumBuckets: Int = 32, relativeAttentionMaxDistance: Int = 128,
                layerNormEpsilon: Float = 1e-6, activation: T5Activation = .geluNew, isGatedActivation: Bool = true) {
        self.vocabSize = vocabSize
        self.dModel = dModel
        self.dKV = dKV
        self.dFF = dFF
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.relativeAttentionNumBuckets = relativeAttentionNumBuckets
        self.relativeAttentionMaxDistance = relativeAttentionMaxDistance
        self.layerNormEpsilon = layerNormEpsilon
        self.activation = activation
        self.isGatedActivation = isGatedActivation
    }

    /// Reads a `config.json` (a file, or a folder holding one).
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? URL(fileURLWithPath: path).appendingPathComponent("config.json").path : path
        try self.init(json: ConfigFile.json(at: file, what: "the text encoder's config.json"), path: file)
    }

    /// Interprets the JSON as transformers 4.37's `T5Config` does, with its defaults for absent keys.
    public init(json: JSONValue, path: String) throws {
        func int(_ key: String, _ fallback: Int) throws -> Int {
            guard let value = json[key], value != .null else { return fallback }
            guard let i = value.intValue.flatMap({ Int(exactly: $0) }), i > 0 else {
                throw RunnerError.invalidConfig(path: path, reason: "'\(key)' must be a positive integer")
            }
            return i
        }
        let numHeads = try int("num_heads", 8)
        let dKV = try int("d_kv", 64)
        vocabSize = try int("vocab_size", 32128)
        dModel = try int("d_model", 512)
        self.dKV = dKV
        dFF = try int("d_ff", 2048)
        numLayers = try int("num_layers", 6)
        self.numHeads = numHeads
        relativeAttentionNumBuckets = try int("relative_attention_num_buckets", 32)
        relativeAttentionMaxDistance = try int("relative_attention_max_distance", 128)
        guard numHeads.multipliedReportingOverflow(by: dKV).overflow == false else {
            throw RunnerError.invalidConfig(path: path, reason: "num_heads × d_kv overflows")
        }
        let eps = json["layer_norm_epsilon"]?.doubleValue ?? 1e-6
        layerNormEpsilon = Float(eps)

        // T5Config derives the activation from `feed_forward_proj` ("relu", "gated-gelu", "gated-silu"...), then
        // any `dense_act_fn` / `is_gated_act` saved in the file override it (PretrainedConfig sets extra keys last).
        let projection = json["feed_forward_proj"]?.stringValue ?? "relu"
        let parts = projection.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 1 || (parts.count == 2 && parts[0] == "gated") else {
            throw RunnerError.invalidConfig(path: path, reason: "feed_forward_proj '\(projection)' is not 'ACT' or 'gated-ACT'")
        }
        var activationName = projection == "gated-gelu" ? "gelu_new" : parts[parts.count - 1]
        var gated = parts[0] == "gated"
        if let name = json["dense_act_fn"]?.stringValue { activationName = name }
        if case .bool(let value)? = json["is_gated_act"] { gated = value }
        guard let activation = T5Activation(rawValue: activationName) else {
            throw RunnerError.invalidConfig(path: path, reason: "activation '\(activationName)' is not supported (supported: \(T5Activation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self.activation = activation
        isGatedActivation = gated
    }
}

/// transformers' `ACT2FN` entries a T5 feed-forward can name.
public enum T5Activation: String, Sendable, CaseIterable {
    case relu
    case gelu
    case geluPython = "gelu_python"
    case geluNew = "gelu_new"
    case geluPytorchTanh = "gelu_pytorch_tanh"
    case geluFast = "gelu_fast"
    case quickGelu = "quick_gelu"
    case silu
    case swish

    /// Applies the activation in place.
    func apply(_ x: inout Tensor) {
        switch self {
        case .relu:
            Kernels.map(&x) { $0 > 0 ? $0 : ($0.isNaN ? $0 : 0) }
        case .gelu, .geluPython:
            Kernels.gelu(&x)
        case .geluNew, .geluPytorchTanh:
            Kernels.geluTanh(&x)
        case .geluFast:
            Kernels.map(&x) { v in 0.5 * v * (1 + tanhf(v * 0.7978845608 * (1 + 0.044715 * v * v))) }
        case .quickGelu:
            Kernels.map(&x) { v in v / (1 + expf(-1.702 * v)) }
        case .silu, .swish:
            Kernels.silu(&x)
        }
    }
}
