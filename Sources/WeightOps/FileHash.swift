import Crypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SHA-256 of whole files, streamed through one reused buffer (memory stays at the buffer size for any file
/// size; BoringSSL's SHA-256 runs at GB/s, so a checkpoint hashes about as fast as the disk reads it).
public enum FileHash {
    static let chunkSize = 8 << 20

    /// Lowercase hex SHA-256 of the file at `path`, as `sha256sum` prints it.
    public static func sha256(path: String) throws -> String {
        try sha256(path: path, chunkSize: chunkSize)
    }

    static func sha256(path: String, chunkSize: Int) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw WeightOpsError.invalidInput(path: path, reason: "cannot open for hashing: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        #if canImport(Glibc)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        #endif
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, chunkSize)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw WeightOpsError.invalidInput(path: path, reason: "read failed while hashing: \(String(cString: strerror(errno)))")
            }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hasher.finalize().map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
