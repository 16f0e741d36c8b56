#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArchive
import Foundation
import Safetensors

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
            if compression == .gzip { try GzipHeader.check(fd: fd, size: size, path: path) }
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

        if let what = FailedDownload.describe(head, size: Int(clamping: size)) {
            throw ArchiveError.notAnArchive(path: path, what: what)
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
