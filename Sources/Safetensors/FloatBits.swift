/// Bit-exact scalar conversions between float32 and the narrow float formats, written branch-free (selects only)
/// so the loops in `DTypeConversion` vectorize. Each reproduces what PyTorch's CPU `.to(dtype)` produces on x86-64:
///
/// - F16: the F16C instructions (`vcvtps2ph` round-to-nearest-even, `vcvtph2ps`) that c10::Half uses on AVX2/AVX-512
///   builds: overflow → ±Inf, NaN stays NaN with its sign, quieted, payload truncated to the top 10 bits.
/// - BF16: c10 `round_to_nearest_even`: RNE on the top 16 bits, overflow → ±Inf, every NaN → 0x7FC0.
/// - F8_E4M3 (e4m3fn): c10 `fp8e4m3fn_from_fp32_value`: no infinities; |x| ≥ 480, ±Inf and NaN → 0x7F | sign (NaN),
///   so values in (464, 480) round up to NaN and 464 itself ties to 448.
/// - F8_E5M2: c10 `fp8e5m2_from_fp32_value`: |x| ≥ 65536 → ±Inf (0x7C), NaN → 0x7F | sign; values in [61440, 65536)
///   round to ±Inf or 57344 by RNE.
/// Subnormal results use a float addition of a power of two, which rounds to nearest even in hardware, as c10 does.
enum FloatBits {
    // MARK: float32 → narrow

    @inline(__always)
    static func halfBits(_ x: UInt32) -> UInt16 {
        let sign = (x >> 16) & 0x8000
        let a = x & 0x7FFF_FFFF
        // Normal results: rebias the exponent (127 → 15) and round the 13 dropped bits to nearest even.
        let n = a &- 0x3800_0000
        let normal = (n &+ 0x0FFF &+ ((n >> 13) & 1)) >> 13
        // Subnormal results (|x| < 2^-14): 0.5 has an ulp of 2^-24, the half subnormal step.
        let subnormal = (Float(bitPattern: a) + 0.5).bitPattern &- 0x3F00_0000
        let nan = 0x7E00 | ((a >> 13) & 0x03FF)
        var r = a >= 0x3880_0000 ? normal : subnormal
        r = a >= 0x4780_0000 ? 0x7C00 : r
        r = a > 0x7F80_0000 ? nan : r
        return UInt16(truncatingIfNeeded: sign | r)
    }

    @inline(__always)
    static func bfloat16Bits(_ x: UInt32) -> UInt16 {
        let rounded = (x &+ 0x7FFF &+ ((x >> 16) & 1)) >> 16
        let r = (x & 0x7FFF_FFFF) > 0x7F80_0000 ? 0x7FC0 : rounded
        return UInt16(truncatingIfNeeded: r)
    }

    @inline(__always)
    static func f8e4m3Bits(_ x: UInt32) -> UInt8 {
        let sign = (x >> 24) & 0x80
        let a = x & 0x7FFF_FFFF
        let n = a &- 0x3C00_0000   // (127 - 7) << 23
        let normal = (n &+ 0x7_FFFF &+ ((a >> 20) & 1)) >> 20
        // Below 2^-6: 2^14 has an ulp of 2^-9, the e4m3 subnormal step.
        let subnormal = (Float(bitPattern: a) + 16384).bitPattern &- 0x4680_0000
        var r = a >= 0x3C80_0000 ? normal : subnormal
        r = a >= 0x43F0_0000 ? 0x7F : r
        return UInt8(truncatingIfNeeded: sign | r)
    }

    @inline(__always)
    static func f8e5m2Bits(_ x: UInt32) -> UInt8 {
        let sign = (x >> 24) & 0x80
        let a = x & 0x7FFF_FFFF
        let n = a &- 0x3800_0000   // (127 - 15) << 23
        let normal = (n &+ 0xF_FFFF &+ ((a >> 21) & 1)) >> 21
        // Below 2^-14: 2^7 has an ulp of 2^-16, the e5m2 subnormal step.
        let subnormal = (Float(bitPattern: a) + 128).bitPattern &- 0x4300_0000
        var r = a >= 0x3880_0000 ? normal : subnormal
        r = a >= 0x4780_0000 ? 0x7C : r
        r = a > 0x7F80_0000 ? 0x7F : r
        return UInt8(truncatingIfNeeded: sign | r)
    }

    // MARK: narrow → float32

    /// Exact; NaNs come back quiet with their payload, as `vcvtph2ps` and c10's software path give.
    @inline(__always)
    static func floatBits(half h: UInt16) -> UInt32 {
        let w = UInt32(h)
        let sign = (w & 0x8000) << 16
        let em = w & 0x7FFF
        let normal = (em << 13) &+ 0x3800_0000
        let infNaN = (em << 13) | 0x7F80_0000 | (em > 0x7C00 ? 0x0040_0000 : 0)
        // Subnormal halves are m × 2^-24: build 0.5 + m × 2^-24 and subtract 0.5 (both exact).
        let subnormal = (Float(bitPattern: 0x3F00_0000 | em) - 0.5).bitPattern
        var r = em >= 0x0400 ? normal : subnormal
        r = em >= 0x7C00 ? infNaN : r
        return sign | r
    }

    @inline(__always)
    static func floatBits(bfloat16 b: UInt16) -> UInt32 {
        UInt32(b) << 16
    }

    /// c10 `fp8e4m3fn_to_fp32_value`: S.1111.111 is NaN (0x7FF00000 | sign), there are no infinities.
    @inline(__always)
    static func floatBits(f8e4m3 b: UInt8) -> UInt32 {
        let w = UInt32(b)
        let sign = (w & 0x80) << 24
        let em = w & 0x7F
        let normal = (em << 20) &+ 0x3C00_0000
        // Subnormals are m × 2^-9: 2^14 + m × 2^-9 is exact in float32.
        let subnormal = (Float(bitPattern: 0x4680_0000 | em) - 16384).bitPattern
        let nan: UInt32 = 0x7FF0_0000
        var r = em >= 0x08 ? normal : subnormal
        r = em == 0x7F ? nan : r
        return sign | r
    }

    /// e5m2 is the top byte of an IEEE half.
    @inline(__always)
    static func floatBits(f8e5m2 b: UInt8) -> UInt32 {
        floatBits(half: UInt16(b) << 8)
    }
}
