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
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch let SafetensorsError.cannotOpen(_, reason) {
            throw ModelsError.cannotRead(path: path, reason: reason)
        }
        var hasher = SHA256()
        let block = 4 << 20
        var offset = 0
        while offset < file.size {
            if isCancelled() { throw ModelsError.interrupted(path: path) }
            file.readAhead(from: offset)
            let end = min(file.size, offset + block)
            file.withBytes(offset..<end) { hasher.update(bufferPointer: $0) }
            // Hashing a multi-GB checkpoint must not grow the resident memory: unmap what was hashed.
            file.adviseDontNeed(offset..<end)
            progress?(Int64(end - offset))
            offset = end
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
