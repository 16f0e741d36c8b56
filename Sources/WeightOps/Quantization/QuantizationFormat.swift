import Safetensors

/// Weight-only quantization formats, in the checkpoint format ComfyUI documents (QUANTIZATION.md,
/// comfy/quant_ops.py): a quantized layer `L` stores `L.weight` in the storage dtype and `L.weight_scale`
/// (float32), and the file's metadata has `_quantization_metadata` =
/// `{"format_version": "1.0", "layers": {"L": {"format": "int8_blockwise", "group_size": 128}, …}}`.
public enum QuantizationFormat: String, Sendable, Codable, CaseIterable {
    /// I8 weight, F32 `weight_scale` of shape (N/g, K/g): one absmax/127 scale per g×g block.
    case int8Blockwise = "int8_blockwise"
    /// F8_E4M3 weight, scalar F32 `weight_scale` = absmax/448.
    case float8E4M3FN = "float8_e4m3fn"

    public var storageDType: DType {
        switch self {
        case .int8Blockwise: return .i8
        case .float8E4M3FN: return .f8e4m3
        }
    }

    /// Whether the format's metadata entry carries a `group_size`.
    public var isBlockwise: Bool { self == .int8Blockwise }
}

/// The `_quantization_metadata` entry of a quantized checkpoint's `__metadata__`.
public struct QuantizationMetadata: Sendable, Equatable {
    public static let metadataKey = "_quantization_metadata"
    public static let formatVersion = "1.0"

    public struct Layer: Sendable, Equatable {
        public let format: QuantizationFormat
        public let groupSize: Int?

        public init(format: QuantizationFormat, groupSize: Int? = nil) {
            self.format = format
            self.groupSize = groupSize
        }
    }

    public var formatVersion: String = QuantizationMetadata.formatVersion
    /// Layer name (the weight key without `.weight`) → its format.
    public var layers: [String: Layer] = [:]

    public init(layers: [String: Layer] = [:]) {
        self.layers = layers
    }

    /// Compact JSON with layers sorted by name, as stored in the safetensors metadata.
    public var jsonText: String {
        let entries: [(String, JSONValue)] = layers.keys.sorted().compactMap { name in
            guard let layer = layers[name] else { return nil }
            var fields: [(String, JSONValue)] = [("format", .string(layer.format.rawValue))]
            if let g = layer.groupSize { fields.append(("group_size", .integer(Int64(g)))) }
            return (name, .object(fields))
        }
        return JSONValue.object([("format_version", .string(formatVersion)), ("layers", .object(entries))]).compactText
    }

    /// Reads the entry from a file's metadata; nil when there is none. Unknown formats are an error.
    public init?(metadata: [String: String], path: String) throws {
        guard let text = metadata[QuantizationMetadata.metadataKey] else { return nil }
        let json: JSONValue
        do {
            json = try JSONParser.parse(Array(text.utf8))
        } catch {
            throw WeightOpsError.invalidInput(path: path, reason: "\(QuantizationMetadata.metadataKey) is not valid JSON: \(error)")
        }
        guard let fields = json.objectValue else {
            throw WeightOpsError.invalidInput(path: path, reason: "\(QuantizationMetadata.metadataKey) is not a JSON object")
        }
        var result = QuantizationMetadata()
        if let v = fields.first(where: { $0.0 == "format_version" })?.1.stringValue { result.formatVersion = v }
        for (name, value) in fields.first(where: { $0.0 == "layers" })?.1.objectValue ?? [] {
            guard let entry = value.objectValue,
                  let formatName = entry.first(where: { $0.0 == "format" })?.1.stringValue else {
                throw WeightOpsError.invalidInput(path: path, reason: "quantized layer '\(name)' has no format")
            }
            guard let format = QuantizationFormat(rawValue: formatName) else {
                throw WeightOpsError.invalidInput(
                    path: path, reason: "layer '\(name)' uses quantization format '\(formatName)', which ea-weights does not read "
                        + "(known: \(QuantizationFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let group = entry.first(where: { $0.0 == "group_size" })?.1.intValue.map(Int.init)
            result.layers[name] = Layer(format: format, groupSize: group)
        }
        self = result
    }
}
