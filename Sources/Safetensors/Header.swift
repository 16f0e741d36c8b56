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
    /// Byte length of the JSON header (without the 8-byte length prefix).
    public let headerLength: Int
    /// Absolute file offset where the data section starts.
    public var dataStart: Int { 8 + headerLength }

    /// Parses and validates the header of a whole file's bytes (only the first `8 + n` bytes are read,
    /// `fileSize` is used for the bounds), with the same verdicts as the reference Rust implementation.
    public static func parse(prefix: UnsafeRawBufferPointer, fileSize: Int, path: String) throws -> Header {
        guard fileSize >= 8, prefix.count >= 8 else {
            throw SafetensorsError.headerTooSmall(path: path, fileSize: fileSize)
        }
        var declared: UInt64 = 0
        for i in (0..<8).reversed() { declared = declared << 8 | UInt64(prefix[i]) }
        guard declared <= maxHeaderBytes else { throw SafetensorsError.headerTooLarge(path: path, bytes: declared) }
        let n = Int(declared)
        guard 8 + n <= fileSize, 8 + n <= prefix.count else {
            throw SafetensorsError.invalidHeaderLength(path: path, declared: declared, fileSize: fileSize)
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

    static func validate(json: JSONValue, headerLength: Int, dataSize: Int, path: String) throws -> Header {
        guard let members = json.objectValue else {
            throw SafetensorsError.invalidJSON(path: path, reason: "the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var metadataOrder: [String] = []
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(members.count)
        for (key, value) in members {
            if key == "__metadata__" {
                guard let entries = value.objectValue else {
                    throw SafetensorsError.invalidMetadata(path: path, reason: "is not an object of strings")
                }
                for (k, v) in entries {
                    guard let s = v.stringValue else {
                        throw SafetensorsError.invalidMetadata(path: path, reason: "value of '\(k)' is not a string")
                    }
                    metadata[k] = s
                    metadataOrder.append(k)
                }
                continue
            }
            tensors.append(try tensorInfo(name: key, value, path: path))
        }

        // Sorted by offsets, the tensors must tile the data section exactly: from 0, no holes, no overlaps.
        tensors.sort { ($0.dataBegin, $0.dataEnd) < ($1.dataBegin, $1.dataEnd) }
        var end = 0
        for t in tensors {
            guard t.dataBegin == end else {
                let why = t.dataBegin < end ? "overlaps the previous tensor (begins at \(t.dataBegin), previous ends at \(end))"
                                            : "leaves a hole (begins at \(t.dataBegin), previous ends at \(end))"
                throw SafetensorsError.invalidOffsets(path: path, tensor: t.name, reason: why)
            }
            end = t.dataEnd
        }
        guard end == dataSize else {
            throw SafetensorsError.incompleteBuffer(path: path, dataEnd: end, dataSize: dataSize)
        }
        return Header(tensors: tensors, metadata: metadata, metadataOrder: metadataOrder, headerLength: headerLength)
    }

    private static func tensorInfo(name: String, _ value: JSONValue, path: String) throws -> TensorInfo {
        guard let fields = value.objectValue else {
            throw SafetensorsError.invalidTensorEntry(path: path, tensor: name, reason: "entry is not an object")
        }
        func field(_ key: String) throws -> JSONValue {
            guard let v = fields.first(where: { $0.0 == key })?.1 else {
                throw SafetensorsError.invalidTensorEntry(path: path, tensor: name, reason: "missing '\(key)'")
            }
            return v
        }
        guard let dtypeName = try field("dtype").stringValue else {
            throw SafetensorsError.invalidTensorEntry(path: path, tensor: name, reason: "'dtype' is not a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        func nonNegativeInts(_ key: String) throws -> [Int] {
            guard let items = try field(key).arrayValue else {
                throw SafetensorsError.invalidTensorEntry(path: path, tensor: name, reason: "'\(key)' is not an array")
            }
            return try items.map { item in
                guard let i = item.intValue, i >= 0 else {
                    throw SafetensorsError.invalidTensorEntry(
                        path: path, tensor: name, reason: "'\(key)' holds \(item.compactText), not a non-negative integer")
                }
                return Int(i)
            }
        }
        let shape = try nonNegativeInts("shape")
        let offsets = try nonNegativeInts("data_offsets")
        guard offsets.count == 2 else {
            throw SafetensorsError.invalidTensorEntry(path: path, tensor: name, reason: "'data_offsets' must hold [begin, end]")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw SafetensorsError.invalidOffsets(path: path, tensor: name, reason: "begin \(begin) is after end \(end)")
        }
        var bytes = dtype.size
        for d in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
            guard !overflow else { throw SafetensorsError.shapeOverflow(path: path, tensor: name) }
            bytes = product
        }
        guard end - begin == bytes else {
            throw SafetensorsError.sizeMismatch(path: path, tensor: name, expected: bytes, actual: end - begin)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataBegin: begin, dataEnd: end)
    }
}
