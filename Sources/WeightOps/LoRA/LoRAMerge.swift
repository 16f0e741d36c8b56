import Foundation
import EANumerics
import Safetensors

/// The dtype merged (and, unless `keep`, all other floating-point) tensors are stored in.
public enum OutputDType: String, Sendable, Codable, CaseIterable {
    case keep, f32, f16, bf16

    /// The dtype a tensor stored as `source` is written in.
    public func target(for source: DType) -> DType {
        guard source.isFloatingPoint else { return source }
        switch self {
        case .keep: return source
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        }
    }
}

public struct LoRAMergeOptions: Sendable {
    public var base: String
    public var loras: [LoRASpec]
    public var output: String
    public var dtype: OutputDType = .keep
    public var dryRun = false
    public var strict = false

    public init(base: String, loras: [LoRASpec], output: String) {
        self.base = base
        self.loras = loras
        self.output = output
    }
}

public struct LoRAMergeResult: Sendable, Codable {
    public var report: LoRAMergeReport
    public var base: String
    /// Nil for a dry run.
    public var output: String?
    public var dtype: String
    /// The provenance written into the output's metadata.
    public var mergedFrom: [ProvenanceEntry]
    /// Weight files of the base that loaders do not read, left out of the output (see `WeightFiles.leftOutNote`).
    public var notes: [String] = []

    enum CodingKeys: String, CodingKey { case report, base, output, dtype, mergedFrom = "merged_from", notes }

    public var lines: [String] {
        var out = report.lines + notes
        if let output { out.append("wrote \(output) (\(dtype))") } else { out.append("dry run: nothing written") }
        return out
    }
}

/// `ea-weights merge-lora`: LoRAs merged into a transformer, a T5 encoder or a whole diffusers folder, in one
/// streaming pass (see `LoRAMergePlan` for the numerics).
public enum LoRAMerge {
    public static let provenanceKey = "modelspec.merged_from"
    public static let operationKey = "ea_weights.operation"

    public static func run(_ options: LoRAMergeOptions, progress: ProgressHandler? = nil) throws -> LoRAMergeResult {
        guard !options.loras.isEmpty else {
            throw WeightOpsError.invalidInput(path: options.base, reason: "no LoRA given (--lora FILE[:MULT])")
        }
        try BLAS.ensureAvailable()
        let loras = try options.loras.map { try LoRAFile(path: $0.path) }
        let layout = try CheckpointLayout.locate(options.base)

        // The models inside the base, each with the LoRA part it takes.
        var parts: [(name: String, weights: WeightFiles, opened: (dict: any StateDict, files: [(name: String, file: SafetensorsFile)]), target: LoRATarget)] = []
        switch layout {
        case let .weights(weights):
            let opened = try weights.open()
            parts.append(("model", weights, opened, try target(of: opened.dict)))
        case let .diffusers(root, components, _):
            for (name, weights) in components {
                let target: LoRATarget
                switch name {
                case "transformer": target = .transformer
                case "text_encoder": target = .textEncoder
                default: continue
                }
                parts.append((name, weights, try weights.open(), target))
            }
            guard !parts.isEmpty else {
                throw WeightOpsError.invalidInput(path: root, reason: "has neither a transformer/ nor a text_encoder/ with weights")
            }
        }
        for part in parts where try QuantizationMetadata(metadata: part.opened.dict.metadata, path: part.opened.dict.path) != nil {
            throw WeightOpsError.invalidInput(path: part.opened.dict.path,
                                              reason: "is quantized; merge LoRAs into the float checkpoint, then convert")
        }

        let plan = LoRAMergePlan(components: parts.map { ($0.name, $0.opened.dict, $0.target) }, loras: loras, specs: options.loras)
        try plan.validate(strict: options.strict)
        if case let .diffusers(root, _, _) = layout { try CheckpointRewrite.requireFolderName(options.output, forDiffusers: root) }
        var result = LoRAMergeResult(report: plan.report, base: options.base, output: nil, dtype: options.dtype.rawValue, mergedFrom: [])
        result.notes = parts.compactMap(\.weights.leftOutNote)
        if options.dryRun { return result }

        var inputs: [(entry: ProvenanceEntry, path: String)] = []
        for part in parts {
            for (name, _) in part.opened.files {
                let label = parts.count > 1 || part.weights.isFolder ? "\(part.name == "model" ? "" : part.name + "/")\(name)" : name
                inputs.append((ProvenanceEntry(role: "base", file: label), part.weights.path(name)))
            }
        }
        for (spec, lora) in zip(options.loras, loras) {
            inputs.append((ProvenanceEntry(role: "lora", file: (lora.path as NSString).lastPathComponent, multiplier: spec.multiplier),
                           lora.path))
        }
        let provenance = PendingProvenance(inputs)
        defer { provenance.cancel() }
        let completeMetadata: CheckpointRewrite.MetadataCompletion = { metadata in
            var m = metadata
            m[provenanceKey] = try provenance.text()
            return m
        }

        let check: CheckpointStreamer.Check = { tensor, dtype, stats in
            if stats.overflowed > 0 {
                throw WeightOpsError.overflow(tensor: tensor, dtype: dtype.rawValue, count: stats.overflowed)
            }
        }
        func rewrite(component index: Int) -> TensorRewrite {
            let component = plan.components[index]
            return { view in
                let dtype = options.dtype.target(for: view.dtype)
                guard let apps = component.updates[view.name] else { return [OutputTensor.from(view, as: dtype)] }
                return [OutputTensor.computingFloats(name: view.name, dtype: dtype, shape: view.shape) {
                    var values = view.toFloat32()
                    view.releaseMapping()
                    try values.withUnsafeMutableBufferPointer { try plan.apply(apps, to: $0, tensor: view.name) }
                    return values
                }]
            }
        }
        func metadata(for dict: [String: String]) -> CheckpointRewrite.Metadata {
            { _, _ in
                var m = dict
                m["format"] = "pt"
                m[provenanceKey] = provenance.placeholderText
                m[operationKey] = "merge-lora"
                return m
            }
        }
        switch layout {
        case let .weights(weights):
            let part = parts[0]
            result.notes += try CheckpointRewrite.write(weights, files: part.opened.files, to: options.output, rewrite: rewrite(component: 0),
                                        metadata: { name, tensors in
                                            let source = part.opened.files.first { $0.name == name }?.file.metadata ?? [:]
                                            return try metadata(for: source)(name, tensors)
                                        }, completeMetadata: completeMetadata, check: check, progress: progress)
        case let .diffusers(root, components, entries):
            var rewrites: [String: (files: [(name: String, file: SafetensorsFile)], rewrite: TensorRewrite)] = [:]
            for (i, part) in parts.enumerated() { rewrites[part.name] = (part.opened.files, rewrite(component: i)) }
            try CheckpointRewrite.writeDiffusers(root: root, components: components, entries: entries, to: options.output,
                                                 rewrites: rewrites, metadata: metadata(for: [:]), completeMetadata: completeMetadata,
                                                 check: check, progress: progress)
        }
        result.output = options.output
        result.mergedFrom = try provenance.entries()
        return result
    }

    /// Which LoRA part a single model takes, from its keys.
    static func target(of dict: any StateDict) throws -> LoRATarget {
        switch ModelKind.detect(dict) {
        case .pixartTransformer2D, .easyAnimateTransformer3D, .motionModule: return .transformer
        case .t5Encoder: return .textEncoder
        case let kind:
            throw WeightOpsError.invalidInput(
                path: dict.path, reason: "is a \(kind.rawValue) checkpoint; merge-lora merges into a PixArt/EasyAnimate transformer, "
                    + "a motion module, a T5 encoder or a diffusers folder holding them")
        }
    }
}
