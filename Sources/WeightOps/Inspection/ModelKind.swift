import Safetensors

/// What a state dict is, recognised from its tensor names and shapes only (never from a file name), so a
/// renamed or re-sharded checkpoint is still recognised. The raw values are the strings `inspect` prints.
///
/// Quantization side tensors (`weight_scale`, `comfy_quant`, ...) are ignored, so a quantized checkpoint has
/// the kind of the model it quantizes.
public enum ModelKind: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// A PixArt `Transformer2DModel` (diffusers names): the diffusers transformer or a personalized backbone.
    case pixartTransformer2D = "pixart-transformer-2d"
    /// EasyAnimate's Transformer3DModel: the 2D weights plus `attn_temporal` motion-module weights.
    case easyAnimateTransformer3D = "easyanimate-transformer-3d"
    /// Only motion-module (`transformer_blocks.N.attn_temporal.…`) keys, like easyanimate_v1_mm.safetensors.
    case motionModule = "motion-module"
    /// A kohya-style LoRA: `lora_unet_*` / `lora_te_*` modules with `.lora_down.weight`, `.lora_up.weight`, `.alpha`.
    case kohyaLoRA = "kohya-lora"
    /// A diffusers `AutoencoderKL` (or the same network under the original Stable Diffusion names).
    case vae
    /// A T5 encoder (`T5EncoderModel`), single file or sharded.
    case t5Encoder = "t5-encoder"
    case unknown

    public var description: String { rawValue }

    /// Recognises `dict` from its key names and shapes; reads no tensor data.
    public static func detect(_ dict: any StateDict) -> ModelKind {
        detect(KeyView(dict))
    }

    /// The same from bare names and shapes (for callers holding a header or a key list, and for tests).
    public static func detect(keys: [String], shapes: [String: [Int]] = [:]) -> ModelKind {
        let model = keys.filter { !KeyPatterns.isQuantizationAuxiliary($0) }
        return detect(KeyView(keys: model, shapes: shapes))
    }

    static func detect(_ view: KeyView) -> ModelKind {
        let keys = view.keys
        guard !keys.isEmpty else { return .unknown }
        if KohyaLoRAKeys.matches(keys) { return .kohyaLoRA }

        let motionModuleKeys = keys.filter(PixArtKeys.isMotionModuleKey)
        if !motionModuleKeys.isEmpty, keys.allSatisfy({ $0.contains("temporal") }) {
            return .motionModule
        }
        if PixArtKeys.hasSpatialTransformer(view) {
            return motionModuleKeys.isEmpty ? .pixartTransformer2D : .easyAnimateTransformer3D
        }
        if VAEKeys.layout(of: view) != nil { return .vae }
        if T5Keys.isEncoder(view) { return .t5Encoder }
        return .unknown
    }
}

/// Key shapes of PixArt's Transformer2DModel (diffusers 0.27) and EasyAnimate's motion module.
enum PixArtKeys {
    static let blocks = "transformer_blocks."

    /// `transformer_blocks.N.attn_temporal.…`: a motion-module weight inside (or extracted from) a 3D transformer.
    static func isMotionModuleKey(_ key: String) -> Bool {
        guard let (_, rest) = KeyPatterns.index(in: key, after: blocks) else { return false }
        return rest.hasPrefix("attn_temporal.")
    }

    /// The spatial PixArt network: patch embedding, the single AdaLN timestep embedding and attention blocks.
    static func hasSpatialTransformer(_ view: KeyView) -> Bool {
        guard view.contains("pos_embed.proj.weight"), view.contains("adaln_single.linear.weight") else { return false }
        return view.keys.contains { key in
            guard let (_, rest) = KeyPatterns.index(in: key, after: blocks) else { return false }
            return rest == "attn1.to_q.weight"
        }
    }
}

/// Key shapes of kohya-style LoRA files as EasyAnimate's LoRA network writes them.
enum KohyaLoRAKeys {
    static let transformerPrefix = "lora_unet_"
    static let partSuffixes = [".lora_down.weight", ".lora_up.weight", ".alpha"]

    /// `lora_te_`, and the numbered `lora_te1_`/`lora_te2_` of multi-encoder trainers.
    static func isTextEncoderKey(_ key: String) -> Bool {
        guard key.hasPrefix("lora_te") else { return false }
        let rest = key.utf8.dropFirst(7)
        let afterDigits = rest.drop { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return afterDigits.first == UInt8(ascii: "_")
    }

    static func isLoRAKey(_ key: String) -> Bool {
        key.hasPrefix(transformerPrefix) || isTextEncoderKey(key)
    }

    /// The module name of a LoRA key (`lora_unet__proj_out.lora_up.weight` → `lora_unet__proj_out`).
    static func module(of key: String) -> (module: String, part: String)? {
        for suffix in partSuffixes where key.hasSuffix(suffix) {
            return (String(key.dropLast(suffix.count)), String(suffix.dropFirst()))
        }
        return nil
    }

    /// Every key is a LoRA part and there is at least one down/up pair.
    static func matches(_ keys: [String]) -> Bool {
        var down = false
        var up = false
        for key in keys {
            guard isLoRAKey(key), let (_, part) = module(of: key) else { return false }
            if part == "lora_down.weight" { down = true }
            if part == "lora_up.weight" { up = true }
        }
        return down && up
    }
}

/// Key shapes of AutoencoderKL: diffusers names or the original Stable Diffusion (LDM) names.
enum VAEKeys {
    enum Layout: String, Sendable, Codable {
        case diffusers
        case ldm
    }

    static func layout(of view: KeyView) -> Layout? {
        let hasConvIn = view.contains("encoder.conv_in.weight") || view.contains("decoder.conv_in.weight")
        guard hasConvIn else { return nil }
        if view.keys.contains(where: { $0.hasPrefix("encoder.down_blocks.") || $0.hasPrefix("decoder.up_blocks.") }) {
            return .diffusers
        }
        if view.keys.contains(where: { $0.hasPrefix("encoder.down.") || $0.hasPrefix("decoder.up.") }) {
            return .ldm
        }
        return nil
    }
}

/// Key shapes of transformers' T5EncoderModel.
enum T5Keys {
    static let blocks = "encoder.block."

    static func isEncoder(_ view: KeyView) -> Bool {
        let hasAttention = view.keys.contains { key in
            guard let (_, rest) = KeyPatterns.index(in: key, after: blocks) else { return false }
            return rest == "layer.0.SelfAttention.q.weight"
        }
        // A full T5 (with a decoder) is not what PixArt loads; it is reported as unknown with a note.
        return hasAttention && !view.keys.contains { $0.hasPrefix("decoder.block.") }
    }
}
