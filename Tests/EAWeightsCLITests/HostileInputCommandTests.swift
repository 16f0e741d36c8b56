import Bench
import Foundation
import Safetensors
import Testing
import TestSupport
import WeightOps

/// Hostile and real-world inputs found by outside corpora (libarchive's test suite, OSS-Fuzz), rebuilt here:
/// each is refused with one line naming the file and the problem, quickly, in bounded memory, leaving nothing.
@Suite("hostile inputs from the command line")
struct HostileInputCommandTests {
    /// Runs the binary under `sh` with the address space limited to `megabytes`, so unbounded growth fails the test
    /// instead of the machine.
    static func runLimited(_ arguments: [String], megabytes: Int) throws -> CLIRunner.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let quoted = ([try CLIRunner.binary().path] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        process.arguments = ["-c", "ulimit -v \(megabytes * 1024); exec " + quoted.joined(separator: " ")]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return CLIRunner.finish(process, out, err)
    }

    /// A gzip member header with the FNAME flag set and `nameBytes` of name without its terminating zero.
    static func endlessNameHeader(nameBytes: Int) -> [UInt8] {
        [0x1F, 0x8B, 8, 0x08, 0, 0, 0, 0, 0, 3] + [UInt8](repeating: UInt8(ascii: "A"), count: nameBytes)
    }

    @Test("a gzip stream that decompresses into a gzip header with an endless name is refused at once in bounded memory")
    func nestedGzipWithEndlessInnerName() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        // The shape of libarchive's test_read_filter_gzip_recursive.gz (OSS-Fuzz): libarchive 3.6's gzip bidder
        // reads the inner name until a zero that never comes. 300 MB of name compress to about 1.3 MB.
        let archive = folder.appendingPathComponent("recursive.tar.gz").path
        let writer = try CompressedFileWriter(path: archive, compression: .gzip)
        try writer.write(Self.endlessNameHeader(nameBytes: 0))
        let block = [UInt8](repeating: UInt8(ascii: "A"), count: 1 << 20)
        for _ in 0..<300 { try writer.write(block) }
        try writer.finish()
        let models = folder.appendingPathComponent("models").path

        let start = Date()
        // Without the fix the reader buffered the whole name: it could not run in 300 MB of address space.
        let result = try Self.runLimited(["extract", archive, "--to", models], megabytes: 300)
        #expect(Date().timeIntervalSince(start) < 10, "refused quickly")
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
        #expect(result.stderr.contains(archive))
        #expect(result.stderr.contains("does not hold a tar archive"), "\(result.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: models)) ?? []).isEmpty)
    }

    @Test("a gzip header whose file name or comment does not end within 1 MiB is refused before libarchive reads it",
          arguments: [0x08, 0x10] as [UInt8])
    func gzipHeaderFieldTooLong(flag: UInt8) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        var bytes = Self.endlessNameHeader(nameBytes: (1 << 20) + 10)
        bytes[3] = flag
        let archive = folder.appendingPathComponent("long-field.tar.gz").path
        try Data(bytes).write(to: URL(fileURLWithPath: archive))
        let result = try CLIRunner.run(["extract", archive, "--to", folder.appendingPathComponent("models").path])
        #expect(result.status == 1)
        let field = flag == 0x08 ? "file name" : "comment"
        #expect(result.stderr.contains("\(archive): the archive is corrupt: gzip header: the \(field) field does not end within 1 MiB"),
                "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["long-field.tar.gz"])
    }
}
