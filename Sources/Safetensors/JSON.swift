/// A strict JSON reader for safetensors headers and index files.
///
/// Foundation's parser silently keeps the last of duplicate keys and accepts numbers we must reject, so the
/// header is read with this one: RFC 8259, no duplicate keys, bounded nesting, integers kept exact.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits in an Int64 (except `-0`, a float as in serde_json).
    case integer(Int64)
    /// A non-negative integer above Int64.max that fits in a UInt64 (serde_json reads these as u64).
    case unsignedInteger(UInt64)
    /// Any other number (always finite: serde_json rejects numbers out of range).
    case number(Double)
    case string(String)
    case array([JSONValue])
    /// Members in the order they appear.
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.unsignedInteger(x), .unsignedInteger(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }
    public var objectValue: [(String, JSONValue)]? { if case let .object(o) = self { return o } else { return nil } }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a } else { return nil } }
    public var intValue: Int64? { if case let .integer(i) = self { return i } else { return nil } }
    /// The value as a u64, as serde_json deserializes `usize`: non-negative integers only (no floats, no `-0`).
    public var uint64Value: UInt64? {
        switch self {
        case let .integer(i): return i >= 0 ? UInt64(i) : nil
        case let .unsignedInteger(u): return u
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case let .integer(i): return Double(i)
        case let .unsignedInteger(u): return Double(u)
        case let .number(d): return d
        default: return nil
        }
    }
    public subscript(key: String) -> JSONValue? {
        objectValue?.first(where: { $0.0 == key })?.1
    }
}

public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let offset: Int
    /// Set when the error is a repeated object key.
    public let duplicateKey: String?
    public var description: String { "\(message) at byte \(offset)" }
}

public enum JSONParser {
    /// Most nested arrays/objects accepted: serde_json's recursion limit of 128 fails on the 128th level.
    public static let maxDepth = 127

    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer in
            var reader = Reader(bytes: buffer)
            reader.skipWhitespace()
            let value = try reader.value(depth: 0)
            reader.skipWhitespace()
            if reader.position != buffer.count { throw reader.error("trailing characters") }
            return value
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        func error(_ message: String, duplicateKey: String? = nil) -> JSONParseError {
            JSONParseError(message: message, offset: position, duplicateKey: duplicateKey)
        }

        var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let c = peek, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 }
        }

        mutating func expect(_ literal: StaticString) throws {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw error("unexpected end of input") }
            let ok = literal.withUTF8Buffer { lit in (0..<count).allSatisfy { bytes[position + $0] == lit[$0] } }
            guard ok else { throw error("invalid literal") }
            position += count
        }

        mutating func value(depth: Int) throws -> JSONValue {
            guard let c = peek else { throw error("unexpected end of input") }
            if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                guard depth < JSONParser.maxDepth else { throw error("nesting deeper than \(JSONParser.maxDepth) levels") }
            }
            switch c {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw error("unexpected character")
            }
        }

        mutating func object(depth: Int) throws -> JSONValue {
            position += 1
            var members: [(String, JSONValue)] = []
            var seen = Set<String>()
            skipWhitespace()
            if peek == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard peek == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyStart = position
                let key = try string()
                guard seen.insert(key).inserted else {
                    position = keyStart
                    throw error("duplicate key '\(key)'", duplicateKey: key)
                }
                skipWhitespace()
                guard peek == UInt8(ascii: ":") else { throw error("expected ':'") }
                position += 1
                skipWhitespace()
                members.append((key, try value(depth: depth)))
                skipWhitespace()
                guard let c = peek else { throw error("unexpected end of input") }
                position += 1
                if c == UInt8(ascii: "}") { return .object(members) }
                guard c == UInt8(ascii: ",") else { position -= 1; throw error("expected ',' or '}'") }
            }
        }

        mutating func array(depth: Int) throws -> JSONValue {
            position += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if peek == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth))
                skipWhitespace()
                guard let c = peek else { throw error("unexpected end of input") }
                position += 1
                if c == UInt8(ascii: "]") { return .array(items) }
                guard c == UInt8(ascii: ",") else { position -= 1; throw error("expected ',' or ']'") }
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("unexpected end of input in \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[position]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw error("invalid \\u escape")
                }
                v = v << 4 | d
                position += 1
            }
            return v
        }

        mutating func string() throws -> String {
            position += 1
            var out: [UInt8] = []
            var runStart = position
            while true {
                guard let c = peek else { throw error("unterminated string") }
                if c == UInt8(ascii: "\"") {
                    out.append(contentsOf: bytes[runStart..<position])
                    position += 1
                    break
                }
                if c < 0x20 { throw error("control character in string") }
                if c != UInt8(ascii: "\\") { position += 1; continue }
                out.append(contentsOf: bytes[runStart..<position])
                position += 1
                guard let e = peek else { throw error("unterminated escape") }
                position += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                              bytes[position + 1] == UInt8(ascii: "u") else { throw error("lone leading surrogate") }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid trailing surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("lone trailing surrogate")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid unicode escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    throw error("invalid escape")
                }
                runStart = position
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw error("string is not UTF-8") }
            return s
        }

        mutating func number() throws -> JSONValue {
            let start = position
            var isInteger = true
            if peek == UInt8(ascii: "-") { position += 1 }
            guard let first = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
                throw error("invalid number")
            }
            if first == UInt8(ascii: "0") {
                position += 1
            } else {
                while let c = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { position += 1 }
            }
            if peek == UInt8(ascii: ".") {
                isInteger = false
                position += 1
                var digits = 0
                while let c = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { position += 1; digits += 1 }
                if digits == 0 { throw error("invalid number") }
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                isInteger = false
                position += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { position += 1 }
                var digits = 0
                while let c = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { position += 1; digits += 1 }
                if digits == 0 { throw error("invalid number") }
            }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            // As serde_json: `-0` is a float, integers beyond u64 become floats, floats must be finite.
            if isInteger && text != "-0" {
                if let i = Int64(text) { return .integer(i) }
                if let u = UInt64(text) { return .unsignedInteger(u) }
            }
            guard let d = Double(text) else { throw error("invalid number") }
            guard d.isFinite else { position = start; throw error("number out of range") }
            return .number(d)
        }
    }
}

extension JSONValue {
    /// Compact JSON text (no spaces), members in stored order, as serde_json writes it.
    public var compactText: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .integer(i): out += String(i)
        case let .unsignedInteger(u): out += String(u)
        case let .number(d): out += d.isFinite ? "\(d)" : "null"
        case let .string(s): JSONValue.writeString(s, into: &out)
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case let .object(members):
            out += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(k, into: &out)
                out += ":"
                v.write(into: &out)
            }
            out += "}"
        }
    }

    /// Escapes like serde_json: `"` `\` and control characters, everything else verbatim UTF-8. With
    /// `asciiOnly` (Python's `json.dumps` default, `ensure_ascii`), everything outside ' '...'~' becomes \uXXXX
    /// (lowercase hex, UTF-16 surrogate pairs above U+FFFF).
    static func writeString(_ s: String, into out: inout String, asciiOnly: Bool = false) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || (asciiOnly && u.value > 0x7E && u.value <= 0xFFFF) {
                    out += escaped(u.value)
                } else if asciiOnly && u.value > 0xFFFF {
                    let v = u.value - 0x10000
                    out += escaped(0xD800 + (v >> 10)) + escaped(0xDC00 + (v & 0x3FF))
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    private static func escaped(_ v: UInt32) -> String {
        let hex = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
