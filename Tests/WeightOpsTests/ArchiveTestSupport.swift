import Foundation
import Testing
import Bench
import Safetensors
@testable import WeightOps
import TestSupport

/// Finds fixtures/ea-tiny from this file's location.
enum ArchiveFixtures {
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return url
    }()
    static let eaTiny = packageRoot.appendingPathComponent("fixtures/ea-tiny").path
    static let tinyPixArtTar = eaTiny + "/tiny-pixart.tar"
    static let tinyPixArtFolder = eaTiny + "/tiny-pixart"
}

/// A fresh temporary folder per test, removed at the end: `root/` holds `dest/` (the extraction target) with a
/// `canary/` folder beside where the model folder goes, and `root/outside.txt`; hostile archives aim at both.
final class Sandbox {
    let root: String
    var dest: String { root + "/dest" }
    var canaryFile: String { dest + "/canary/keep.txt" }
    var outsideFile: String { root + "/outside.txt" }
    static let canaryText = "canary: must never change\n"

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ea-archive-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dest + "/canary", withIntermediateDirectories: true)
        try Self.canaryText.write(toFile: canaryFile, atomically: false, encoding: .utf8)
        try Self.canaryText.write(toFile: outsideFile, atomically: false, encoding: .utf8)
    }

    deinit { AtomicOutput.removeTree(root) }

    func path(_ name: String) -> String { root + "/" + name }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func write(_ name: String, _ bytes: [UInt8], compression: ArchiveCompression) throws -> String {
        let p = path(name)
        let writer = try CompressedFileWriter(path: p, compression: compression)
        try writer.write(bytes)
        try writer.finish()
        return p
    }

    /// Everything under root, as relative paths (sorted), for "nothing else was touched" checks.
    func listing() -> [String] {
        (FileManager.default.subpaths(atPath: root) ?? []).sorted()
    }

    /// The canary and the file outside are unchanged, and dest holds nothing but the canary.
    func expectUntouched(sourceLocation: SourceLocation = #_sourceLocation) {
        #expect((try? String(contentsOfFile: canaryFile, encoding: .utf8)) == Self.canaryText, sourceLocation: sourceLocation)
        #expect((try? String(contentsOfFile: outsideFile, encoding: .utf8)) == Self.canaryText, sourceLocation: sourceLocation)
        let inDest = (try? FileManager.default.contentsOfDirectory(atPath: dest)) ?? []
        #expect(inDest == ["canary"], "dest holds \(inDest)", sourceLocation: sourceLocation)
        let canaryFolder = (try? FileManager.default.contentsOfDirectory(atPath: dest + "/canary")) ?? []
        #expect(canaryFolder == ["keep.txt"], sourceLocation: sourceLocation)
        let atRoot = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { !$0.hasSuffix(".tar") && !$0.contains(".tar.") && !$0.hasSuffix(".bin") }
        #expect(atRoot.sorted() == ["dest", "outside.txt"], "root holds \(atRoot)", sourceLocation: sourceLocation)
    }
}

/// Builds tar bytes entry by entry, including entries no honest archiver writes.
struct TarBuilder {
    private(set) var bytes: [UInt8] = []

    mutating func directory(_ name: String, mode: UInt32 = 0o755) {
        bytes += TarFormat.header(name: name, type: .directory, mode: mode)
    }

    mutating func file(_ name: String, _ data: [UInt8], mode: UInt32 = 0o644) {
        bytes += TarFormat.header(name: name, type: .file, size: Int64(data.count), mode: mode)
        bytes += data
        bytes += [UInt8](repeating: 0, count: TarFormat.padding(forSize: Int64(data.count)))
    }

    mutating func file(_ name: String, text: String, mode: UInt32 = 0o644) {
        file(name, Array(text.utf8), mode: mode)
    }

    mutating func symlink(_ name: String, to target: String) {
        bytes += TarFormat.header(name: name, type: .symlink, mode: 0o777, linkName: target)
    }

    mutating func hardlink(_ name: String, to target: String) {
        bytes += TarFormat.header(name: name, type: .hardlink, linkName: target)
    }

    mutating func special(_ name: String, type: TarFormat.EntryType) {
        bytes += TarFormat.header(name: name, type: type, mode: 0o666)
    }

    mutating func end() {
        bytes += TarFormat.endOfArchive
    }

    /// The bytes with the end-of-archive blocks.
    var archive: [UInt8] { bytes + TarFormat.endOfArchive }
}

extension ArchiveExtractionOptions {
    /// Options for archives that are not PixArt folders.
    static var anyLayout: ArchiveExtractionOptions {
        var options = ArchiveExtractionOptions()
        options.requirePixArtFolder = false
        options.isCancelled = { false }
        return options
    }

    static var pixArt: ArchiveExtractionOptions {
        var options = ArchiveExtractionOptions()
        options.isCancelled = { false }
        return options
    }
}

/// Runs an extraction expected to fail and returns the error it threw.
func extractionError(
    _ archive: String, into dest: String, options: ArchiveExtractionOptions = .anyLayout
) -> ArchiveError? {
    do {
        _ = try ArchiveExtraction.extract(archive: archive, into: dest, options: options)
        return nil
    } catch let error as ArchiveError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

extension ArchiveCompression {
    var fileExtension: String {
        switch self {
        case .none: return ".tar"
        case .gzip: return ".tar.gz"
        case .zstd: return ".tar.zst"
        case .xz: return ".tar.xz"
        }
    }
}
