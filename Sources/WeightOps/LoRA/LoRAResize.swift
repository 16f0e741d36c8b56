import Foundation
import EANumerics
import Safetensors

/// kohya's dynamic rank rules (networks/resize_lora.py), on the singular values S of a module's `up @ down`.
public enum DynamicRankRule: String, Sendable, Codable, CaseIterable {
    /// Keep the singular values larger than S[0] / param.
    case svRatio = "sv_ratio"
    /// Keep enough for param of the Frobenius norm (sqrt of the cumulative sum of S²).
    case svFro = "sv_fro"
    /// Keep enough for param of the sum of S.
    case svCumulative = "sv_cumulative"

    /// The rank kohya's `rank_resize` picks, including its `+ 1` and its clamp to [2, len(S)], where len(S) is
    /// `fullLength` = min(out, in) (kohya's full SVD; `s` holds only the module's nonzero part, the rest is 0).
    public func rank(_ s: [Float], fullLength: Int, param: Double) -> Int {
        let length = max(fullLength, s.count)
        var index: Int
        switch self {
        case .svRatio:
            let minimum = Double(s.first ?? 0) / param
            index = s.filter { Double($0) > minimum }.count
        case .svFro:
            index = Self.searchSorted(s.map { Double($0) * Double($0) }, target: param * param, length: length)
        case .svCumulative:
            index = Self.searchSorted(s.map { Double($0) }, target: param, length: length)
        }
        // kohya: index = searchsorted(...) + 1 for the cumulative rules, then max(1, min(index, len(S) - 1)) + 1.
        if self != .svRatio { index += 1 }
        index = max(1, min(index, length - 1))
        return index + 1
    }

    /// `torch.searchsorted(cumsum(x) / sum(x), target)` (the first index whose normalized cumulative sum is
    /// ≥ target), where x continues with zeros up to `length`.
    static func searchSorted(_ x: [Double], target: Double, length: Int) -> Int {
        let total = x.reduce(0, +)
        guard total > 0 else { return 0 }
        var cumulative = 0.0
        for (i, v) in x.enumerated() {
            cumulative += v
            if cumulative / total >= target { return i }
        }
        return length
    }
}

public struct LoRAResizeOptions: Sendable {
    public var input: String
    public var output: String
    /// The new rank, or with `dynamic` the largest rank allowed (nil: each module's own rank).
    public var rank: Int?
    public var dynamic: DynamicRankRule?
    public var param: Double?
    public var dtype: LoRADType = .f32
    public var dryRun = false

    public init(input: String, output: String, rank: Int?) {
        self.input = input
        self.output = output
        self.rank = rank
    }
}

public struct LoRAToolResult: Sendable, Codable {
    public var operation: String
    public var inputs: [LoRASpec]
    /// Nil for a dry run.
    public var output: String?
    public var rank: Int?
    public var dynamic: String?
    public var param: Double?
    public var dtype: String
    public var layers: [LoRALayerReport]
    public var mergedFrom: [ProvenanceEntry]

    enum CodingKeys: String, CodingKey {
        case operation, inputs, output, rank, dynamic, param, dtype, layers, mergedFrom = "merged_from"
    }

    public var lines: [String] {
        let ranks = Array(Set(layers.map(\.rank))).sorted()
        var out = ["\(operation): \(layers.count) module(s), new rank " + (ranks.count > 4
            ? "\(ranks.first ?? 0)…\(ranks.last ?? 0)" : ranks.map(String.init).joined(separator: ","))]
        let total = layers.reduce(0.0) { $0 + $1.norm * $1.norm }
        let kept = layers.reduce(0.0) { $0 + $1.norm * $1.norm * ($1.retained ?? 0) * ($1.retained ?? 0) }
        if total > 0 { out.append("kept \(String(format: "%.4f", (kept / total).squareRoot() * 100))% of the Frobenius norm over all modules") }
        out += layers.map(\.line)
        if let output { out.append("wrote \(output) (\(dtype))") } else { out.append("dry run: nothing written") }
        return out
    }
}

/// `ea-weights resize-lora`: kohya's networks/resize_lora.py. Per module the SVD of `up @ down` (exactly, from
/// QR factorizations of the factors: `LowRank.productSVD`), truncated to the new rank or the one a dynamic rule
/// picks, with alpha rescaled so the effective change `(alpha / rank) · up @ down` keeps its scale:
/// new alpha = (alpha / old rank) · new rank. A module is never given a rank above its own (the extra singular
/// values would be zero).
public enum LoRAResize {
    public static func run(_ options: LoRAResizeOptions, progress: ProgressHandler? = nil) throws -> LoRAToolResult {
        if let rank = options.rank, rank < 1 {
            throw WeightOpsError.invalidInput(path: options.input, reason: "--rank must be at least 1")
        }
        if options.dynamic == nil && options.rank == nil {
            throw WeightOpsError.invalidInput(path: options.input, reason: "give --rank R or --dynamic RULE --param X")
        }
        if options.dynamic != nil {
            guard let p = options.param, p > 0, p.isFinite else {
                throw WeightOpsError.invalidInput(path: options.input, reason: "--dynamic needs a positive --param")
            }
        }
        try LAPACK.ensureAvailable()
        let lora = try LoRAToolInputs.openLoRA(options.input, command: "resize-lora")
        if let rank = options.rank, options.dynamic == nil {
            let largest = lora.modules.map { min($0.outFeatures, $0.inFeatures) }.max() ?? 0
            if rank > largest {
                throw WeightOpsError.invalidInput(path: options.input, reason: "--rank \(rank) is above the size of every module "
                    + "(the largest holds rank \(largest))")
            }
        }

        func decompose(_ module: LoRAModule) throws -> (factors: LowRankFactors, rank: Int) {
            let (up, down) = try lora.factors(of: module)
            let full = try LowRank.productSVD([.init(up: up, down: down, rank: module.rank, scale: 1)],
                                              rows: module.outFeatures, columns: module.inFeatures, rank: module.rank)
            var rank: Int
            if let rule = options.dynamic, let param = options.param {
                rank = rule.rank(full.s, fullLength: min(module.outFeatures, module.inFeatures), param: param)
                if let cap = options.rank { rank = min(rank, cap) }
                // kohya: a zero matrix gets rank 1.
                if Double(full.s.first ?? 0) <= 1e-6 { rank = 1 }
            } else {
                rank = options.rank ?? module.rank
            }
            rank = max(1, min(rank, module.rank, full.rank))
            return (full.truncated(to: rank), rank)
        }

        // Pass 1: the new rank of every module (the header comes first); cheap, the factors are small.
        var plans: [(module: LoRAModule, rank: Int, report: LoRALayerReport)] = []
        for (i, module) in lora.modules.enumerated() {
            if Interruption.isRequested { throw WeightOpsError.invalidInput(path: options.output, reason: "interrupted; nothing was written") }
            let (f, rank) = try decompose(module)
            let scale = module.alphaScale
            plans.append((module, rank, LoRALayerReport(
                module: module.name.name, shape: [module.outFeatures, module.inFeatures], inputRank: module.rank, rank: rank,
                alpha: scale * Double(rank), norm: f.totalEnergy.squareRoot() * abs(scale), retained: f.retainedFraction,
                method: f.method, iterations: 0)))
            progress?("decomposing", i + 1, lora.modules.count)
        }
        lora.releasePages()
        var result = LoRAToolResult(operation: "resize-lora", inputs: [LoRASpec(path: options.input, multiplier: 1)], output: nil,
                                    rank: options.rank, dynamic: options.dynamic?.rawValue, param: options.param,
                                    dtype: options.dtype.rawValue, layers: plans.map(\.report), mergedFrom: [])
        if options.dryRun { return result }

        let modules = plans.map { plan in
            LoRAModuleOutput(name: plan.module.name.name, outFeatures: plan.module.outFeatures, inFeatures: plan.module.inFeatures,
                             isConv: plan.module.down.shape.count == 4, rank: plan.rank, alpha: Float(plan.report.alpha)) {
                let (f, _) = try decompose(plan.module)
                return LoRAOutputWriter.kohyaFactors(consume f)
            }
        }
        let provenance = PendingProvenance([(ProvenanceEntry(role: "lora", file: (options.input as NSString).lastPathComponent), options.input)])
        defer { provenance.cancel() }
        var parameters: [(String, JSONValue)] = [("dtype", .string(options.dtype.rawValue))]
        if let r = options.rank { parameters.append(("rank", .number(Double(r)))) }
        if let d = options.dynamic { parameters.append(("dynamic", .string(d.rawValue))) }
        if let p = options.param { parameters.append(("param", .number(p))) }
        var extra = lora.metadata.filter { $0.key.hasPrefix("ss_") }
        let oldRanks = Array(Set(lora.modules.map(\.rank))).sorted().map(String.init).joined(separator: ",")
        let comment = extra["ss_training_comment"] ?? ""
        let dim: String, alpha: String
        if let rule = options.dynamic {
            dim = "Dynamic"
            alpha = "Dynamic"
            extra["ss_training_comment"] = "Dynamic resize with \(rule.rawValue): \(formatNumber(options.param ?? 0)) from \(oldRanks); \(comment)"
        } else {
            let r = options.rank ?? 0
            dim = String(r)
            let alphas = Set(plans.map(\.report.alpha))
            alpha = alphas.count == 1 ? String(alphas.first ?? Double(r)) : "Dynamic"
            extra["ss_training_comment"] = "dimension is resized from \(oldRanks) to \(r); \(comment)"
        }
        let metadata = LoRAOutputWriter.metadata(dim: dim, alpha: alpha, operation: "resize-lora", parameters: .object(parameters),
                                                 provenancePlaceholder: provenance.placeholderText, extra: extra)
        try LoRAOutputWriter.write(modules, to: options.output, dtype: options.dtype, metadata: metadata,
                                   provenance: provenance, progress: progress)
        result.output = options.output
        result.mergedFrom = try provenance.entries()
        return result
    }
}
