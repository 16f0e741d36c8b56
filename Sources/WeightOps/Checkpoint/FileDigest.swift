#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Safetensors

/// A file's size and SHA-256 (lowercase hex), as the manifest records them. Files are hashed straight from a
/// mapping (no kernel copy into a buffer), unmapped block by block behind the hashing.
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
        // An unreadable file is the reader's error naming it (hashing serves merge-lora and inspect, not only models/).
        let file = try MappedFile(path: path)
        var hasher = SHA256()
        // Hashing a multi-GB checkpoint must not grow the resident memory: blocks are unmapped once hashed.
        try file.forEachBlock(in: 0..<file.size, blockSize: 4 << 20) { block in
            if isCancelled() { throw WeightOpsError.cancelled(path: path) }
            hasher.update(bufferPointer: block)
            progress?(Int64(block.count))
        }
        return FileDigest(size: Int64(file.size), sha256: hex(hasher.finalize()))
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
