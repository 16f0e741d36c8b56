import Foundation
import Testing
import Bench
import Safetensors
@testable import WeightOps
import TestSupport

@Suite("Archive extraction of valid archives")
struct ArchiveExtractionTests {
    /// Every regular file of the fixture's unpacked folder, relative to it.
    static func fixtureFiles() -> [String] {
        let root = ArchiveFixtures.tinyPixArtFolder
        return (FileManager.default.subpaths(atPath: root) ?? []).filter { path in
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory)
            return !isDirectory.boolValue
        }.sorted()
    }

    /// The extracted folder holds exactly the fixture folder's files, byte for byte, with the digests reported.
    static func expectMatchesFixture(_ result: ArchiveExtractionResult, folder: String) throws {
        let expected = fixtureFiles()
        #expect(!expected.isEmpty)
        #expect(result.files.map(\.path) == expected)
        for file in result.files {
            let reference = try FileDigest.compute(path: ArchiveFixtures.tinyPixArtFolder + "/" + file.path)
            #expect(file.digest == reference, "\(file.path)")
            let onDisk = try FileDigest.compute(path: folder + "/" + file.path)
            #expect(onDisk == reference, "\(file.path)")
        }
        #expect(result.extractedBytes == result.files.reduce(0) { $0 + $1.digest.size })
    }

    @Test("extracts the fixture tar into DIR/<top folder> with every file's SHA-256")
    func extractsFixtureTar() throws {
        let box = try Sandbox()
        let result = try ArchiveExtraction.extract(
            archive: ArchiveFixtures.tinyPixArtTar, into: box.dest, options: .pixArt)
        #expect(result.folder == box.dest + "/tiny-pixart")
        #expect(result.compression == ArchiveCompression.none)
        try Self.expectMatchesFixture(result, folder: result.folder)
        let inDest = try FileManager.default.contentsOfDirectory(atPath: box.dest).sorted()
        #expect(inDest == ["canary", "tiny-pixart"], "no staging folder is left")
    }

    @Test("extracts the fixture as .tar.gz, .tar.zst and .tar.xz", arguments: [
        ArchiveCompression.gzip, .zstd, .xz,
    ])
    func extractsCompressed(_ compression: ArchiveCompression) throws {
        let box = try Sandbox()
        let tar = try [UInt8](Data(contentsOf: URL(fileURLWithPath: ArchiveFixtures.tinyPixArtTar)))
        let archive = try box.write("model.tar.\(compression.rawValue)", tar, compression: compression)
        let result = try ArchiveExtraction.extract(archive: archive, into: box.dest, options: .pixArt)
        #expect(result.compression == compression)
        try Self.expectMatchesFixture(result, folder: box.dest + "/tiny-pixart")
    }

    @Test("--name chooses the folder name")
    func honoursName() throws {
        let box = try Sandbox()
        var options = ArchiveExtractionOptions.pixArt
        options.name = "PixArt-renamed"
        let result = try ArchiveExtraction.extract(archive: ArchiveFixtures.tinyPixArtTar, into: box.dest, options: options)
        #expect(result.folder == box.dest + "/PixArt-renamed")
        #expect(FileManager.default.fileExists(atPath: box.dest + "/PixArt-renamed/model_index.json"))
        #expect(!FileManager.default.fileExists(atPath: box.dest + "/tiny-pixart"))
    }

    @Test("refuses names that are not a single folder name", arguments: ["", ".", "..", "a/b", ".ea-weights-partial-1"])
    func refusesBadNames(_ name: String) throws {
        let box = try Sandbox()
        var options = ArchiveExtractionOptions.pixArt
        options.name = name
        let error = extractionError(ArchiveFixtures.tinyPixArtTar, into: box.dest, options: options)
        guard case .invalidName? = error else { Issue.record("got \(String(describing: error))"); return }
        box.expectUntouched()
    }

    @Test("creates the destination folder when it does not exist")
    func createsDestination() throws {
        let box = try Sandbox()
        let target = box.path("new/models")
        let result = try ArchiveExtraction.extract(archive: ArchiveFixtures.tinyPixArtTar, into: target, options: .pixArt)
        #expect(result.folder == target + "/tiny-pixart")
    }

    @Test("refuses an existing destination and leaves it alone")
    func refusesExistingDestination() throws {
        let box = try Sandbox()
        try FileManager.default.createDirectory(atPath: box.dest + "/tiny-pixart", withIntermediateDirectories: true)
        try "mine".write(toFile: box.dest + "/tiny-pixart/own.txt", atomically: false, encoding: .utf8)
        let error = extractionError(ArchiveFixtures.tinyPixArtTar, into: box.dest, options: .pixArt)
        #expect(error == .destinationExists(path: box.dest + "/tiny-pixart"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.dest + "/tiny-pixart") == ["own.txt"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.dest).sorted() == ["canary", "tiny-pixart"])
    }

    @Test("drops setuid/setgid bits and group/other write permission; files belong to the user")
    func sanitisesPermissions() throws {
        let box = try Sandbox()
        var tar = TarBuilder()
        tar.directory("m/", mode: 0o7777)
        tar.file("m/run.sh", text: "#!/bin/sh\n", mode: 0o6777)
        tar.file("m/private", text: "x", mode: 0o000)
        let archive = try box.write("perm.tar", tar.archive)
        let result = try ArchiveExtraction.extract(archive: archive, into: box.dest, options: .anyLayout)
        func mode(_ path: String) throws -> Int {
            try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
        }
        #expect(try mode(result.folder + "/run.sh") & 0o7022 == 0)
        #expect(try mode(result.folder + "/run.sh") & 0o700 == 0o700)
        #expect(try mode(result.folder + "/private") & 0o600 == 0o600, "the owner can always read and write")
        #expect(try mode(result.folder) & 0o7022 == 0)
        let owner = try FileManager.default.attributesOfItem(atPath: result.folder + "/run.sh")[.ownerAccountID] as? Int
        #expect(owner == Int(getuid()))
    }

    @Test("accepts links that stay inside the folder, and './' prefixes")
    func acceptsInternalLinks() throws {
        let box = try Sandbox()
        var tar = TarBuilder()
        tar.directory("./")
        tar.directory("./m/")
        tar.directory("./m/sub/")
        tar.file("./m/sub/data.txt", text: "hello")
        tar.symlink("./m/sub/alias.txt", to: "data.txt")
        tar.symlink("./m/up.txt", to: "sub/data.txt")
        tar.symlink("./m/sub/back.txt", to: "../sub/data.txt")
        tar.hardlink("./m/copy.txt", to: "./m/sub/data.txt")
        let archive = try box.write("links.tar", tar.archive)
        let result = try ArchiveExtraction.extract(archive: archive, into: box.dest, options: .anyLayout)
        #expect(result.folder == box.dest + "/m")
        #expect(result.files.map(\.path) == ["copy.txt", "sub/data.txt"])
        #expect(result.files[0].digest == result.files[1].digest)
        for link in ["sub/alias.txt", "up.txt", "sub/back.txt", "copy.txt"] {
            #expect((try? String(contentsOfFile: result.folder + "/" + link, encoding: .utf8)) == "hello", "\(link)")
        }
    }

    @Test("files may come before their folders' entries")
    func acceptsImplicitFolders() throws {
        let box = try Sandbox()
        var tar = TarBuilder()
        tar.file("m/a/b/c.txt", text: "c")
        tar.directory("m/a/")
        tar.directory("m/")
        let archive = try box.write("implicit.tar", tar.archive)
        let result = try ArchiveExtraction.extract(archive: archive, into: box.dest, options: .anyLayout)
        #expect(result.files.map(\.path) == ["a/b/c.txt"])
    }

    @Test("a lone end-of-archive block is enough (the data is complete)")
    func acceptsLoneZeroBlock() throws {
        let box = try Sandbox()
        var tar = TarBuilder()
        tar.file("m/x.txt", text: "x")
        let archive = try box.write("lone.tar", tar.bytes + [UInt8](repeating: 0, count: 512))
        _ = try ArchiveExtraction.extract(archive: archive, into: box.dest, options: .anyLayout)
    }

    @Test("a gzip file padded with zeros after its trailer still passes the CRC check")
    func acceptsPaddedGzip() throws {
        let box = try Sandbox()
        var tar = TarBuilder()
        tar.file("m/x.txt", text: "padded")
        let archive = try box.write("padded.tar.gz", tar.archive, compression: .gzip)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: archive))
        handle.seekToEndOfFile()
        handle.write(Data(count: 4096))
        try handle.close()
        _ = try ArchiveExtraction.extract(archive: archive, into: box.dest, options: .anyLayout)
    }

    @Test("removes staging folders left by killed runs")
    func removesAbandonedStaging() throws {
        let box = try Sandbox()
        var pid: Int32 = 4_000_000
        while kill(pid, 0) == 0 || errno != ESRCH { pid -= 1 }
        let leftover = box.dest + "/\(AtomicOutput.temporaryPrefix)\(pid)-abcdef"
        try FileManager.default.createDirectory(atPath: leftover + "/half", withIntermediateDirectories: true)
        let result = try ArchiveExtraction.extract(archive: ArchiveFixtures.tinyPixArtTar, into: box.dest, options: .pixArt)
        #expect(result.removedLeftovers == ["\(AtomicOutput.temporaryPrefix)\(pid)-abcdef"])
        #expect(!FileManager.default.fileExists(atPath: leftover))
    }

    @Test("reads the top-level folder name from the first entry")
    func readsTopLevelName() throws {
        #expect(try ArchiveExtraction.topLevelName(of: ArchiveFixtures.tinyPixArtTar) == "tiny-pixart")
    }

    @Test("long names (GNU long-name entries) and 8 GiB+ size fields are written and read")
    func longNames() throws {
        let box = try Sandbox()
        var tar = TarBuilder()
        let deep = "m/" + String(repeating: "d", count: 120) + "/" + String(repeating: "f", count: 130) + ".txt"
        tar.file(deep, text: "deep")
        let archive = try box.write("long.tar", tar.archive)
        let result = try ArchiveExtraction.extract(archive: archive, into: box.dest, options: .anyLayout)
        #expect(result.files.map(\.path) == [String(deep.dropFirst(2))])
        let big = TarFormat.header(name: "m/big", type: .file, size: 9 << 30)
        #expect(big[124] == 0x80, "base-256 size field")
    }
}
