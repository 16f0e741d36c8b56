import ArgumentParser
import Bench
import Foundation
import EANumerics
import WeightOps

struct BenchMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Time merge-lora on a real-size PixArt-XL-2 transformer and measure its peak memory.",
        discussion: """
        Writes a synthetic PixArt-XL-2 transformer with the real names and shapes (28 blocks of width 1152, \
        F32, about 2.4 GB) and a rank-128 LoRA on every Linear layer into a temporary folder, then runs \
        `ea-weights merge-lora` on them in a child process and reports its wall time and peak resident memory \
        (the child's getrusage maxrss). The merge streams: its peak must stay under a quarter of the \
        checkpoint's size (a load_file / torch / save_file merge holds about two copies of it); the command \
        exits with status 1 when it does not. Needs about 5 GB of free disk in --dir (8 GB with --python).

        The inputs are read into the page cache before each timed run, so the numbers are the merge's own \
        speed, not the disk's. With --python the same merge also runs the way a Python user does it \
        (safetensors load_file, torch or numpy, save_file, fsync) on the same files, and the ratios are printed.

        Examples:
          ea-weights bench merge
          ea-weights bench merge --python
          ea-weights bench merge --blocks 4 --json
        """
    )

    @Option(help: "Transformer blocks.")
    var blocks = 28

    @Option(help: "Hidden width.")
    var width = 1152

    @Option(help: "LoRA rank.")
    var rank = 128

    @Option(help: ArgumentHelp("Folder for the synthetic files (default: the system temporary folder).", valueName: "folder"))
    var dir: String?

    @Flag(help: "Keep the synthetic files and the merged output.")
    var keep = false

    @Flag(help: "Also time the Python merge (python3 with safetensors and torch, or numpy) on the same files.")
    var python = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct PythonComparison: Codable {
        var library: String?
        var seconds: Double?
        var peakRSSBytes: Int?
        /// Python's time over ours, and its peak memory over ours.
        var speedup: Double?
        var memoryRatio: Double?
        /// Why the Python merge did not run.
        var skipped: String?

        enum CodingKeys: String, CodingKey {
            case library, seconds, peakRSSBytes = "peak_rss_bytes", speedup, memoryRatio = "memory_ratio", skipped
        }
    }

    struct Result: Codable {
        var config: MergeBenchmark.Config
        var checkpointBytes: Int
        var loraBytes: Int
        var synthesizeSeconds: Double
        var mergeSeconds: Double
        var mergePeakRSSBytes: Int
        /// The merge process's user + system CPU time: the work, apart from waiting for the disk.
        var mergeCPUSeconds: Double
        var peakToCheckpoint: Double
        var limit: Double
        var passed: Bool
        var blas: String
        var python: PythonComparison?
        var report: LoRAMergeReport?

        enum CodingKeys: String, CodingKey {
            case config, checkpointBytes = "checkpoint_bytes", loraBytes = "lora_bytes", synthesizeSeconds = "synthesize_seconds"
            case mergeSeconds = "merge_seconds", mergePeakRSSBytes = "merge_peak_rss_bytes", mergeCPUSeconds = "merge_cpu_seconds"
            case peakToCheckpoint = "peak_to_checkpoint", limit, passed, blas, python, report
        }

        var lines: [String] {
            ["synthetic PixArt transformer: \(config.blocks) blocks, width \(config.width), "
                + "\(TerminalProgress.bytes(Int64(checkpointBytes))) F32; LoRA rank \(config.rank), \(TerminalProgress.bytes(Int64(loraBytes)))"
                + " (made in \(String(format: "%.1f", synthesizeSeconds)) s)",
             "merge-lora: \(String(format: "%.2f", mergeSeconds)) s wall (\(String(format: "%.2f", mergeCPUSeconds)) s CPU), peak RSS \(TerminalProgress.bytes(Int64(mergePeakRSSBytes))) "
                + "= \(String(format: "%.1f", peakToCheckpoint * 100))% of the checkpoint (limit \(Int(limit * 100))%) "
                + (passed ? "PASS" : "FAIL"),
             "matrix products: \(blas)"] + pythonLines
        }

        var pythonLines: [String] {
            guard let python else { return [] }
            if let skipped = python.skipped { return ["python merge: skipped (\(skipped))"] }
            guard let seconds = python.seconds, let peak = python.peakRSSBytes else { return [] }
            return ["python merge (load_file, \(python.library ?? "?"), save_file, fsync): \(String(format: "%.2f", seconds)) s, "
                + "peak RSS \(TerminalProgress.bytes(Int64(peak))): ea-weights is \(String(format: "%.1f", python.speedup ?? 0))x faster "
                + "with \(String(format: "%.0f", python.memoryRatio ?? 0))x less memory"]
        }
    }

    func validate() throws {
        if blocks < 1 || width < 8 || rank < 1 { throw ValidationError("--blocks, --width and --rank must be positive (width at least 8)") }
    }

    func run() throws {
        var config = MergeBenchmark.Config()
        config.blocks = blocks
        config.width = width
        config.rank = rank
        let root = dir ?? FileManager.default.temporaryDirectory.path
        let folder = (root as NSString).appendingPathComponent("ea-weights-bench-merge-\(getpid())")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(atPath: folder) } }

        let progress = FileProgress()
        let start = Date()
        let (transformer, lora) = try MergeBenchmark.synthesize(in: folder, config: config, progress: progress.handler)
        progress.finish()
        let synthesizeSeconds = Date().timeIntervalSince(start)
        // The merge runs as its own process, exactly as a user runs it, so its peak memory is its own.
        let output = (folder as NSString).appendingPathComponent("merged.safetensors")
        try MergeBenchmark.readIntoPageCache([transformer, lora])
        let merge = try ChildProcess.run(try ChildProcess.ownExecutable(),
                                         ["merge-lora", transformer, "--lora", lora, "--out", output, "--json"], reportsPeak: true)
        let peak = try merge.succeededPeak("merge-lora")
        let checkpointBytes = Self.fileSize(transformer)
        let limit = 0.25
        let report = try? JSONDecoder().decode(LoRAMergeResult.self, from: merge.output).report
        var result = Result(config: config, checkpointBytes: checkpointBytes, loraBytes: Self.fileSize(lora),
                            synthesizeSeconds: synthesizeSeconds, mergeSeconds: merge.seconds, mergePeakRSSBytes: peak,
                            mergeCPUSeconds: merge.cpuSeconds,
                            peakToCheckpoint: Double(peak) / Double(max(checkpointBytes, 1)), limit: limit,
                            passed: Double(peak) < limit * Double(checkpointBytes), blas: BLAS.coreDescription, report: report)
        if python {
            try? FileManager.default.removeItem(atPath: output)
            try MergeBenchmark.readIntoPageCache([transformer, lora])
            result.python = Self.runPython(base: transformer, lora: lora, output: output, oursSeconds: merge.seconds, oursPeak: peak)
        }
        try WeightOpsOutput.print(result, lines: result.lines, asJSON: json)
        if !result.passed { throw ExitCode(1) }
    }

    /// The Python merge on the same files; a missing interpreter or library is reported, not an error.
    static func runPython(base: String, lora: String, output: String, oursSeconds: Double, oursPeak: Int) -> PythonComparison {
        runPythonScript(PythonMergeReference.script, [base, lora, output], oursSeconds: oursSeconds, oursPeak: oursPeak)
    }

    /// Runs a Python reference (`python3 -c script arguments...`) that prints `PythonMergeReference.Result`'s JSON.
    static func runPythonScript(_ script: String, _ arguments: [String], oursSeconds: Double, oursPeak: Int) -> PythonComparison {
        guard let run = try? ChildProcess.run("/usr/bin/env", ["python3", "-c", script] + arguments) else {
            return PythonComparison(skipped: "python3 could not be started")
        }
        guard run.status == 0, let reply = try? JSONDecoder().decode(PythonMergeReference.Result.self, from: run.output) else {
            return PythonComparison(skipped: "python3 failed with status \(run.status)")
        }
        if let error = reply.error { return PythonComparison(skipped: error) }
        guard let seconds = reply.seconds, let peak = reply.peakRSSBytes else {
            return PythonComparison(skipped: "python3 printed no timing")
        }
        return PythonComparison(library: reply.library, seconds: seconds, peakRSSBytes: peak,
                                speedup: seconds / max(oursSeconds, 1e-9), memoryRatio: Double(peak) / Double(max(oursPeak, 1)))
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
