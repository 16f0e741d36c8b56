import Bench
import Foundation
import Safetensors
import Testing
import TestSupport
@testable import WeightOps

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

/// Names in archives: UTF-8 is extracted exactly in any locale; what is not a name is refused, quoted escaped.
@Suite("archive entry names from the command line")
struct ArchiveNameCommandTests {
    /// A tar of `entries` (name bytes, pax path or nil, data) under `top/`, written to a fresh folder.
    static func archive(_ entries: [(name: [UInt8], paxPath: [UInt8]?, data: [UInt8])]) throws -> (folder: URL, archive: String) {
        let folder = try CLIRunner.temporaryDirectory()
        var bytes = TarFormat.header(name: "top/", type: .directory, mode: 0o755)
        for entry in entries {
            if let pax = entry.paxPath { bytes += TarFormat.paxHeader([("path", pax)]) }
            bytes += TarFormat.header(nameBytes: entry.name, type: .file, size: Int64(entry.data.count))
            bytes += entry.data + [UInt8](repeating: 0, count: TarFormat.padding(forSize: Int64(entry.data.count)))
        }
        bytes += TarFormat.endOfArchive
        let archive = folder.appendingPathComponent("names.tar").path
        try Data(bytes).write(to: URL(fileURLWithPath: archive))
        return (folder, archive)
    }

    /// Runs the binary with an empty environment (no LANG, LC_ALL or PATH), as `env -i` does.
    static func runWithEmptyEnvironment(_ arguments: [String]) throws -> CLIRunner.Result {
        let process = Process()
        process.executableURL = try CLIRunner.binary()
        process.arguments = arguments
        process.environment = [:]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return CLIRunner.finish(process, out, err)
    }

    @Test("UTF-8 names, in pax headers and in plain tar headers, are extracted exactly with an empty environment")
    func utf8NamesInAnyLocale() throws {
        let pax = Array("top/模型/café.json".utf8), plain = Array("top/naïve-ß.txt".utf8)
        let (folder, archive) = try Self.archive([
            (name: Array("top/placeholder".utf8), paxPath: pax, data: Array("{}".utf8)),
            (name: plain, paxPath: nil, data: Array("x".utf8)),
        ])
        defer { AtomicOutput.removeTree(folder.path) }
        let models = folder.appendingPathComponent("models").path
        let result = try Self.runWithEmptyEnvironment(["extract", archive, "--to", models, "--any-layout"])
        #expect(result.status == 0, "\(result.stderr)")
        let tree = (FileManager.default.subpaths(atPath: models) ?? []).sorted()
        #expect(tree == ["top", "top/naïve-ß.txt", "top/模型", "top/模型/café.json"])
        // The bytes on disk are the archive's bytes (no normalisation, no repair).
        let names = try FileManager.default.contentsOfDirectory(atPath: models + "/top").map { Array($0.utf8) }
        #expect(names.contains(Array("naïve-ß.txt".utf8)))
    }

    @Test("a name that is not UTF-8 is refused as such, with its bytes escaped on one line, and nothing is written")
    func invalidUTF8NameIsRefused() throws {
        let (folder, archive) = try Self.archive([(name: Array("top/caf".utf8) + [0xE9] + Array(".json".utf8), paxPath: nil, data: [1])])
        defer { AtomicOutput.removeTree(folder.path) }
        let models = folder.appendingPathComponent("models").path
        let result = try CLIRunner.run(["extract", archive, "--to", models, "--any-layout"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("refusing entry 'top/caf\\xE9.json': its name is not valid UTF-8"), "\(result.stderr)")
        #expect(!result.stderr.contains("corrupt"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: models)) ?? []).isEmpty)
    }

    @Test("a pax path with an embedded NUL is refused, naming the entry escaped, instead of writing a truncated name")
    func paxPathWithNULIsRefused() throws {
        let (folder, archive) = try Self.archive([
            (name: Array("top/ok.txt".utf8), paxPath: Array("top/evil".utf8) + [0] + Array(".txt".utf8), data: Array("hi".utf8)),
        ])
        defer { AtomicOutput.removeTree(folder.path) }
        let models = folder.appendingPathComponent("models").path
        let result = try CLIRunner.run(["extract", archive, "--to", models, "--any-layout"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("refusing entry 'top/evil\\x00.txt': its pax path holds a NUL byte"), "\(result.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: models)) ?? []).isEmpty)
    }

    @Test("a pax record whose length is too short to hold its own key is reported as a damaged header, not a crash")
    func paxRecordLengthTooShort() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        // "19 path=top/ok.txt\n" with its length made 3: the record would end before its key does.
        var pax = TarFormat.paxHeader([("path", Array("top/ok.txt".utf8))])
        pax.replaceSubrange(512..<514, with: Array("03".utf8))
        let bytes = pax + TarFormat.header(name: "top/ok.txt", type: .file, size: 2) + Array("hi".utf8)
            + [UInt8](repeating: 0, count: TarFormat.padding(forSize: 2)) + TarFormat.endOfArchive
        let archive = folder.appendingPathComponent("short-pax.tar").path
        try Data(bytes).write(to: URL(fileURLWithPath: archive))
        let models = folder.appendingPathComponent("models").path
        let result = try CLIRunner.run(["extract", archive, "--to", models, "--any-layout"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("short-pax.tar: the archive is corrupt"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: models)) ?? []).isEmpty)
    }
}

/// A download that went wrong, saved under the weights' name, is named as what it is by every reader, for single
/// files and for one shard of a sharded checkpoint alike.
@Suite("failed downloads in place of weights")
struct FailedDownloadCommandTests {
    static let lfsPointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 4600000000\n"
    static let htmlPage = "<!DOCTYPE html>\n<html><head><title>404</title></head><body>Not Found</body></html>\n"

    static func expected(_ text: String) -> String {
        text.hasPrefix("version") ? "not the weights but a Git LFS pointer" : "not the weights but an HTML page"
    }

    @Test("inspect, merge-lora, convert, swap, generate and prepare name a Git LFS pointer or an HTML page given as a file",
          arguments: [lfsPointer, htmlPage])
    func singleFile(text: String) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        let bad = folder.appendingPathComponent("easyanimate_v1_mm.safetensors").path
        try text.write(toFile: bad, atomically: false, encoding: .utf8)
        let tiny = Fixtures.eaTiny.path
        let out = folder.appendingPathComponent("out.safetensors").path
        let commands: [[String]] = [
            ["inspect", bad],
            ["merge-lora", bad, "--lora", tiny + "/lora.safetensors", "--out", out],
            ["merge-lora", tiny + "/personalized.safetensors", "--lora", bad, "--out", out],
            ["convert", bad, "--to", "f16", "--out", out],
            ["swap", "--backbone", tiny + "/personalized.safetensors", "--motion-module", bad, "--out", out],
            ["generate", "--prompt", "a forest", "--frames", "2", "--steps", "1", "--motion-module", bad,
             "--pixart", tiny + "/tiny-pixart", "--out", out],
            ["prepare", "--models", folder.appendingPathComponent("models").path, "--motion-module", bad],
        ]
        for arguments in commands {
            let result = try CLIRunner.run(arguments)
            #expect(result.status != 0, "\(arguments[0]) accepted it")
            #expect(result.stderr.contains("\(bad): \(Self.expected(text))"), "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments[0]): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("models/Motion_Module").path))
        }
    }

    @Test("a shard that is a Git LFS pointer or an HTML page is named by inspect, merge-lora and generate",
          arguments: [lfsPointer, htmlPage])
    func shard(text: String) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        // A copy of the fixture's diffusers folder whose second text-encoder shard did not download.
        let pixart = folder.appendingPathComponent("tiny-pixart").path
        try FileManager.default.copyItem(atPath: Fixtures.eaTiny.path + "/tiny-pixart", toPath: pixart)
        let shard = pixart + "/text_encoder/model-00002-of-00003.safetensors"
        try FileManager.default.removeItem(atPath: shard)
        try text.write(toFile: shard, atomically: false, encoding: .utf8)
        let out = folder.appendingPathComponent("out").path
        let commands: [[String]] = [
            ["inspect", pixart + "/text_encoder"],
            ["merge-lora", pixart + "/text_encoder", "--lora", Fixtures.eaTiny.path + "/lora.safetensors", "--out", out],
            ["generate", "--prompt", "a forest", "--frames", "2", "--steps", "1", "--pixart", pixart,
             "--motion-module", Fixtures.eaTiny.path + "/motion_module.safetensors", "--out", out + ".safetensors"],
        ]
        for arguments in commands {
            let result = try CLIRunner.run(arguments)
            #expect(result.status != 0, "\(arguments[0]) accepted it")
            #expect(result.stderr.contains("\(shard): \(Self.expected(text))"), "\(arguments[0]): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".safetensors"))
        }
    }
}

/// Whatever the input quotes back, an error is one line of printable text.
@Suite("error messages are one printable line")
struct OneLineErrorCommandTests {
    static func expectOneLine(_ result: CLIRunner.Result, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status != 0, sourceLocation: sourceLocation)
        let message = result.stderr.hasSuffix("\n") ? String(result.stderr.dropLast()) : result.stderr
        #expect(!message.isEmpty && !message.contains("\n") && !message.contains("\r"), "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || (0x80...0x9F).contains($0.value) },
                "control characters in: \(result.stderr)", sourceLocation: sourceLocation)
    }

    @Test("a safetensors header whose names and dtype hold control characters")
    func controlCharactersInHeader() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        let header = Array(#"{"evil\r\nname\u001b[31m":{"dtype":"F\n32\u0007","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        bytes += [0, 0, 0, 0]
        let file = folder.appendingPathComponent("x.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        Self.expectOneLine(try CLIRunner.run(["inspect", file]))
        Self.expectOneLine(try CLIRunner.run(["convert", file, "--to", "f16", "--out", folder.appendingPathComponent("o.safetensors").path]))
    }

    @Test("a WARC file, a raw zstd frame and an entry name with escape codes given to extract")
    func archivesThatQuoteTheirBytes() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        let warc = folder.appendingPathComponent("model.tar").path
        try "WARC/1.0\r\nWARC-Type: warcinfo\r\nContent-Length: 0\r\n\r\n".write(toFile: warc, atomically: false, encoding: .utf8)
        let zstd = folder.appendingPathComponent("model.tar.zst").path
        try Data([0x28, 0xB5, 0x2F, 0xFD, 0x04, 0x58, 0x45, 0x00, 0x00, 0x0A, 0x0D, 0x1B, 0xFF, 0x80, 0x07]).write(to: URL(fileURLWithPath: zstd))
        let escape = folder.appendingPathComponent("escape.tar").path
        var tar = TarFormat.header(name: "top/", type: .directory, mode: 0o755)
        tar += TarFormat.header(name: "top/../\u{1B}[2J\r\nowned", type: .file, size: 0) + TarFormat.endOfArchive
        try Data(tar).write(to: URL(fileURLWithPath: escape))
        for archive in [warc, zstd, escape] {
            let result = try CLIRunner.run(["extract", archive, "--to", folder.appendingPathComponent("models").path, "--any-layout"])
            Self.expectOneLine(result)
            #expect(result.stderr.contains(archive))
        }
    }
}

/// Two runs changing one models/ tree at once: one proceeds, the other stops with a message naming the first.
@Suite("concurrent runs on one models folder", .serialized)
struct ConcurrentRunCommandTests {
    static func prepareArguments(_ models: String) -> [String] {
        let tiny = Fixtures.eaTiny.path
        return ["prepare", "--models", models, "--pixart", tiny + "/tiny-pixart.tar",
                "--motion-module", tiny + "/motion_module.safetensors", "--lora", tiny + "/lora.safetensors", "--copy"]
    }

    @Test("prepare and extract into a folder another run holds stop at once and change nothing")
    func busyFolderIsRefused() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        let models = folder.appendingPathComponent("models").path
        try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        let before = try FileManager.default.contentsOfDirectory(atPath: models)
        do {
            let claim = try FolderLock(models)
            defer { withExtendedLifetime(claim) {} }
            for arguments in [Self.prepareArguments(models),
                              ["extract", Fixtures.eaTiny.path + "/tiny-pixart.tar", "--to", models]] {
                let result = try CLIRunner.run(arguments)
                #expect(result.status == 1)
                #expect(result.stderr.contains("\(models): another ea-weights run is changing this folder"),
                        "\(arguments[0]): \(result.stderr)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: models) == before)
            }
        }
        // Released: the same prepare now runs.
        let result = try CLIRunner.run(Self.prepareArguments(models))
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("two prepare runs started together leave a complete models/ tree and manifest that verify accepts")
    func twoPreparesAtOnce() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        let models = folder.appendingPathComponent("models").path
        let first = try CLIRunner.start(Self.prepareArguments(models))
        let second = try CLIRunner.start(Self.prepareArguments(models))
        let results = [CLIRunner.finish(first.0, first.1, first.2), CLIRunner.finish(second.0, second.1, second.2)]
        #expect(results.contains { $0.status == 0 }, "\(results.map(\.stderr))")
        for result in results where result.status != 0 {
            #expect(result.status == 1)
            #expect(result.stderr.contains("is changing this folder; try again when it has finished"), "\(result.stderr)")
        }
        let verify = try CLIRunner.run(["verify", "--models", models])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}

/// Ctrl-C (or SIGTERM) ends a long command within about a second, exit status 128 + the signal, leaving nothing.
@Suite("interrupting long work", .serialized)
struct InterruptCommandTests {
    /// Starts `arguments`, waits (bounded) until a temporary output appears in `folder`, sends `signal`, and returns
    /// the result with the seconds from the signal to the exit; nil when the command finished before it was hit.
    static func interrupt(_ arguments: [String], watching folder: String, signal: Int32)
        throws -> (result: CLIRunner.Result, seconds: Double)?
    {
        let (process, out, err) = try CLIRunner.start(arguments)
        for _ in 0..<20_000 {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            if names.contains(where: AtomicOutput.isTemporaryName) || !process.isRunning { break }
            usleep(1000)
        }
        guard process.isRunning else { _ = CLIRunner.finish(process, out, err); return nil }
        let start = Date()
        kill(process.processIdentifier, signal)
        let result = CLIRunner.finish(process, out, err)
        return (result, Date().timeIntervalSince(start))
    }

    @Test("merge-lora and convert of a large checkpoint stop on SIGINT and SIGTERM, leaving nothing",
          arguments: [SIGINT, SIGTERM])
    func mergeAndConvertStop(signal: Int32) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        var config = MergeBenchmark.Config()
        config.blocks = 3
        config.rank = 64
        let inputs = try MergeBenchmark.synthesize(in: folder.path, config: config)
        let outputs = folder.appendingPathComponent("out").path
        try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: false)
        let commands = [
            ["merge-lora", inputs.transformer, "--lora", inputs.lora, "--out", outputs + "/merged.safetensors"],
            ["convert", inputs.transformer, "--to", "int8", "--out", outputs + "/int8.safetensors"],
        ]
        var interrupted = 0
        defer { #expect(interrupted > 0, "every command finished before the signal: the inputs are too small") }
        for arguments in commands {
            guard let (result, seconds) = try Self.interrupt(arguments, watching: outputs, signal: signal) else { continue }
            interrupted += 1
            #expect(result.status == 128 + signal, "\(arguments[0]): \(result.stderr)")
            #expect(result.stderr.contains("interrupted"), "\(arguments[0]): \(result.stderr)")
            // About a second: a stop the work does not reach in 0.8 s is forced, plus the child's exit.
            #expect(seconds < 2, "\(arguments[0]) took \(seconds) s to stop")
            #expect(try FileManager.default.contentsOfDirectory(atPath: outputs).isEmpty)
        }
    }
}

/// An OUT ending in `.safetensors` is one file wherever one file can hold the result.
@Suite("output names")
struct OutputNameCommandTests {
    static func keysAndShapes(_ path: String) throws -> [String: [Int]] {
        let dict = try openStateDict(path: path)
        return Dictionary(uniqueKeysWithValues: try dict.keys.map { ($0, try dict.tensor($0).shape) })
    }

    @Test("merge-lora and convert of a component folder to NAME.safetensors write one file and say where config.json is",
          arguments: ["transformer", "text_encoder"])
    func componentFolderToFile(component: String) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        let input = Fixtures.eaTiny.path + "/tiny-pixart/" + component
        let commands: [(name: String, arguments: [String])] = [
            ("merged", ["merge-lora", input, "--lora", Fixtures.eaTiny.path + "/lora.safetensors"]),
            ("converted", ["convert", input, "--to", "bf16"]),
        ]
        for (name, arguments) in commands {
            let file = folder.appendingPathComponent(name + ".safetensors").path
            let asFolder = folder.appendingPathComponent(name + "-folder").path
            let result = try CLIRunner.run(arguments + ["--out", file])
            #expect(result.status == 0, "\(result.stderr)")
            var isDirectory: ObjCBool = true
            #expect(FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) && !isDirectory.boolValue, "a file, not a folder")
            #expect(result.stdout.contains("\(file) holds the weights alone; the folder's other files (config.json) stay in \(input)"),
                    "\(result.stdout)")
            // The same tensors as the folder output (whose shards, for the text encoder, are joined in the file).
            #expect(try CLIRunner.run(arguments + ["--out", asFolder]).status == 0)
            #expect(try Self.keysAndShapes(file) == Self.keysAndShapes(asFolder))
            if component == "text_encoder" { #expect(result.stdout.contains("joined the 3 shards into one file")) }
        }
    }

    @Test("a diffusers folder's output named NAME.safetensors is refused before any work, naming what to give")
    func diffusersFolderToFileIsRefused() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { AtomicOutput.removeTree(folder.path) }
        let out = folder.appendingPathComponent("pipeline.safetensors").path
        for arguments in [["merge-lora", Fixtures.eaTiny.path + "/tiny-pixart", "--lora", Fixtures.eaTiny.path + "/lora.safetensors"],
                          ["convert", Fixtures.eaTiny.path + "/tiny-pixart", "--to", "f16"]] {
            let result = try CLIRunner.run(arguments + ["--out", out])
            #expect(result.status == 1)
            #expect(result.stderr.contains("\(out): names a file, but") && result.stderr.contains("give --out a folder name"), "\(result.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
        }
    }
}
