import Foundation
import Safetensors

/// What `convert` produces.
public enum ConvertTarget: String, Sendable, Codable, CaseIterable {
    case f32, f16, bf16, int8, fp8

    public var dtype: DType? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .int8, .fp8: return nil
        }
    }

    public var quantization: QuantizationFormat? {
        switch self {
        case .int8: return .int8Blockwise
        case .fp8: return .float8E4M3FN
        default: return nil
        }
    }
}

public struct ConvertOptions: Sendable {
    public var input: String
    public var output: String
    public var target: ConvertTarget
    /// Tensors that are not narrowed (f16/bf16) or not quantized (int8/fp8); nil means `Convert.defaultKeepPattern`,
    /// "" keeps nothing.
    public var keepPattern: String?
    public var groupSize = 128
    /// Write F16/BF16 infinities where values overflow (as PyTorch would) instead of failing.
    public var allowOverflow = false
    public var dryRun = false

    public init(input: String, output: String, target: ConvertTarget) {
        self.input = input
        self.output = output
        self.target = target
    }
}

public struct ConvertReport: Sendable, Codable {
    public struct Kept: Sendable, Codable, Equatable {
        public let name: String
        public let dtype: String
        public let reason: String
    }

    public struct Narrowed: Sendable, Codable, Equatable {
        public let name: String
        public let overflowed: Int
        public let underflowed: Int
    }

    public struct QuantizedLayer: Sendable, Codable, Equatable {
        public let layer: String
        public let format: String
        public let groupSize: Int?
        public let error: QuantizationError
        enum CodingKeys: String, CodingKey { case layer, format, groupSize = "group_size", error }
    }

    public var input: String
    public var output: String?
    public var target: String
    public var converted = 0
    public var unchanged = 0
    /// Tensors left in their dtype on purpose, with why.
    public var kept: [Kept] = []
    /// Tensors whose narrowing lost values (overflow to ±Inf, underflow to zero).
    public var lossy: [Narrowed] = []
    public var quantized: [QuantizedLayer] = []
    public var bytesIn = 0
    public var bytesOut = 0
    /// Weight files of the input that loaders do not read, left out of the output (see `WeightFiles.leftOutNote`).
    public var notes: [String] = []

    enum CodingKeys: String, CodingKey {
        case input, output, target, converted, unchanged, kept, lossy, quantized, bytesIn = "bytes_in", bytesOut = "bytes_out", notes
    }

    public var lines: [String] {
        var out: [String] = []
        out.append("\(input) -> \(output ?? "(dry run)") as \(target): \(converted) tensor(s) converted, "
                   + "\(quantized.count) layer(s) quantized, \(kept.count) kept, \(unchanged) unchanged")
        out.append("size: \(TerminalProgress.bytes(Int64(bytesIn))) -> \(TerminalProgress.bytes(Int64(bytesOut)))")
        out += notes
        if !quantized.isEmpty {
            let worst = quantized.sorted { $0.error.relative > $1.error.relative }
            out.append("quantization error per layer (max abs / relative L2), worst first:")
            for q in worst.prefix(12) {
                out.append("  \(q.layer): \(q.error.maxAbs) / \(q.error.relative)")
            }
            if worst.count > 12 { out.append("  … and \(worst.count - 12) more (--json lists all)") }
        }
        if !kept.isEmpty {
            var reasons: [String: [String]] = [:]
            for k in kept { reasons[k.reason, default: []].append(k.name) }
            for (reason, names) in reasons.sorted(by: { $0.key < $1.key }) {
                out.append("kept (\(reason)): \(names.count)")
                for n in names.prefix(6) { out.append("  \(n)") }
                if names.count > 6 { out.append("  … and \(names.count - 6) more") }
            }
        }
        for l in lossy {
            out.append("lossy: \(l.name): \(l.overflowed) overflowed, \(l.underflowed) underflowed to zero")
        }
        return out
    }
}

/// `ea-weights convert`: dtype conversion (exact round-to-nearest-even, as PyTorch's `.to`) and weight-only
/// quantization (int8 blockwise, fp8 e4m3) in ComfyUI's checkpoint format; single files, sharded checkpoints
/// (same shards) and diffusers folders.
public enum Convert {
    /// Norm weights and biases, the motion module's positional encodings (`pos_encoder.pe`) and T5's FFN output
    /// projections (`wo`: in fp16 its activations overflow, a known source of noise).
    public static let defaultKeepPattern = #"(^|\.)[^.]*norm[^.]*(\.\d+)?\.(weight|bias)$|(^|\.)pe$|(^|\.)wo\.weight$"#
    /// Whether `convert --to int8|fp8` with its default `--keep-f32` leaves the tensor `name` unquantized (so
    /// `--compute int8` quantizing a float weight at load keeps the same layers in float as a converted file).
    public static func keepsByDefault(_ name: String) -> Bool { name.contains(defaultKeep) }

    nonisolated(unsafe) private static let defaultKeep = try! Regex(defaultKeepPattern)

    /// Embedding tables are never quantized: they are lookups, not Linear layers.
    public static let embeddingPattern = #"(^|\.)(shared|relative_attention_bias|[^.]*embed[^.]*)\.weight$"#

    public static func run(_ options: ConvertOptions, progress: ProgressHandler? = nil) throws -> ConvertReport {
        let keep: Regex<AnyRegexOutput>?
        do {
            let pattern = options.keepPattern ?? defaultKeepPattern
            keep = pattern.isEmpty ? nil : try Regex(pattern)
        } catch {
            throw WeightOpsError.invalidInput(path: options.input, reason: "--keep-f32 is not a valid regular expression: \(error)")
        }
        let embedding = try Regex(embeddingPattern)
        guard options.groupSize > 0 else {
            throw WeightOpsError.invalidInput(path: options.input, reason: "--group-size must be positive")
        }
        let layout = try CheckpointLayout.locate(options.input)
        let log = ConvertLog(report: ConvertReport(input: options.input, target: options.target.rawValue))

        func rewrite(quantize: Bool) -> TensorRewrite {
            { view in
                let outputs = try Convert.outputs(for: view, options: options, quantize: quantize, keep: keep,
                                                  embedding: embedding, log: log)
                log.report.bytesIn += view.byteCount
                log.report.bytesOut += outputs.reduce(0) { $0 + $1.byteCount }
                return outputs
            }
        }
        let metadata: CheckpointRewrite.Metadata = { _, tensors in
            var m = ["format": "pt", LoRAMerge.operationKey: "convert --to \(options.target.rawValue)"]
            if let format = options.target.quantization {
                let names = Set(tensors.map(\.name))
                var layers: [String: QuantizationMetadata.Layer] = [:]
                for t in tensors where t.name.hasSuffix(".weight_scale") {
                    let layer = String(t.name.dropLast(".weight_scale".count))
                    if names.contains(layer + ".weight") {
                        layers[layer] = .init(format: format, groupSize: format.isBlockwise ? options.groupSize : nil)
                    }
                }
                if !layers.isEmpty { m[QuantizationMetadata.metadataKey] = QuantizationMetadata(layers: layers).jsonText }
            }
            return m
        }
        let check: CheckpointStreamer.Check = { tensor, dtype, stats in
            if stats.overflowed > 0 || stats.underflowed > 0 {
                log.report.lossy.append(.init(name: tensor, overflowed: stats.overflowed, underflowed: stats.underflowed))
            }
            if stats.overflowed > 0 && !options.allowOverflow {
                throw WeightOpsError.overflow(tensor: tensor, dtype: dtype.rawValue, count: stats.overflowed)
            }
        }

        switch layout {
        case let .weights(weights):
            if let note = weights.leftOutNote { log.report.notes.append(note) }
            let opened = try weights.open()
            try refuseQuantized(opened.dict)
            if options.target.quantization != nil { try requireQuantizable(opened.dict) }
            let r = rewrite(quantize: options.target.quantization != nil)
            if options.dryRun {
                for (_, file) in opened.files { _ = try CheckpointRewrite.outputs(of: file, rewrite: r) }
            } else {
                log.report.notes += try CheckpointRewrite.write(weights, files: opened.files, to: options.output, rewrite: r,
                                                                metadata: metadata, check: check, progress: progress)
            }
        case let .diffusers(root, components, entries):
            try CheckpointRewrite.requireFolderName(options.output, forDiffusers: root)
            var rewrites: [String: (files: [(name: String, file: SafetensorsFile)], rewrite: TensorRewrite)] = [:]
            for (name, weights) in components {
                let opened = try weights.open()
                try refuseQuantized(opened.dict)
                // Quantization is for the transformer's and T5's Linear layers; a float conversion covers every model.
                let quantize = options.target.quantization != nil && ["transformer", "text_encoder"].contains(name)
                if options.target.quantization != nil && !quantize { continue }
                rewrites[name] = (opened.files, rewrite(quantize: quantize))
                if let note = weights.leftOutNote { log.report.notes.append(note) }
            }
            if options.dryRun {
                for (_, r) in rewrites.sorted(by: { $0.key < $1.key }) {
                    for (_, file) in r.files { _ = try CheckpointRewrite.outputs(of: file, rewrite: r.rewrite) }
                }
            } else {
                try CheckpointRewrite.writeDiffusers(root: root, components: components, entries: entries, to: options.output,
                                                     rewrites: rewrites, metadata: metadata, check: check, progress: progress)
            }
        }
        if !options.dryRun { log.report.output = options.output }
        log.report.quantized.sort { $0.layer < $1.layer }
        return log.report
    }

    /// The tensors written for one input tensor.
    static func outputs(for view: TensorView, options: ConvertOptions, quantize: Bool, keep: Regex<AnyRegexOutput>?,
                        embedding: Regex<AnyRegexOutput>, log: ConvertLog) throws -> [OutputTensor] {
        let name = view.name
        let kept = keep.map { name.contains($0) } ?? false
        guard view.dtype.isFloatingPoint else {
            log.report.unchanged += 1
            return [OutputTensor.from(view)]
        }
        if let dtype = options.target.dtype {
            if dtype == view.dtype {
                log.report.unchanged += 1
                return [OutputTensor.from(view)]
            }
            // Kept tensors stay as they are; widening to f32 loses nothing, so it applies to them too.
            if kept && dtype != .f32 {
                log.report.kept.append(.init(name: name, dtype: view.dtype.rawValue, reason: "matches --keep-f32"))
                return [OutputTensor.from(view)]
            }
            log.report.converted += 1
            return [OutputTensor.from(view, as: dtype)]
        }
        guard quantize, let format = options.target.quantization else {
            log.report.unchanged += 1
            return [OutputTensor.from(view)]
        }
        guard name.hasSuffix(".weight"), view.shape.count == 2 else {
            log.report.unchanged += 1
            return [OutputTensor.from(view)]
        }
        func keepAsIs(_ reason: String) -> [OutputTensor] {
            log.report.kept.append(.init(name: name, dtype: view.dtype.rawValue, reason: reason))
            return [OutputTensor.from(view)]
        }
        if kept { return keepAsIs("matches --keep-f32") }
        if name.contains(embedding) { return keepAsIs("embedding") }
        if let why = Quantizer.unsupportedReason(shape: view.shape, format: format, groupSize: options.groupSize) {
            return keepAsIs(format.isBlockwise ? "not divisible by --group-size \(options.groupSize)" : why)
        }
        let layer = String(name.dropLast(".weight".count))
        let rows = view.shape[0], cols = view.shape[1], g = options.groupSize
        let source = WeightSource(view)
        func quantized(scales: [Float]? = nil) throws -> QuantizedWeight {
            format.isBlockwise ? try Quantizer.int8Blockwise(source, rows: rows, cols: cols, groupSize: g, scales: scales)
                               : try Quantizer.float8E4M3(source, shape: view.shape, scale: scales?.first)
        }
        if options.dryRun {
            // Nothing will be written (the tensors below are never computed), but the error is measured so the
            // report is the real one.
            let q = try quantized()
            log.report.quantized.append(.init(layer: layer, format: format.rawValue, groupSize: q.groupSize, error: q.error))
        }
        // Every scale is written before every weight (F32 sorts first in the file), so only the scales (1/g² of
        // the weight) are kept between the two: memory stays that of one layer, and the weight's pass reuses them.
        let held = HeldScales()
        let scaleShape = format.isBlockwise ? [rows / g, cols / g] : []
        let scale = OutputTensor.computingFloats(name: layer + ".weight_scale", dtype: .f32, shape: scaleShape) {
            let scales = format.isBlockwise ? try Quantizer.int8BlockScales(source, rows: rows, cols: cols, groupSize: g)
                                            : [try Quantizer.float8Scale(source)]
            held.keep(scales)
            return scales
        }
        let weight = OutputTensor.computingBytes(name: name, dtype: format.storageDType, shape: view.shape) {
            let q = try quantized(scales: held.take())
            log.report.quantized.append(.init(layer: layer, format: format.rawValue, groupSize: q.groupSize, error: q.error))
            return q.data
        }
        return [scale, weight]
    }

    static func refuseQuantized(_ dict: any StateDict) throws {
        if try QuantizationMetadata(metadata: dict.metadata, path: dict.path) != nil
            || dict.keys.contains(where: { $0.hasSuffix(".weight_scale") }) {
            throw WeightOpsError.invalidInput(path: dict.path, reason: "is already quantized; convert the float checkpoint it was made from")
        }
    }

    static func requireQuantizable(_ dict: any StateDict) throws {
        switch ModelKind.detect(dict) {
        case .pixartTransformer2D, .easyAnimateTransformer3D, .motionModule, .t5Encoder: return
        case let kind:
            throw WeightOpsError.invalidInput(
                path: dict.path, reason: "is a \(kind.rawValue) checkpoint; int8/fp8 quantization is for the transformer's and "
                    + "T5's Linear weights (convert it with --to f16 or bf16 instead)")
        }
    }
}

/// Collects the report while tensors are written (the closures run one at a time, in order).
final class ConvertLog: @unchecked Sendable {
    var report: ConvertReport
    init(report: ConvertReport) { self.report = report }
}

/// One weight's scales between the writer's request for them and for its data.
final class HeldScales: @unchecked Sendable {
    private let lock = NSLock()
    private var value: [Float]?

    func keep(_ scales: [Float]) { lock.withLock { value = scales } }

    /// The kept scales, once; nil when there are none.
    func take() -> [Float]? {
        lock.withLock {
            defer { value = nil }
            return value
        }
    }
}
