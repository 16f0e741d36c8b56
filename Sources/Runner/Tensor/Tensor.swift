/// A dense row-major float32 tensor owned by the runner (activations, decoded weights).
/// Value semantics (copy-on-write); kernels reach the elements only through the scoped accessors below. The
/// elements live in a buffer from `BufferPool.current`, which goes back to its pool when the last copy of the
/// tensor is gone, so the next step's tensor of the same size reuses it.
public struct Tensor: Sendable {
    public private(set) var shape: [Int]
    private var box: TensorStorage

    /// A tensor whose elements the caller is about to overwrite, every one of them: only for kernels that do.
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        box = TensorStorage(uninitializedCount: shape.reduce(1, *), pool: BufferPool.current)
    }

    public init(shape: [Int], storage: [Float]) {
        precondition(shape.reduce(1, *) == storage.count, "shape \(shape) does not match \(storage.count) elements")
        self.init(uninitialized: shape)
        storage.withUnsafeBufferPointer { source in
            if let from = source.baseAddress, let to = box.buffer.baseAddress { to.update(from: from, count: source.count) }
        }
    }

    public init(zeros shape: [Int]) {
        self.init(repeating: 0, shape: shape)
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        box.buffer.update(repeating: value)
    }

    /// The elements as an array: a copy, for tests and small tensors. Kernels use the buffer accessors.
    public var storage: [Float] {
        get { Array(box.buffer) }
        set {
            precondition(newValue.count == count, "storage of \(newValue.count) elements for shape \(shape)")
            withUnsafeMutableBufferPointer { buffer in
                newValue.withUnsafeBufferPointer { source in
                    if let from = source.baseAddress, let to = buffer.baseAddress { to.update(from: from, count: source.count) }
                }
            }
        }
    }

    public var count: Int { box.buffer.count }
    public var rank: Int { shape.count }

    /// The same elements seen with another shape (shared, no copy); one -1 entry is inferred.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var newShape = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            newShape[inferred] = known == 0 ? 0 : count / known
        }
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var other = self
        other.shape = newShape
        return other
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(box.buffer))
    }

    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&box) { box = box.copy() }
        var buffer = box.buffer
        let result = try body(&buffer)
        precondition(buffer.baseAddress == box.buffer.baseAddress && buffer.count == box.buffer.count,
                     "withUnsafeMutableBufferPointer: the buffer must not be replaced")
        return result
    }

    /// Largest absolute difference to `other` (shapes must hold the same number of elements).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(count == other.count)
        return withUnsafeBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                var m: Float = 0
                for i in 0..<a.count {
                    let d = abs(a[i] - b[i])
                    if d > m || d.isNaN { m = d.isNaN ? .infinity : d }
                }
                return m
            }
        }
    }

    /// The same values in a buffer of their own (a copy made now rather than at the first write).
    public func copy() -> Tensor {
        var other = self
        other.box = box.copy()
        return other
    }

    /// Slices along the first axis: rows `range` of a [N, ...] tensor.
    public func slice(first range: Range<Int>) -> Tensor {
        let inner = shape.dropFirst().reduce(1, *)
        var out = Tensor(uninitialized: [range.count] + shape.dropFirst())
        withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                guard let from = source.baseAddress, let to = destination.baseAddress else { return }
                to.update(from: from + range.lowerBound * inner, count: range.count * inner)
            }
        }
        return out
    }

    /// Concatenates tensors of equal trailing shape along the first axis.
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        guard let first = parts.first else { return Tensor(zeros: [0]) }
        let tail = Array(first.shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == tail })
        var out = Tensor(uninitialized: [parts.reduce(0) { $0 + $1.shape[0] }] + tail)
        out.withUnsafeMutableBufferPointer { destination in
            var offset = 0
            for part in parts {
                part.withUnsafeBufferPointer { source in
                    if let from = source.baseAddress, let to = destination.baseAddress {
                        (to + offset).update(from: from, count: source.count)
                    }
                    offset += source.count
                }
            }
        }
        return out
    }
}
