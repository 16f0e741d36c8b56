import ArgumentParser
import Foundation
import Safetensors
import Bench
import WeightOps

struct BenchExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Time `extract` against GNU tar on the same synthetic archive.",
        discussion: """
        Writes a model-like archive of --size bytes (safetensors files of incompressible bytes, like real \
        weights) into a temporary folder under --dir, extracts it with ea-weights (which also hashes, \
        validates and fsyncs every file) and with `tar -xf`, and prints MB/s of archive for both; tar is also \
        shown followed by `sync -f`, the same durability ea-weights gives. Runs alternate (--runs each) and the \
        best is shown, with the CPU time of that run. Needs about 3x --size of free space. Build with \
        `swift build -c release` for meaningful numbers.

        Examples:
          ea-weights bench extract
          ea-weights bench extract --size 500M --compression zstd --json
        """
    )

    @Option(help: ArgumentHelp("Total size of the files in the archive (e.g. 2G, 500M, 123456789).", valueName: "size"))
    var size: String = "2G"

    @Option(help: ArgumentHelp("none, gzip, zstd or xz.", valueName: "compression"))
    var compression: String = "none"

    @Option(help: ArgumentHelp("Folder on the filesystem to measure (default: the temporary folder).", valueName: "dir"))
    var dir: String?

    @Option(help: "Timed runs of each extractor (alternating); the best is reported.")
    var runs: Int = 2

    @Flag(help: "Keep the synthetic archive instead of deleting it.")
    var keep = false

    @Flag(help: "Print the result as one JSON object for scripts.")
    var json = false

    func validate() throws {
        guard ByteCount.parse(size) != nil else { throw ValidationError("--size '\(size)' is not a size like 2G, 500M or 123456789") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard ArchiveCompression(rawValue: compression) != nil else {
            throw ValidationError("--compression must be none, gzip, zstd or xz")
        }
    }

    func run() throws {
        Interruption.install()
        var options = ExtractionBenchmark.Options()
        options.size = ByteCount.parse(size) ?? options.size
        options.compression = ArchiveCompression(rawValue: compression) ?? .none
        if let dir {
            // As bench merge: the folder to measure is created when missing.
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            options.directory = dir
        }
        options.keep = keep
        options.runs = runs
        options.progress = TerminalProgress(label: "extracting", total: nil)
        if !json {
            FileHandle.standardError.write(Data("writing a \(TerminalProgress.bytes(options.size)) \(options.compression.label) archive...\n".utf8))
        }
        let result = try CommandFailure.exitOnInterruption { try ExtractionBenchmark.run(options) }
        if json {
            print(try CommandOutput.json(result))
            return
        }
        print("archive: \(TerminalProgress.bytes(result.archiveBytes)) \(result.compression.label), \(result.files) files, \(TerminalProgress.bytes(result.dataBytes)) of data; best of \(result.runs) run\(result.runs == 1 ? "" : "s")")
        func line(_ label: String, _ t: ExtractionBenchmark.Timing) -> String {
            label.padding(toLength: 34, withPad: " ", startingAt: 0)
                + String(format: "%8.2f s  %8.1f MB/s  (%.2f CPU s)", t.seconds, t.megabytesPerSecond, t.cpuSeconds)
        }
        print(line("ea-weights extract (hash+fsync)", result.eaWeights))
        if let tar = result.tar { print(line("tar -xf", tar)) }
        if let synced = result.tarThenSync { print(line("tar -xf, then sync -f", synced)) }
        if result.tar == nil { print("(GNU tar not found: nothing to compare with)") }
        if result.kept { print("kept \(result.archive)") }
    }
}

/// Sizes as people type them: 2G, 500M, 64k, 1.5GB, 123456789 (powers of 1000, like disk vendors and `df -H`).
enum ByteCount {
    static func parse(_ text: String) -> Int64? {
        var s = text.trimmingCharacters(in: .whitespaces).uppercased()
        if s.hasSuffix("B") { s.removeLast() }
        let units: [Character: Double] = ["K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12]
        var factor = 1.0
        if let last = s.last, let unit = units[last] {
            factor = unit
            s.removeLast()
        }
        guard let value = Double(s), value > 0, value * factor < 9e18 else { return nil }
        return Int64(value * factor)
    }
}
