/// Where everything goes in a .safetensors file for a set of tensors, exactly as safetensors' own `save_file`
/// (Rust `serialize_to_file`) lays it out, so that our files hash the same as the reference's:
///
/// - tensors ordered by dtype (U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, F8_E4M3, F8_E5M2, I8, U8, BOOL:
///   the reference's `Dtype` enum order, descending), then by name compared as bytes;
/// - a compact serde_json header: `__metadata__` first, then each tensor as
///   `{"dtype":…,"shape":[…],"data_offsets":[begin,end]}` in that field order;
/// - the header padded with spaces to a multiple of 8 bytes, after its 8-byte little-endian length.
///
/// With more than one metadata entry the reference writes them in its HashMap's (random) order; we sort them by key.
public struct FileLayout: Sendable {
    /// One tensor's header entry, before offsets are assigned.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]

        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    /// Tensors in file order with their offsets in the data section.
    public let tensors: [TensorInfo]
    /// The 8-byte header length followed by the padded JSON header: everything before the tensor data.
    public let prefix: [UInt8]
    /// Bytes of tensor data after the prefix.
    public let dataSize: Int
    public var fileSize: Int { prefix.count + dataSize }

    /// Lays out `entries`; `path` only names the destination in errors (duplicate or reserved names, negative
    /// dimensions, sizes that overflow, a header over the 100,000,000-byte limit).
    public init(_ entries: [Entry], metadata: [String: String]?, path: String) throws {
        var seen = Set<String>()
        for e in entries {
            guard e.name != "__metadata__" else {
                throw SafetensorsError.invalidWrite(path: path, reason: "'__metadata__' cannot be a tensor name")
            }
            guard seen.insert(e.name).inserted else {
                throw SafetensorsError.invalidWrite(path: path, reason: "tensor '\(e.name)' is given twice")
            }
        }
        let ordered = entries.sorted { a, b in
            a.dtype.writeOrder != b.dtype.writeOrder ? a.dtype.writeOrder < b.dtype.writeOrder
                                                     : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(ordered.count)
        var offset = 0
        for e in ordered {
            let bytes = try FileLayout.byteCount(dtype: e.dtype, shape: e.shape, name: e.name, path: path)
            let (end, overflow) = offset.addingReportingOverflow(bytes)
            guard !overflow else {
                throw SafetensorsError.invalidWrite(path: path, reason: "the tensors' total size overflows")
            }
            tensors.append(TensorInfo(name: e.name, dtype: e.dtype, shape: e.shape, dataBegin: offset, dataEnd: end))
            offset = end
        }

        var json = "{"
        var first = true
        if let metadata {
            json += "\"__metadata__\":{"
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (i, key) in keys.enumerated() {
                if i > 0 { json += "," }
                JSONValue.writeString(key, into: &json)
                json += ":"
                JSONValue.writeString(metadata[key] ?? "", into: &json)
            }
            json += "}"
            first = false
        }
        for t in tensors {
            if !first { json += "," }
            first = false
            JSONValue.writeString(t.name, into: &json)
            json += ":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":["
            json += t.shape.map(String.init).joined(separator: ",")
            json += "],\"data_offsets\":[\(t.dataBegin),\(t.dataEnd)]}"
        }
        json += "}"
        var header = Array(json.utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        guard UInt64(header.count) <= Header.maxHeaderBytes else {
            throw SafetensorsError.invalidWrite(
                path: path, reason: "the header would be \(header.count) bytes, over the 100,000,000 safetensors allows")
        }
        var prefix: [UInt8] = []
        prefix.reserveCapacity(8 + header.count)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { prefix.append(contentsOf: $0) }
        prefix.append(contentsOf: header)

        self.tensors = tensors
        self.prefix = prefix
        self.dataSize = offset
    }

    /// product(shape) × dtype size, with overflow and negative dimensions reported against `name`.
    static func byteCount(dtype: DType, shape: [Int], name: String, path: String) throws -> Int {
        var bytes = dtype.size
        for d in shape {
            guard d >= 0 else {
                throw SafetensorsError.invalidWrite(path: path, reason: "tensor '\(name)' has a negative dimension in \(shape)")
            }
            let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
            guard !overflow else { throw SafetensorsError.shapeOverflow(path: path, tensor: name) }
            bytes = product
        }
        return bytes
    }
}
