/// The loops behind `DTypeConversion`. They call the branch-free `FloatBits` functions from `while` loops with
/// wrapping arithmetic and u32 counters: that shape is what LLVM vectorizes (SSE2 on baseline x86-64, about
/// 4 GB/s of float32 input per core; Swift's generic SIMD types were 20× slower here). Pointers are raw and may be
/// unaligned; callers guarantee the counts.
enum ConversionKernels {
    /// Elements per counting block, so the u32 counters never wrap.
    private static let block = 1 << 30

    @inline(__always)
    private static func count(_ condition: Bool) -> UInt32 { condition ? 1 : 0 }

    // MARK: float32 → narrow

    static func encodeHalf(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) -> ConversionStats {
        var stats = ConversionStats.zero
        var start = 0
        while start < n {
            let end = start + min(block, n - start)
            var overflowed: UInt32 = 0, underflowed: UInt32 = 0, nan: UInt32 = 0
            var i = start
            while i < end {
                let x = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                let h = FloatBits.halfBits(x)
                dst.storeBytes(of: h, toByteOffset: 2 &* i, as: UInt16.self)
                let a = x & 0x7FFF_FFFF, m = h & 0x7FFF
                nan &+= count(a > 0x7F80_0000)
                overflowed &+= count(a < 0x7F80_0000) & count(m == 0x7C00)
                underflowed &+= count(a != 0) & count(m == 0)
                i &+= 1
            }
            stats += ConversionStats(overflowed: Int(overflowed), underflowed: Int(underflowed), nan: Int(nan))
            start = end
        }
        return stats
    }

    static func encodeBFloat16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) -> ConversionStats {
        var stats = ConversionStats.zero
        var start = 0
        while start < n {
            let end = start + min(block, n - start)
            var overflowed: UInt32 = 0, underflowed: UInt32 = 0, nan: UInt32 = 0
            var i = start
            while i < end {
                let x = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                let b = FloatBits.bfloat16Bits(x)
                dst.storeBytes(of: b, toByteOffset: 2 &* i, as: UInt16.self)
                let a = x & 0x7FFF_FFFF, m = b & 0x7FFF
                nan &+= count(a > 0x7F80_0000)
                overflowed &+= count(a < 0x7F80_0000) & count(m == 0x7F80)
                underflowed &+= count(a != 0) & count(m == 0)
                i &+= 1
            }
            stats += ConversionStats(overflowed: Int(overflowed), underflowed: Int(underflowed), nan: Int(nan))
            start = end
        }
        return stats
    }

    static func encodeF8E4M3(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) -> ConversionStats {
        var stats = ConversionStats.zero
        var start = 0
        while start < n {
            let end = start + min(block, n - start)
            var overflowed: UInt32 = 0, underflowed: UInt32 = 0, nan: UInt32 = 0
            var i = start
            while i < end {
                let x = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                let b = FloatBits.f8e4m3Bits(x)
                dst.storeBytes(of: b, toByteOffset: i, as: UInt8.self)
                let a = x & 0x7FFF_FFFF, m = b & 0x7F
                nan &+= count(a > 0x7F80_0000)
                // No infinity in e4m3fn: ±Inf inputs overflow to NaN as well.
                overflowed &+= count(a <= 0x7F80_0000) & count(m == 0x7F)
                underflowed &+= count(a != 0) & count(m == 0)
                i &+= 1
            }
            stats += ConversionStats(overflowed: Int(overflowed), underflowed: Int(underflowed), nan: Int(nan))
            start = end
        }
        return stats
    }

    static func encodeF8E5M2(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) -> ConversionStats {
        var stats = ConversionStats.zero
        var start = 0
        while start < n {
            let end = start + min(block, n - start)
            var overflowed: UInt32 = 0, underflowed: UInt32 = 0, nan: UInt32 = 0
            var i = start
            while i < end {
                let x = src.loadUnaligned(fromByteOffset: 4 &* i, as: UInt32.self)
                let b = FloatBits.f8e5m2Bits(x)
                dst.storeBytes(of: b, toByteOffset: i, as: UInt8.self)
                let a = x & 0x7FFF_FFFF, m = b & 0x7F
                nan &+= count(a > 0x7F80_0000)
                overflowed &+= count(a < 0x7F80_0000) & count(m == 0x7C)
                underflowed &+= count(a != 0) & count(m == 0)
                i &+= 1
            }
            stats += ConversionStats(overflowed: Int(overflowed), underflowed: Int(underflowed), nan: Int(nan))
            start = end
        }
        return stats
    }

    // MARK: narrow → float32

    static func decodeHalf(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) {
        var i = 0
        while i < n {
            let h = src.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)
            dst.storeBytes(of: FloatBits.floatBits(half: h), toByteOffset: 4 &* i, as: UInt32.self)
            i &+= 1
        }
    }

    static func decodeBFloat16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutableRawPointer) {
        var i = 0
        while i < n {
            let b = src.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)
            dst.storeBytes(of: FloatBits.floatBits(bfloat16: b), toByteOffset: 4 &* i, as: UInt32.self)
            i &+= 1
        }
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
