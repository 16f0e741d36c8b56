#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto

/// Writes a new file while hashing the bytes that pass through it, so a copy or an extraction yields the
/// file's SHA-256 without reading it a second time. The file is created exclusively (never through a link,
/// never over an existing file); `finish()` flushes it to disk before the caller renames anything into place.
final class HashingFileWriter {
    let path: String
    private var fd: Int32
    private var hasher = SHA256()
    private(set) var size: Int64 = 0

    /// Creates `path` with `mode` (narrowed by the umask); fails if anything exists there.
    init(path: String, mode: mode_t) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ArchiveError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Appends `bytes` to the file and to the hash.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        hasher.update(bufferPointer: bytes)
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, base + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            offset += n
        }
        size += Int64(bytes.count)
    }

    /// Sets the modification time (seconds and nanoseconds since the epoch) the archive recorded.
    func setModificationTime(seconds: Int, nanoseconds: Int) {
        let time = timespec(tv_sec: seconds, tv_nsec: nanoseconds)
        let times = [time, time]
        _ = times.withUnsafeBufferPointer { futimens(fd, $0.baseAddress) }
    }

    /// Flushes the data to disk, closes the file and returns its size and hash.
    func finish() throws -> FileDigest {
        guard fsync(fd) == 0 else { throw ArchiveError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        let result = close(fd)
        fd = -1
        guard result == 0 else { throw ArchiveError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        return FileDigest(size: size, sha256: FileDigest.hex(hasher.finalize()))
    }
}
