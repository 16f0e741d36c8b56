#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArchive
import Foundation

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
    /// Set by the tar reader once it has parsed an entry header; until then at most
    /// `maxBytesBeforeFirstHeader` bytes are decompressed (a first header cannot need more).
    var sawFirstHeader = false
    private var headers = TarHeaderScanner()

    init(input: ArchiveInput, options: ArchiveExtractionOptions) throws {
        self.input = input
        self.options = options
        guard let archive = archive_read_new() else {
            throw ArchiveError.cannotOpen(path: input.path, reason: "libarchive could not allocate a reader")
        }
        self.archive = archive
        // The one filter the first bytes named, appended rather than bid for: libarchive then never looks for a
        // second compression inside the output (its gzip bidder would read an endless inner header without bound).
        let appended: Int32
        switch input.compression {
        case .none: appended = archiveOK
        case .gzip: appended = archive_read_append_filter(archive, ARCHIVE_FILTER_GZIP)
        case .zstd: appended = archive_read_append_filter(archive, ARCHIVE_FILTER_ZSTD)
        case .xz: appended = archive_read_append_filter(archive, ARCHIVE_FILTER_XZ)
        }
        guard appended == archiveOK else {
            throw ArchiveError.unsupportedFormat(path: input.path, format: "\(input.compression.rawValue) compression (libarchive lacks it)")
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
            failure = ArchiveError.cancelled(path: input.path)
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
        if let hidden = headers.scan(UnsafeRawBufferPointer(start: block, count: size)) {
            failure = ArchiveError.unsafeEntry(path: input.path, entry: hidden.entry, reason: hidden.reason)
            return -1
        }
        if !sawFirstHeader, produced > options.maxBytesBeforeFirstHeader {
            failure = ArchiveError.corrupt(
                path: input.path, entry: nil,
                reason: "no tar entry within the first \(options.maxBytesBeforeFirstHeader >> 20) MiB of decompressed data")
            return -1
        }
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
