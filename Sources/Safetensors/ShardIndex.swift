/// A `*.safetensors.index.json`: which shard file holds each tensor, plus the checkpoint's metadata
/// (`{"metadata": {"total_size": N}, "weight_map": {name: file}}`, as transformers and diffusers write it).
public struct ShardIndex: Sendable, Equatable {
    /// The index's `metadata` object, members in file order (transformers writes only `total_size`).
    public var metadata: [(String, JSONValue)]
    /// Tensor name → shard file name (relative to the index's folder).
    public var weightMap: [String: String]

    public init(totalSize: Int, weightMap: [String: String]) {
        self.metadata = [("total_size", .integer(Int64(totalSize)))]
        self.weightMap = weightMap
    }

    public init(metadata: [(String, JSONValue)], weightMap: [String: String]) {
        self.metadata = metadata
        self.weightMap = weightMap
    }

    public static func == (a: ShardIndex, b: ShardIndex) -> Bool {
        JSONValue.object(a.metadata) == JSONValue.object(b.metadata) && a.weightMap == b.weightMap
    }

    /// `metadata.total_size` when present and an integer.
    public var totalSize: Int? {
        metadata.first(where: { $0.0 == "total_size" })?.1.intValue.map { Int($0) }
    }

    /// The shard file names, each once, sorted.
    public var shardFiles: [String] {
        Set(weightMap.values).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Reads and checks an index file: a JSON object whose `weight_map` maps names to file names in the same
    /// folder; `metadata`, if present, must be an object.
    public init(path: String) throws {
        let bytes = try SmallFile.read(path)
        func invalid(_ reason: String) -> SafetensorsError { SafetensorsError.invalidIndex(path: path, reason: reason) }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw invalid("not UTF-8 text") }
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch let e as JSONParseError {
            if let what = FailedDownload.describe(bytes, size: bytes.count), !what.hasPrefix("a JSON") {
                throw SafetensorsError.notWeights(path: path, what: what)
            }
            throw invalid("not valid JSON: \(e.description)")
        }
        guard json.objectValue != nil else { throw invalid("not a JSON object") }
        guard let map = json["weight_map"] else { throw invalid("no 'weight_map'") }
        guard let entries = map.objectValue else { throw invalid("'weight_map' is not an object") }
        var weightMap: [String: String] = [:]
        for (name, value) in entries {
            guard let file = value.stringValue else { throw invalid("'weight_map' entry '\(name)' is not a file name") }
            guard !file.isEmpty, !file.contains("/"), file != ".", file != ".." else {
                throw invalid("'weight_map' entry '\(name)' names '\(file)', not a file in the index's folder")
            }
            weightMap[name] = file
        }
        var metadata: [(String, JSONValue)] = []
        if let m = json["metadata"] {
            switch m {
            case .null: break
            case let .object(members): metadata = members
            default: throw invalid("'metadata' is not an object")
            }
        }
        self.init(metadata: metadata, weightMap: weightMap)
    }

    /// The file's bytes as transformers' `save_pretrained` writes them:
    /// `json.dumps(index, indent=2, sort_keys=True) + "\n"`.
    public func encoded() -> [UInt8] {
        let weights = weightMap.map { ($0.key, JSONValue.string($0.value)) }
        let root = JSONValue.object([("metadata", .object(metadata)), ("weight_map", .object(weights))])
        var out = ""
        PythonJSON.write(root, indent: 0, into: &out)
        out += "\n"
        return Array(out.utf8)
    }
}

/// Python's `json.dumps(value, indent=2, sort_keys=True)` with its defaults (`ensure_ascii=True`,
/// separators `,` and `: `), for files that must match what transformers writes byte for byte.
enum PythonJSON {
    static func write(_ value: JSONValue, indent: Int, into out: inout String) {
        switch value {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .integer(i): out += String(i)
        case let .unsignedInteger(u): out += String(u)
        case let .number(d): out += pythonFloat(d)
        case let .string(s): JSONValue.writeString(s, into: &out, asciiOnly: true)
        case let .array(items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                out += i == 0 ? "\n" : ",\n"
                out += String(repeating: " ", count: indent + 2)
                write(item, indent: indent + 2, into: &out)
            }
            out += "\n" + String(repeating: " ", count: indent) + "]"
        case let .object(members):
            guard !members.isEmpty else { out += "{}"; return }
            // Python sorts str keys by code point, which is UTF-8 byte order.
            let sorted = members.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            out += "{"
            for (i, (key, item)) in sorted.enumerated() {
                out += i == 0 ? "\n" : ",\n"
                out += String(repeating: " ", count: indent + 2)
                JSONValue.writeString(key, into: &out, asciiOnly: true)
                out += ": "
                write(item, indent: indent + 2, into: &out)
            }
            out += "\n" + String(repeating: " ", count: indent) + "}"
        }
    }

    /// `float.__repr__` for the common cases (integral values keep a `.0`).
    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return "\(d)"
    }
}
