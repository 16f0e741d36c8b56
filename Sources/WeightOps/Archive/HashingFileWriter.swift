#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Dispatch

/// Writes a new file while hashing the bytes that pass through it, so a copy or an extraction yields the
/// file's SHA-256 without reading it a second time. The file is created exclusively (never through a link,
/// never over an existing file); `finish()` flushes it to disk before the caller renames anything into place.
final class HashingFileWriter {
    let path: String
    private var fd: Int32
    private var hasher = SHA256()
    private(set) var size: Int64 = 0
    private var advisedUpTo: Int64 = 0
    static let writebackWindow: Int64 = 8 << 20

    /// Creates `path` with `mode` (narrowed by the umask); fails if anything exists there.
    init(path: String, mode: mode_t) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ArchiveError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Blocks at least this large are hashed on a second thread while the first one writes them: SHA-256 costs
    /// about twice the write syscall's copy, so overlapping the two takes hashing off the critical path.
    static let concurrentHashingThreshold = 256 << 10
    private static let hashingQueue = DispatchQueue(label: "ea-weights.hashing")

    /// Appends `bytes` to the file and to the hash.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.baseAddress != nil, bytes.count > 0 else { return }
        if bytes.count < Self.concurrentHashingThreshold {
            hasher.update(bufferPointer: bytes)
            try writeAll(bytes)
            return
        }
        // `bytes` stays valid until both halves are done: the caller's buffer is not touched before we return.
        let group = DispatchGroup()
        let hashing = UnsafeSendable(self, bytes)
        Self.hashingQueue.async(group: group) { hashing.writer.hasher.update(bufferPointer: hashing.bytes) }
        let result = Result { try writeAll(bytes) }
        group.wait()
        try result.get()
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
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
        if size - advisedUpTo >= Self.writebackWindow {
            // POSIX_FADV_DONTNEED queues writeback of the pages just written without waiting for it, and drops
            // pages of earlier windows that are clean by now: the final fsync has little left to flush, and an
            // 11 GB extraction does not push everything else out of the page cache.
            let start = max(0, advisedUpTo - 4 * Self.writebackWindow)
            _ = posix_fadvise(fd, off_t(start), off_t(size - start), POSIX_FADV_DONTNEED)
            advisedUpTo = size
        }
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

/// Hands a writer and a borrowed buffer to the hashing thread for the duration of one `write`, which waits for it.
private struct UnsafeSendable: @unchecked Sendable {
    let writer: HashingFileWriter
    let bytes: UnsafeRawBufferPointer

    init(_ writer: HashingFileWriter, _ bytes: UnsafeRawBufferPointer) {
        self.writer = writer
        self.bytes = bytes
    }
}
