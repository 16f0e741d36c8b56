import ArgumentParser
import Foundation
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
        exits with status 1 when it does not. Needs about 5 GB of free disk in --dir.

        Examples:
          ea-weights bench merge
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

    @Flag(help: "Print the result as JSON.")
    var json = false

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
        var report: LoRAMergeReport?

        enum CodingKeys: String, CodingKey {
            case config, checkpointBytes = "checkpoint_bytes", loraBytes = "lora_bytes", synthesizeSeconds = "synthesize_seconds"
            case mergeSeconds = "merge_seconds", mergePeakRSSBytes = "merge_peak_rss_bytes", mergeCPUSeconds = "merge_cpu_seconds"
            case peakToCheckpoint = "peak_to_checkpoint", limit, passed, blas, report
        }

        var lines: [String] {
            ["synthetic PixArt transformer: \(config.blocks) blocks, width \(config.width), "
                + "\(TerminalProgress.bytes(Int64(checkpointBytes))) F32; LoRA rank \(config.rank), \(TerminalProgress.bytes(Int64(loraBytes)))"
                + " (made in \(String(format: "%.1f", synthesizeSeconds)) s)",
             "merge-lora: \(String(format: "%.2f", mergeSeconds)) s wall (\(String(format: "%.2f", mergeCPUSeconds)) s CPU), peak RSS \(TerminalProgress.bytes(Int64(mergePeakRSSBytes))) "
                + "= \(String(format: "%.1f", peakToCheckpoint * 100))% of the checkpoint (limit \(Int(limit * 100))%) "
                + (passed ? "PASS" : "FAIL"),
             "matrix products: \(blas)"]
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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.executablePath())
        process.arguments = ["merge-lora", transformer, "--lora", lora, "--out", output, "--json"]
        let pipe = Pipe()
        process.standardOutput = pipe
        let mergeStart = Date()
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let mergeSeconds = Date().timeIntervalSince(mergeStart)
        guard process.terminationStatus == 0 else {
            throw ValidationError("the merge child process failed with status \(process.terminationStatus)")
        }
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
        let checkpointBytes = Self.fileSize(transformer)
        let peak = Int(usage.ru_maxrss) * 1024
        let limit = 0.25
        let report = try? JSONDecoder().decode(LoRAMergeResult.self, from: data).report
        let result = Result(config: config, checkpointBytes: checkpointBytes, loraBytes: Self.fileSize(lora),
                            synthesizeSeconds: synthesizeSeconds, mergeSeconds: mergeSeconds, mergePeakRSSBytes: peak,
                            mergeCPUSeconds: Self.seconds(usage.ru_utime) + Self.seconds(usage.ru_stime),
                            peakToCheckpoint: Double(peak) / Double(max(checkpointBytes, 1)), limit: limit,
                            passed: Double(peak) < limit * Double(checkpointBytes), blas: BLAS.coreDescription, report: report)
        try WeightOpsOutput.print(result, lines: result.lines, asJSON: json)
        if !result.passed { throw ExitCode(1) }
    }

    static func executablePath() throws -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        if let path = Bundle.main.executablePath { return path }
        throw ValidationError("cannot find the ea-weights executable to run the merge")
    }

    static func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
