#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Safetensors

/// `models/manifest.json`: every file `prepare` placed, with its kind, size and SHA-256, so `verify` can prove
/// later that nothing changed.
///
///     {
///       "ea_weights_version" : "0.1.0",
///       "files" : [
///         { "kind" : "motion-module", "path" : "Motion_Module/easyanimate_v1_mm.safetensors",
///           "sha256" : "…", "size" : 4100000000 }, …
///       ],
///       "format" : 1
///     }
public struct Manifest: Codable, Sendable, Equatable {
    public static let currentFormat = 1

    public struct Entry: Codable, Sendable, Equatable {
        /// Relative to the models folder, with `/` separators.
        public var path: String
        /// A `ModelKind` raw value for weights, else `safetensors-index`, `config`, `tokenizer` or `other`.
        public var kind: String
        public var size: Int64
        public var sha256: String

        public init(path: String, kind: String, size: Int64, sha256: String) {
            self.path = path
            self.kind = kind
            self.size = size
            self.sha256 = sha256
        }
    }

    public var format: Int
    /// The ea-weights version that wrote the manifest.
    public var eaWeightsVersion: String
    /// Sorted by path.
    public var files: [Entry]

    enum CodingKeys: String, CodingKey {
        case format
        case eaWeightsVersion = "ea_weights_version"
        case files
    }

    public init(eaWeightsVersion: String, files: [Entry]) {
        format = Self.currentFormat
        self.eaWeightsVersion = eaWeightsVersion
        self.files = files.sorted { $0.path < $1.path }
    }

    public func entry(_ path: String) -> Entry? {
        files.first { $0.path == path }
    }

    public static func path(in models: String) -> String { models + "/" + ModelsLayout.manifest }

    /// The manifest of `models`, or nil when there is none.
    public static func read(models: String) throws -> Manifest? {
        let path = Self.path(in: models)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = SmallFile.contents(atPath: path) else {
            throw ModelsError.cannotRead(path: path, reason: "unreadable")
        }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: Data(data))
        } catch {
            throw ModelsError.invalidManifest(path: path, reason: "not the JSON ea-weights writes (\(Self.describe(error)))")
        }
        guard manifest.format <= currentFormat else {
            throw ModelsError.invalidManifest(
                path: path, reason: "format \(manifest.format) is newer than this ea-weights reads (\(currentFormat))")
        }
        var seen = Set<String>()
        for entry in manifest.files {
            let parts = entry.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !entry.path.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw ModelsError.invalidManifest(path: path, reason: "'\(entry.path)' is not a path inside the models folder")
            }
            guard seen.insert(entry.path).inserted else {
                throw ModelsError.invalidManifest(path: path, reason: "'\(entry.path)' is listed twice")
            }
        }
        return manifest
    }

    /// Writes the manifest atomically: a temporary file beside it, flushed, then renamed over the old one.
    public func write(models: String) throws {
        let path = Self.path(in: models)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(self) + Data("\n".utf8)
        try AtomicOutput.writeFile(Array(data), to: path)
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, _): return "missing \"\(key.stringValue)\""
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted: return "invalid JSON"
        default: return "\(error)"
        }
    }
}
