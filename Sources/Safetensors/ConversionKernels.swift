import CKernels

/// The loops behind `DTypeConversion`. They call the branch-free `FloatBits` functions from `while` loops with
/// wrapping arithmetic: that shape is what LLVM vectorizes (SSE2 on baseline x86-64; Swift's generic SIMD types
/// were 20× slower here). Pointers are raw and may be unaligned; callers guarantee the counts.
enum ConversionKernels {
    /// Elements per block. The hot loop only ORs a cheap "might have lost something" flag (input outside the
    /// range that converts cleanly); the rare flagged block is then counted exactly from input and output.
    private static let block = 16_384

    @inline(__always)
    private static func flag(_ condition: Bool) -> UInt32 { condition ? 1 : 0 }

    /// Exact counts for `range`, judging each output (`overflowed`, `zero`) against its input.
    private static func recount(_ src: UnsafeRawPointer, _ range: Range<Int>, _ dst: UnsafeMutableRawPointer,
                                overflowed: (UInt32, Int) -> Bool, zero: (Int) -> Bool) -> ConversionStats {
        var stats = ConversionStats.zero
        for i in range {
            let a = src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) & 0x7FFF_FFFF
            if a > 0x7F80_0000 {
                stats.nan += 1
            } else {
                if overflowed(a, i) { stats.overflowed += 1 }
                if a != 0 && zero(i) { stats.underflowed += 1 }
            }
        }
        return stats
    }

    // MARK: float32 → narrow
    //
    // Clean ranges (|x| in (lo, hi), or 0): F16 (2^-25, 65520), BF16 (0x8000 bits, 0x7F7F8000 bits),
    // F8_E4M3 (2^-10, 464], F8_E5M2 (2^-17, 61440). Outside them a value may overflow, underflow or be NaN.

    static func encodeHalf(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) -> ConversionStats {
        var stats = ConversionStats.zero
        var start = 0
        while start < n {
            let end = start + min(block, n - start)
            var suspicious: UInt32 = 0
            var i = start
            while i < end {
                let x = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                dst.storeBytes(of: FloatBits.halfBits(x), toByteOffset: 2 &* i, as: UInt16.self)
                let a = x & 0x7FFF_FFFF
                suspicious |= flag(a &- 1 < 0x3300_0000) | flag(a >= 0x477F_F000)
                i &+= 1
            }
            if suspicious != 0 {
                let h = { (i: Int) in dst.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7FFF }
                stats += recount(src, start..<end, dst, overflowed: { a, i in a < 0x7F80_0000 && h(i) == 0x7C00 },
                                 zero: { h($0) == 0 })
            }
            start = end
        }
        return stats
    }

    static func encodeBFloat16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) -> ConversionStats {
        var stats = ConversionStats.zero
        var start = 0
        while start < n {
            let end = start + min(block, n - start)
            var suspicious: UInt32 = 0
            var i = start
            while i < end {
                let x = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                dst.storeBytes(of: FloatBits.bfloat16Bits(x), toByteOffset: 2 &* i, as: UInt16.self)
                let a = x & 0x7FFF_FFFF
                suspicious |= flag(a &- 1 < 0x8000) | flag(a >= 0x7F7F_8000)
                i &+= 1
            }
            if suspicious != 0 {
                let b = { (i: Int) in dst.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7FFF }
                stats += recount(src, start..<end, dst, overflowed: { a, i in a < 0x7F80_0000 && b(i) == 0x7F80 },
                                 zero: { b($0) == 0 })
            }
            start = end
        }
        return stats
    }

    static func encodeF8E4M3(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) -> ConversionStats {
        var stats = ConversionStats.zero
        var start = 0
        while start < n {
            let end = start + min(block, n - start)
            var suspicious: UInt32 = 0
            var i = start
            while i < end {
                let x = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                dst.storeBytes(of: FloatBits.f8e4m3Bits(x), toByteOffset: i, as: UInt8.self)
                let a = x & 0x7FFF_FFFF
                suspicious |= flag(a &- 1 < 0x3A80_0000) | flag(a > 0x43E8_0000)
                i &+= 1
            }
            if suspicious != 0 {
                let b = { (i: Int) in dst.load(fromByteOffset: i, as: UInt8.self) & 0x7F }
                // No infinity in e4m3fn: ±Inf inputs overflow to NaN as well.
                stats += recount(src, start..<end, dst, overflowed: { _, i in b(i) == 0x7F }, zero: { b($0) == 0 })
            }
            start = end
        }
        return stats
    }

    static func encodeF8E5M2(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) -> ConversionStats {
        var stats = ConversionStats.zero
        var start = 0
        while start < n {
            let end = start + min(block, n - start)
            var suspicious: UInt32 = 0
            var i = start
            while i < end {
                let x = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                dst.storeBytes(of: FloatBits.f8e5m2Bits(x), toByteOffset: i, as: UInt8.self)
                let a = x & 0x7FFF_FFFF
                suspicious |= flag(a &- 1 < 0x3700_0000) | flag(a >= 0x4770_0000)
                i &+= 1
            }
            if suspicious != 0 {
                let b = { (i: Int) in dst.load(fromByteOffset: i, as: UInt8.self) & 0x7F }
                stats += recount(src, start..<end, dst, overflowed: { a, i in a < 0x7F80_0000 && b(i) == 0x7C },
                                 zero: { b($0) == 0 })
            }
            start = end
        }
        return stats
    }

    // MARK: narrow → float32

    /// F16 and BF16 are widened by CKernels (AVX-512 where there is one): the runner widens every BF16 weight of
    /// T5 before each use, and element by element this was a fifth of a real-size step. `dst` must be 4-aligned.
    static func decodeHalf(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) {
        eaw_widen_f16(src, dst.assumingMemoryBound(to: Float.self), n)
    }

    static func decodeBFloat16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) {
        eaw_widen_bf16(src, dst.assumingMemoryBound(to: Float.self), n)
    }

    static func decodeF8E4M3(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) {
        var i = 0
        while i < n {
            let b = src.load(fromByteOffset: i, as: UInt8.self)
            dst.storeBytes(of: FloatBits.floatBits(f8e4m3: b), toByteOffset: 4 &* i, as: UInt32.self)
            i &+= 1
        }
    }

    static func decodeF8E5M2(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) {
        var i = 0
        while i < n {
            let b = src.load(fromByteOffset: i, as: UInt8.self)
            dst.storeBytes(of: FloatBits.floatBits(f8e5m2: b), toByteOffset: 4 &* i, as: UInt32.self)
            i &+= 1
        }
    }
}
