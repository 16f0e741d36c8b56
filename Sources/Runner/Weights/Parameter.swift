import Safetensors

/// One weight as the model sees it: float32 values of a known shape, either owned (decoded, computed or merged)
/// or a view into a mapped checkpoint. F32 views are read in place; other dtypes are decoded at each use,
/// so a BF16 checkpoint is never expanded to F32 as a whole.
public struct Parameter: @unchecked Sendable {
    public enum Source {
        case owned(Tensor)
        case mapped(TensorView)
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
            let decoded = Parameter.decodeInParallel(view)
            return try decoded.withUnsafeBufferPointer(body)
        }
    }

    /// The values as an owned tensor (a copy for mapped weights).
    public func tensor() -> Tensor {
        switch source {
        case let .owned(t): return t
        case let .mapped(view): return Tensor(shape: view.shape, storage: Parameter.decodeInParallel(view))
        }
    }

    /// Decodes a non-F32 weight across the cores: a BF16 matrix of the real T5 is decoded before every matmul.
    static func decodeInParallel(_ view: TensorView) -> [Float] {
        let n = view.elementCount
        return [Float](unsafeUninitializedCapacity: n) { out, count in
            let out = out
            parallelChunks(n, minimumChunk: 1 << 16) { range in
                view.decode(elements: range, into: UnsafeMutableBufferPointer(rebasing: out[range]))
            }
            count = n
        }
    }
}
