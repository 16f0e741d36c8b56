#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArchive
import Foundation
import WeightOps

/// Streams bytes into a new file through gzip, zstd or xz compression (or none), using libarchive's writers.
public final class CompressedFileWriter {
    public let path: String
    private let archive: OpaquePointer?
    private let plain: FileHandle?
    private var closed = false

    public init(path: String, compression: ArchiveCompression) throws {
        self.path = path
        if compression == .none {
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw BenchError.failed(path: path, reason: "cannot create the file")
            }
            plain = handle
            archive = nil
            return
        }
        plain = nil
        guard let archive = archive_write_new() else {
            throw BenchError.failed(path: path, reason: "libarchive could not allocate a writer")
        }
        self.archive = archive
        let added: Int32
        switch compression {
        case .gzip: added = archive_write_add_filter_gzip(archive)
        case .zstd: added = archive_write_add_filter_zstd(archive)
        case .xz: added = archive_write_add_filter_xz(archive)
        case .none: added = ARCHIVE_OK
        }
        // No padding after the compressed stream: the file ends where the compressor's output ends.
        guard added == ARCHIVE_OK, archive_write_set_format_raw(archive) == ARCHIVE_OK,
              archive_write_set_bytes_in_last_block(archive, 1) == ARCHIVE_OK,
              archive_write_open_filename(archive, path) == ARCHIVE_OK
        else { throw failure() }
        guard let entry = archive_entry_new() else { throw failure() }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, "data")
        archive_entry_set_filetype(entry, 0o100000)  // a regular file (AE_IFREG)
        guard archive_write_header(archive, entry) == ARCHIVE_OK else { throw failure() }
    }

    deinit {
        if let archive { archive_write_free(archive) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let plain { return try plain.write(contentsOf: Data(bytes)) }
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
            try plain.synchronize()
            try plain.close()
            return
        }
        guard let archive, archive_write_close(archive) == ARCHIVE_OK else { throw failure() }
    }

    private func failure() -> BenchError {
        BenchError.failed(path: path, reason: archive.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "compression failed")
    }
}
