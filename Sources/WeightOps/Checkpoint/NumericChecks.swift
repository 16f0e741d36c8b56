/// Whole-buffer checks used on every computed tensor, written so the compiler vectorizes them.
enum NumericChecks {
    /// Number of NaN or infinite values (exponent bits all ones), counted on the bit patterns: integer
    /// compares and adds, which vectorize with the baseline instruction set (SIMD16<Float> does not).
    static func nonFiniteCount(_ x: UnsafeBufferPointer<Float>) -> Int {
        var count = 0
        var start = 0
        // Int32 partial counts over blocks, so the loop stays in 32-bit lanes.
        while start < x.count {
            let end = min(x.count, start + (1 << 20))
            var block: Int32 = 0
            for i in start..<end { block &+= (x[i].bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
            count += Int(block)
            start = end
        }
        return count
    }

    /// Largest |x| (NaN when x holds one), as the largest sign-cleared bit pattern: for floats that are not NaN
    /// the patterns order as the magnitudes do, and integer max vectorizes where float max does not.
    static func maxAbs(_ x: UnsafeBufferPointer<Float>) -> Float {
        var m: Int32 = 0
        for v in x { m = max(m, Int32(bitPattern: v.bitPattern & 0x7FFF_FFFF)) }
        return Float(bitPattern: UInt32(bitPattern: m))
    }
}
