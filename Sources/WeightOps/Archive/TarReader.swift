#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArchive
import Foundation
import Safetensors

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
        let r = Self.inUTF8Locale { archive_read_next_header(archive, &entry) }
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
        stream.sawFirstHeader = true
        let name = try Self.utf8Name(archive_entry_pathname(entry), archive: path, after: lastEntry)
        lastEntry = name

        let type: ArchiveEntryType
        if let target = archive_entry_hardlink(entry) {
            type = .hardlink(target: try Self.utf8Name(target, archive: path, after: lastEntry, link: true))
        } else {
            switch UInt32(archive_entry_filetype(entry)) & FileType.mask {
            case FileType.regular:
                type = archive_entry_sparse_count(entry) > 0 ? .unsupported("sparse files") : .file
            case FileType.directory: type = .directory
            case FileType.symlink:
                type = .symlink(target: try archive_entry_symlink(entry).map {
                    try Self.utf8Name($0, archive: path, after: lastEntry, link: true)
                } ?? "")
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

    /// libarchive turns pax names (UTF-8 by definition) into the C library's current locale, which is ASCII in a
    /// process that never set one: every non-ASCII name would fail. Header parsing runs in C.UTF-8 (built into
    /// glibc since 2.35) on this thread only, whatever LANG or LC_ALL say, so names arrive as their UTF-8 bytes.
    private static let utf8Locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil)

    private static func inUTF8Locale<R>(_ body: () -> R) -> R {
        guard let locale = utf8Locale else { return body() }
        let previous = uselocale(locale)
        defer { uselocale(previous) }
        return body()
    }

    /// An entry's name (or link target) as the archive spells it: bytes that are not UTF-8 (a name written in a
    /// legacy code page) are refused rather than repaired into another name.
    private static func utf8Name(_ pointer: UnsafePointer<CChar>?, archive: String, after previous: String?,
                                 link: Bool = false) throws -> String {
        guard let pointer else {
            let which = previous.map { "the entry after '\($0)'" } ?? "the first entry"
            throw ArchiveError.corrupt(path: archive, entry: nil, reason: "\(which) has no name")
        }
        let bytes = Array(UnsafeBufferPointer(start: pointer, count: strlen(pointer))).map { UInt8(bitPattern: $0) }
        guard let name = String(validating: bytes, as: UTF8.self) else {
            throw ArchiveError.unsafeEntry(
                path: archive, entry: PrintableText.quote(bytes),
                reason: link ? "its link target is not valid UTF-8" : "its name is not valid UTF-8 (a legacy code page?); repack it with UTF-8 names")
        }
        return name
    }

    private static func notTar(_ input: ArchiveInput) -> ArchiveError {
        if input.compression == .none {
            return ArchiveError.unsupportedFormat(path: input.path, format: "this file format (it is not a tar archive)")
        }
        return ArchiveError.unsupportedFormat(
            path: input.path, format: "a \(input.compression.rawValue) file that does not hold a tar archive")
    }
}
