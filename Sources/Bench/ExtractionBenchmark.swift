#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Safetensors
import WeightOps

/// Times `ArchiveExtraction` against GNU tar on the same synthetic archive: a model-like folder of large
/// safetensors files (incompressible bytes, like real weights) plus small JSON files, written to a temporary
/// folder. Ours reads, hashes, validates and fsyncs every file; tar does none of that, so tar is also timed
/// followed by a sync of its output to compare equal durability. Runs alternate and the best of each is kept;
/// CPU time is reported too, since on a shared machine the wall time mostly measures the neighbours.
public enum ExtractionBenchmark {
    public struct Options: Sendable {
        /// Total size of the files in the archive, in bytes.
        public var size: Int64 = 2_000_000_000
        public var compression: ArchiveCompression = .none
        /// Where the temporary folder is made (the filesystem being measured).
        public var directory: String = FileManager.default.temporaryDirectory.path
        /// Keep the temporary folder for inspection.
        public var keep = false
        /// Also time GNU tar (skipped when `tar` is not on PATH).
        public var compareWithTar = true
        /// Timed runs of each; the best is reported.
        public var runs = 2
        public var progress: TerminalProgress = .silent

        public init() {}
    }

    public struct Timing: Sendable, Codable, Equatable {
        /// Wall-clock seconds of the best run.
        public let seconds: Double
        /// Archive bytes per second, in MB/s (10^6).
        public let megabytesPerSecond: Double
        /// CPU seconds (user + system) of that run: on a busy machine the wall time follows the CPU time.
        public let cpuSeconds: Double
    }

    public struct Result: Sendable, Codable {
        public let archive: String
        public let compression: ArchiveCompression
        public let archiveBytes: Int64
        public let dataBytes: Int64
        public let files: Int
        public let runs: Int
        public let eaWeights: Timing
        public let tar: Timing?
        public let tarThenSync: Timing?
        public let kept: Bool
    }

    public static func run(_ options: Options) throws -> Result {
        let root = try AtomicOutput.Folder(in: options.directory, for: "bench")
        let archive = root.path + "/bench-model" + extensionName(options.compression)
        let (files, dataBytes) = try synthesize(archive: archive, size: options.size, compression: options.compression)
        let archiveBytes = Int64((try? FileManager.default.attributesOfItem(atPath: archive)[.size] as? Int) ?? 0)
        // The archive's own writeback must not compete with the first timed run.
        try flush(archive)

        var extractOptions = ArchiveExtractionOptions()
        extractOptions.requirePixArtFolder = false
        extractOptions.progress = options.progress
        let tar = options.compareWithTar ? which("tar") : nil
        let sync = which("sync")
        var ours: [Measure] = []
        var tars: [(tar: Measure, sync: Measure)] = []
        // Alternating runs, best of each: a busy machine slows whichever run it happens to hit.
        for _ in 0..<max(options.runs, 1) {
            if let tar {
                let out = root.path + "/tar"
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                let extract = try measure(children: true) { try runProcess(tar, ["-xf", archive, "-C", out]) }
                let flushed = try measure(children: true) { if let sync { try runProcess(sync, ["-f", out]) } }
                tars.append((extract, flushed))
                AtomicOutput.removeTree(out)
            }
            ours.append(try measure(children: false) {
                _ = try ArchiveExtraction.extract(archive: archive, into: root.path + "/ours", options: extractOptions)
            })
            AtomicOutput.removeTree(root.path + "/ours")
        }
        let bestOurs = ours.min { $0.seconds < $1.seconds } ?? Measure(seconds: 0, cpu: 0)
        let bestTar = tars.min { $0.tar.seconds < $1.tar.seconds }
        let bestTarSync = tars.min { $0.tar.seconds + $0.sync.seconds < $1.tar.seconds + $1.sync.seconds }
        let kept = options.keep
        let keptFolder = options.directory + "/ea-weights-bench-\(getpid())"
        if kept { try root.commit(to: keptFolder, flushing: []) }
        return Result(
            archive: kept ? keptFolder + "/" + (archive as NSString).lastPathComponent : archive,
            compression: options.compression, archiveBytes: archiveBytes, dataBytes: dataBytes, files: files,
            runs: max(options.runs, 1), eaWeights: timing(bestOurs, archiveBytes),
            tar: bestTar.map { timing($0.tar, archiveBytes) },
            tarThenSync: bestTarSync.map {
                timing(Measure(seconds: $0.tar.seconds + $0.sync.seconds, cpu: $0.tar.cpu + $0.sync.cpu), archiveBytes)
            },
            kept: kept)
    }

    struct Measure {
        let seconds: Double
        let cpu: Double
    }

    /// Wall and CPU time of `body`; `children` counts the CPU of the processes it ran instead of this one's.
    private static func measure(children: Bool, _ body: () throws -> Void) throws -> Measure {
        let cpuBefore = cpuSeconds(children: children)
        let start = TerminalProgress.now()
        try body()
        return Measure(seconds: TerminalProgress.now() - start, cpu: cpuSeconds(children: children) - cpuBefore)
    }

    private static func cpuSeconds(children: Bool) -> Double {
        var usage = rusage()
        _ = getrusage(__rusage_who_t((children ? RUSAGE_CHILDREN : RUSAGE_SELF).rawValue), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    private static func flush(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BenchError.failed(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        _ = fsync(fd)
    }

    /// Writes `bench-model/` with safetensors files of up to 1 GB each (one U8 tensor apiece) and a config.
    static func synthesize(archive: String, size: Int64, compression: ArchiveCompression) throws -> (files: Int, bytes: Int64) {
        let writer = try CompressedFileWriter(path: archive, compression: compression)
        var pattern = [UInt8](repeating: 0, count: 16 << 20)
        var generator = SystemRandomNumberGenerator()
        pattern.withUnsafeMutableBytes { raw in
            for i in stride(from: 0, to: raw.count, by: 8) {
                raw.storeBytes(of: generator.next() as UInt64, toByteOffset: i, as: UInt64.self)
            }
        }
        try writer.write(TarFormat.header(name: "bench-model/", type: .directory, mode: 0o755))
        let config = Array("{\"_class_name\": \"Benchmark\"}\n".utf8)
        try writeFile(writer, name: "bench-model/config.json", header: [], data: config, size: Int64(config.count))
        var remaining = max(size, 1)
        var index = 0
        var total = Int64(config.count)
        while remaining > 0 {
            let payload = min(remaining, 1_000_000_000)
            let json = "{\"weight\":{\"dtype\":\"U8\",\"shape\":[\(payload)],\"data_offsets\":[0,\(payload)]}}"
            var header = Array(json.utf8)
            header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
            var prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
            prefix += header
            let name = String(format: "bench-model/weights/part-%05d.safetensors", index)
            try writeFile(writer, name: name, header: prefix, data: pattern, size: Int64(prefix.count) + payload)
            total += Int64(prefix.count) + payload
            remaining -= payload
            index += 1
        }
        try writer.write(TarFormat.endOfArchive)
        try writer.finish()
        return (index + 1, total)
    }

    /// One file entry: `header` bytes, then `pattern` repeated up to `size`, then padding.
    private static func writeFile(
        _ writer: CompressedFileWriter, name: String, header: [UInt8], data pattern: [UInt8], size: Int64
    ) throws {
        try writer.write(TarFormat.header(name: name, type: .file, size: size, mode: 0o644))
        try writer.write(header)
        var left = size - Int64(header.count)
        try pattern.withUnsafeBytes { raw in
            while left > 0 {
                let n = Int(min(left, Int64(raw.count)))
                try writer.write(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
                left -= Int64(n)
            }
        }
        try writer.write([UInt8](repeating: 0, count: TarFormat.padding(forSize: size)))
    }

    private static func extensionName(_ compression: ArchiveCompression) -> String {
        switch compression {
        case .none: return ".tar"
        case .gzip: return ".tar.gz"
        case .zstd: return ".tar.zst"
        case .xz: return ".tar.xz"
        }
    }

    private static func timing(_ m: Measure, _ bytes: Int64) -> Timing {
        Timing(seconds: m.seconds, megabytesPerSecond: m.seconds > 0 ? Double(bytes) / m.seconds / 1e6 : 0, cpuSeconds: m.cpu)
    }

    private static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(tool)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    private static func runProcess(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ModelsError.invalidRequest(reason: "\(tool) \(arguments.joined(separator: " ")) failed with status \(process.terminationStatus)")
        }
    }
}
