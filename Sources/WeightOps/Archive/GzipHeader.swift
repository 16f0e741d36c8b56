#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The gzip member header (RFC 1952 §2.3), checked before libarchive reads the stream: libarchive 3.6 reads a
/// file-name or comment field until its terminating zero however long it is (libarchive #2366, fixed upstream by
/// refusing fields over 1 MiB), so a hostile header could make it buffer without end.
enum GzipHeader {
    /// The longest file name or comment accepted, as upstream libarchive now does.
    static let maxFieldBytes = 1 << 20

    private static let flagHeaderCRC: UInt8 = 0x02, flagExtra: UInt8 = 0x04
    private static let flagName: UInt8 = 0x08, flagComment: UInt8 = 0x10, reservedFlags: UInt8 = 0xE0

    /// Reads the header at the start of `fd` and refuses one libarchive should not be given.
    static func check(fd: Int32, size: Int64, path: String) throws {
        var reader = Reader(fd: fd, size: size)
        func corrupt(_ reason: String) -> ArchiveError { .corrupt(path: path, entry: nil, reason: "gzip header: \(reason)") }
        guard let fixed = reader.read(10) else { throw corrupt("it is cut short") }
        guard fixed[2] == 8 else { throw corrupt("compression method \(fixed[2]) is not deflate") }
        let flags = fixed[3]
        guard flags & reservedFlags == 0 else { throw corrupt("reserved flag bits are set") }
        if flags & flagExtra != 0 {
            guard let length = reader.read(2), reader.skip(Int(length[0]) | Int(length[1]) << 8) else {
                throw corrupt("the extra field is cut short")
            }
        }
        for (flag, field) in [(flagName, "file name"), (flagComment, "comment")] where flags & flag != 0 {
            guard let length = reader.zeroTerminatedLength(limit: maxFieldBytes) else {
                throw corrupt("the \(field) field does not end within \(maxFieldBytes >> 20) MiB")
            }
            _ = reader.skip(length + 1)
        }
        if flags & flagHeaderCRC != 0, reader.read(2) == nil { throw corrupt("the header CRC is cut short") }
    }

    /// Sequential reads with `pread`, so the descriptor's offset stays where libarchive expects it.
    private struct Reader {
        let fd: Int32
        let size: Int64
        var offset: Int64 = 0

        init(fd: Int32, size: Int64) {
            self.fd = fd
            self.size = size
        }

        mutating func read(_ count: Int) -> [UInt8]? {
            guard Int64(count) <= size - offset else { return nil }
            var bytes = [UInt8](repeating: 0, count: count)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            guard n == count else { return nil }
            offset += Int64(count)
            return bytes
        }

        mutating func skip(_ count: Int) -> Bool {
            guard Int64(count) <= size - offset else { return false }
            offset += Int64(count)
            return true
        }

        /// Bytes before the next zero, looking at most `limit` bytes ahead; nil when none is there.
        func zeroTerminatedLength(limit: Int) -> Int? {
            var scanned = 0
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while scanned <= limit {
                let want = min(chunk.count, limit + 1 - scanned)
                let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(offset) + off_t(scanned)) }
                guard n > 0 else { return nil }
                if let zero = chunk[0..<n].firstIndex(of: 0) { return scanned + zero }
                scanned += n
            }
            return nil
        }
    }
}
