import EANumerics

extension Kernels {
    /// Returns `x` with its axes permuted (like `torch.permute(...).contiguous()`).
    public static func permute(_ x: Tensor, _ axes: [Int]) -> Tensor {
        precondition(axes.sorted() == Array(0..<x.rank), "permute: bad axes \(axes) for \(x.shape)")
        let outShape = axes.map { x.shape[$0] }
        var inStrides = [Int](repeating: 1, count: x.rank)
        for i in stride(from: x.rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] }
        let strides = axes.map { inStrides[$0] }
        var out = Tensor(uninitialized: outShape)   // every element is copied from x
        guard x.count > 0 else { return out }
        let rank = outShape.count
        let inner = outShape[rank - 1], innerStride = strides[rank - 1]
        let outerCount = x.count / inner
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let (src, dst) = (src, dst)
                parallelChunks(outerCount, minimumChunk: max(1, 16384 / max(1, inner))) { range in
                    var index = [Int](repeating: 0, count: rank)
                    // Decompose the first outer row index into coordinates, then step like an odometer.
                    var rem = range.lowerBound
                    for axis in stride(from: rank - 2, through: 0, by: -1) {
                        index[axis] = rem % outShape[axis]
                        rem /= outShape[axis]
                    }
                    for row in range {
                        var offset = 0
                        for axis in 0..<(rank - 1) { offset += index[axis] * strides[axis] }
                        let o = dst.baseAddress! + row * inner
                        if innerStride == 1 {
                            for i in 0..<inner { o[i] = src[offset + i] }
                        } else {
                            for i in 0..<inner { o[i] = src[offset + i * innerStride] }
                        }
                        var axis = rank - 2
                        while axis >= 0 {
                            index[axis] += 1
                            if index[axis] < outShape[axis] { break }
                            index[axis] = 0
                            axis -= 1
                        }
                    }
                }
            }
        }
        return out
    }

    /// Nearest-neighbour 2× upsampling of [N, C, H, W] (PyTorch `interpolate(scale_factor=2, mode="nearest")`).
    public static func upsampleNearest2x(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out = Tensor(uninitialized: [n, c, 2 * h, 2 * w])   // every element is copied from x
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let (src, dst) = (src, dst)
                parallelFor(n * c) { plane in
                    let s = src.baseAddress! + plane * h * w
                    let d = dst.baseAddress! + plane * 4 * h * w
                    for y in 0..<(2 * h) {
                        let srow = s + (y / 2) * w
                        let drow = d + y * 2 * w
                        for xx in 0..<(2 * w) { drow[xx] = srow[xx / 2] }
                    }
                }
            }
        }
        return out
    }
}
