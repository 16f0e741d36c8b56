/// Writes tar headers (the GNU flavour GNU tar writes by default): for the extraction benchmark's synthetic
/// archives and for tests that need exact, even hostile, archives. No validation: a header says what it is told.
public enum TarFormat {
    public enum EntryType: UInt8, Sendable {
        case file = 0x30            // '0'
        case hardlink = 0x31        // '1'
        case symlink = 0x32         // '2'
        case characterDevice = 0x33 // '3'
        case blockDevice = 0x34     // '4'
        case directory = 0x35       // '5'
        case fifo = 0x36            // '6'
        case gnuLongName = 0x4C     // 'L'
        case gnuLongLink = 0x4B     // 'K'
        case paxHeader = 0x78       // 'x'
    }

    public static let blockSize = 512
    /// Two zero blocks end an archive.
    public static let endOfArchive = [UInt8](repeating: 0, count: 1024)

    /// The header block(s) for one entry: a GNU long-name (and long-link) block precedes the header when a name
    /// does not fit its 100-byte field. `size` is the data that follows, which the caller writes and pads.
    public static func header(
        name: String, type: EntryType, size: Int64 = 0, mode: UInt32 = 0o644, linkName: String = "",
        modificationTime: Int64 = 0
    ) -> [UInt8] {
        var out: [UInt8] = []
        let nameBytes = Array(name.utf8)
        let linkBytes = Array(linkName.utf8)
        if linkBytes.count > 100 {
            out += longNameBlocks(linkBytes, type: .gnuLongLink)
        }
        if nameBytes.count > 100 {
            out += longNameBlocks(nameBytes, type: .gnuLongName)
        }
        out += block(name: Array(nameBytes.prefix(100)), type: type, size: size, mode: mode,
                     linkName: Array(linkBytes.prefix(100)), modificationTime: modificationTime)
        return out
    }

    /// A header whose name is exactly `nameBytes` (at most 100 bytes), valid UTF-8 or not.
    public static func header(nameBytes: [UInt8], type: EntryType, size: Int64 = 0, mode: UInt32 = 0o644) -> [UInt8] {
        block(name: Array(nameBytes.prefix(100)), type: type, size: size, mode: mode, linkName: [], modificationTime: 0)
    }

    /// A pax extended header entry ('x') with `records` (key, value bytes), applying to the entry that follows.
    public static func paxHeader(_ records: [(key: String, value: [UInt8])]) -> [UInt8] {
        var data: [UInt8] = []
        for (key, value) in records {
            // "<length> <key>=<value>\n", where the length counts itself.
            let body = Array(" \(key)=".utf8) + value + [0x0A]
            var length = body.count + 1
            while String(length).utf8.count + body.count != length { length = String(length).utf8.count + body.count }
            data += Array(String(length).utf8) + body
        }
        return block(name: Array("PaxHeader/entry".utf8), type: .paxHeader, size: Int64(data.count), mode: 0o644,
                     linkName: [], modificationTime: 0)
            + data + [UInt8](repeating: 0, count: padding(forSize: Int64(data.count)))
    }

    /// Zero bytes that pad `size` bytes of data to a whole block.
    public static func padding(forSize size: Int64) -> Int {
        let remainder = Int(size % Int64(blockSize))
        return remainder == 0 ? 0 : blockSize - remainder
    }

    private static func longNameBlocks(_ name: [UInt8], type: EntryType) -> [UInt8] {
        let data = name + [0]
        var out = block(name: Array("././@LongLink".utf8), type: type, size: Int64(data.count), mode: 0o644,
                        linkName: [], modificationTime: 0)
        out += data
        out += [UInt8](repeating: 0, count: padding(forSize: Int64(data.count)))
        return out
    }

    private static func block(
        name: [UInt8], type: EntryType, size: Int64, mode: UInt32, linkName: [UInt8], modificationTime: Int64
    ) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: [UInt8], at offset: Int) {
            for (i, b) in bytes.enumerated() { h[offset + i] = b }
        }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            Array(String(value, radix: 8).leftPadded(to: width - 1).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(Int64(mode), width: 8), at: 100)
        put(octal(0, width: 8), at: 108)  // uid
        put(octal(0, width: 8), at: 116)  // gid
        if size < 0o77777777777 {
            put(octal(size, width: 12), at: 124)
        } else {
            // GNU base-256: high bit set, big-endian value in the remaining bytes (files of 8 GiB and more).
            var field = [UInt8](repeating: 0, count: 12)
            var value = size
            for i in stride(from: 11, through: 1, by: -1) {
                field[i] = UInt8(truncatingIfNeeded: value)
                value >>= 8
            }
            field[0] = 0x80
            put(field, at: 124)
        }
        put(octal(modificationTime, width: 12), at: 136)
        put(Array(repeating: 0x20, count: 8), at: 148)
        h[156] = type.rawValue
        put(linkName, at: 157)
        put(Array("ustar  ".utf8) + [0], at: 257)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(Array(String(sum, radix: 8).leftPadded(to: 6).utf8) + [0, 0x20], at: 148)
        return h
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
