import ArgumentParser
import Bench
import Foundation
import EANumerics
import Safetensors
import WeightOps

struct BenchExtractLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract-lora",
        abstract: "Time extract-lora on a real-size PixArt-XL-2 pair against kohya's algorithm in PyTorch.",
        discussion: """
        Writes a synthetic PixArt-XL-2 transformer with the real names and shapes (28 blocks of width 1152, \
        F32, about 2.4 GB) as BASE and the same with a rank-128 LoRA on all 286 Linear layers merged in as \
        TUNED, then runs `ea-weights extract-lora BASE TUNED --rank 128 --min-diff 0` in a child process and \
        reports its wall time, CPU time and peak resident memory (getrusage). With --python it also runs \
        kohya's algorithm (extract_lora_from_models.py: both models loaded, full torch.linalg.svd per layer, \
        quantile clamp) on the same warm files, and checks the issue's targets: at least 5x faster with at most \
        10 % of its peak memory (exit status 1 when missed). Needs about 5 GB of free disk in --dir.

        Examples:
          ea-weights bench extract-lora --python
          ea-weights bench extract-lora --blocks 2 --python --json
        """
    )

    @Option(help: "Transformer blocks (2 gives the 26 layers of the first two blocks plus the 6 outer Linears).")
    var blocks = 28

    @Option(help: "Rank of the change and of the extraction.")
    var rank = 128

    @Option(help: "The clamp quantile for both sides (kohya's 0.99; 1 turns it off).")
    var clampQuantile = 0.99

    @Option(help: ArgumentHelp("Folder for the synthetic files (default: the system temporary folder).", valueName: "folder"))
    var dir: String?

    @Flag(help: "Keep the synthetic files and the outputs.")
    var keep = false

    @Flag(help: "Also run kohya's algorithm in PyTorch (python3 with torch and safetensors) on the same files.")
    var python = false

    @Option(help: "torch threads for --python (0: torch's default, one per core). On a busy machine 1 is faster.")
    var pythonThreads = 0

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Side: Codable {
        var seconds: Double?
        var cpuSeconds: Double?
        var peakRSSBytes: Int?
        var library: String?
        var skipped: String?

        enum CodingKeys: String, CodingKey { case seconds, cpuSeconds = "cpu_seconds", peakRSSBytes = "peak_rss_bytes", library, skipped }
    }

    struct Result: Codable {
        var blocks: Int
        var rank: Int
        var layers: Int
        var checkpointBytes: Int
        var synthesizeSeconds: Double
        var ours: Side
        var python: Side?
        var speedup: Double?
        var memoryFraction: Double?
        var passed: Bool?
        /// The largest relative error of a layer (‖ΔW − kept‖ / ‖ΔW‖), from extract-lora's report.
        var worstRelativeError: Double?
        var blas: String

        enum CodingKeys: String, CodingKey {
            case blocks, rank, layers, checkpointBytes = "checkpoint_bytes", synthesizeSeconds = "synthesize_seconds", ours, python
            case speedup, memoryFraction = "memory_fraction", passed, worstRelativeError = "worst_relative_error", blas
        }

        var lines: [String] {
            var out = ["extract-lora of \(layers) Linear layers (PixArt-XL-2, \(blocks) blocks, rank-\(rank) change), "
                       + "BASE \(TerminalProgress.bytes(Int64(checkpointBytes))) (made in \(String(format: "%.1f", synthesizeSeconds)) s)"]
            func line(_ label: String, _ s: Side) -> String {
                if let skipped = s.skipped { return "\(label): skipped (\(skipped))" }
                return "\(label): \(String(format: "%.2f", s.seconds ?? 0)) s wall, \(String(format: "%.2f", s.cpuSeconds ?? 0)) s CPU, "
                    + "peak RSS \(TerminalProgress.bytes(Int64(s.peakRSSBytes ?? 0)))"
            }
            out.append(line("ea-weights extract-lora", ours))
            if let worstRelativeError {
                out.append("  worst layer: |dW - up @ down| / |dW| = \(String(format: "%.2e", worstRelativeError)) (the clamp included)")
            }
            if let python { out.append(line("kohya's algorithm (\(python.library ?? "python"))", python)) }
            if let speedup, let memoryFraction, let passed {
                out.append("ea-weights is \(String(format: "%.1f", speedup))x faster with \(String(format: "%.1f", memoryFraction * 100))% "
                           + "of the memory (targets: 5x, 10%) " + (passed ? "PASS" : "FAIL"))
            }
            out.append("matrix products: \(blas)")
            return out
        }
    }

    func validate() throws {
        if blocks < 1 || rank < 1 { throw ValidationError("--blocks and --rank must be positive") }
    }

    func run() throws {
        var config = MergeBenchmark.Config()
        config.blocks = blocks
        config.rank = rank
        let root = dir ?? FileManager.default.temporaryDirectory.path
        let folder = (root as NSString).appendingPathComponent("ea-weights-bench-extract-lora-\(getpid())")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(atPath: folder) } }

        let progress = FileProgress()
        let start = Date()
        let (base, tuned) = try ExtractLoRABenchmark.synthesize(in: folder, config: config, progress: progress.handler)
        progress.finish()
        let synthesizeSeconds = Date().timeIntervalSince(start)
        let output = (folder as NSString).appendingPathComponent("extracted.safetensors")
        try MergeBenchmark.readIntoPageCache([base, tuned])
        let child = try ChildProcess.run(try ChildProcess.ownExecutable(), [
            "extract-lora", base, tuned, "--rank", String(rank), "--min-diff", "0",
            "--clamp-quantile", String(clampQuantile), "--out", output, "--json"], reportsPeak: true)
        let peak = try child.succeededPeak("extract-lora")
        let ours = Side(seconds: child.seconds, cpuSeconds: child.cpuSeconds, peakRSSBytes: peak, library: nil, skipped: nil)
        let report = try? JSONDecoder().decode(LoRAExtractionResult.self, from: child.output)
        let worst = report?.layers.compactMap(\.relativeError).max()
        var result = Result(blocks: blocks, rank: rank, layers: report?.layers.count ?? 0,
                            checkpointBytes: BenchMergeCommand.fileSize(base), synthesizeSeconds: synthesizeSeconds, ours: ours,
                            worstRelativeError: worst, blas: BLAS.coreDescription)
        if python {
            try MergeBenchmark.readIntoPageCache([base, tuned])
            let side = runPython(base: base, tuned: tuned, output: output + ".py.safetensors")
            result.python = side
            if let ps = side.seconds, let pm = side.peakRSSBytes, let os = ours.seconds, let om = ours.peakRSSBytes {
                result.speedup = ps / max(os, 1e-9)
                result.memoryFraction = Double(om) / Double(max(pm, 1))
                result.passed = (result.speedup ?? 0) >= 5 && (result.memoryFraction ?? 1) <= 0.10
            }
        }
        try WeightOpsOutput.print(result, lines: result.lines, asJSON: json)
        if result.passed == false { throw ExitCode(1) }
    }

    func runPython(base: String, tuned: String, output: String) -> Side {
        Self.runPython(base: base, tuned: tuned, output: output, rank: rank, quantile: clampQuantile, threads: pythonThreads)
    }

    static func runPython(base: String, tuned: String, output: String, rank: Int, quantile: Double, threads: Int) -> Side {
        guard let run = try? ChildProcess.run("/usr/bin/env", ["python3", "-c", PythonExtractLoRAReference.script, base,
                                                                          tuned, output, String(rank), String(quantile),
                                                                          String(threads)]) else {
            return Side(skipped: "python3 could not be started")
        }
        guard run.status == 0, let reply = try? JSONDecoder().decode(PythonExtractLoRAReference.Result.self, from: run.output) else {
            return Side(skipped: "python3 failed with status \(run.status)")
        }
        if let error = reply.error { return Side(skipped: error) }
        return Side(seconds: reply.seconds, cpuSeconds: reply.cpuSeconds, peakRSSBytes: reply.peakRSSBytes,
                    library: reply.library.map { "\($0), \(reply.threads ?? 0) threads" })
    }
}
