#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto

/// A file's size and SHA-256 (lowercase hex), as the manifest records them. Files are read in chunks with read(2)
/// so hashing a multi-GB checkpoint does not grow the process's resident memory the way touching an mmap would.
public struct FileDigest: Sendable, Equatable, Codable {
    public let size: Int64
    public let sha256: String

    public init(size: Int64, sha256: String) {
        self.size = size
        self.sha256 = sha256
    }

    /// Reads `path` once, sequentially, and returns its size and SHA-256. `progress` receives bytes as they are
    /// hashed; `isCancelled` is polled between blocks.
    public static func compute(
        path: String, progress: ((Int64) -> Void)? = nil, isCancelled: () -> Bool = { false }
    ) throws -> FileDigest {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelsError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var hasher = SHA256()
        var total: Int64 = 0
        let blockSize = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 4096)
        defer { buffer.deallocate() }
        while true {
            if isCancelled() { throw ModelsError.interrupted(path: path) }
            let n = read(fd, buffer.baseAddress, blockSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw ModelsError.cannotRead(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += Int64(n)
            progress?(Int64(n))
        }
        return FileDigest(size: total, sha256: hex(hasher.finalize()))
    }

    /// The SHA-256 of a whole file, lowercase hex.
    public static func sha256(path: String) throws -> String {
        try compute(path: path).sha256
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
