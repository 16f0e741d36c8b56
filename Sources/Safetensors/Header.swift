/// One tensor's entry in a safetensors header. Offsets are relative to the start of the data section.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let dataBegin: Int
    public let dataEnd: Int

    public init(name: String, dtype: DType, shape: [Int], dataBegin: Int, dataEnd: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataBegin = dataBegin
        self.dataEnd = dataEnd
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataEnd - dataBegin }
}

/// A parsed and validated safetensors header. Holds no pointers: it can be built from any bytes.
public struct Header: Sendable {
    /// The largest header the reference implementation accepts.
    public static let maxHeaderBytes: UInt64 = 100_000_000

    /// Tensors in file (offset) order.
    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    /// Metadata keys in the order the header lists them.
    public let metadataOrder: [String]
    /// The `__metadata__` object as the header declares it: nil when absent or null (what a rewrite passes on).
    public let declaredMetadata: [String: String]?
    /// Byte length of the JSON header (without the 8-byte length prefix).
    public let headerLength: Int
    /// Absolute file offset where the data section starts.
    public var dataStart: Int { 8 + headerLength }

    /// Parses and validates the header of a whole file's bytes (only the first `8 + n` bytes are read,
    /// `fileSize` is used for the bounds), with the same verdicts as the reference Rust implementation.
    public static func parse(prefix: UnsafeRawBufferPointer, fileSize: Int, path: String) throws -> Header {
        // A header length that cannot be is most often a failed download saved under the file's name: say so.
        func impossible(_ error: SafetensorsError) -> SafetensorsError {
            FailedDownload.describe(prefix, size: fileSize).map { .notWeights(path: path, what: $0) } ?? error
        }
        guard fileSize >= 8, prefix.count >= 8 else {
            throw impossible(.headerTooSmall(path: path, fileSize: fileSize))
        }
        var declared: UInt64 = 0
        for i in (0..<8).reversed() { declared = declared << 8 | UInt64(prefix[i]) }
        guard declared <= maxHeaderBytes else { throw impossible(.headerTooLarge(path: path, bytes: declared)) }
        let n = Int(declared)
        guard 8 + n <= fileSize, 8 + n <= prefix.count else {
            throw impossible(.invalidHeaderLength(path: path, declared: declared, fileSize: fileSize))
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: prefix[8..<(8 + n)])
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw SafetensorsError.headerNotUTF8(path: path)
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(headerBytes)
        } catch let e as JSONParseError {
            if let key = e.duplicateKey { throw SafetensorsError.duplicateKey(path: path, key: key) }
            throw SafetensorsError.invalidJSON(path: path, reason: e.description)
        }
        return try validate(json: json, headerLength: n, dataSize: fileSize - 8 - n, path: path)
    }

    /// Applies the reference's rules (safetensors `Metadata` deserialization + `validate`, 0.4.x) to a parsed header.
    ///
    /// Every verdict matches the reference except where noted: duplicate keys are rejected (the reference keeps the
    /// last of two equal tensor names or metadata keys), names are compared as Swift strings (canonically equivalent
    /// spellings are the same name), and a zero-element tensor whose shape holds a dimension above Int.max cannot be
    /// represented and is rejected.
    static func validate(json: JSONValue, headerLength: Int, dataSize: Int, path: String) throws -> Header {
        guard let members = json.objectValue else {
            throw SafetensorsError.invalidJSON(path: path, reason: "the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var metadataOrder: [String] = []
        var hasMetadata = false
        var entries: [RawEntry] = []
        entries.reserveCapacity(members.count)
        for (key, value) in members {
            if key == "__metadata__" {
                // serde reads `Option<HashMap<String, String>>`: null means no metadata.
                if case .null = value { continue }
                guard let fields = value.objectValue else {
                    throw SafetensorsError.invalidMetadata(path: path, reason: "is not an object of strings")
                }
                hasMetadata = true
                for (k, v) in fields {
                    guard let s = v.stringValue else {
                        throw SafetensorsError.invalidMetadata(path: path, reason: "value of '\(k)' is not a string")
                    }
                    metadata[k] = s
                    metadataOrder.append(k)
                }
                continue
            }
            entries.append(try rawEntry(name: key, value, path: path))
        }

        // Sorted by offsets, the tensors must tile the data section exactly: from 0, no holes, no overlaps.
        // Same order of checks as the reference: offsets, then size overflow, then size.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var end: UInt64 = 0
        for e in entries {
            guard e.begin == end, e.end >= e.begin else {
                let why: String
                if e.end < e.begin {
                    why = "begin \(e.begin) is after end \(e.end)"
                } else if e.begin < end {
                    why = "overlaps the previous tensor (begins at \(e.begin), previous ends at \(end))"
                } else {
                    why = end == 0 ? "the first tensor must begin at 0, not \(e.begin)"
                                   : "leaves a hole (begins at \(e.begin), previous ends at \(end))"
                }
                throw SafetensorsError.invalidOffsets(path: path, tensor: e.name, reason: why)
            }
            end = e.end
            var count: UInt64 = 1
            for d in e.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw SafetensorsError.shapeOverflow(path: path, tensor: e.name) }
                count = product
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: UInt64(e.dtype.size))
            guard !overflow else { throw SafetensorsError.shapeOverflow(path: path, tensor: e.name) }
            guard e.end - e.begin == bytes else {
                throw SafetensorsError.sizeMismatch(path: path, tensor: e.name,
                                                    expected: Int(clamping: bytes), actual: Int(clamping: e.end - e.begin))
            }
        }
        guard end == UInt64(dataSize) else {
            throw SafetensorsError.incompleteBuffer(path: path, dataEnd: Int(clamping: end), dataSize: dataSize)
        }
        // Every offset is now within the data section, so it fits in Int; dimensions may not (zero-element tensors).
        let tensors = try entries.map { e -> TensorInfo in
            guard e.shape.allSatisfy({ $0 <= UInt64(Int.max) }) else {
                throw SafetensorsError.invalidTensorEntry(
                    path: path, tensor: e.name, reason: "a dimension of its shape exceeds \(Int.max)")
            }
            return TensorInfo(name: e.name, dtype: e.dtype, shape: e.shape.map { Int($0) },
                              dataBegin: Int(e.begin), dataEnd: Int(e.end))
        }
        return Header(tensors: tensors, metadata: metadata, metadataOrder: metadataOrder,
                      declaredMetadata: hasMetadata ? metadata : nil, headerLength: headerLength)
    }

    /// A tensor entry as written, with serde's integer range (u64) before it is checked against the file.
    private struct RawEntry {
        let name: String
        let dtype: DType
        let shape: [UInt64]
        let begin: UInt64
        let end: UInt64
    }

    /// Reads one tensor entry the way serde derives `TensorInfo`: an object with `dtype`, `shape` and
    /// `data_offsets` (other fields ignored) or, equally accepted by serde, an array of exactly those three.
    private static func rawEntry(name: String, _ value: JSONValue, path: String) throws -> RawEntry {
        func invalid(_ reason: String) -> SafetensorsError {
            SafetensorsError.invalidTensorEntry(path: path, tensor: name, reason: reason)
        }
        let dtypeValue, shapeValue, offsetsValue: JSONValue
        switch value {
        case let .object(fields):
            func field(_ key: String) throws -> JSONValue {
                guard let v = fields.first(where: { $0.0 == key })?.1 else { throw invalid("missing '\(key)'") }
                return v
            }
            (dtypeValue, shapeValue, offsetsValue) = (try field("dtype"), try field("shape"), try field("data_offsets"))
        case let .array(items):
            guard items.count == 3 else { throw invalid("an entry written as an array must hold [dtype, shape, data_offsets]") }
            (dtypeValue, shapeValue, offsetsValue) = (items[0], items[1], items[2])
        default:
            throw invalid("entry is not an object")
        }

        // serde accepts a unit enum variant as a string or as a one-member object `{"F32": null}`.
        let dtypeName: String
        switch dtypeValue {
        case let .string(s):
            dtypeName = s
        case let .object(members) where members.count == 1 && members[0].1 == .null:
            dtypeName = members[0].0
        default:
            throw invalid("'dtype' is not a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }

        func unsignedIntegers(_ key: String, _ value: JSONValue) throws -> [UInt64] {
            guard let items = value.arrayValue else { throw invalid("'\(key)' is not an array") }
            return try items.map { item in
                guard let u = item.uint64Value else {
                    throw invalid("'\(key)' holds \(item.compactText), not a non-negative integer")
                }
                return u
            }
        }
        let shape = try unsignedIntegers("shape", shapeValue)
        let offsets = try unsignedIntegers("data_offsets", offsetsValue)
        guard offsets.count == 2 else { throw invalid("'data_offsets' must hold [begin, end]") }
        return RawEntry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
    }
}
