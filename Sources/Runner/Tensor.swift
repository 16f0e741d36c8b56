/// A dense row-major float32 tensor owned by the runner (activations, decoded weights).
/// Value semantics (copy-on-write); kernels reach the storage only through the scoped accessors below.
public struct Tensor: Sendable {
    public private(set) var shape: [Int]
    public var storage: [Float]

    public init(shape: [Int], storage: [Float]) {
        precondition(shape.reduce(1, *) == storage.count, "shape \(shape) does not match \(storage.count) elements")
        self.shape = shape
        self.storage = storage
    }

    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        var newShape = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            newShape[inferred] = known == 0 ? 0 : count / known
        }
        return Tensor(shape: newShape, storage: storage)
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer(body)
    }

    /// Largest absolute difference to `other` (shapes must hold the same number of elements).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(count == other.count)
        var m: Float = 0
        for i in 0..<count {
            let d = abs(storage[i] - other.storage[i])
            if d > m || d.isNaN { m = d.isNaN ? .infinity : d }
        }
        return m
    }

    /// Slices along the first axis: rows `range` of a [N, ...] tensor.
    public func slice(first range: Range<Int>) -> Tensor {
        let inner = shape.dropFirst().reduce(1, *)
        return Tensor(shape: [range.count] + shape.dropFirst(),
                      storage: Array(storage[(range.lowerBound * inner)..<(range.upperBound * inner)]))
    }

    /// Concatenates tensors of equal trailing shape along the first axis.
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        guard let first = parts.first else { return Tensor(zeros: [0]) }
        let tail = Array(first.shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == tail })
        return Tensor(shape: [parts.reduce(0) { $0 + $1.shape[0] }] + tail, storage: parts.flatMap(\.storage))
    }
}
