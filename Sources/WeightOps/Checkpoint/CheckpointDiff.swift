import Safetensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How two checkpoints differ, tensor by tensor: keys on one side only, shape and dtype changes, and for
/// tensors in both the largest absolute and relative difference of their values. Answers "did the LoRA
/// apply?" (which tensors changed, by how much) and "is this conversion lossless?" (all values equal).
/// Works across dtypes (values compared as float32) and across shard layouts (keys, not files, compared).
public struct CheckpointDiff: Sendable, Codable {
    public struct TensorDifference: Sendable, Codable, Equatable {
        public let name: String
        public let dtypeA: String
        public let dtypeB: String
        /// max |a - b|
        public let maxAbs: Float
        /// max |a - b| / max |a| (0 when a is all zeros and b equals it).
        public let maxRelative: Float
        /// Elements whose values differ.
        public let differing: Int
        public let elements: Int
        /// NaN in one side but not the other at the same place.
        public let nanMismatches: Int

        enum CodingKeys: String, CodingKey {
            case name, dtypeA = "dtype_a", dtypeB = "dtype_b", maxAbs = "max_abs", maxRelative = "max_rel"
            case differing, elements, nanMismatches = "nan_mismatches"
        }
    }

    public struct ShapeChange: Sendable, Codable, Equatable {
        public let name: String
        public let shapeA: [Int]
        public let shapeB: [Int]
        enum CodingKeys: String, CodingKey { case name, shapeA = "shape_a", shapeB = "shape_b" }
    }

    public struct DTypeChange: Sendable, Codable, Equatable {
        public let name: String
        public let dtypeA: String
        public let dtypeB: String
        enum CodingKeys: String, CodingKey { case name, dtypeA = "dtype_a", dtypeB = "dtype_b" }
    }

    public let pathA: String
    public let pathB: String
    public var onlyInA: [String] = []
    public var onlyInB: [String] = []
    public var shapeChanges: [ShapeChange] = []
    public var dtypeChanges: [DTypeChange] = []
    /// Same bytes (same dtype, same shape, same data).
    public var identical: Int = 0
    /// Different dtypes but equal values as float32 (a lossless conversion).
    public var equalValues: Int = 0
    /// Tensors whose values differ, largest difference first.
    public var changed: [TensorDifference] = []
    /// Tensors in both with a non-floating dtype whose bytes differ and cannot be compared as values.
    public var incomparable: [String] = []
    /// Quantized layers (per ComfyUI's `_quantization_metadata`) compared after dequantization, per side.
    public var dequantizedA = 0
    public var dequantizedB = 0

    enum CodingKeys: String, CodingKey {
        case pathA = "a", pathB = "b", onlyInA = "only_in_a", onlyInB = "only_in_b", shapeChanges = "shape_changes"
        case dtypeChanges = "dtype_changes", identical, equalValues = "equal_values", changed, incomparable
        case dequantizedA = "dequantized_a", dequantizedB = "dequantized_b"
    }

    /// Opens both paths (files, folders, indexes) and compares them.
    public static func run(_ a: String, _ b: String) throws -> CheckpointDiff {
        try CheckpointDiff(WeightFiles.locate(a).open().dict, WeightFiles.locate(b).open().dict)
    }

    /// A side of the comparison: its tensors, with quantized layers seen through their dequantized values.
    struct Side {
        let dict: any StateDict
        let quantized: [String: QuantizationMetadata.Layer]

        init(_ dict: any StateDict) throws {
            self.dict = dict
            var layers: [String: QuantizationMetadata.Layer] = [:]
            if let union = dict as? StateDictUnion {
                for part in union.parts {
                    layers.merge(try QuantizationMetadata(metadata: part.metadata, path: part.path)?.layers ?? [:]) { a, _ in a }
                }
            } else {
                layers = try QuantizationMetadata(metadata: dict.metadata, path: dict.path)?.layers ?? [:]
            }
            quantized = layers
        }

        /// Model keys: the quantization scales are part of their weight, not tensors of their own.
        var keys: [String] {
            dict.keys.filter { key in
                guard key.hasSuffix(".weight_scale") else { return true }
                return quantized[String(key.dropLast(".weight_scale".count))] == nil
            }
        }

        func layer(of key: String) -> QuantizationMetadata.Layer? {
            key.hasSuffix(".weight") ? quantized[String(key.dropLast(".weight".count))] : nil
        }

        /// The float32 values of a quantized weight.
        func dequantized(_ key: String, _ layer: QuantizationMetadata.Layer) throws -> [Float] {
            let name = String(key.dropLast(".weight".count))
            let q = try dict.tensor(key), scale = try dict.tensor(name + ".weight_scale").toFloat32()
            switch layer.format {
            case .int8Blockwise:
                guard q.shape.count == 2, let g = layer.groupSize, g > 0, q.shape[0] % g == 0, q.shape[1] % g == 0,
                      scale.count == (q.shape[0] / g) * (q.shape[1] / g) else {
                    throw WeightOpsError.invalidInput(path: dict.path, reason: "quantized layer '\(name)' has inconsistent shapes")
                }
                return Quantizer.dequantizeInt8Blockwise(q.copyBytes().map { Int8(bitPattern: $0) }, rows: q.shape[0],
                                                         cols: q.shape[1], scale: scale, groupSize: g)
            case .float8E4M3FN:
                guard scale.count == 1 else {
                    throw WeightOpsError.invalidInput(path: dict.path, reason: "fp8 layer '\(name)' needs one weight_scale")
                }
                return Quantizer.dequantizeFloat8E4M3(q.copyBytes(), scale: scale[0])
            }
        }
    }

    /// True when every tensor is in both with equal values (dtypes may differ).
    public var sameValues: Bool {
        onlyInA.isEmpty && onlyInB.isEmpty && shapeChanges.isEmpty && changed.isEmpty && incomparable.isEmpty
    }

    /// Elements compared per step: memory stays at two float32 chunks whatever the tensor sizes.
    static let chunkElements = 1 << 20

    public init(_ a: any StateDict, _ b: any StateDict, progress: ((Int, Int) -> Void)? = nil) throws {
        pathA = a.path
        pathB = b.path
        let sideA = try Side(a), sideB = try Side(b)
        let listA = sideA.keys, listB = sideB.keys
        let keysA = Set(listA), keysB = Set(listB)
        onlyInA = listA.filter { !keysB.contains($0) }
        onlyInB = listB.filter { !keysA.contains($0) }
        let common = listA.filter(keysB.contains)
        var bufferA = [Float](repeating: 0, count: CheckpointDiff.chunkElements)
        var bufferB = [Float](repeating: 0, count: CheckpointDiff.chunkElements)
        for (i, key) in common.enumerated() {
            progress?(i, common.count)
            let ta = try a.tensor(key), tb = try b.tensor(key)
            defer {
                ta.releaseMapping()
                tb.releaseMapping()
            }
            if ta.shape != tb.shape {
                shapeChanges.append(ShapeChange(name: key, shapeA: ta.shape, shapeB: tb.shape))
                continue
            }
            let layerA = sideA.layer(of: key), layerB = sideB.layer(of: key)
            if layerA != nil || layerB != nil {
                if ta.dtype != tb.dtype {
                    dtypeChanges.append(DTypeChange(name: key, dtypeA: ta.dtype.rawValue, dtypeB: tb.dtype.rawValue))
                }
                let va = try layerA.map { try sideA.dequantized(key, $0) } ?? ta.toFloat32()
                let vb = try layerB.map { try sideB.dequantized(key, $0) } ?? tb.toFloat32()
                if layerA != nil { dequantizedA += 1 }
                if layerB != nil { dequantizedB += 1 }
                record(CheckpointDiff.compare(name: key, dtypes: (ta.dtype, tb.dtype), va, vb))
                continue
            }
            if ta.dtype != tb.dtype {
                dtypeChanges.append(DTypeChange(name: key, dtypeA: ta.dtype.rawValue, dtypeB: tb.dtype.rawValue))
            } else if CheckpointDiff.sameBytes(ta, tb) {
                identical += 1
                continue
            }
            guard ta.dtype.isFloatingPoint || tb.dtype.isFloatingPoint || ta.dtype != tb.dtype else {
                incomparable.append(key)
                continue
            }
            record(CheckpointDiff.compare(ta, tb, bufferA: &bufferA, bufferB: &bufferB))
        }
        changed.sort { ($0.maxAbs, $1.name) > ($1.maxAbs, $0.name) }
    }

    private mutating func record(_ d: TensorDifference) {
        if d.differing == 0 && d.nanMismatches == 0 { equalValues += 1 } else { changed.append(d) }
    }

    static func sameBytes(_ a: TensorView, _ b: TensorView) -> Bool {
        a.withUnsafeBytes { ra in
            b.withUnsafeBytes { rb in
                guard ra.count == rb.count else { return false }
                guard let pa = ra.baseAddress, let pb = rb.baseAddress else { return true }
                return memcmp(pa, pb, ra.count) == 0
            }
        }
    }

    /// Running maxima over chunks of values.
    struct Accumulator {
        var maxAbs: Float = 0, maxA: Float = 0
        var differing = 0, nanMismatches = 0

        mutating func add(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) {
            for i in 0..<a.count {
                let x = a[i], y = b[i]
                if x.isNaN || y.isNaN {
                    if x.isNaN != y.isNaN { nanMismatches += 1 }
                    continue
                }
                maxA = max(maxA, abs(x))
                // Equal infinities are equal; x - y would be NaN.
                if x == y { continue }
                differing += 1
                maxAbs = max(maxAbs, abs(x - y))
            }
        }

        func result(name: String, dtypes: (DType, DType), elements: Int) -> TensorDifference {
            let rel: Float = maxA > 0 ? maxAbs / maxA : (maxAbs > 0 ? .infinity : 0)
            return TensorDifference(name: name, dtypeA: dtypes.0.rawValue, dtypeB: dtypes.1.rawValue, maxAbs: maxAbs,
                                    maxRelative: rel, differing: differing, elements: elements, nanMismatches: nanMismatches)
        }
    }

    /// Value comparison in chunks of float32.
    static func compare(_ a: TensorView, _ b: TensorView, bufferA: inout [Float], bufferB: inout [Float]) -> TensorDifference {
        let n = a.elementCount
        var acc = Accumulator()
        var start = 0
        while start < n {
            let count = min(chunkElements, n - start)
            decodeChunk(a, start: start, count: count, into: &bufferA)
            decodeChunk(b, start: start, count: count, into: &bufferB)
            bufferA.withUnsafeBufferPointer { pa in
                bufferB.withUnsafeBufferPointer { pb in
                    acc.add(UnsafeBufferPointer(rebasing: pa[0..<count]), UnsafeBufferPointer(rebasing: pb[0..<count]))
                }
            }
            start += count
        }
        return acc.result(name: a.name, dtypes: (a.dtype, b.dtype), elements: n)
    }

    static func compare(name: String, dtypes: (DType, DType), _ a: [Float], _ b: [Float]) -> TensorDifference {
        var acc = Accumulator()
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in acc.add(pa, pb) } }
        return acc.result(name: name, dtypes: dtypes, elements: a.count)
    }

    static func decodeChunk(_ t: TensorView, start: Int, count: Int, into buffer: inout [Float]) {
        let size = t.dtype.size
        t.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[(start * size)..<((start + count) * size)])
            buffer.withUnsafeMutableBufferPointer { out in
                DTypeConversion.decode(bytes, dtype: t.dtype, into: UnsafeMutableBufferPointer(rebasing: out[0..<count]))
            }
        }
    }

    /// Plain-text lines for a terminal; `limit` changed tensors are listed.
    public func lines(limit: Int = 20) -> [String] {
        var out: [String] = []
        out.append("A: \(pathA)")
        out.append("B: \(pathB)")
        let common = identical + equalValues + changed.count + incomparable.count + shapeChanges.count
        out.append("\(common) tensor(s) in both: \(identical) identical, \(equalValues) equal in value across dtypes, "
                   + "\(changed.count) changed" + (shapeChanges.isEmpty ? "" : ", \(shapeChanges.count) reshaped")
                   + (incomparable.isEmpty ? "" : ", \(incomparable.count) differing non-float"))
        func list(_ title: String, _ names: [String]) {
            guard !names.isEmpty else { return }
            out.append("\(title): \(names.count)")
            for n in names.prefix(limit) { out.append("  \(n)") }
            if names.count > limit { out.append("  … and \(names.count - limit) more") }
        }
        if dequantizedA + dequantizedB > 0 {
            out.append("dequantized before comparing: \(dequantizedA) layer(s) of A, \(dequantizedB) of B")
        }
        list("only in A", onlyInA)
        list("only in B", onlyInB)
        for s in shapeChanges.prefix(limit) { out.append("shape: \(s.name) \(s.shapeA) -> \(s.shapeB)") }
        if !dtypeChanges.isEmpty {
            var pairs: [String: Int] = [:]
            for d in dtypeChanges { pairs["\(d.dtypeA) -> \(d.dtypeB)", default: 0] += 1 }
            out.append("dtype changes: " + pairs.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        }
        if !changed.isEmpty {
            out.append("changed tensors (largest first): max abs / max rel / differing elements")
            for d in changed.prefix(limit) {
                out.append("  \(d.name): \(d.maxAbs) / \(d.maxRelative) / \(d.differing) of \(d.elements)"
                           + (d.nanMismatches > 0 ? ", \(d.nanMismatches) NaN mismatch(es)" : ""))
            }
            if changed.count > limit { out.append("  … and \(changed.count - limit) more") }
        }
        out.append(sameValues ? "same values" : "different")
        return out
    }
}
