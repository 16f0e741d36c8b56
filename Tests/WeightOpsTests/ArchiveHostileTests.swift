import Foundation
import Testing
import Bench
import Safetensors
@testable import WeightOps
import TestSupport

/// A corpus of hostile and broken archives. Every one must be refused with an error naming the cause, and leave
/// the canary folder beside the destination, the file outside it and the destination itself exactly as they were.
@Suite("Archive extraction refuses hostile and broken archives")
struct ArchiveHostileTests {
    /// Extracts `tar` (compressed as asked) and returns the error, after checking nothing was touched.
    static func refuse(
        _ tar: [UInt8], compression: ArchiveCompression = .none, options: ArchiveExtractionOptions = .anyLayout,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> ArchiveError? {
        let box = try Sandbox()
        let archive = try box.write("hostile" + compression.fileExtension, tar, compression: compression)
        let error = extractionError(archive, into: box.dest, options: options)
        #expect(error != nil, "the archive was accepted", sourceLocation: sourceLocation)
        box.expectUntouched(sourceLocation: sourceLocation)
        if let error {
            #expect(!error.description.isEmpty)
            #expect(error.description.contains(archive), "names the archive: \(error)", sourceLocation: sourceLocation)
        }
        return error
    }

    static func tar(_ build: (inout TarBuilder) -> Void) -> [UInt8] {
        var builder = TarBuilder()
        build(&builder)
        return builder.archive
    }

    static func isUnsafe(_ error: ArchiveError?, entry: String) -> Bool {
        if case let .unsafeEntry(_, e, _)? = error { return e == entry }
        return false
    }

    // MARK: names

    @Test("refuses absolute entry names")
    func absolutePath() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.file("/tmp/ea-weights-absolute-\(UUID().uuidString)", text: "pwned")
        })
        guard case let .unsafeEntry(_, entry, reason)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(entry.hasPrefix("/tmp/ea-weights-absolute-"))
        #expect(reason.contains("absolute"))
    }

    @Test("refuses '..' in entry names", arguments: ["../outside.txt", "m/../../outside.txt", "m/sub/../../../x"])
    func traversal(_ name: String) throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.file(name, text: "pwned")
        })
        #expect(Self.isUnsafe(error, entry: name), "\(String(describing: error))")
    }

    // MARK: links

    @Test("refuses symbolic links that point outside the folder", arguments: [
        "../canary/keep.txt", "../../outside.txt", "/etc/passwd", "sub/../../x", "", "./../canary",
    ])
    func escapingSymlink(_ target: String) throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.directory("m/sub/")
            $0.symlink("m/link", to: target)
            $0.file("m/data.txt", text: "d")
        })
        #expect(Self.isUnsafe(error, entry: "m/link"), "\(String(describing: error))")
    }

    @Test("refuses a symbolic link to the folder's parent placed deeper down")
    func deepEscapingSymlink() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/a/b/")
            $0.symlink("m/a/b/link", to: "../../../canary")
        })
        #expect(Self.isUnsafe(error, entry: "m/a/b/link"))
    }

    @Test("refuses hard links to anything outside the folder or not extracted before", arguments: [
        "../dest/canary/keep.txt", "/etc/passwd", "other/file", "m/missing", "m/",
    ])
    func escapingHardlink(_ target: String) throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.hardlink("m/link", to: target)
        })
        #expect(error != nil)
        if case .unsafeEntry? = error {} else { Issue.record("got \(String(describing: error))") }
    }

    @Test("refuses writing through a symbolic link the archive made, even one pointing inside")
    func writeThroughLink() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.directory("m/real/")
            $0.symlink("m/alias", to: "real")
            $0.file("m/alias/x.txt", text: "through the link")
        })
        #expect(Self.isUnsafe(error, entry: "m/alias/x.txt"))
        #expect(error?.description.contains("symbolic link") == true)
    }

    @Test("refuses replacing a symbolic link with a file (the classic overwrite-through-link)")
    func replaceLink() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.symlink("m/x", to: "y")
            $0.file("m/x", text: "overwrite")
        })
        guard case let .duplicateEntry(_, entry)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(entry == "m/x")
    }

    // MARK: entry types

    @Test("refuses device nodes, FIFOs", arguments: [
        TarFormat.EntryType.characterDevice, .blockDevice, .fifo,
    ])
    func specialFiles(_ type: TarFormat.EntryType) throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.special("m/node", type: type)
        })
        guard case let .unsupportedEntryType(_, entry, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(entry == "m/node")
    }

    // MARK: structure

    @Test("refuses the same path twice")
    func duplicates() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.file("m/a.txt", text: "first")
            $0.file("m/a.txt", text: "second")
        })
        guard case let .duplicateEntry(_, entry)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(entry == "m/a.txt")
    }

    @Test("refuses a folder listed twice")
    func duplicateFolder() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.directory("m/sub/")
            $0.directory("m/sub/")
        })
        guard case .duplicateEntry? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test("refuses a file where a folder must be")
    func fileWhereFolderMustBe() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.file("m/a", text: "file")
            $0.file("m/a/b", text: "under a file")
        })
        guard case let .notAFolder(_, entry, blocker)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(entry == "m/a/b" && blocker == "m/a")
    }

    @Test("refuses several top-level folders, files beside the folder, a file as the top level")
    func topLevel() throws {
        let several = try Self.refuse(Self.tar {
            $0.file("a/x", text: "x")
            $0.file("b/y", text: "y")
        })
        guard case .layout? = several else { Issue.record("got \(String(describing: several))"); return }
        #expect(several?.description.contains("'a'") == true && several?.description.contains("'b'") == true)
        let beside = try Self.refuse(Self.tar {
            $0.file("m/x", text: "x")
            $0.file("README", text: "beside")
        })
        guard case .layout? = beside else { Issue.record("got \(String(describing: beside))"); return }
        let single = try Self.refuse(Self.tar { $0.file("model.safetensors", text: "x") })
        guard case .layout? = single else { Issue.record("got \(String(describing: single))"); return }
    }

    @Test("refuses empty archives: no entries, only folders, a zero-byte file")
    func empty() throws {
        let none = try Self.refuse(TarFormat.endOfArchive + [UInt8](repeating: 0, count: 9216))
        #expect(none != nil)
        let folders = try Self.refuse(Self.tar { $0.directory("m/"); $0.directory("m/a/") })
        guard case .layout? = folders else { Issue.record("got \(String(describing: folders))"); return }
        let box = try Sandbox()
        let zero = try box.write("zero.tar", [])
        #expect(extractionError(zero, into: box.dest) == .emptyFile(path: zero))
        box.expectUntouched()
    }

    @Test("refuses more entries than the limit")
    func tooManyEntries() throws {
        var options = ArchiveExtractionOptions.anyLayout
        options.maxEntries = 10
        let error = try Self.refuse(Self.tar { tar in
            tar.directory("m/")
            for i in 0..<20 { tar.file("m/f\(i)", text: "\(i)") }
        }, options: options)
        guard case .tooManyEntries? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    // MARK: damage

    static let sample: [UInt8] = tar {
        $0.directory("m/")
        $0.file("m/a.bin", [UInt8](repeating: 7, count: 3000))
        $0.file("m/b.bin", [UInt8](repeating: 9, count: 1000))
    }

    @Test("refuses an archive truncated inside an entry's data")
    func truncatedInData() throws {
        let error = try Self.refuse(Array(Self.sample.prefix(512 * 3)))
        guard case let .corrupt(_, entry, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(entry == "m/a.bin")
    }

    @Test("refuses an archive cut cleanly between two entries (no end-of-archive blocks)", arguments: [
        ArchiveCompression.none, .gzip, .zstd, .xz,
    ])
    func truncatedBetweenEntries(_ compression: ArchiveCompression) throws {
        // Header + 3000 bytes padded to 3072 of the first file: the cut falls exactly before m/b.bin's header.
        let cut = Array(Self.sample.prefix(512 + 512 + 3072))
        let error = try Self.refuse(cut, compression: compression)
        guard case let .truncated(_, after)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(after == "m/a.bin")
        let atEnd = try Self.refuse(Array(Self.sample.dropLast(1024)), compression: compression)
        guard case .truncated? = atEnd else { Issue.record("got \(String(describing: atEnd))"); return }
    }

    @Test("refuses a header whose checksum is wrong")
    func corruptHeader() throws {
        var bytes = Self.sample
        bytes[512 + 10] ^= 0x55  // inside m/a.bin's name
        let error = try Self.refuse(bytes)
        guard case .corrupt? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test("refuses a gzip file whose CRC does not match")
    func badGzipCRC() throws {
        let box = try Sandbox()
        let archive = try box.write("crc.tar.gz", Self.sample, compression: .gzip)
        var data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: archive)))
        data[data.count - 8] ^= 0xFF
        try Data(data).write(to: URL(fileURLWithPath: archive))
        #expect(extractionError(archive, into: box.dest) == .checksumMismatch(path: archive, format: "gzip"))
        box.expectUntouched()
    }

    @Test("refuses a zstd file whose checksum does not match")
    func badZstdChecksum() throws {
        let box = try Sandbox()
        let archive = try box.write("sum.tar.zst", Self.sample, compression: .zstd)
        var data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: archive)))
        data[data.count - 2] ^= 0xFF  // the frame's content checksum
        try Data(data).write(to: URL(fileURLWithPath: archive))
        let error = extractionError(archive, into: box.dest)
        guard case .corrupt? = error else { Issue.record("got \(String(describing: error))"); return }
        box.expectUntouched()
    }

    @Test("refuses truncated compressed streams", arguments: [ArchiveCompression.gzip, .zstd, .xz])
    func truncatedCompressed(_ compression: ArchiveCompression) throws {
        let box = try Sandbox()
        let archive = try box.write("cut" + compression.fileExtension, Self.sample, compression: compression)
        let data = try Data(contentsOf: URL(fileURLWithPath: archive))
        try data.prefix(data.count - 12).write(to: URL(fileURLWithPath: archive))
        let error = extractionError(archive, into: box.dest)
        #expect(error != nil)
        box.expectUntouched()
    }

    @Test("refuses a decompression bomb")
    func bomb() throws {
        var options = ArchiveExtractionOptions.anyLayout
        options.ratioCheckStartBytes = 256 << 10
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.file("m/zeros.bin", [UInt8](repeating: 0, count: 4 << 20))
        }, compression: .gzip, options: options)
        guard case .decompressionBomb? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    // MARK: failed downloads

    @Test("names a Git LFS pointer, an HTML page, a JSON error and other text saved as the archive", arguments: [
        ("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 11400000000\n", "Git LFS"),
        ("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>", "HTML"),
        ("  <html><body>502 Bad Gateway</body></html>", "HTML"),
        ("{\"error\": \"Repository not found\"}", "JSON"),
        ("Access denied\n", "text"),
    ])
    func failedDownloads(_ content: String, _ what: String) throws {
        let box = try Sandbox()
        let archive = try box.write("PixArt-XL-2-512x512.tar", Array(content.utf8))
        let error = extractionError(archive, into: box.dest)
        guard case let .notAnArchive(_, description)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(description.contains(what))
        box.expectUntouched()
    }

    @Test("names other archive formats", arguments: [[UInt8(0x50), 0x4B, 0x03, 0x04], Array("BZh91AY&SY".utf8)])
    func otherFormats(_ magic: [UInt8]) throws {
        let box = try Sandbox()
        let archive = try box.write("x.tar", magic + [UInt8](repeating: 0, count: 600))
        let error = extractionError(archive, into: box.dest)
        guard case .unsupportedFormat? = error else { Issue.record("got \(String(describing: error))"); return }
        box.expectUntouched()
    }

    @Test("refuses binary garbage that is not a tar")
    func garbage() throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) } + [0]
        let error = try Self.refuse(bytes)
        #expect(error != nil)
    }

    // MARK: content

    @Test("refuses an archive whose safetensors file is invalid, naming it")
    func invalidSafetensors() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.file("m/transformer/diffusion_pytorch_model.safetensors", [16, 0, 0, 0, 0, 0, 0, 0] + Array("{\"a\":".utf8))
        })
        guard case let .invalidModelFile(_, entry, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(entry == "m/transformer/diffusion_pytorch_model.safetensors")
        #expect(error?.description.contains(AtomicOutput.temporaryPrefix) == false, "names the final path, not the staging one")
    }

    @Test("refuses an index naming a shard outside its folder")
    func hostileIndex() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.file("m/model.safetensors.index.json", text: "{\"weight_map\": {\"a\": \"../../outside.txt\"}}")
        })
        guard case .invalidModelFile? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test("refuses a folder that is not a PixArt diffusers folder, listing what is missing")
    func notPixArt() throws {
        let error = try Self.refuse(Self.tar {
            $0.directory("m/")
            $0.file("m/model_index.json", text: "{}")
            $0.file("m/vae/config.json", text: "{}")
        }, options: .pixArt)
        guard case let .notPixArtFolder(_, problems)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(problems.contains("transformer/ is missing"))
        #expect(problems.contains("vae/ has no diffusion_pytorch_model.safetensors (or its index)"))
        #expect(!problems.contains("vae/ is missing"))
    }

    // MARK: interruption

    @Test("an interrupted extraction leaves nothing behind")
    func interrupted() throws {
        final class Counter: @unchecked Sendable {
            var calls = 0
        }
        let counter = Counter()
        var options = ArchiveExtractionOptions.pixArt
        options.isCancelled = {
            counter.calls += 1
            return counter.calls > 2
        }
        let box = try Sandbox()
        let error = extractionError(ArchiveFixtures.tinyPixArtTar, into: box.dest, options: options)
        #expect(error == .cancelled(path: ArchiveFixtures.tinyPixArtTar))
        box.expectUntouched()
    }
}
