import Safetensors

/// What a kohya-style LoRA holds: per module `<name>.lora_down.weight` (rank, in), `<name>.lora_up.weight`
/// (out, rank) and an optional scalar `<name>.alpha` (absent means alpha = rank, as in EasyAnimate's merge).
public struct LoRASummary: Sendable, Codable, Equatable {
    /// Modules with both a down and an up weight.
    public var modules: Int
    /// `lora_unet_*` modules (the diffusion transformer, motion module included).
    public var transformerModules: Int
    /// Those of them inside the motion module (names containing `temporal`).
    public var temporalModules: Int
    /// `lora_te*_` modules (the T5 text encoder).
    public var textEncoderModules: Int
    /// The most common rank, and every distinct rank.
    public var rank: Int?
    public var ranks: [Int]
    /// The most common alpha, every distinct alpha, and how many modules have none (alpha = rank).
    public var alpha: Double?
    public var alphas: [Double]
    public var modulesWithoutAlpha: Int
    /// 1×1 convolution modules (4-D weights).
    public var convModules: Int
    /// Modules missing their down or up weight (listed, at most 10, in the notes).
    public var incompleteModules: Int
    /// The training tool's `ss_*` metadata (network dim/alpha, base model, ...).
    public var trainingMetadata: [String: String]

    init(_ dict: any StateDict, notes: inout [String]) throws {
        struct Parts {
            var down: [Int]?
            var up: [Int]?
            var alphaKey: String?
        }
        var parts: [String: Parts] = [:]
        for key in dict.keys {
            guard let (module, part) = KohyaLoRAKeys.module(of: key) else { continue }
            let shape = dict.info(key)?.shape
            switch part {
            case "lora_down.weight": parts[module, default: Parts()].down = shape
            case "lora_up.weight": parts[module, default: Parts()].up = shape
            default: parts[module, default: Parts()].alphaKey = key
            }
        }

        var rankCounts: [Int: Int] = [:]
        var alphaCounts: [Double: Int] = [:]
        var incomplete: [String] = []
        var mismatched: [String] = []
        modules = 0
        transformerModules = 0
        temporalModules = 0
        textEncoderModules = 0
        modulesWithoutAlpha = 0
        convModules = 0
        for module in parts.keys.sorted() {
            let p = parts[module] ?? Parts()
            guard let down = p.down, let up = p.up else {
                incomplete.append(module)
                continue
            }
            modules += 1
            if module.hasPrefix(KohyaLoRAKeys.transformerPrefix) {
                transformerModules += 1
                if module.contains("temporal") { temporalModules += 1 }
            } else {
                textEncoderModules += 1
            }
            if down.count == 4 || up.count == 4 { convModules += 1 }
            // down is (rank, in[, 1, 1]) and up is (out, rank[, 1, 1]).
            let rank = down.first ?? 0
            if up.count < 2 || up[1] != rank { mismatched.append(module) }
            rankCounts[rank, default: 0] += 1
            if let alphaKey = p.alphaKey {
                let values = try dict.tensor(alphaKey).toFloat32()
                if let value = values.first, values.count == 1 {
                    alphaCounts[Double(value), default: 0] += 1
                } else {
                    notes.append("\(alphaKey) holds \(values.count) values, not one")
                }
            } else {
                modulesWithoutAlpha += 1
            }
        }
        incompleteModules = incomplete.count
        ranks = rankCounts.keys.sorted()
        rank = Self.mostCommon(rankCounts)
        alphas = alphaCounts.keys.sorted()
        alpha = Self.mostCommon(alphaCounts)
        trainingMetadata = dict.metadata.filter { $0.key.hasPrefix("ss_") }

        if !incomplete.isEmpty {
            notes.append("\(incomplete.count) LoRA module(s) lack a down or up weight: \(Self.list(incomplete))")
        }
        if !mismatched.isEmpty {
            notes.append("\(mismatched.count) LoRA module(s) have up/down weights of different ranks: \(Self.list(mismatched))")
        }
        if let declared = trainingMetadata["ss_network_dim"].flatMap({ Int($0) }), let rank, ranks.count == 1, declared != rank {
            notes.append("ss_network_dim says rank \(declared) but the weights have rank \(rank)")
        }
    }

    /// The value with the highest count (the smallest on ties, so the answer is stable).
    private static func mostCommon<T: Comparable>(_ counts: [T: Int]) -> T? {
        counts.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }?.key
    }

    private static func list(_ names: [String]) -> String {
        names.count <= 10 ? names.joined(separator: ", ") : names.prefix(10).joined(separator: ", ") + ", …"
    }
}
