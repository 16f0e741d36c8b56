import Safetensors

/// Where a reported value came from: the weights' shapes are authoritative; attention head counts often
/// cannot be read from shapes (a [1152, 1152] projection fits 16 heads of 72 or 8 of 144), so they come from
/// a neighbouring config.json, a documented family default, or stay unknown.
public enum ValueSource: String, Sendable, Codable {
    case shapes
    case config = "config.json"
    /// PixArt-alpha and EasyAnimate v1 use a head dimension of 72 at every size.
    case pixartHeadDim = "assumed: PixArt head dim 72"
    case unknown
}

/// What `inspect` says about one state dict beyond its tensor list: the kind and the kind's dimensions.
/// Built from names and shapes; only a LoRA's scalar `.alpha` tensors and ComfyUI `.comfy_quant` markers
/// are read (a few bytes each).
public struct ModelSummary: Sendable, Codable, Equatable {
    public var kind: ModelKind
    /// For both transformer kinds.
    public var transformer: TransformerSummary?
    /// For a 3D transformer and a motion module.
    public var motionModule: MotionModuleSummary?
    public var lora: LoRASummary?
    public var vae: VAESummary?
    public var t5: T5Summary?
    /// Set when the checkpoint holds quantized weights.
    public var quantization: QuantizationSummary?
    /// Things a user should know: missing blocks, disagreements with config.json, why a file is unknown.
    public var notes: [String]

    public init(kind: ModelKind, notes: [String] = []) {
        self.kind = kind
        self.notes = notes
    }

    /// Summarizes `dict`. `config` is the neighbouring config.json (diffusers or transformers), used for
    /// what shapes cannot tell (attention heads) and cross-checked against the shapes.
    public static func summarize(_ dict: any StateDict, config: JSONValue? = nil) throws -> ModelSummary {
        let view = KeyView(dict)
        let kind = ModelKind.detect(view)
        var summary = ModelSummary(kind: kind)
        var config = config
        if let given = config, !Self.config(given, describes: kind) {
            config = nil
            if kind != .kohyaLoRA && kind != .unknown {
                let described = given["_class_name"]?.stringValue ?? given["model_type"]?.stringValue ?? "another model"
                summary.notes.append("the config.json beside it describes \(described), not a \(kind); ignored")
            }
        }
        switch kind {
        case .pixartTransformer2D, .easyAnimateTransformer3D:
            let transformer = TransformerSummary(view, config: config, notes: &summary.notes)
            summary.transformer = transformer
            if kind == .easyAnimateTransformer3D {
                let mm = MotionModuleSummary(view, config: config, notes: &summary.notes)
                summary.motionModule = mm
                if let mm, mm.channels != transformer.width {
                    summary.notes.append("the motion module works on \(mm.channels) channels but the transformer is \(transformer.width) wide")
                }
            }
        case .motionModule:
            summary.motionModule = MotionModuleSummary(view, config: config, notes: &summary.notes)
        case .kohyaLoRA:
            summary.lora = try LoRASummary(dict, notes: &summary.notes)
        case .vae:
            summary.vae = VAESummary(view, config: config, notes: &summary.notes)
        case .t5Encoder:
            summary.t5 = T5Summary(view, config: config, notes: &summary.notes)
        case .unknown:
            summary.notes += UnknownHints.explain(view)
        }
        summary.quantization = try QuantizationSummary(dict, notes: &summary.notes)
        return summary
    }
}

extension ModelSummary {
    /// Whether a config.json (diffusers `_class_name`, transformers `model_type`/`architectures`) is about
    /// a model of this kind; a config without any of those is taken as fitting.
    static func config(_ config: JSONValue, describes kind: ModelKind) -> Bool {
        var names: [String] = []
        if let c = config["_class_name"]?.stringValue { names.append(c) }
        if let m = config["model_type"]?.stringValue { names.append(m) }
        names += config["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if names.isEmpty { return kind != .kohyaLoRA && kind != .unknown }
        let text = names.joined(separator: " ").lowercased()
        switch kind {
        case .pixartTransformer2D, .easyAnimateTransformer3D, .motionModule: return text.contains("transformer")
        case .vae: return text.contains("autoencoder")
        case .t5Encoder: return text.contains("t5")
        case .kohyaLoRA, .unknown: return false
        }
    }
}

/// Reading numbers out of a config.json.
extension JSONValue {
    func int(_ key: String) -> Int? {
        guard let v = self[key] else { return nil }
        if let i = v.intValue { return Int(exactly: i) }
        // Some writers store integral values as 8.0.
        if let d = v.doubleValue, d.rounded() == d, abs(d) < 1e15 { return Int(d) }
        return nil
    }
}

/// Compares a dimension read from the shapes with config.json and notes a disagreement.
func crossCheck(_ name: String, weights: Int?, config: Int?, notes: inout [String]) {
    guard let weights, let config, weights != config else { return }
    notes.append("config.json says \(name) \(config) but the weights have \(weights)")
}

/// Why an unknown file is unknown, for the formats people commonly mistake for supported ones.
enum UnknownHints {
    static func explain(_ view: KeyView) -> [String] {
        let keys = view.keys
        if keys.contains(where: { $0.contains(".lora_A.") || $0.contains(".lora_B.") }) {
            return ["looks like a PEFT/diffusers LoRA (lora_A/lora_B); ea-weights reads kohya-style LoRAs (lora_unet_*/lora_te_*)"]
        }
        if keys.contains(where: KohyaLoRAKeys.isLoRAKey) {
            let parts = Set(keys.filter(KohyaLoRAKeys.isLoRAKey).compactMap { key -> String? in
                KohyaLoRAKeys.module(of: key) == nil ? key.split(separator: ".").dropFirst().joined(separator: ".") : nil
            }).sorted().prefix(3)
            return ["LoRA-style keys with parts other than lora_down/lora_up/alpha (\(parts.joined(separator: ", "))): LyCORIS/LoCon variants are not supported"]
        }
        if keys.contains(where: { $0.contains("motion_modules.") }) {
            return ["looks like an AnimateDiff (UNet) motion module, not an EasyAnimate one"]
        }
        if keys.contains(where: { $0.hasPrefix("blocks.") && $0.contains(".attn.qkv.") }) || view.contains("x_embedder.proj.weight") {
            return ["looks like an original PixArt checkpoint (x_embedder, blocks.N.attn.qkv); convert it to diffusers names first"]
        }
        if keys.contains(where: { $0.hasPrefix("decoder.block.") }) && keys.contains(where: { $0.hasPrefix("encoder.block.") }) {
            return ["a full T5 (encoder and decoder); PixArt uses only the encoder (T5EncoderModel)"]
        }
        if let prefix = commonWrapperPrefix(keys) {
            return ["every key starts with '\(prefix)': a whole pipeline or training checkpoint; extract the component first"]
        }
        return []
    }

    /// A first path component shared by every key, like `model.` or `transformer.`.
    private static func commonWrapperPrefix(_ keys: [String]) -> String? {
        guard keys.count > 1, let first = keys.first?.split(separator: ".", maxSplits: 1).first else { return nil }
        let prefix = first + "."
        return keys.allSatisfy({ $0.hasPrefix(prefix) }) ? String(prefix) : nil
    }
}
