import Safetensors

/// One input of an operation as recorded in the output's `modelspec.merged_from` metadata.
public struct ProvenanceEntry: Sendable, Codable, Equatable {
    public var role: String
    public var file: String
    /// Lowercase hex; empty until the file is hashed.
    public var sha256: String
    public var multiplier: Double?

    public init(role: String, file: String, sha256: String = "", multiplier: Double? = nil) {
        self.role = role
        self.file = file
        self.sha256 = sha256
        self.multiplier = multiplier
    }

    public var json: JSONValue {
        var fields: [(String, JSONValue)] = [("role", .string(role)), ("file", .string(file)), ("sha256", .string(sha256))]
        if let multiplier { fields.append(("multiplier", .number(multiplier))) }
        return .object(fields)
    }

    public static func metadataText(_ entries: [ProvenanceEntry]) -> String {
        JSONValue.array(entries.map(\.json)).compactText
    }
}

/// The provenance of an output whose inputs are being hashed on another core while it is written: reading
/// gigabytes of inputs first would delay the output by as long. The header goes out with `placeholderText`
/// (all-zero hashes of the same length) and is completed in place with `text()` once the data is written.
final class PendingProvenance: Sendable {
    private let inputs: [ProvenanceEntry]
    private let digests: BackgroundDigests

    /// Starts hashing each input's `path`.
    init(_ inputs: [(entry: ProvenanceEntry, path: String)]) {
        self.inputs = inputs.map(\.entry)
        digests = BackgroundDigests(paths: inputs.map(\.path))
    }

    var placeholderText: String { ProvenanceEntry.metadataText(filled(with: inputs.map { _ in String(repeating: "0", count: 64) })) }

    /// The entries with their hashes, once all are computed.
    func entries() throws -> [ProvenanceEntry] { filled(with: try digests.wait()) }

    func text() throws -> String { ProvenanceEntry.metadataText(try entries()) }

    /// Stops the hashing (the operation failed or was cancelled).
    func cancel() { digests.cancel() }

    private func filled(with hashes: [String]) -> [ProvenanceEntry] {
        zip(inputs, hashes).map { entry, hash in
            var entry = entry
            entry.sha256 = hash
            return entry
        }
    }
}
