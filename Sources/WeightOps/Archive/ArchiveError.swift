/// Everything that can go wrong reading a model archive or extracting it. Each case names the archive (and the
/// entry where there is one) and reads as one sentence a user can act on.
public enum ArchiveError: Error, CustomStringConvertible, Sendable, Equatable {
    case cannotOpen(path: String, reason: String)
    case emptyFile(path: String)
    /// A failed download saved under the archive's name (a Git LFS pointer, an HTML or other text page).
    case notAnArchive(path: String, what: String)
    case unsupportedFormat(path: String, format: String)
    case corrupt(path: String, entry: String?, reason: String)
    case checksumMismatch(path: String, format: String)
    case truncated(path: String, afterEntry: String?)
    case unsafeEntry(path: String, entry: String, reason: String)
    case unsupportedEntryType(path: String, entry: String, type: String)
    case duplicateEntry(path: String, entry: String)
    case notAFolder(path: String, entry: String, blocker: String)
    case layout(path: String, reason: String)
    case tooManyEntries(path: String, limit: Int)
    case decompressionBomb(path: String, outputBytes: Int64, inputBytes: Int64, limit: Double)
    case invalidName(name: String, reason: String)
    case destinationExists(path: String)
    case notEnoughSpace(path: String, needed: Int64, available: Int64)
    case writeFailed(path: String, reason: String)
    case invalidModelFile(path: String, entry: String, reason: String)
    case notPixArtFolder(path: String, problems: [String])
    case cancelled(path: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "\(path): cannot open: \(reason)"
        case let .emptyFile(path):
            return "\(path): the file is empty (a failed download?); download the archive again"
        case let .notAnArchive(path, what):
            return "\(path): not an archive but \(what); download the real file again"
        case let .unsupportedFormat(path, format):
            return "\(path): \(format) is not supported; ea-weights reads .tar, .tar.gz, .tar.zst and .tar.xz"
        case let .corrupt(path, entry, reason):
            let at = entry.map { " at entry '\($0)'" } ?? ""
            return "\(path): the archive is corrupt\(at): \(reason); download it again"
        case let .checksumMismatch(path, format):
            return "\(path): the \(format) checksum does not match the data (corrupt download, or a multi-member \(format) file, which is not supported); download it again"
        case let .truncated(path, afterEntry):
            let after = afterEntry.map { " after entry '\($0)'" } ?? ""
            return "\(path): the archive is truncated\(after) (it has no end-of-archive marker); the download is incomplete"
        case let .unsafeEntry(path, entry, reason):
            return "\(path): refusing entry '\(entry)': \(reason)"
        case let .unsupportedEntryType(path, entry, type):
            return "\(path): refusing entry '\(entry)': \(type) do not belong in a model archive"
        case let .duplicateEntry(path, entry):
            return "\(path): entry '\(entry)' appears twice; the archive is corrupt or crafted"
        case let .notAFolder(path, entry, blocker):
            return "\(path): entry '\(entry)' needs '\(blocker)' to be a folder, but the archive made it a file"
        case let .layout(path, reason):
            return "\(path): \(reason); a model archive holds exactly one top-level folder"
        case let .tooManyEntries(path, limit):
            return "\(path): more than \(limit) entries, far more than any model archive holds"
        case let .decompressionBomb(path, output, input, limit):
            return "\(path): \(output) bytes decompressed from \(input), a ratio above the \(Int(limit))x any model archive reaches (a decompression bomb?)"
        case let .invalidName(name, reason):
            return "'\(name)' cannot be a folder name: \(reason)"
        case let .destinationExists(path):
            return "\(path) already exists; remove it or choose another name with --name"
        case let .notEnoughSpace(path, needed, available):
            return "\(path): needs at least \(needed) bytes but only \(available) are free"
        case let .writeFailed(path, reason):
            return "\(path): write failed: \(reason)"
        case let .invalidModelFile(path, entry, reason):
            return "\(path): '\(entry)' is not a valid model file: \(reason)"
        case let .notPixArtFolder(path, problems):
            return "\(path): not a PixArt diffusers folder: \(problems.joined(separator: "; "))"
        case let .cancelled(path):
            return "\(path): interrupted; nothing was left behind"
        }
    }
}
