import Foundation
import EANumerics
import Safetensors

public struct LoRACombineOptions: Sendable {
    public var inputs: [LoRASpec]
    public var output: String
    public var rank: Int
    public var dtype: LoRADType = .f32
    /// kohya's svd_merge_lora clamps at 0.99; off (1) by default here, so the result is the optimal rank-R
    /// approximation of the sum.
    public var clampQuantile: Double = 1
    public var dryRun = false

    public init(inputs: [LoRASpec], output: String, rank: Int) {
        self.inputs = inputs
        self.output = output
        self.rank = rank
    }
}

/// `ea-weights combine-lora`: kohya's networks/svd_merge_lora.py. Per module the sum of
/// `MULT · (alpha / rank) · up @ down` over the inputs that have it (modules present in only some inputs are
/// kept), re-decomposed exactly at rank R (`LowRank.productSVD`, never forming the sum when it is of low rank),
/// `lora_up = U·S`, `lora_down = Vh`, alpha = rank.
public enum LoRACombine {
    public static func run(_ options: LoRACombineOptions, progress: ProgressHandler? = nil) throws -> LoRAToolResult {
        guard !options.inputs.isEmpty else {
            throw WeightOpsError.invalidInput(path: options.output, reason: "give at least one LoRA FILE[:MULT]")
        }
        guard options.rank >= 1 else { throw WeightOpsError.invalidInput(path: options.output, reason: "--rank must be at least 1") }
        guard options.clampQuantile > 0, options.clampQuantile <= 1 else {
            throw WeightOpsError.invalidInput(path: options.output, reason: "--clamp-quantile must be in (0, 1]")
        }
        try LAPACK.ensureAvailable()
        let loras = try options.inputs.map { try LoRAToolInputs.openLoRA($0.path, command: "combine-lora") }

        // Module name → its parts in every input, checked to change the same weight shape.
        var groups: [String: [(lora: Int, module: LoRAModule)]] = [:]
        for (i, lora) in loras.enumerated() {
            for module in lora.modules {
                if let first = groups[module.name.name]?.first {
                    let m = first.module
                    if m.outFeatures != module.outFeatures || m.inFeatures != module.inFeatures
                        || (m.down.shape.count == 4) != (module.down.shape.count == 4) {
                        throw WeightOpsError.loraShapeMismatch(path: lora.path, module: module.name.name,
                                                               tensor: "\(loras[first.lora].path)'s \(module.name.name)",
                                                               expected: m.updateShape, actual: module.updateShape)
                    }
                }
                groups[module.name.name, default: []].append((i, module))
            }
        }
        let largest = groups.values.compactMap { $0.first.map { min($0.module.outFeatures, $0.module.inFeatures) } }.max() ?? 0
        if options.rank > largest {
            throw WeightOpsError.invalidInput(path: options.inputs[0].path, reason: "--rank \(options.rank) is above the size of "
                + "every module (the largest holds rank \(largest))")
        }
        let names = groups.keys.sorted()

        func decompose(_ name: String) throws -> LowRankFactors {
            let parts = groups[name] ?? []
            guard let first = parts.first?.module else { throw WeightOpsError.invalidInput(path: options.output, reason: "no module \(name)") }
            var terms: [LowRank.Term] = []
            for part in parts {
                let (up, down) = try loras[part.lora].factors(of: part.module)
                let scale = part.module.scale(multiplier: options.inputs[part.lora].multiplier)
                terms.append(.init(up: up, down: down, rank: part.module.rank, scale: scale))
            }
            let sumRank = parts.reduce(0) { $0 + $1.module.rank }
            let rank = min(options.rank, first.outFeatures, first.inFeatures, sumRank)
            return try LowRank.productSVD(terms, rows: first.outFeatures, columns: first.inFeatures, rank: rank)
        }

        var layers: [LoRALayerReport] = []
        for (i, name) in names.enumerated() {
            if Interruption.isRequested { throw WeightOpsError.invalidInput(path: options.output, reason: "interrupted; nothing was written") }
            let parts = groups[name] ?? []
            guard let first = parts.first?.module else { continue }
            let f = try decompose(name)
            layers.append(LoRALayerReport(module: name, shape: [first.outFeatures, first.inFeatures],
                                          inputRank: parts.reduce(0) { $0 + $1.module.rank }, rank: f.rank, alpha: Double(f.rank),
                                          norm: f.totalEnergy.squareRoot(), retained: f.retainedFraction, method: f.method, iterations: 0))
            progress?("decomposing", i + 1, names.count)
        }
        for lora in loras { lora.releasePages() }
        var result = LoRAToolResult(operation: "combine-lora", inputs: options.inputs, output: nil, rank: options.rank, dynamic: nil,
                                    param: nil, dtype: options.dtype.rawValue, layers: layers, mergedFrom: [])
        if options.dryRun { return result }

        let reports = LayerReports()
        let modules = zip(names, layers).map { name, layer in
            let parts = groups[name] ?? []
            return LoRAModuleOutput(name: name, outFeatures: layer.shape[0], inFeatures: layer.shape[1],
                                    isConv: parts.first?.module.down.shape.count == 4, rank: layer.rank, alpha: Float(layer.rank)) {
                let f = try decompose(name)
                var (up, down) = LoRAOutputWriter.kohyaFactors(consume f)
                let clamp = QuantileClamp.apply(up: &up, down: &down, quantile: options.clampQuantile)
                var report = layer
                report.clampThreshold = clamp.threshold.map(Double.init)
                report.clamped = clamp.clamped
                reports.set(report)
                for part in parts { loras[part.lora].releasePages() }
                return (up, down)
            }
        }
        let provenance = PendingProvenance(zip(options.inputs, loras).map { spec, lora in
            (ProvenanceEntry(role: "lora", file: (lora.path as NSString).lastPathComponent, multiplier: spec.multiplier), lora.path)
        })
        defer { provenance.cancel() }
        let parameters = JSONValue.object([("rank", .number(Double(options.rank))), ("dtype", .string(options.dtype.rawValue)),
                                           ("clamp_quantile", .number(options.clampQuantile))])
        var extra: [String: String] = [:]
        if let version = loras.lazy.compactMap({ $0.metadata["ss_base_model_version"] }).first { extra["ss_base_model_version"] = version }
        let metadata = LoRAOutputWriter.metadata(dim: String(options.rank), alpha: String(Double(options.rank)),
                                                 operation: "combine-lora", parameters: parameters,
                                                 provenancePlaceholder: provenance.placeholderText, extra: extra)
        try LoRAOutputWriter.write(modules, to: options.output, dtype: options.dtype, metadata: metadata,
                                   provenance: provenance, progress: progress)
        result.layers = layers.map { reports.get($0.module) ?? $0 }
        result.output = options.output
        result.mergedFrom = try provenance.entries()
        return result
    }
}
