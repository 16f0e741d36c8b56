import Foundation
import Safetensors
import WeightOps

/// The `convert --to int8` copies a `--compute int8` bench runs on (convert's defaults: 128×128 blocks, norms,
/// position tables and T5's `wo` kept), written on first use and kept while `stamp` (the source's record) is
/// unchanged: the int8 weights are then file-backed mappings, as a user's converted checkpoint is (quantizing at
/// load would hold them in anonymous memory).
enum Int8Copy {
    /// Converts each input to its output unless `folder` holds a copy made from the same `stamp`.
    static func ensure(_ conversions: [(input: String, output: String)], in folder: String, stamp: Data,
                       progress: ProgressHandler?) throws {
        let record = (folder as NSString).appendingPathComponent("converted-from.json")
        if FileManager.default.contents(atPath: record) == stamp { return }
        try? FileManager.default.removeItem(atPath: folder)
        try BenchFolder.create(folder)
        for (input, output) in conversions {
            _ = try Convert.run(ConvertOptions(input: input, output: output, target: .int8), progress: progress)
        }
        try AtomicOutput.writeFile(Array(stamp), to: record)
    }
}
