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

    enum CodingKeys: String, CodingKey {
        case pathA = "a", pathB = "b", onlyInA = "only_in_a", onlyInB = "only_in_b", shapeChanges = "shape_changes"
        case dtypeChanges = "dtype_changes", identical, equalValues = "equal_values", changed, incomparable
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
        let keysB = Set(b.keys)
        let keysA = Set(a.keys)
        onlyInA = a.keys.filter { !keysB.contains($0) }
        onlyInB = b.keys.filter { !keysA.contains($0) }
        let common = a.keys.filter(keysB.contains)
        var bufferA = [Float](repeating: 0, count: CheckpointDiff.chunkElements)
        var bufferB = [Float](repeating: 0, count: CheckpointDiff.chunkElements)
        for (i, key) in common.enumerated() {
            progress?(i, common.count)
            let ta = try a.tensor(key), tb = try b.tensor(key)
            if ta.shape != tb.shape {
                shapeChanges.append(ShapeChange(name: key, shapeA: ta.shape, shapeB: tb.shape))
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
            let d = CheckpointDiff.compare(ta, tb, bufferA: &bufferA, bufferB: &bufferB)
            if d.differing == 0 && d.nanMismatches == 0 {
                equalValues += 1
            } else {
                changed.append(d)
            }
        }
        changed.sort { ($0.maxAbs, $1.name) > ($1.maxAbs, $0.name) }
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

    /// Value comparison in chunks of float32.
    static func compare(_ a: TensorView, _ b: TensorView, bufferA: inout [Float], bufferB: inout [Float]) -> TensorDifference {
        let n = a.elementCount
        var maxAbs: Float = 0, maxA: Float = 0
        var differing = 0, nanMismatches = 0
        var start = 0
        while start < n {
            let count = min(chunkElements, n - start)
            decodeChunk(a, start: start, count: count, into: &bufferA)
            decodeChunk(b, start: start, count: count, into: &bufferB)
            for i in 0..<count {
                let x = bufferA[i], y = bufferB[i]
                if x.isNaN || y.isNaN {
                    if x.isNaN != y.isNaN { nanMismatches += 1 }
                    continue
                }
                // Equal infinities are equal; x - y would be NaN.
                if x == y { maxA = max(maxA, abs(x)); continue }
                differing += 1
                maxA = max(maxA, abs(x))
                maxAbs = max(maxAbs, abs(x - y))
            }
            start += count
        }
        let rel: Float = maxA > 0 ? maxAbs / maxA : (maxAbs > 0 ? .infinity : 0)
        return TensorDifference(name: a.name, dtypeA: a.dtype.rawValue, dtypeB: b.dtype.rawValue, maxAbs: maxAbs,
                                maxRelative: rel, differing: differing, elements: n, nanMismatches: nanMismatches)
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
