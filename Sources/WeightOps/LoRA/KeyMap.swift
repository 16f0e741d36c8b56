/// Which model a kohya LoRA module is for, by its name prefix.
public enum LoRATarget: String, Sendable, Codable, CaseIterable {
    /// `lora_unet_…`: the diffusion transformer (EasyAnimate keeps kohya's "unet" prefix).
    case transformer
    /// `lora_te_…`: the T5 text encoder.
    case textEncoder = "text_encoder"

    /// The prefix EasyAnimate's LoRA network writes. Its transformer names carry a double underscore
    /// (`lora_unet__transformer_blocks_0_attn1_to_q`) because the root module's name is empty.
    public var namePrefix: String {
        switch self {
        case .transformer: return "lora_unet__"
        case .textEncoder: return "lora_te_"
        }
    }
}

/// A kohya LoRA module name split into its target and its flattened module path
/// (`lora_unet__transformer_blocks_0_attn1_to_q` → transformer, `transformer_blocks_0_attn1_to_q`).
public struct LoRAModuleName: Sendable, Hashable {
    public let name: String
    public let target: LoRATarget
    /// The module path with every `.` replaced by `_`.
    public let flatPath: String

    /// Nil when the name has neither the `lora_unet` nor the `lora_te` prefix.
    public init?(_ name: String) {
        self.name = name
        if name.hasPrefix("lora_unet_") {
            target = .transformer
            var rest = name.dropFirst("lora_unet_".count)
            // EasyAnimate writes `lora_unet__…`; kohya's SD scripts write `lora_unet_…`. Accept both.
            if rest.hasPrefix("_") { rest = rest.dropFirst() }
            flatPath = String(rest)
        } else if name.hasPrefix("lora_te_") {
            target = .textEncoder
            flatPath = String(name.dropFirst("lora_te_".count))
        } else {
            return nil
        }
        if flatPath.isEmpty { return nil }
    }

    /// The name EasyAnimate's LoRA network gives the module owning `weightKey` (`….weight`).
    public static func name(forWeightKey weightKey: String, target: LoRATarget) -> String {
        target.namePrefix + KeyMap.flatten(KeyMap.modulePath(ofWeightKey: weightKey))
    }

    /// True for modules of the motion module (EasyAnimate's temporal attention), by name.
    public var isTemporal: Bool { flatPath.contains("temporal") }
}

/// Resolves flattened module paths (kohya LoRA names without their prefix) to the weight keys of a base
/// checkpoint. Built from the base's real key list, so resolution is a lookup, not the original script's
/// underscore guessing (which walks attributes and crashes on a miss).
///
/// Example: with base keys `transformer_blocks.0.attn1.to_q.weight`, …
/// `resolve("transformer_blocks_0_attn1_to_q")` is `.matched("transformer_blocks.0.attn1.to_q.weight")`.
public struct KeyMap: Sendable {
    public enum Resolution: Sendable, Equatable {
        case matched(String)
        case missing
    }

    /// Flattened module path → weight keys that flatten to it (more than one only when paths collide).
    private let candidates: [String: [String]]
    /// Flattened paths that more than one weight key flattens to, with the key chosen for each.
    public let collisions: [String: [String]]

    /// `keys`: every tensor name of the base; only those ending in `.weight` can be LoRA targets.
    public init<S: Sequence>(keys: S) where S.Element == String {
        var candidates: [String: [String]] = [:]
        for key in keys where key.hasSuffix(".weight") {
            candidates[KeyMap.flatten(KeyMap.modulePath(ofWeightKey: key)), default: []].append(key)
        }
        for (flat, keys) in candidates where keys.count > 1 {
            candidates[flat] = keys.sorted(by: KeyMap.preferredByOriginalWalk)
        }
        self.candidates = candidates
        self.collisions = candidates.filter { $0.value.count > 1 }
    }

    public var count: Int { candidates.count }

    /// The weight key a flattened module path names.
    public func resolve(flatPath: String) -> Resolution {
        guard let keys = candidates[flatPath], let first = keys.first else { return .missing }
        return .matched(first)
    }

    /// The weight key a kohya module name names, if it is for `target` and the base has it.
    public func resolve(_ module: LoRAModuleName, target: LoRATarget) -> String? {
        guard module.target == target, case let .matched(key) = resolve(flatPath: module.flatPath) else { return nil }
        return key
    }

    static func modulePath(ofWeightKey key: String) -> String {
        key.hasSuffix(".weight") ? String(key.dropLast(".weight".count)) : key
    }

    static func flatten(_ path: String) -> String {
        String(path.map { $0 == "." ? "_" : $0 })
    }

    /// When two module paths flatten alike (`a.b_c` and `a_b.c`), prefer the one EasyAnimate's attribute
    /// walk would reach: it tries the shortest segment first, so shorter leading segments win.
    static func preferredByOriginalWalk(_ a: String, _ b: String) -> Bool {
        let sa = a.split(separator: ".").map(\.count), sb = b.split(separator: ".").map(\.count)
        for (x, y) in zip(sa, sb) where x != y { return x < y }
        return sa.count > sb.count
    }
}
