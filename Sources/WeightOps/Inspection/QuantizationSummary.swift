import Safetensors

/// The quantized layers of a checkpoint in the format ComfyUI documents (QUANTIZATION.md): each quantized
/// Linear keeps its `<layer>.weight` in a narrow dtype (I8 for `int8_blockwise`, F8_E4M3 for
/// `float8_e4m3fn`) next to an F32 `<layer>.weight_scale`, and the file's metadata carries
/// `_quantization_metadata` = `{"format_version": "1.0", "layers": {"<layer>": {"format": …, "group_size": …}}}`.
///
/// Files without that metadata are still recognised from the scale tensors (and ComfyUI's per-layer
/// `.comfy_quant` markers), with the format inferred from the weight's dtype and the scale's shape.
public struct QuantizationSummary: Sendable, Codable, Equatable {
    /// "_quantization_metadata", ".comfy_quant tensors" or "weight_scale tensors".
    public var source: String
    public var formatVersion: String?
    /// Quantized layer count and group sizes per format name (`int8_blockwise`, `float8_e4m3fn`, ...).
    public var formats: [String: FormatUsage]
    public var layers: Int

    public struct FormatUsage: Sendable, Codable, Equatable {
        public var layers: Int
        /// Distinct block sizes, for blockwise formats.
        public var groupSizes: [Int]
    }

    public static let metadataKey = "_quantization_metadata"

    /// nil when nothing in `dict` is quantized.
    init?(_ dict: any StateDict, notes: inout [String]) throws {
        var perLayer: [String: (format: String, groupSize: Int?)] = [:]
        if let text = dict.metadata[Self.metadataKey] {
            let json: JSONValue
            do {
                json = try JSONParser.parse(Array(text.utf8))
            } catch {
                throw WeightOpsError.invalidInput(path: dict.path, reason: "metadata \(Self.metadataKey) is not valid JSON (\(error))")
            }
            guard let layers = json["layers"]?.objectValue else {
                throw WeightOpsError.invalidInput(path: dict.path, reason: "metadata \(Self.metadataKey) has no \"layers\" object")
            }
            for (layer, config) in layers {
                guard let format = config["format"]?.stringValue else {
                    throw WeightOpsError.invalidInput(path: dict.path, reason: "\(Self.metadataKey) layer '\(layer)' has no \"format\"")
                }
                perLayer[layer] = (format, config.int("group_size"))
            }
            source = Self.metadataKey
            formatVersion = json["format_version"]?.stringValue
            for layer in perLayer.keys.sorted() where !dict.contains(layer + ".weight") {
                notes.append("\(Self.metadataKey) lists '\(layer)' but the file has no \(layer).weight")
            }
        } else if dict.keys.contains(where: { $0.hasSuffix(".comfy_quant") }) {
            for key in dict.keys where key.hasSuffix(".comfy_quant") {
                let layer = String(key.dropLast(".comfy_quant".count))
                let bytes = try dict.tensor(key).copyBytes()
                let config = try? JSONParser.parse(bytes)
                let inferred = Self.inferFormat(dict, layer: layer)
                perLayer[layer] = (config?["format"]?.stringValue ?? inferred.format, config?.int("group_size") ?? inferred.groupSize)
            }
            source = ".comfy_quant tensors"
            formatVersion = nil
        } else {
            for key in dict.keys where key.hasSuffix(".weight_scale") || key.hasSuffix(".scale_weight") {
                let layer = String(key.dropLast(key.hasSuffix(".weight_scale") ? ".weight_scale".count : ".scale_weight".count))
                guard dict.contains(layer + ".weight") else { continue }
                perLayer[layer] = Self.inferFormat(dict, layer: layer)
            }
            guard !perLayer.isEmpty else {
                if dict.contains("scaled_fp8") {
                    notes.append("has ComfyUI's scaled_fp8 marker but no scale tensors")
                }
                return nil
            }
            source = "weight_scale tensors"
            formatVersion = nil
        }

        var formats: [String: FormatUsage] = [:]
        for (_, entry) in perLayer {
            var usage = formats[entry.format, default: FormatUsage(layers: 0, groupSizes: [])]
            usage.layers += 1
            if let g = entry.groupSize, !usage.groupSizes.contains(g) {
                usage.groupSizes.append(g)
                usage.groupSizes.sort()
            }
            formats[entry.format] = usage
        }
        self.formats = formats
        layers = perLayer.count
    }

    /// The format a quantized weight's dtype and scale shape imply: I8 with an (N/g, K/g) scale is blockwise,
    /// F8 with a scalar scale is per-tensor.
    static func inferFormat(_ dict: any StateDict, layer: String) -> (format: String, groupSize: Int?) {
        guard let weight = dict.info(layer + ".weight") else { return ("unknown", nil) }
        let scale = dict.info(layer + ".weight_scale") ?? dict.info(layer + ".scale_weight")
        switch weight.dtype {
        case .f8e4m3: return ("float8_e4m3fn", nil)
        case .f8e5m2: return ("float8_e5m2", nil)
        case .i8:
            guard let scale else { return ("int8", nil) }
            if scale.elementCount == 1 { return ("int8_tensorwise", nil) }
            if weight.shape.count == 2, scale.shape.count == 2, scale.shape[0] > 0, scale.shape[1] > 0,
               weight.shape[0] % scale.shape[0] == 0 {
                let g = weight.shape[0] / scale.shape[0]
                if weight.shape[1] == scale.shape[1] * g { return ("int8_blockwise", g) }
            }
            return ("int8", nil)
        default:
            return ("scaled " + weight.dtype.rawValue, nil)
        }
    }
}
