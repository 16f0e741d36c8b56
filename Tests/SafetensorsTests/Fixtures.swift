import Foundation
import Safetensors

/// Paths of the bundled fixtures, found from this file's location, and scratch folders for tests.
enum Fixtures {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let eaTiny = packageRoot.appendingPathComponent("fixtures/ea-tiny").path
    /// Files written by safetensors' own serializer (see make_reference.py there).
    static let reference = packageRoot.appendingPathComponent("fixtures/safetensors-reference").path
    /// The sharded (index + 3 files) bf16 T5 encoder written by transformers 4.37.
    static let textEncoder = eaTiny + "/tiny-pixart/text_encoder"

    /// Every .safetensors file under fixtures/ea-tiny (found by walking, so nothing depends on their names).
    static func allEaTinyFiles() -> [String] {
        let root = URL(fileURLWithPath: eaTiny)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        return walker.compactMap { ($0 as? URL)?.path }.filter { $0.hasSuffix(".safetensors") }.sorted()
    }
}

/// A fresh folder under the system temporary folder, removed when the test is done with it.
func withTemporaryFolder<R>(_ body: (String) throws -> R) throws -> R {
    let folder = FileManager.default.temporaryDirectory
        .appendingPathComponent("ea-weights-safetensors-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    return try body(folder)
}

func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func folderContents(_ folder: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
}

/// An 8-byte little-endian length (the header's own unless `declaredLength` is given), the header, the data.
func safetensorsBytes(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    safetensorsBytes(Array(header.utf8), data: data, declaredLength: declaredLength)
}

func safetensorsBytes(_ header: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    var out: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(header.count)).littleEndian) { out.append(contentsOf: $0) }
    return out + header + data
}

/// Parses bytes as a whole file would be.
func parseHeader(_ bytes: [UInt8], path: String = "test.safetensors") throws -> Header {
    try bytes.withUnsafeBytes { try Header.parse(prefix: $0, fileSize: bytes.count, path: path) }
}

extension SafetensorsError {
    /// The case's name, to assert which rule a file broke.
    var kind: String {
        Mirror(reflecting: self).children.first?.label ?? String(describing: self)
    }
}

/// The error parsing `bytes` gives, or nil when it is accepted.
func headerError(_ bytes: [UInt8]) -> SafetensorsError? {
    do {
        _ = try parseHeader(bytes)
        return nil
    } catch let error as SafetensorsError {
        return error
    } catch {
        return .invalidJSON(path: "unexpected error type", reason: "\(error)")
    }
}
