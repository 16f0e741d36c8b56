/// Whole-buffer checks used on every computed tensor, written so the compiler vectorizes them.
enum NumericChecks {
    /// Number of NaN or infinite values. The fast path (`x * 0` summed is NaN iff some x is not finite)
    /// touches each value once with no branches; counting runs only when something is wrong.
    static func nonFiniteCount(_ x: UnsafeBufferPointer<Float>) -> Int {
        var probe = SIMD16<Float>(repeating: 0)
        let n = x.count, blocks = n / 16
        if let base = x.baseAddress {
            let raw = UnsafeRawPointer(base)
            for i in 0..<blocks {
                probe += raw.loadUnaligned(fromByteOffset: i * 64, as: SIMD16<Float>.self) * 0
            }
        }
        var tail: Float = 0
        for i in (blocks * 16)..<n { tail += x[i] * 0 }
        if !probe.sum().isNaN && !tail.isNaN { return 0 }
        var count = 0
        for v in x where !v.isFinite { count += 1 }
        return count
    }

    /// Largest |x|.
    static func maxAbs(_ x: UnsafeBufferPointer<Float>) -> Float {
        var m = SIMD16<Float>(repeating: 0)
        let n = x.count, blocks = n / 16
        if let base = x.baseAddress {
            let raw = UnsafeRawPointer(base)
            for i in 0..<blocks {
                let v = raw.loadUnaligned(fromByteOffset: i * 64, as: SIMD16<Float>.self)
                m = pointwiseMax(m, pointwiseMax(v, -v))
            }
        }
        var r = m.max()
        for i in (blocks * 16)..<n { r = max(r, abs(x[i])) }
        return r
    }
}
