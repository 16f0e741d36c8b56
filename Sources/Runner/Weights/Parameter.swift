import EANumerics
import Safetensors

/// One weight as the model sees it: float32 values of a known shape, either owned (decoded, computed or merged)
/// or a view into a mapped checkpoint. F32 views are read in place; other dtypes are decoded at each use,
/// so a BF16 checkpoint is never expanded to F32 as a whole.
public struct Parameter: @unchecked Sendable {
    public enum Source {
        case owned(Tensor)
        case mapped(TensorView)
        /// Weight-only quantized (ComfyUI's layout, as `ea-weights convert` writes it): `weight` I8 with a F32
        /// `scale` per `groupSize`² block (int8_blockwise), or F8_E4M3 with one scalar scale (float8_e4m3fn).
        case quantized(weight: TensorView, scale: [Float], groupSize: Int?)
    }

    public let key: String
    public let shape: [Int]
    public let source: Source

    public init(key: String, tensor: Tensor) {
        self.key = key
        self.shape = tensor.shape
        self.source = .owned(tensor)
    }

    public init(key: String, view: TensorView) {
        self.key = key
        self.shape = view.shape
        self.source = .mapped(view)
    }

    public init(key: String, quantized view: TensorView, scale: [Float], groupSize: Int?) {
        self.key = key
        self.shape = view.shape
        self.source = .quantized(weight: view, scale: scale, groupSize: groupSize)
    }

    public var count: Int { shape.reduce(1, *) }

    /// Calls `body` with the float32 values, valid only inside it.
    public func withFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        switch source {
        case let .owned(t):
            return try t.withUnsafeBufferPointer(body)
        case let .mapped(view):
            if view.dtype == .f32 {
                let direct: R? = try view.withUnsafeBytes { raw -> R? in
                    guard raw.count == 0 || Int(bitPattern: raw.baseAddress) % MemoryLayout<Float>.alignment == 0 else {
                        return nil
                    }
                    return try raw.withMemoryRebound(to: Float.self) { try body($0) }
                }
                if let direct { return direct }
            }
            return try Parameter.decodeInParallel(view).withUnsafeBufferPointer(body)
        case let .quantized(view, scale, groupSize):
            return try Parameter.dequantize(view, scale: scale, groupSize: groupSize).withUnsafeBufferPointer(body)
        }
    }

    /// The values as an owned tensor (a copy for mapped weights).
    public func tensor() -> Tensor {
        switch source {
        case let .owned(t): return t
        case let .mapped(view): return Parameter.decodeInParallel(view)
        case let .quantized(view, scale, groupSize): return Parameter.dequantize(view, scale: scale, groupSize: groupSize)
        }
    }

    /// Decodes a non-F32 weight across the cores: a BF16 matrix of the real T5 is decoded before every matmul.
    /// The buffer comes from the tensor pool, so the same weight decoded at the next step reuses it.
    static func decodeInParallel(_ view: TensorView) -> Tensor {
        let n = view.elementCount
        var decoded = Tensor(uninitialized: view.shape)
        decoded.withUnsafeMutableBufferPointer { out in
            let out = out
            parallelChunks(n, minimumChunk: 1 << 16) { range in
                view.decode(elements: range, into: UnsafeMutableBufferPointer(rebasing: out[range]))
            }
        }
        return decoded
    }

    /// `float(q) × scale`, per block of `groupSize` rows × `groupSize` columns, or with one scalar scale.
    static func dequantize(_ view: TensorView, scale: [Float], groupSize: Int?) -> Tensor {
        var values = decodeInParallel(view)
        let columns = view.shape.count >= 2 ? view.elementCount / view.shape[0] : view.elementCount
        values.withUnsafeMutableBufferPointer { out in
            let out = out
            guard let g = groupSize, g > 0, scale.count > 1 else {
                let s = scale.first ?? 1
                parallelChunks(out.count) { range in for i in range { out[i] *= s } }
                return
            }
            let rows = out.count / columns, blockColumns = columns / g
            parallelChunks(rows, minimumChunk: max(1, 65536 / max(1, columns))) { range in
                for r in range {
                    let row = out.baseAddress! + r * columns
                    let scaleRow = (r / g) * blockColumns
                    for c in 0..<columns { row[c] *= scale[scaleRow + c / g] }
                }
            }
        }
        return values
    }
}
