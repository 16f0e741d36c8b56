#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArchive
import Foundation
import Safetensors

// The only user of libarchive. Two libarchive readers are chained: the outer one only decompresses (raw format,
// gzip/zstd/xz or nothing), the inner one parses tar from the outer one's output. Owning the byte stream between
// them lets the extractor see what libarchive alone would accept silently: a gzip CRC that does not match (it
// never checks it), a tar cut cleanly between two entries (no end-of-archive blocks), the data after the tar's end
// that must still be decompressed for the CRC to be checked, and the compression ratio.

/// The compression around a tar archive, recognised from its first bytes (never from the file name).
public enum ArchiveCompression: String, Sendable, Codable, CaseIterable {
    case none
    case gzip
    case zstd
    case xz
}

/// How to extract a model archive.
public struct ArchiveExtractionOptions: Sendable {
    /// The folder name in the destination; nil keeps the archive's own top-level folder name.
    public var name: String?
    /// Require the result to be a PixArt diffusers folder (model_index.json, transformer, vae, text_encoder,
    /// tokenizer, scheduler); when false only the weight files are validated.
    public var requirePixArtFolder = true
    /// Decompressed bytes per compressed byte beyond which the archive is refused as a decompression bomb.
    /// Model weights hardly compress (≈1.1x); text files reach ≈10x.
    public var maxCompressionRatio: Double = 50
    /// The ratio is judged only past this much output, so small archives of text files are never refused.
    public var ratioCheckStartBytes: Int64 = 1 << 30
    /// Decompressed bytes allowed before the first entry header is parsed (pax and long-name headers included):
    /// a stream that holds no tar header this early is not an archive, and memory stays bounded whatever it holds.
    public var maxBytesBeforeFirstHeader: Int64 = 64 << 20
    /// More entries than any model archive has (PixArt-XL-2-512x512.tar has about 20).
    public var maxEntries = 100_000
    public var progress: TerminalProgress = .silent
    /// Polled between blocks; returning true abandons the extraction and removes everything it wrote.
    public var isCancelled: @Sendable () -> Bool = { Interruption.isRequested }

    public init() {}
}

/// One regular file written by an extraction (hard links included), relative to the model folder.
public struct ExtractedFile: Sendable, Equatable {
    public let path: String
    public let digest: FileDigest
}

/// What an extraction produced.
public struct ArchiveExtractionResult: Sendable {
    public let archive: String
    /// The model folder, at its final location.
    public let folder: String
    public let compression: ArchiveCompression
    /// Every regular file, sorted by path, with the size and SHA-256 computed while writing it.
    public let files: [ExtractedFile]
    public let archiveBytes: Int64
    public let extractedBytes: Int64
    /// Leftover staging folders of killed runs that were removed first.
    public let removedLeftovers: [String]
}

public enum ArchiveExtraction {
    /// Extracts the model archive at `archive` into `directory/<its top-level folder>` (or `options.name`), which
    /// must not exist. The archive is read once, as a stream; files are written to a staging folder beside the
    /// destination and hashed as they are written; the staging folder is renamed into place only when the whole
    /// archive was read, every entry judged safe, the stream checked to its end and the weights validated.
    /// On any error (or cancellation) nothing is left behind.
    public static func extract(
        archive: String, into directory: String, options: ArchiveExtractionOptions = ArchiveExtractionOptions()
    ) throws -> ArchiveExtractionResult {
        if let name = options.name { try validateFolderName(name) }
        let input = try ArchiveInput(path: archive)
        try FolderCreation.createDirectories(directory)
        let claim = try FolderLock(directory)
        defer { withExtendedLifetime(claim) {} }
        try input.checkFreeSpace(in: directory)
        let leftovers = AtomicOutput.removeAbandoned(in: directory)
        let staging = try AtomicOutput.Folder(in: directory, for: options.name ?? "extract")
        let extractor = ArchiveExtractor(input: input, directory: directory, staging: staging, options: options)
        return try extractor.run(removedLeftovers: leftovers)
    }

    /// Reads only the first entry header and returns the archive's top-level folder name (for planning, e.g. to
    /// see whether `prepare` already extracted it). Validates the archive's first bytes like `extract`.
    public static func topLevelName(of archive: String) throws -> String {
        let input = try ArchiveInput(path: archive)
        let reader = try TarReader(input: input, options: ArchiveExtractionOptions())
        var policy = ArchiveEntryPolicy(archive: archive)
        while let entry = try reader.nextEntry() {
            _ = try policy.admit(name: entry.name, type: entry.type)
            if let top = policy.topName { return top }
        }
        throw ArchiveError.layout(path: archive, reason: "it holds no entries")
    }

    static func validateFolderName(_ name: String) throws {
        if name.isEmpty { throw ArchiveError.invalidName(name: name, reason: "it is empty") }
        if name == "." || name == ".." { throw ArchiveError.invalidName(name: name, reason: "it names a folder link") }
        if name.contains("/") { throw ArchiveError.invalidName(name: name, reason: "it contains '/'") }
        if name.utf8.contains(0) { throw ArchiveError.invalidName(name: name, reason: "it contains a NUL byte") }
        if AtomicOutput.isTemporaryName(name) {
            throw ArchiveError.invalidName(name: name, reason: "it is reserved for temporary outputs")
        }
    }
}

/// `mkdir -p`.
enum FolderCreation {
    static func createDirectories(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ArchiveError.writeFailed(path: path, reason: "cannot create the folder: \(error.localizedDescription)")
        }
    }
}
