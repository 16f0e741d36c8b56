#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArchive
import Foundation

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
        try input.checkFreeSpace(in: directory)
        let leftovers = StagingFolder.removeAbandoned(in: directory)
        let staging = try StagingFolder(in: directory)
        let extractor = Extractor(input: input, directory: directory, staging: staging, options: options)
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
        if name.hasPrefix(StagingFolder.prefix) {
            throw ArchiveError.invalidName(name: name, reason: "it is reserved for staging folders")
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

// MARK: - The archive file and what its first bytes say

/// The archive file, opened and recognised from its first bytes: the compression, or the failed download it is.
final class ArchiveInput {
    let path: String
    let fd: Int32
    let size: Int64
    let compression: ArchiveCompression

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ArchiveError.cannotOpen(path: path, reason: "not a regular file")
        }
        self.fd = fd
        size = Int64(st.st_size)
        guard size > 0 else {
            close(fd)
            throw ArchiveError.emptyFile(path: path)
        }
        var head = [UInt8](repeating: 0, count: Int(min(size, 4096)))
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n == head.count else {
            close(fd)
            throw ArchiveError.cannotOpen(path: path, reason: "cannot read its first bytes")
        }
        do {
            compression = try Self.recognise(head, size: size, path: path)
        } catch {
            close(fd)
            throw error
        }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
    }

    deinit { close(fd) }

    /// The compression from the magic bytes; failed downloads (Git LFS pointers, HTML and other text) and other
    /// archive formats are named.
    static func recognise(_ head: [UInt8], size: Int64, path: String) throws -> ArchiveCompression {
        func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }
        if starts([0x1F, 0x8B]) { return .gzip }
        if starts([0x28, 0xB5, 0x2F, 0xFD]) { return .zstd }
        if starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .xz }
        if head.count >= 262, Array(head[257..<262]) == Array("ustar".utf8) { return .none }
        if starts(Array("BZh".utf8)) { throw ArchiveError.unsupportedFormat(path: path, format: "bzip2 compression") }
        if starts([0x50, 0x4B, 0x03, 0x04]) { throw ArchiveError.unsupportedFormat(path: path, format: "a zip archive") }
        if starts([0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]) {
            throw ArchiveError.unsupportedFormat(path: path, format: "a 7-Zip archive")
        }
        if starts([0x04, 0x22, 0x4D, 0x18]) { throw ArchiveError.unsupportedFormat(path: path, format: "lz4 compression") }

        let text = String(decoding: head, as: UTF8.self)
        let trimmed = text.drop { $0 == "\u{FEFF}" || $0.isWhitespace }.lowercased()
        if trimmed.hasPrefix("version https://git-lfs.github.com/spec/") {
            throw ArchiveError.notAnArchive(
                path: path,
                what: "a Git LFS pointer (\(size) bytes): run `git lfs pull` in its repository or download the file itself")
        }
        for tag in ["<!doctype html", "<html", "<head", "<body", "<!--", "<?xml"] where trimmed.hasPrefix(tag) {
            throw ArchiveError.notAnArchive(path: path, what: "an HTML page (\(size) bytes), e.g. an error or login page")
        }
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
            throw ArchiveError.notAnArchive(path: path, what: "a JSON document (\(size) bytes), e.g. an error response")
        }
        let printable = head.filter { $0 == 9 || $0 == 10 || $0 == 13 || ($0 >= 32 && $0 != 127) }.count
        if !head.contains(0), printable * 10 >= head.count * 9 {
            let firstLine = trimmed.prefix { $0 != "\n" && $0 != "\r" }.prefix(60)
            throw ArchiveError.notAnArchive(path: path, what: "a text file (\(size) bytes) beginning '\(firstLine)'")
        }
        // Old tar headers have no magic; let the tar reader judge.
        return .none
    }

    /// Refuses early when the destination's filesystem cannot even hold the archive's own size.
    func checkFreeSpace(in directory: String) throws {
        var fs = statvfs()
        guard statvfs(directory, &fs) == 0 else { return }
        let available = Int64(fs.f_bavail).multipliedReportingOverflow(by: Int64(fs.f_frsize))
        guard !available.overflow else { return }
        if available.partialValue < size {
            throw ArchiveError.notEnoughSpace(path: directory, needed: size, available: available.partialValue)
        }
    }
}

// MARK: - libarchive: decompression and tar parsing

private let archiveEOF = ARCHIVE_EOF
private let archiveOK = ARCHIVE_OK

private enum FileType {
    static let mask: UInt32 = 0o170000
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
    static let character: UInt32 = 0o020000
    static let block: UInt32 = 0o060000
    static let fifo: UInt32 = 0o010000
    static let socket: UInt32 = 0o140000
}

private func archiveMessage(_ archive: OpaquePointer?) -> String? {
    guard let archive, let message = archive_error_string(archive) else { return nil }
    let text = String(cString: message)
    return text.isEmpty ? nil : text
}

/// The outer reader: the archive file's bytes, decompressed, as a stream of blocks. Keeps the CRC of gzip output
/// and watches the compression ratio, cancellation and progress on every block.
final class DecompressedStream {
    let input: ArchiveInput
    let options: ArchiveExtractionOptions
    private let archive: OpaquePointer
    private var crc: UInt = 0
    private(set) var produced: Int64 = 0
    private(set) var finished = false
    /// The reason the last read failed, kept here because libarchive only sees "-1" from the callback.
    var failure: Error?

    init(input: ArchiveInput, options: ArchiveExtractionOptions) throws {
        self.input = input
        self.options = options
        guard let archive = archive_read_new() else {
            throw ArchiveError.cannotOpen(path: input.path, reason: "libarchive could not allocate a reader")
        }
        self.archive = archive
        switch input.compression {
        case .none: break
        case .gzip: archive_read_support_filter_gzip(archive)
        case .zstd: archive_read_support_filter_zstd(archive)
        case .xz: archive_read_support_filter_xz(archive)
        }
        archive_read_support_format_raw(archive)
        guard lseek(input.fd, 0, SEEK_SET) == 0,
              archive_read_open_fd(archive, input.fd, 1 << 20) == archiveOK
        else {
            // deinit frees the reader.
            throw ArchiveError.corrupt(path: input.path, entry: nil, reason: archiveMessage(archive) ?? "cannot start reading")
        }
        // One filter for the compression plus the file itself: a second compression layer inside is refused.
        let expectedFilters: Int32 = input.compression == .none ? 1 : 2
        guard archive_filter_count(archive) == expectedFilters else {
            throw ArchiveError.unsupportedFormat(path: input.path, format: "an archive compressed twice")
        }
        var entry: OpaquePointer?
        let r = archive_read_next_header(archive, &entry)
        guard r == archiveOK else {
            throw ArchiveError.corrupt(path: input.path, entry: nil, reason: archiveMessage(archive) ?? "cannot decompress")
        }
    }

    deinit { archive_read_free(archive) }

    /// Compressed bytes read from the file so far.
    var consumed: Int64 { Int64(archive_filter_bytes(archive, -1)) }

    /// The next block of decompressed bytes: its length, 0 at the end of the stream, -1 on failure (see `failure`).
    func read(into buffer: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        if failure != nil { return -1 }
        if finished { return 0 }
        if options.isCancelled() {
            failure = ArchiveError.interrupted(path: input.path)
            return -1
        }
        var block: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        let r = archive_read_data_block(archive, &block, &size, &offset)
        if r == archiveEOF {
            finished = true
            return 0
        }
        guard r == archiveOK, let block else {
            let what = input.compression == .none ? "read error" : "\(input.compression.rawValue) data is truncated or corrupt"
            failure = ArchiveError.corrupt(path: input.path, entry: nil, reason: archiveMessage(archive) ?? what)
            return -1
        }
        if input.compression == .gzip {
            crc = crc32_z(crc, block.assumingMemoryBound(to: Bytef.self), size)
        }
        produced += Int64(size)
        let consumed = self.consumed
        if input.compression != .none, produced > options.ratioCheckStartBytes,
           Double(produced) > options.maxCompressionRatio * Double(max(consumed, 1)) {
            failure = ArchiveError.decompressionBomb(
                path: input.path, outputBytes: produced, inputBytes: consumed, limit: options.maxCompressionRatio)
            return -1
        }
        options.progress.update(consumed)
        buffer.pointee = block
        return size
    }

    /// Reads what the tar reader left (end-of-archive padding) so the decompressor reaches the end of the stream and
    /// its checks run; then compares a gzip member's CRC-32 and length with its trailer.
    func drain() throws {
        var scratch: UnsafeRawPointer?
        while true {
            let n = read(into: &scratch)
            if n < 0 { throw failure ?? ArchiveError.corrupt(path: input.path, entry: nil, reason: "read error") }
            if n == 0 { break }
        }
        guard input.compression == .gzip else { return }
        // The decompressor stops consuming right after the member's 8-byte trailer (padding may follow).
        let trailerEnd = consumed
        var trailer = [UInt8](repeating: 0, count: 8)
        let n = trailerEnd < 8 ? -1 : trailer.withUnsafeMutableBytes { pread(input.fd, $0.baseAddress, 8, off_t(trailerEnd - 8)) }
        guard n == 8 else { throw ArchiveError.checksumMismatch(path: input.path, format: "gzip") }
        let storedCRC = trailer[0..<4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let storedSize = trailer[4..<8].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard storedCRC == UInt32(truncatingIfNeeded: crc), storedSize == UInt32(truncatingIfNeeded: produced) else {
            throw ArchiveError.checksumMismatch(path: input.path, format: "gzip")
        }
    }
}

/// One tar entry's header, as the extractor needs it.
struct TarEntry {
    let name: String
    let type: ArchiveEntryType
    let permissions: UInt32
    let size: Int64?
    let modificationTime: (seconds: Int, nanoseconds: Int)?
}

/// The inner reader: tar entries parsed from the decompressed stream, with their data as blocks.
final class TarReader {
    let stream: DecompressedStream
    private let archive: OpaquePointer
    private var current: OpaquePointer?
    private(set) var lastEntry: String?

    init(input: ArchiveInput, options: ArchiveExtractionOptions) throws {
        stream = try DecompressedStream(input: input, options: options)
        guard let archive = archive_read_new() else {
            throw ArchiveError.cannotOpen(path: input.path, reason: "libarchive could not allocate a reader")
        }
        self.archive = archive
        archive_read_support_format_tar(archive)
        let context = Unmanaged.passUnretained(stream).toOpaque()
        let opened = archive_read_open(archive, context, nil, { _, clientData, buffer in
            guard let clientData, let buffer else { return -1 }
            return Unmanaged<DecompressedStream>.fromOpaque(clientData).takeUnretainedValue().read(into: buffer)
        }, nil)
        guard opened == archiveOK else {
            if let failure = stream.failure { throw failure }
            if archive_format(archive) == 0 { throw Self.notTar(input) }
            throw ArchiveError.corrupt(path: input.path, entry: nil, reason: archiveMessage(archive) ?? "cannot start reading")
        }
    }

    deinit { archive_read_free(archive) }

    private var path: String { stream.input.path }

    /// The next entry, or nil at a proper end of archive. A stream that ends without the end-of-archive blocks is
    /// truncated, even though libarchive accepts it.
    func nextEntry() throws -> TarEntry? {
        var entry: OpaquePointer?
        let r = archive_read_next_header(archive, &entry)
        if r == archiveEOF {
            // The end marker is one or two 512-byte zero blocks after the last entry's data; libarchive consumed
            // them when present, so the position moved past where the next header would have started.
            let end = Int64(archive_filter_bytes(archive, 0))
            let nextHeader = Int64(archive_read_header_position(archive))
            guard end - nextHeader >= 512 else { throw ArchiveError.truncated(path: path, afterEntry: lastEntry) }
            return nil
        }
        if let failure = stream.failure { throw failure }
        guard r == archiveOK, let entry else {
            if archive_format(archive) == 0 { throw Self.notTar(stream.input) }
            let reason = archiveMessage(archive) ?? "unreadable entry header"
            let which = lastEntry.map { "the header after entry '\($0)'" } ?? "the first header"
            throw ArchiveError.corrupt(path: path, entry: nil, reason: "\(which) is damaged (\(reason))")
        }
        current = entry
        let name = Self.text(archive_entry_pathname_utf8(entry)) ?? Self.text(archive_entry_pathname(entry))
        guard let name else {
            let which = lastEntry.map { "the entry after '\($0)'" } ?? "the first entry"
            throw ArchiveError.corrupt(path: path, entry: nil, reason: "\(which) has no name")
        }
        lastEntry = name

        let type: ArchiveEntryType
        if let target = Self.text(archive_entry_hardlink_utf8(entry)) ?? Self.text(archive_entry_hardlink(entry)) {
            type = .hardlink(target: target)
        } else {
            switch UInt32(archive_entry_filetype(entry)) & FileType.mask {
            case FileType.regular:
                type = archive_entry_sparse_count(entry) > 0 ? .unsupported("sparse files") : .file
            case FileType.directory: type = .directory
            case FileType.symlink:
                type = .symlink(target: Self.text(archive_entry_symlink_utf8(entry)) ?? Self.text(archive_entry_symlink(entry)) ?? "")
            case FileType.character: type = .unsupported("character devices")
            case FileType.block: type = .unsupported("block devices")
            case FileType.fifo: type = .unsupported("FIFOs (named pipes)")
            case FileType.socket: type = .unsupported("sockets")
            default: type = .unsupported("entries of unknown type")
            }
        }
        let size: Int64? = archive_entry_size_is_set(entry) != 0 ? Int64(archive_entry_size(entry)) : nil
        let mtime: (Int, Int)? = archive_entry_mtime_is_set(entry) != 0
            ? (Int(archive_entry_mtime(entry)), Int(archive_entry_mtime_nsec(entry))) : nil
        return TarEntry(
            name: name, type: type, permissions: UInt32(archive_entry_perm(entry)), size: size, modificationTime: mtime)
    }

    /// Calls `body` with each block of the current entry's data, in order.
    func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var written: Int64 = 0
        while true {
            var block: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let r = archive_read_data_block(archive, &block, &size, &offset)
            if r == archiveEOF { return }
            if let failure = stream.failure { throw failure }
            guard r == archiveOK else {
                let reason = archiveMessage(archive) ?? "unreadable data"
                throw ArchiveError.corrupt(path: path, entry: lastEntry, reason: reason)
            }
            guard Int64(offset) == written else {
                throw ArchiveError.corrupt(path: path, entry: lastEntry, reason: "its data has holes")
            }
            try body(UnsafeRawBufferPointer(start: block, count: size))
            written += Int64(size)
        }
    }

    /// Decompresses the rest of the stream (after the tar's end) so its checksums are verified.
    func finish() throws {
        try stream.drain()
    }

    private static func notTar(_ input: ArchiveInput) -> ArchiveError {
        if input.compression == .none {
            return ArchiveError.unsupportedFormat(path: input.path, format: "this file format (it is not a tar archive)")
        }
        return ArchiveError.unsupportedFormat(
            path: input.path, format: "a \(input.compression.rawValue) file that does not hold a tar archive")
    }

    private static func text(_ pointer: UnsafePointer<CChar>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }
}

// MARK: - Writing entries

/// One extraction run: reads every entry, judges it, writes it under the staging folder, validates, commits.
private final class Extractor {
    let input: ArchiveInput
    let directory: String
    let staging: StagingFolder
    let options: ArchiveExtractionOptions
    private var policy: ArchiveEntryPolicy
    private var folders: [String] = []
    private var files: [String: FileDigest] = [:]
    private var extractedBytes: Int64 = 0
    private var destination: String?
    private var rootPermissions: UInt32 = 0o755

    init(input: ArchiveInput, directory: String, staging: StagingFolder, options: ArchiveExtractionOptions) {
        self.input = input
        self.directory = directory
        self.staging = staging
        self.options = options
        policy = ArchiveEntryPolicy(archive: input.path)
        if let name = options.name { destination = directory + "/" + name }
    }

    func run(removedLeftovers: [String]) throws -> ArchiveExtractionResult {
        if let destination { try requireAbsent(destination) }
        options.progress.setTotal(input.size)
        defer { options.progress.finish() }
        let reader = try TarReader(input: input, options: options)
        var entries = 0
        while let entry = try reader.nextEntry() {
            entries += 1
            if entries > options.maxEntries { throw ArchiveError.tooManyEntries(path: input.path, limit: options.maxEntries) }
            let hadTop = policy.topName != nil
            let action = try policy.admit(name: entry.name, type: entry.type)
            if !hadTop, let top = policy.topName, destination == nil {
                try ArchiveExtraction.validateFolderName(top)
                destination = directory + "/" + top
                try requireAbsent(directory + "/" + top)
            }
            try perform(action, entry: entry, reader: reader)
        }
        try reader.finish()
        guard let destination, policy.topName != nil else {
            throw ArchiveError.layout(path: input.path, reason: "it holds no entries")
        }
        guard policy.fileCount > 0 else { throw ArchiveError.layout(path: input.path, reason: "it holds no files") }

        let sorted = files.keys.sorted().map { ExtractedFile(path: $0, digest: files[$0] ?? FileDigest(size: 0, sha256: "")) }
        try ModelFolderCheck.validateExtracted(
            staging: staging.path, finalPath: destination, files: sorted.map(\.path), archive: input.path,
            requirePixArt: options.requirePixArtFolder)
        if options.isCancelled() { throw ArchiveError.interrupted(path: input.path) }
        // The staging folder was made private (0700); it becomes the model folder with the archive's mode.
        let mask = umask(0)
        umask(mask)
        chmod(staging.path, mode_t((rootPermissions & 0o755) | 0o700) & ~mask)
        try staging.commit(to: destination, flushing: folders)
        return ArchiveExtractionResult(
            archive: input.path, folder: destination, compression: input.compression, files: sorted,
            archiveBytes: input.size, extractedBytes: extractedBytes, removedLeftovers: removedLeftovers)
    }

    private func requireAbsent(_ path: String) throws {
        var st = stat()
        if lstat(path, &st) == 0 { throw ArchiveError.destinationExists(path: path) }
    }

    private func stagingPath(_ relative: String) -> String { staging.path + "/" + relative }

    private func makeFolders(_ relatives: [String], permissions: UInt32?) throws {
        for (i, relative) in relatives.enumerated() {
            // Owner keeps full access (so the tree can be removed); never group/other write or special bits.
            let explicit = i == relatives.count - 1 ? permissions : nil
            let mode = mode_t(((explicit ?? 0o755) & 0o755) | 0o700)
            guard mkdir(stagingPath(relative), mode) == 0 else {
                throw ArchiveError.writeFailed(path: displayPath(relative), reason: String(cString: strerror(errno)))
            }
            folders.append(relative)
        }
    }

    private func displayPath(_ relative: String) -> String {
        (destination ?? directory + "/" + (policy.topName ?? "?")) + "/" + relative
    }

    private func perform(_ action: ArchiveEntryAction, entry: TarEntry, reader: TarReader) throws {
        switch action {
        case let .root(top):
            if top { rootPermissions = entry.permissions }
        case let .directory(_, create):
            try makeFolders(create, permissions: entry.permissions)
        case let .file(path, parents):
            try makeFolders(parents, permissions: nil)
            // Owner read/write always; never setuid/setgid/sticky or group/other write.
            let mode = mode_t((entry.permissions & 0o755) | 0o600)
            let writer = try HashingFileWriter(path: stagingPath(path), mode: mode)
            do {
                try reader.readData { try writer.write($0) }
            } catch let error as ArchiveError {
                if case let .writeFailed(_, reason) = error {
                    throw ArchiveError.writeFailed(path: displayPath(path), reason: reason)
                }
                throw error
            }
            if let size = entry.size, size != writer.size {
                throw ArchiveError.corrupt(
                    path: input.path, entry: entry.name, reason: "it declares \(size) bytes but holds \(writer.size)")
            }
            if let time = entry.modificationTime { writer.setModificationTime(seconds: time.seconds, nanoseconds: time.nanoseconds) }
            let digest = try writer.finish()
            files[path] = digest
            extractedBytes += digest.size
        case let .symlink(path, target, parents):
            try makeFolders(parents, permissions: nil)
            guard symlink(target, stagingPath(path)) == 0 else {
                throw ArchiveError.writeFailed(path: displayPath(path), reason: String(cString: strerror(errno)))
            }
        case let .hardlink(path, target, parents):
            try makeFolders(parents, permissions: nil)
            guard link(stagingPath(target), stagingPath(path)) == 0 else {
                throw ArchiveError.writeFailed(path: displayPath(path), reason: String(cString: strerror(errno)))
            }
            files[path] = files[target]
        }
    }
}

// MARK: - Compressing (benchmarks and tests build .tar.gz/.zst/.xz with the same library)

/// Streams bytes into a new file through gzip, zstd or xz compression (or none), using libarchive's writers.
public final class CompressedFileWriter {
    public let path: String
    private let archive: OpaquePointer?
    private let plain: HashingFileWriter?
    private var closed = false

    public init(path: String, compression: ArchiveCompression) throws {
        self.path = path
        if compression == .none {
            plain = try HashingFileWriter(path: path, mode: 0o644)
            archive = nil
            return
        }
        plain = nil
        guard let archive = archive_write_new() else {
            throw ArchiveError.writeFailed(path: path, reason: "libarchive could not allocate a writer")
        }
        self.archive = archive
        let added: Int32
        switch compression {
        case .gzip: added = archive_write_add_filter_gzip(archive)
        case .zstd: added = archive_write_add_filter_zstd(archive)
        case .xz: added = archive_write_add_filter_xz(archive)
        case .none: added = archiveOK
        }
        // No padding after the compressed stream: the file ends where the compressor's output ends.
        guard added == archiveOK, archive_write_set_format_raw(archive) == archiveOK,
              archive_write_set_bytes_in_last_block(archive, 1) == archiveOK,
              archive_write_open_filename(archive, path) == archiveOK
        else { throw failure() }
        guard let entry = archive_entry_new() else { throw failure() }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, "data")
        archive_entry_set_filetype(entry, FileType.regular)
        guard archive_write_header(archive, entry) == archiveOK else { throw failure() }
    }

    deinit {
        if let archive { archive_write_free(archive) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let plain { return try plain.write(bytes) }
        guard let archive, let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard archive_write_data(archive, base, bytes.count) == bytes.count else { throw failure() }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes the compressor and closes the file.
    public func finish() throws {
        guard !closed else { return }
        closed = true
        if let plain {
            _ = try plain.finish()
            return
        }
        guard let archive, archive_write_close(archive) == archiveOK else { throw failure() }
    }

    private func failure() -> ArchiveError {
        ArchiveError.writeFailed(path: path, reason: archiveMessage(archive) ?? "compression failed")
    }
}
