/// Text from an input (a file name, a header's bytes, a line of a file) made fit to quote in a one-line message:
/// control characters and bytes that are not UTF-8 become escapes (`\n`, `\x00`), and long text is cut with "…".
public enum PrintableText {
    /// The most characters of input a message quotes.
    public static let defaultLimit = 120

    public static func quote(_ bytes: some Sequence<UInt8>, limit: Int = defaultLimit) -> String {
        var out = ""
        var count = 0
        var decoder = UTF8()
        let all = Array(bytes)
        var index = 0
        // Decoded scalar by scalar; a byte that does not start a valid sequence is escaped on its own.
        while index < all.count {
            if count >= limit { out += "…"; break }
            let byte = all[index]
            let length = byte < 0x80 ? 1 : byte >> 5 == 0b110 ? 2 : byte >> 4 == 0b1110 ? 3 : byte >> 3 == 0b11110 ? 4 : 0
            let candidate = length > 0 && index + length <= all.count ? all[index..<index + length] : all[index...index]
            var scalars = candidate.makeIterator()
            if length > 0, case let .scalarValue(scalar) = decoder.decode(&scalars), scalar.utf8.count == candidate.count {
                out += escape(scalar)
                index += length
            } else {
                out += "\\x" + hex(byte)
                index += 1
            }
            count += 1
        }
        return out
    }

    public static func quote(_ text: String, limit: Int = defaultLimit) -> String {
        quote(text.utf8, limit: limit)
    }

    /// A message made one printable line: control characters escaped as in `quote`, everything else (backslashes
    /// included) kept, and cut after `limit` characters.
    public static func line(_ message: String, limit: Int = 2000) -> String {
        var out = ""
        for (i, scalar) in message.unicodeScalars.enumerated() {
            if i >= limit { out += "…"; break }
            out += scalar == "\\" ? "\\" : escape(scalar)
        }
        return out
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\\": return "\\\\"
        default:
            // C0 and C1 controls, DEL, and the line/paragraph separators some terminals break lines at.
            let v = scalar.value
            if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0x2028 || v == 0x2029 {
                return v <= 0xFF ? "\\x" + hex(UInt8(v)) : "\\u{" + String(v, radix: 16) + "}"
            }
            return String(scalar)
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
