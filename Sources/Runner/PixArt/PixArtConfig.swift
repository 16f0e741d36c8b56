import Foundation
import Safetensors
import Yams

/// The PixArt transformer's configuration: diffusers 0.27 `Transformer2DModel` keys from `transformer/config.json`,
/// plus, for EasyAnimate's `Transformer3DModel`, the yaml's `transformer_additional_kwargs` (or the same keys in
/// a saved 3D `config.json`), applied on top like `from_config(config, **transformer_additional_kwargs)`.
///
/// PixArt-XL-2-512x512 has 28 layers, 16 heads of 72, patch 2, caption 4096, sample size 64; nothing here
/// assumes those values. Keys the runner does not use are ignored (as `from_config` ignores them); values it
/// cannot honour are errors naming the key.
public struct PixArtConfig: Sendable, Equatable {
    public var numAttentionHeads: Int
    public var attentionHeadDim: Int
    public var inChannels: Int
    /// 2 × `inChannels` for learned sigma.
    public var outChannels: Int
    public var numLayers: Int
    public var crossAttentionDim: Int
    public var attentionBias: Bool
    public var sampleSize: Int
    public var patchSize: Int
    public var activation: FeedForward.Activation
    public var normElementwiseAffine: Bool
    public var normEps: Float
    /// T5 width the caption projection reads; nil when the checkpoint has no `caption_projection`.
    public var captionChannels: Int?
    /// The 2D sin-cos position embedding's `interpolation_scale`, resolved as the model class does.
    public var interpolationScale: Double
    /// EasyAnimate's motion module in every block; nil for the plain diffusers `Transformer2DModel`.
    public var motionModule: MotionModuleConfig?

    /// Token width: heads × head dim.
    public var width: Int { numAttentionHeads * attentionHeadDim }
    /// The position embedding's base grid: `sample_size // patch_size`.
    public var baseSize: Int { sampleSize / patchSize }

    /// Reads `transformer/config.json` and, for the 3D model, EasyAnimate's yaml (its `transformer_additional_kwargs`).
    public init(contentsOf configPath: String, easyAnimateYAML yamlPath: String? = nil) throws {
        let json = try ConfigFile.json(at: configPath, what: "the transformer config")
        var kwargs: [String: ConfigValue]?
        if let yamlPath {
            let text: String
            do {
                text = try String(contentsOfFile: yamlPath, encoding: .utf8)
            } catch {
                throw RunnerError.invalidConfig(path: yamlPath, reason: "cannot be read (\(error.localizedDescription))")
            }
            kwargs = try Self.transformerAdditionalKwargs(yaml: text, source: yamlPath)
        }
        try self.init(json: json, path: configPath, additionalKwargs: kwargs, kwargsSource: yamlPath ?? configPath)
    }

    /// `json`: the diffusers config; `additionalKwargs`: EasyAnimate's `transformer_additional_kwargs` (nil: none).
    /// The result is the 3D model when the kwargs are given or the config itself is a `Transformer3DModel`.
    public init(json: JSONValue, path: String, additionalKwargs: [String: ConfigValue]? = nil, kwargsSource: String? = nil) throws {
        guard case let .object(members) = json else {
            throw RunnerError.invalidConfig(path: path, reason: "is not a JSON object")
        }
        var values = [String: ConfigValue]()
        for (key, value) in members { values[key] = ConfigValue(json: value) }
        let className = values["_class_name"]?.string
        let is3D = additionalKwargs != nil || className == "Transformer3DModel"
        for (key, value) in additionalKwargs ?? [:] { values[key] = value }
        let reader = ConfigReader(values: values, source: additionalKwargs == nil ? path : "\(path) with \(kwargsSource ?? "transformer_additional_kwargs")")

        numAttentionHeads = try reader.int("num_attention_heads", default: 16)
        attentionHeadDim = try reader.int("attention_head_dim", default: 88)
        guard let inChannels = try reader.optionalInt("in_channels") else { throw reader.fail("missing 'in_channels'") }
        self.inChannels = inChannels
        outChannels = try reader.optionalInt("out_channels") ?? inChannels
        numLayers = try reader.int("num_layers", default: 1)
        guard let patch = try reader.optionalInt("patch_size") else {
            throw reader.fail("missing 'patch_size' (only the patched PixArt transformer is supported)")
        }
        patchSize = patch
        guard let sample = try reader.optionalInt("sample_size") else { throw reader.fail("missing 'sample_size'") }
        sampleSize = sample
        attentionBias = try reader.bool("attention_bias", default: false)
        normElementwiseAffine = try reader.bool("norm_elementwise_affine", default: true)
        normEps = Float(try reader.double("norm_eps", default: 1e-5))
        captionChannels = try reader.optionalInt("caption_channels")

        let activationName = try reader.string("activation_fn", default: "geglu")
        guard let activation = FeedForward.Activation(rawValue: activationName) else {
            throw reader.fail("activation_fn '\(activationName)' is not supported (gelu-approximate, gelu, geglu)")
        }
        self.activation = activation
        let normType = try reader.string("norm_type", default: "layer_norm")
        guard normType == "ada_norm_single" else {
            throw reader.fail("norm_type '\(normType)' is not supported: the runner implements PixArt's 'ada_norm_single'")
        }
        if let vectors = values["num_vector_embeds"], vectors != .null {
            throw reader.fail("'num_vector_embeds' is set: discrete (vector) inputs are not supported")
        }
        let attentionType = try reader.string("attention_type", default: "default")
        guard attentionType == "default" else { throw reader.fail("attention_type '\(attentionType)' is not supported") }
        for flag in ["only_cross_attention", "double_self_attention"] where try reader.bool(flag, default: false) {
            throw reader.fail("'\(flag)' is not supported (PixArt blocks have self- and cross-attention)")
        }
        guard let cross = try reader.optionalInt("cross_attention_dim") else {
            throw reader.fail("missing 'cross_attention_dim' (PixArt blocks attend to the caption)")
        }
        crossAttentionDim = cross
        // diffusers 0.27: `use_additional_conditions = sample_size == 128` (PixArt 1024: resolution and
        // aspect-ratio embeddings), which EasyAnimate's 512 models never use.
        guard sample != 128 else {
            throw reader.fail("sample_size 128 (PixArt-1024 with resolution/aspect-ratio conditioning) is not supported; EasyAnimate v1 uses the 512 model (sample_size 64)")
        }

        let width = numAttentionHeads * attentionHeadDim
        guard width % 4 == 0 else {
            throw reader.fail("the width \(width) (heads × head dim) must be divisible by 4 for the 2D sin-cos position embedding")
        }
        guard sample >= patch else { throw reader.fail("sample_size \(sample) is smaller than patch_size \(patch)") }
        if captionChannels != nil, cross != width {
            throw reader.fail("cross_attention_dim \(cross) differs from the width \(width), which the caption projection produces")
        }

        if is3D {
            // EasyAnimate's Transformer3DModel derives the scale from sample_size alone (it has no
            // interpolation_scale argument).
            interpolationScale = Double(max(sample / 64, 1))
            motionModule = try MotionModuleConfig(reader: reader)
        } else {
            // diffusers 0.27 Transformer2DModel: the config's value, else sample_size // 64 (at least 1).
            interpolationScale = try reader.optionalDouble("interpolation_scale") ?? Double(max(sample / 64, 1))
            guard interpolationScale > 0 else { throw reader.fail("'interpolation_scale' must be positive") }
            motionModule = nil
        }
    }

    /// The `transformer_additional_kwargs` mapping of an EasyAnimate yaml.
    public static func transformerAdditionalKwargs(yaml text: String, source: String) throws -> [String: ConfigValue] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw RunnerError.invalidConfig(path: source, reason: "not valid YAML (\(error))")
        }
        guard let section = root?.mapping?["transformer_additional_kwargs"] else {
            throw RunnerError.invalidConfig(path: source, reason: "has no transformer_additional_kwargs section")
        }
        guard case let .map(values) = try ConfigValue(yaml: section, source: source) else {
            throw RunnerError.invalidConfig(path: source, reason: "transformer_additional_kwargs is not a mapping")
        }
        return values
    }
}

/// EasyAnimate's motion module (`VanillaTemporalModule` in easyanimate/models/motion_module.py, April 2024),
/// from `motion_module_type` and `motion_module_kwargs`.
public struct MotionModuleConfig: Sendable, Equatable {
    /// `VanillaGrid` attends over frames × a `blockSize`² spatial grid cell; `Vanilla` over frames only
    /// (the same computation with a 1×1 cell).
    public var grid: Bool
    public var numAttentionHeads: Int
    public var numTransformerBlocks: Int
    /// Number of `Temporal_Self` attentions per temporal block.
    public var attentionBlocks: Int
    public var temporalPositionEncoding: Bool
    public var positionEncodingMaxLength: Int
    public var attentionDimDiv: Int
    public var blockSize: Int
    /// `TemporalTransformer3DModel`'s GroupNorm groups (fixed at its default, 32, by EasyAnimate).
    public var normGroups: Int = 32

    /// The temporal attention width for a transformer of width `channels`.
    public func headDim(channels: Int) -> Int { channels / numAttentionHeads / attentionDimDiv }
    public func innerDim(channels: Int) -> Int { numAttentionHeads * headDim(channels: channels) }

    init(reader: ConfigReader) throws {
        let blockType = try reader.string("basic_block_type", default: "motionmodule")
        guard blockType == "motionmodule" else {
            throw reader.fail("basic_block_type '\(blockType)' is not supported (EasyAnimate v1 uses 'motionmodule')")
        }
        for flag in ["patch_3d", "fake_3d", "time_position_encoding_before_transformer"] where try reader.bool(flag, default: false) {
            throw reader.fail("'\(flag)' is not supported (EasyAnimate v1 uses false)")
        }
        let type = try reader.string("motion_module_type", default: "VanillaGrid")
        switch type {
        case "VanillaGrid": grid = true
        case "Vanilla": grid = false
        default: throw reader.fail("motion_module_type '\(type)' is not supported (Vanilla, VanillaGrid)")
        }
        guard case let .map(kwargs)? = reader.values["motion_module_kwargs"] else {
            throw reader.fail("'motion_module_kwargs' must be a mapping (VanillaTemporalModule's arguments)")
        }
        let mm = ConfigReader(values: kwargs, source: reader.source + " (motion_module_kwargs)")
        numAttentionHeads = try mm.int("num_attention_heads", default: 8)
        numTransformerBlocks = try mm.int("num_transformer_block", default: 2)
        let types: [String]
        switch kwargs["attention_block_types"] {
        case nil: types = ["Temporal_Self", "Temporal_Self"]
        case let .list(items)?: types = items.compactMap(\.string)
            guard types.count == items.count else { throw mm.fail("'attention_block_types' must be a list of names") }
        default: throw mm.fail("'attention_block_types' must be a list of names")
        }
        if let other = types.first(where: { $0 != "Temporal_Self" }) {
            throw mm.fail("attention block type '\(other)' is not supported (only Temporal_Self)")
        }
        attentionBlocks = types.count
        if let mode = kwargs["cross_frame_attention_mode"], mode != .null {
            throw mm.fail("'cross_frame_attention_mode' is not supported")
        }
        temporalPositionEncoding = try mm.bool("temporal_position_encoding", default: false)
        positionEncodingMaxLength = try mm.int("temporal_position_encoding_max_len", default: 4096)
        attentionDimDiv = try mm.int("temporal_attention_dim_div", default: 1)
        blockSize = grid ? try mm.int("block_size", default: 1) : 1
    }

    /// Checks that the module fits a transformer of width `channels`.
    func validate(channels: Int, source: String) throws {
        guard headDim(channels: channels) > 0 else {
            throw RunnerError.invalidConfig(path: source, reason: "the motion module's \(numAttentionHeads) heads (dim div \(attentionDimDiv)) do not fit the width \(channels)")
        }
        guard channels % normGroups == 0 else {
            throw RunnerError.invalidConfig(path: source, reason: "the width \(channels) cannot be split into the motion module's \(normGroups) GroupNorm groups")
        }
        guard !temporalPositionEncoding || innerDim(channels: channels) % 2 == 0 else {
            throw RunnerError.invalidConfig(path: source, reason: "the motion module's width \(innerDim(channels: channels)) must be even for its sinusoidal position encoding")
        }
    }
}

/// One configuration value as written in JSON or YAML.
public indirect enum ConfigValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([ConfigValue])
    case map([String: ConfigValue])

    var string: String? { if case let .string(s) = self { return s } else { return nil } }

    init(json: JSONValue) {
        switch json {
        case .null: self = .null
        case let .bool(b): self = .bool(b)
        case let .integer(i): self = i >= Int64(Int.min) && i <= Int64(Int.max) ? .int(Int(i)) : .double(Double(i))
        case let .unsignedInteger(u): self = .double(Double(u))
        case let .number(d): self = .double(d)
        case let .string(s): self = .string(s)
        case let .array(items): self = .list(items.map(ConfigValue.init(json:)))
        case let .object(members):
            var map = [String: ConfigValue]()
            for (k, v) in members { map[k] = ConfigValue(json: v) }
            self = .map(map)
        }
    }

    init(yaml node: Node, source: String) throws {
        switch node {
        case .scalar:
            switch node.tag.description {
            case Tag.Name.null.rawValue: self = .null; return
            case Tag.Name.bool.rawValue: if let b = node.bool { self = .bool(b); return }
            case Tag.Name.int.rawValue: if let i = node.int { self = .int(i); return }
            case Tag.Name.float.rawValue: if let d = node.float { self = .double(d); return }
            default: break
            }
            self = .string(node.string ?? "")
        case let .sequence(items):
            self = .list(try items.map { try ConfigValue(yaml: $0, source: source) })
        case let .mapping(pairs):
            var map = [String: ConfigValue]()
            for (keyNode, valueNode) in pairs {
                guard let key = keyNode.string else {
                    throw RunnerError.invalidConfig(path: source, reason: "a mapping key is not a string")
                }
                map[key] = try ConfigValue(yaml: valueNode, source: source)
            }
            self = .map(map)
        }
    }
}

/// Typed access to config values with the model class's defaults; errors name the key and the source.
struct ConfigReader {
    let values: [String: ConfigValue]
    let source: String

    func fail(_ reason: String) -> RunnerError { .invalidConfig(path: source, reason: reason) }

    func optionalInt(_ key: String) throws -> Int? {
        switch values[key] {
        case nil, .null?: return nil
        case let .int(i)? where i > 0 && i < 1 << 24: return i
        case let .double(d)? where d.rounded() == d && d > 0 && d < Double(1 << 24): return Int(d)
        default: throw fail("'\(key)' must be a positive integer")
        }
    }

    func int(_ key: String, default fallback: Int) throws -> Int { try optionalInt(key) ?? fallback }

    func optionalDouble(_ key: String) throws -> Double? {
        switch values[key] {
        case nil, .null?: return nil
        case let .int(i)?: return Double(i)
        case let .double(d)? where d.isFinite: return d
        case let .string(s)?: if let d = Double(s), d.isFinite { return d }
        default: break
        }
        throw fail("'\(key)' must be a number")
    }

    func double(_ key: String, default fallback: Double) throws -> Double { try optionalDouble(key) ?? fallback }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        switch values[key] {
        case nil, .null?: return fallback
        case let .bool(b)?: return b
        default: throw fail("'\(key)' must be true or false")
        }
    }

    func string(_ key: String, default fallback: String) throws -> String {
        switch values[key] {
        case nil, .null?: return fallback
        case let .string(s)?: return s
        default: throw fail("'\(key)' must be a string")
        }
    }
}
