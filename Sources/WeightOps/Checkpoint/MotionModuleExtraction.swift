import Foundation
import Safetensors

/// The motion module of a 3D transformer: every tensor whose name contains `temporal`, as EasyAnimate's
/// scripts/extra_motion_module.py selects them (and, like that script, saved without metadata, so that
/// extracting from a swapped checkpoint gives back the original file byte for byte).
public struct MotionModuleExtraction: Sendable {
    public struct Report: Sendable, Codable {
        public var source: String
        public var keptTensors: Int
        public var keptBytes: Int
        public var droppedTensors: Int
        public var droppedBytes: Int
        public var blocks: Int

        enum CodingKeys: String, CodingKey {
            case source, keptTensors = "kept_tensors", keptBytes = "kept_bytes"
            case droppedTensors = "dropped_tensors", droppedBytes = "dropped_bytes", blocks
        }

        public var lines: [String] {
            ["\(source): kept \(keptTensors) temporal tensor(s) (\(TerminalProgress.bytes(Int64(keptBytes)))) in \(blocks) block(s), "
                + "dropped \(droppedTensors) (\(TerminalProgress.bytes(Int64(droppedBytes))))"]
        }
    }

    public let source: any StateDict
    /// The kept keys, sorted.
    public let keys: [String]
    public let report: Report

    public init(_ source: any StateDict) throws {
        let kept = source.keys.filter { $0.contains("temporal") }
        guard !kept.isEmpty else {
            throw WeightOpsError.invalidInput(
                path: source.path, reason: "has no tensor whose name contains 'temporal'; it holds no motion module (a 2D transformer?)")
        }
        let keptSet = Set(kept)
        var keptBytes = 0, droppedBytes = 0
        for info in source.allInfos {
            if keptSet.contains(info.name) { keptBytes += info.byteCount } else { droppedBytes += info.byteCount }
        }
        self.source = source
        self.keys = kept
        self.report = Report(source: source.path, keptTensors: kept.count, keptBytes: keptBytes,
                             droppedTensors: source.keys.count - kept.count, droppedBytes: droppedBytes,
                             blocks: BackboneSwap.blockIndices(kept).count)
    }
}

extension MotionModuleExtraction {
    /// `ea-weights extract-motion-module`: writes the temporal tensors, unchanged and without metadata
    /// (as extra_motion_module.py's `save_file(..., None)`).
    public static func run(source path: String, output: String, dryRun: Bool = false,
                           progress: ProgressHandler? = nil) throws -> Report {
        let source = try WeightFiles.locate(path).open().dict
        let extraction = try MotionModuleExtraction(source)
        if dryRun { return extraction.report }
        let tensors = try extraction.keys.map { OutputTensor.from(try source.tensor($0)) }
        try CheckpointStreamer.write(to: output, tensors: tensors, metadata: nil,
                                     progress: progress.map { p in { p((output as NSString).lastPathComponent, $0, $1) } })
        return extraction.report
    }
}
