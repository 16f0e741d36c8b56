import ArgumentParser
import Bench
import Foundation
import Safetensors
import WeightOps

struct BenchConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Time convert (--to int8, fp8 or f16) on a real-size PixArt-XL-2 transformer.",
        discussion: """
        Writes a synthetic PixArt-XL-2 transformer with the real names and shapes (28 blocks of width 1152, \
        F32, about 2.4 GB) into --dir, or reuses the one a previous run left there, reads it into the page \
        cache, and runs `ea-weights convert` on it in a child process: wall time, CPU time and peak resident \
        memory. With --python the same conversion runs in PyTorch (load_file, ComfyUI's int8 blockwise or \
        float8_e4m3fn layout or .half(), save_file, fsync) on the same file, and the ratios are printed.

        Examples:
          ea-weights bench convert --to int8
          ea-weights bench convert --to fp8 --python --json
        """
    )

    @Option(help: ArgumentHelp("int8, fp8 or f16.", valueName: "target"))
    var to: String = "int8"

    @Option(help: "Transformer blocks.")
    var blocks = 28

    @Option(help: "Hidden width.")
    var width = 1152

    @Option(help: "Block size of int8 quantization.")
    var groupSize = 128

    @Option(help: ArgumentHelp("Folder for the synthetic transformer, reused between runs (default: the system temporary folder).", valueName: "folder"))
    var dir: String?

    @Flag(help: "Also time the conversion in PyTorch on the same file.")
    var python = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Result: Codable {
        var stage = "convert"
        var target: String
        var checkpointBytes: Int
        var outputBytes: Int
        var seconds: Double
        var cpuSeconds: Double
        var peakRSSBytes: Int
        var python: BenchMergeCommand.PythonComparison?

        enum CodingKeys: String, CodingKey {
            case stage, target, checkpointBytes = "checkpoint_bytes", outputBytes = "output_bytes", seconds
            case cpuSeconds = "cpu_seconds", peakRSSBytes = "peak_rss_bytes", python
        }

        var lines: [String] {
            var lines = ["convert --to \(target) of \(TerminalProgress.bytes(Int64(checkpointBytes))) F32 -> "
                + "\(TerminalProgress.bytes(Int64(outputBytes))): \(String(format: "%.2f", seconds)) s wall "
                + "(\(String(format: "%.2f", cpuSeconds)) s CPU), peak RSS \(TerminalProgress.bytes(Int64(peakRSSBytes)))"]
            if let python {
                if let skipped = python.skipped {
                    lines.append("python convert: skipped (\(skipped))")
                } else if let seconds = python.seconds, let peak = python.peakRSSBytes {
                    lines.append("python convert (\(python.library ?? "?")): \(String(format: "%.2f", seconds)) s, peak RSS "
                        + "\(TerminalProgress.bytes(Int64(peak))): ea-weights is \(String(format: "%.1f", python.speedup ?? 0))x faster "
                        + "with \(String(format: "%.0f", python.memoryRatio ?? 0))x less memory")
                }
            }
            return lines
        }
    }

    func validate() throws {
        guard ["int8", "fp8", "f16"].contains(to) else { throw ValidationError("--to must be int8, fp8 or f16, not '\(to)'") }
        if blocks < 1 || width < 8 || groupSize < 1 { throw ValidationError("--blocks, --width and --group-size must be positive") }
        if to == "int8", width % groupSize != 0 { throw ValidationError("--width must divide into --group-size blocks") }
    }

    func run() throws {
        var config = MergeBenchmark.Config()
        config.blocks = blocks
        config.width = width
        config.rank = 1
        let folder = ((dir ?? FileManager.default.temporaryDirectory.path) as NSString)
            .appendingPathComponent("ea-weights-bench-convert-\(blocks)x\(width)")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let transformer = (folder as NSString).appendingPathComponent("transformer.safetensors")
        // A transformer a previous run wrote (complete: its header and size check out) is reused.
        if (try? SafetensorsFile(path: transformer)) == nil {
            let progress = FileProgress()
            _ = try MergeBenchmark.synthesize(in: folder, config: config, progress: progress.handler)
            progress.finish()
        }
        let output = (folder as NSString).appendingPathComponent("converted-\(to).safetensors")
        try? FileManager.default.removeItem(atPath: output)
        defer { try? FileManager.default.removeItem(atPath: output) }
        try MergeBenchmark.readIntoPageCache([transformer])
        let run = try ChildProcess.run(
            try ChildProcess.ownExecutable(),
            ["convert", transformer, "--to", to, "--group-size", String(groupSize), "--keep-f32", "", "--out", output],
            reportsPeak: true)
        let peak = try run.succeededPeak("convert")
        var result = Result(target: to, checkpointBytes: BenchMergeCommand.fileSize(transformer),
                            outputBytes: BenchMergeCommand.fileSize(output), seconds: run.seconds,
                            cpuSeconds: run.cpuSeconds,
                            peakRSSBytes: peak)
        if python {
            try? FileManager.default.removeItem(atPath: output)
            try MergeBenchmark.readIntoPageCache([transformer])
            result.python = BenchMergeCommand.runPythonScript(
                PythonConvertReference.script, [transformer, output, to, String(groupSize)], oursSeconds: run.seconds, oursPeak: peak)
        }
        try WeightOpsOutput.print(result, lines: result.lines, asJSON: json)
    }
}
