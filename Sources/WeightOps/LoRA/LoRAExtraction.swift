import Foundation
import EANumerics
import Safetensors

public struct LoRAExtractionOptions: Sendable {
    public var base: String
    public var tuned: String
    public var output: String
    public var rank: Int
    /// Layers whose largest |TUNED − BASE| is below this are skipped as unchanged (kohya's default 0.01).
    public var minDiff: Double = 0.01
    /// kohya's quantile clamp of the factors; 1 turns it off.
    public var clampQuantile: Double = 0.99
    public var dtype: LoRADType = .f32
    public var dryRun = false

    public init(base: String, tuned: String, output: String, rank: Int) {
        self.base = base
        self.tuned = tuned
        self.output = output
        self.rank = rank
    }
}

public struct LoRAExtractionResult: Sendable, Codable {
    public struct Skipped: Sendable, Codable, Equatable {
        public var tensor: String
        public var shape: [Int]
        public var maxAbsDiff: Double
        public var norm: Double
        public var reason: String

        enum CodingKeys: String, CodingKey { case tensor, shape, maxAbsDiff = "max_abs_diff", norm, reason }
    }

    public var base: String
    public var tuned: String
    /// Nil for a dry run.
    public var output: String?
    public var rank: Int
    public var dtype: String
    public var minDiff: Double
    public var clampQuantile: Double
    /// The modules written (or, in a dry run, that would be), sorted by name.
    public var layers: [LoRALayerReport]
    /// LoRA-able weights whose largest change is below --min-diff (with their change).
    public var unchanged: [Skipped]
    /// Changed tensors a LoRA cannot carry (biases, norms, the 2×2 patch embedding, …).
    public var notCarried: [Skipped]
    public var mergedFrom: [ProvenanceEntry]

    enum CodingKeys: String, CodingKey {
        case base, tuned, output, rank, dtype, minDiff = "min_diff", clampQuantile = "clamp_quantile", layers, unchanged
        case notCarried = "not_carried", mergedFrom = "merged_from"
    }

    public var lines: [String] {
        var out = ["extracted \(layers.count) LoRA module(s) at rank \(rank) from \(tuned) - \(base)"]
        let totalNorm = layers.reduce(0.0) { $0 + $1.norm * $1.norm }
        let keptNorm = layers.reduce(0.0) { $0 + $1.norm * $1.norm * ($1.retained ?? 0) * ($1.retained ?? 0) }
        if layers.contains(where: { $0.retained != nil }), totalNorm > 0 {
            out.append("kept \(String(format: "%.4f", (keptNorm / totalNorm).squareRoot() * 100))% of the change's Frobenius norm over the carried layers")
        }
        out += layers.map(\.line)
        if !unchanged.isEmpty {
            out.append("skipped \(unchanged.count) unchanged layer(s) (largest change below --min-diff \(formatNumber(minDiff))):")
            for s in unchanged.prefix(12) { out.append("    \(s.tensor) (max |dW| \(String(format: "%.3g", s.maxAbsDiff)))") }
            if unchanged.count > 12 { out.append("    … and \(unchanged.count - 12) more") }
        }
        if !notCarried.isEmpty {
            out.append("changed but not carried (a LoRA cannot express them): \(notCarried.count) tensor(s)")
            for s in notCarried.prefix(12) {
                out.append("    \(s.tensor) \(s.shape): \(s.reason), max |dW| \(String(format: "%.3g", s.maxAbsDiff))")
            }
            if notCarried.count > 12 { out.append("    … and \(notCarried.count - 12) more") }
        }
        if let output { out.append("wrote \(output) (\(dtype))") } else { out.append("dry run: nothing written") }
        return out
    }
}

/// `ea-weights extract-lora`: a LoRA carrying TUNED − BASE, as kohya's networks/extract_lora_from_models.py
/// makes it (per weight the rank-R truncated SVD of the difference in float32, `lora_up = U·S`,
/// `lora_down = Vh`, alpha = rank, the 0.99-quantile clamp), with EasyAnimate's module names. One layer at a
/// time: memory is that of the largest layer, never of a model.
public enum LoRAExtraction {
    public static func run(_ options: LoRAExtractionOptions, progress: ProgressHandler? = nil) throws -> LoRAExtractionResult {
        guard options.rank >= 1 else {
            throw WeightOpsError.invalidInput(path: options.output, reason: "--rank must be at least 1")
        }
        guard options.clampQuantile > 0, options.clampQuantile <= 1 else {
            throw WeightOpsError.invalidInput(path: options.output, reason: "--clamp-quantile must be in (0, 1]")
        }
        try LAPACK.ensureAvailable()
        let base = try LoRAToolInputs.openModel(options.base, command: "extract-lora")
        let tuned = try LoRAToolInputs.openModel(options.tuned, command: "extract-lora")
        let pairs = try match(base: base, tuned: tuned, basePath: options.base, tunedPath: options.tuned)

        // Pass 1: what changed, by how much (reads both models once, one tensor at a time).
        var candidates: [(part: Int, key: String, module: String, out: Int, in: Int, isConv: Bool, maxAbs: Double, norm: Double)] = []
        var unchanged: [LoRAExtractionResult.Skipped] = []
        var notCarried: [LoRAExtractionResult.Skipped] = []
        let totalBytes = pairs.reduce(0) { $0 + $1.base.byteCount }
        var done = 0
        for (index, pair) in pairs.enumerated() {
            for key in pair.base.keys {
                if Interruption.isRequested { throw WeightOpsError.invalidInput(path: options.output, reason: "interrupted; nothing was written") }
                guard let info = pair.base.info(key), info.dtype.isFloatingPoint else { continue }
                let (maxAbs, energy) = try difference(pair, key: key, body: nil)
                done += info.byteCount
                progress?("comparing", done, totalBytes)
                let shape = info.shape
                if let reason = notCarriable(key: key, shape: shape) {
                    if maxAbs > 0 {
                        notCarried.append(.init(tensor: key, shape: shape, maxAbsDiff: maxAbs, norm: energy.squareRoot(), reason: reason))
                    }
                    continue
                }
                guard maxAbs >= options.minDiff, maxAbs > 0 else {
                    unchanged.append(.init(tensor: key, shape: shape, maxAbsDiff: maxAbs, norm: energy.squareRoot(), reason: "unchanged"))
                    continue
                }
                candidates.append((index, key, LoRAModuleName.name(forWeightKey: key, target: pair.target),
                                   shape[0], shape[1], shape.count == 4, maxAbs, energy.squareRoot()))
            }
        }
        guard !candidates.isEmpty else {
            throw WeightOpsError.incompatible(
                path: options.tuned, reason: "no Linear weight differs from \(options.base) by \(formatNumber(options.minDiff)) or more "
                    + "(--min-diff); there is nothing to extract")
        }
        let largest = candidates.map { min($0.out, $0.in) }.max() ?? 0
        if options.rank > largest {
            throw WeightOpsError.invalidInput(
                path: options.tuned, reason: "--rank \(options.rank) is above the size of every changed layer (the largest "
                    + "holds rank \(largest)); choose at most \(largest)")
        }
        var seen = Set<String>()
        for c in candidates where !seen.insert(c.module).inserted {
            throw WeightOpsError.incompatible(path: options.base, reason: "two weights map to the LoRA module name '\(c.module)'")
        }
        candidates.sort { $0.module < $1.module }

        var result = LoRAExtractionResult(
            base: options.base, tuned: options.tuned, output: nil, rank: options.rank, dtype: options.dtype.rawValue,
            minDiff: options.minDiff, clampQuantile: options.clampQuantile,
            layers: candidates.map { c in
                let r = min(options.rank, c.out, c.in)
                return LoRALayerReport(module: c.module, tensor: c.key, shape: [c.out, c.in], rank: r, alpha: Double(r),
                                       norm: c.norm, maxAbsDiff: c.maxAbs)
            },
            unchanged: unchanged, notCarried: notCarried, mergedFrom: [])
        if options.dryRun { return result }

        // Pass 2: per layer the truncated SVD, computed when the writer reaches it.
        let reports = LayerReports()
        let modules: [LoRAModuleOutput] = candidates.map { c in
            let rank = min(options.rank, c.out, c.in)
            let pair = pairs[c.part]
            return LoRAModuleOutput(name: c.module, outFeatures: c.out, inFeatures: c.in, isConv: c.isConv, rank: rank,
                                    alpha: Float(rank)) {
                var delta: [Float] = []
                _ = try difference(pair, key: c.key) { delta = $0 }
                let f = try LowRank.truncatedSVD(delta, rows: c.out, columns: c.in, rank: rank, seed: moduleSeed(c.module))
                let (retained, method, iterations) = (f.retainedFraction, f.method, f.iterations)
                var (up, down) = LoRAOutputWriter.kohyaFactors(consume f)
                let clamp = QuantileClamp.apply(up: &up, down: &down, quantile: options.clampQuantile)
                // What the stored factors miss, measured (energy differences cannot resolve float32's last digits).
                let residual = LowRank.residualNorm(delta, rows: c.out, columns: c.in, up: up, down: down, rank: rank)
                delta = []
                var report = LoRALayerReport(module: c.module, tensor: c.key, shape: [c.out, c.in], rank: rank, alpha: Double(rank),
                                             norm: c.norm, retained: retained, maxAbsDiff: c.maxAbs, method: method,
                                             iterations: iterations, clampThreshold: clamp.threshold.map(Double.init),
                                             clamped: clamp.clamped)
                report.relativeError = c.norm > 0 ? residual / c.norm : 0
                reports.set(report)
                return (up, down)
            }
        }
        var inputs: [(entry: ProvenanceEntry, path: String)] = []
        for part in base { for f in part.files { inputs.append((ProvenanceEntry(role: "base", file: f.label), f.path)) } }
        for part in tuned { for f in part.files { inputs.append((ProvenanceEntry(role: "tuned", file: f.label), f.path)) } }
        let provenance = PendingProvenance(inputs)
        defer { provenance.cancel() }
        let parameters = JSONValue.object([
            ("rank", .number(Double(options.rank))), ("min_diff", .number(options.minDiff)),
            ("clamp_quantile", .number(options.clampQuantile)), ("dtype", .string(options.dtype.rawValue)),
        ])
        let metadata = LoRAOutputWriter.metadata(dim: String(options.rank), alpha: String(Double(options.rank)),
                                                 operation: "extract-lora", parameters: parameters,
                                                 provenancePlaceholder: provenance.placeholderText)
        try LoRAOutputWriter.write(modules, to: options.output, dtype: options.dtype, metadata: metadata,
                                   provenance: provenance, progress: progress)
        result.layers = result.layers.map { reports.get($0.module) ?? $0 }
        result.output = options.output
        result.mergedFrom = try provenance.entries()
        return result
    }

    struct Pair {
        let base: any StateDict
        let tuned: any StateDict
        let target: LoRATarget
    }

    /// Pairs the models of BASE and TUNED: the same parts, the same keys, shapes and dtype classes.
    static func match(base: [LoRAToolInputs.ModelPart], tuned: [LoRAToolInputs.ModelPart], basePath: String,
                      tunedPath: String) throws -> [Pair] {
        guard base.map(\.name) == tuned.map(\.name), zip(base, tuned).allSatisfy({ $0.target == $1.target }) else {
            throw WeightOpsError.incompatible(path: tunedPath, reason: "holds \(tuned.map(\.name).joined(separator: ", ")) "
                + "(\(tuned.map { $0.target.rawValue }.joined(separator: ", "))) but \(basePath) holds "
                + "\(base.map(\.name).joined(separator: ", ")) (\(base.map { $0.target.rawValue }.joined(separator: ", "))); "
                + "give two models of the same kind")
        }
        var pairs: [Pair] = []
        for (b, t) in zip(base, tuned) {
            let bk = Set(b.dict.keys), tk = Set(t.dict.keys)
            if let missing = b.dict.keys.first(where: { !tk.contains($0) }) {
                throw WeightOpsError.incompatible(path: t.dict.path, reason: "has no '\(missing)', which \(b.dict.path) has "
                    + "(\(bk.subtracting(tk).count) key(s) missing); BASE and TUNED must be the same kind of model")
            }
            if let extra = t.dict.keys.first(where: { !bk.contains($0) }) {
                throw WeightOpsError.incompatible(path: t.dict.path, reason: "has '\(extra)', which \(b.dict.path) has not "
                    + "(\(tk.subtracting(bk).count) extra key(s)); BASE and TUNED must be the same kind of model")
            }
            for key in b.dict.keys {
                guard let bi = b.dict.info(key), let ti = t.dict.info(key) else { continue }
                if bi.shape != ti.shape {
                    throw WeightOpsError.incompatible(path: t.dict.path, reason: "'\(key)' is \(ti.shape) but \(bi.shape) in "
                        + "\(b.dict.path); BASE and TUNED must have the same shapes")
                }
                if bi.dtype.isFloatingPoint != ti.dtype.isFloatingPoint {
                    throw WeightOpsError.incompatible(path: t.dict.path, reason: "'\(key)' is \(ti.dtype.rawValue) but "
                        + "\(bi.dtype.rawValue) in \(b.dict.path)")
                }
            }
            pairs.append(Pair(base: b.dict, tuned: t.dict, target: b.target))
        }
        return pairs
    }

    /// Why a floating-point tensor cannot be a LoRA module, nil when it can: EasyAnimate's LoRA network targets
    /// Linear layers and 1×1 convolutions (its merge_lora squeezes 4-D factors as 1×1), never embeddings.
    static func notCarriable(key: String, shape: [Int]) -> String? {
        guard key.hasSuffix(".weight") else { return "not a weight (bias, buffer or table)" }
        if shape.count == 1 { return "a 1-D weight (normalization)" }
        if shape.count == 4 {
            return shape[2] == 1 && shape[3] == 1 ? nil : "a \(shape[2])x\(shape[3]) convolution kernel (LoRAs hold 1x1 only)"
        }
        guard shape.count == 2 else { return "a \(shape.count)-D weight" }
        let module = KeyMap.modulePath(ofWeightKey: key)
        if module == "shared" || module.hasSuffix("embed_tokens") || module.hasSuffix("relative_attention_bias") {
            return "an embedding table"
        }
        return nil
    }

    /// max |TUNED − BASE| and ‖TUNED − BASE‖² of one tensor; `body` (when given) receives the difference as a
    /// row-major float32 matrix (conv weights as out × in). Both tensors are streamed block by block, so the
    /// only full-size buffer is the difference itself, and only when `body` wants it.
    @discardableResult
    static func difference(_ pair: Pair, key: String, body: (([Float]) throws -> Void)?) throws -> (maxAbs: Double, energy: Double) {
        let b = try pair.base.tensor(key), t = try pair.tuned.tensor(key)
        let count = t.elementCount
        let block = 65536
        var delta = [Float](repeating: 0, count: body == nil ? 0 : count)
        var tunedChunk = [Float](repeating: 0, count: body == nil ? min(block, max(1, count)) : 0)
        var baseChunk = [Float](repeating: 0, count: min(block, max(1, count)))
        var maxAbs: Float = 0
        var energy = 0.0
        var nonFinite = 0
        var i = 0
        while i < count {
            let range = i..<min(count, i + block)
            baseChunk.withUnsafeMutableBufferPointer { c in
                b.stream(elements: range, into: UnsafeMutableBufferPointer(rebasing: c[0..<range.count]))
            }
            func subtract(_ d: UnsafeMutableBufferPointer<Float>) {
                t.stream(elements: range, into: d)
                var partial = 0.0
                baseChunk.withUnsafeBufferPointer { c in
                    for j in 0..<range.count {
                        let x = d[j] - c[j]
                        d[j] = x
                        partial += Double(x) * Double(x)
                        maxAbs = max(maxAbs, abs(x))
                        nonFinite &+= x.isFinite ? 0 : 1
                    }
                }
                energy += partial
            }
            if body == nil {
                tunedChunk.withUnsafeMutableBufferPointer { subtract(UnsafeMutableBufferPointer(rebasing: $0[0..<range.count])) }
            } else {
                delta.withUnsafeMutableBufferPointer { subtract(UnsafeMutableBufferPointer(rebasing: $0[range])) }
            }
            i = range.upperBound
        }
        if nonFinite > 0 { throw WeightOpsError.nonFinite(tensor: key, count: nonFinite) }
        try body?(delta)
        return (Double(maxAbs), energy)
    }
}
