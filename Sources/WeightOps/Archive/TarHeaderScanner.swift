import Safetensors

/// Follows the tar headers in the decompressed stream as libarchive reads it, to see what libarchive 3.6 hides:
/// a pax `path` or `linkpath` value, or a GNU long name, with a NUL byte inside. libarchive copies such values as
/// C strings, so `top/evil\0.txt` would be written as `top/evil`; here the entry is refused instead.
/// Only header blocks and pax/long-name payloads are looked at; file data is skipped by count.
struct TarHeaderScanner {
    /// Longer pax or long-name payloads are not scanned (libarchive refuses them itself).
    static let maxPayload = 1 << 20

    private enum State {
        case header
        case skipping(Int64)
        case payload(kind: UInt8, remaining: Int64, padding: Int64)
        case ended
    }

    private var state = State.header
    private var pending: [UInt8] = []
    private var payload: [UInt8] = []
    private var zeroBlocks = 0

    /// Looks at the next decompressed bytes; returns the refusal reason and the (escaped) name when a header
    /// hides a NUL.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> (entry: String, reason: String)? {
        var rest = bytes[...]
        while !rest.isEmpty {
            switch state {
            case .ended:
                return nil
            case let .skipping(count):
                let n = Int(min(count, Int64(rest.count)))
                rest = rest.dropFirst(n)
                state = count - Int64(n) == 0 ? .header : .skipping(count - Int64(n))
            case let .payload(kind, remaining, padding):
                let n = Int(min(remaining, Int64(rest.count)))
                if payload.count + n <= Self.maxPayload { payload += rest.prefix(n) }
                rest = rest.dropFirst(n)
                if remaining - Int64(n) > 0 {
                    state = .payload(kind: kind, remaining: remaining - Int64(n), padding: padding)
                } else {
                    state = padding > 0 ? .skipping(padding) : .header
                    if let problem = Self.check(kind: kind, payload) { return problem }
                    payload = []
                }
            case .header:
                let n = min(512 - pending.count, rest.count)
                pending += rest.prefix(n)
                rest = rest.dropFirst(n)
                guard pending.count == 512 else { continue }
                let block = pending
                pending = []
                if block.allSatisfy({ $0 == 0 }) {
                    zeroBlocks += 1
                    if zeroBlocks == 2 { state = .ended }
                    continue
                }
                zeroBlocks = 0
                // libarchive names the damage; a size within a block of Int64.max would overflow with its padding.
                guard let size = Self.size(block), size <= Int64.max - 512 else { state = .ended; continue }
                let padding = (512 - size % 512) % 512
                let kind = block[156]
                if [UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K")].contains(kind), size > 0 {
                    state = .payload(kind: kind, remaining: size, padding: padding)
                } else if size + padding > 0, ![UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "5")].contains(kind) {
                    state = .skipping(size + padding)
                }
            }
        }
        return nil
    }

    /// The size field: octal digits, or GNU's base-256 with the high bit set.
    private static func size(_ block: [UInt8]) -> Int64? {
        let field = block[124..<136]
        if let first = field.first, first & 0x80 != 0 {
            var value: Int64 = Int64(first & 0x7F)
            for byte in field.dropFirst() {
                guard value < Int64.max >> 8 else { return nil }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") { if value > 0 { break } else { continue } }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value < Int64.max >> 3 else { return nil }
            value = value << 3 | Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func check(kind: UInt8, _ payload: [UInt8]) -> (entry: String, reason: String)? {
        guard payload.count <= maxPayload else { return nil }
        if kind == UInt8(ascii: "L") || kind == UInt8(ascii: "K") {
            // A GNU long name is the name and its terminating NULs.
            let name = payload.reversed().drop { $0 == 0 }.reversed()
            guard name.contains(0) else { return nil }
            return (PrintableText.quote(Array(name)), "its GNU long name holds a NUL byte")
        }
        // pax records: "<length> <key>=<value>\n", the length counting the whole record.
        var offset = 0
        while offset < payload.count {
            guard let space = payload[offset...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: payload[offset..<space], as: UTF8.self)),
                  length >= space - offset + 2, length <= payload.count - offset   // room for " " and "\n"; no overflow
            else { return nil }   // malformed records are libarchive's to report
            let record = payload[(space + 1)..<(offset + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: record[..<equals], as: UTF8.self)
                let value = record[(equals + 1)...]
                if key == "path" || key == "linkpath", value.contains(0) {
                    return (PrintableText.quote(Array(value)), "its pax \(key) holds a NUL byte")
                }
            }
            offset += length
        }
        return nil
    }
}
