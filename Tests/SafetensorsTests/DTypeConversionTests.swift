import CKernels
import Testing
import Safetensors
import TestSupport

/// F32 → (F16, BF16, F8_E4M3, F8_E5M2) as PyTorch's CPU `.to(dtype)` gives them: F16 from the F16C instruction
/// c10::Half uses on x86-64 (`_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)`), BF16 from c10 `round_to_nearest_even`,
/// F8 from c10 `fp8e4m3fn_from_fp32_value` / `fp8e5m2_from_fp32_value`, computed with those functions compiled
/// from the c10 sources. Every finite, infinite and subnormal row also equals numpy's float16 and ml_dtypes'
/// bfloat16/float8 casts; NaN rows follow PyTorch (ml_dtypes encodes NaN differently).
let pytorchConversions: [(input: UInt32, f16: UInt16, bf16: UInt16, e4m3: UInt8, e5m2: UInt8)] = [
    (0x00000000, 0x0000, 0x0000, 0x00, 0x00),  // +0
    (0x80000000, 0x8000, 0x8000, 0x80, 0x80),  // -0
    (0x3F800000, 0x3C00, 0x3F80, 0x38, 0x3C),  // 1
    (0xBF800000, 0xBC00, 0xBF80, 0xB8, 0xBC),  // -1
    (0x3EAAAAAB, 0x3555, 0x3EAB, 0x2B, 0x35),  // 1/3
    (0x3F801000, 0x3C00, 0x3F80, 0x38, 0x3C),  // 1 + 2^-11: F16 tie, rounds to even 1
    (0x3F803000, 0x3C02, 0x3F80, 0x38, 0x3C),  // 1 + 3*2^-11: F16 tie, rounds up to even
    (0x3F808000, 0x3C04, 0x3F80, 0x38, 0x3C),  // 1 + 2^-8: BF16 tie, rounds to even 1
    (0x3F818000, 0x3C0C, 0x3F82, 0x38, 0x3C),  // 1 + 3*2^-8: BF16 tie, rounds up
    (0x3F880000, 0x3C40, 0x3F88, 0x38, 0x3C),  // 1.0625: F8_E4M3 tie to even 1
    (0x3F900000, 0x3C80, 0x3F90, 0x39, 0x3C),  // 1.125: exact e4m3, e5m2 tie to even 1
    (0x477FE000, 0x7BFF, 0x4780, 0x7F, 0x7C),  // 65504: F16 max
    (0x477FEFFF, 0x7BFF, 0x4780, 0x7F, 0x7C),  // just below 65520: rounds to 65504
    (0x477FF000, 0x7C00, 0x4780, 0x7F, 0x7C),  // 65520: F16 tie -> Inf
    (0x47800000, 0x7C00, 0x4780, 0x7F, 0x7C),  // 65536: F16 overflow -> Inf
    (0x7F7FFFFF, 0x7C00, 0x7F80, 0x7F, 0x7C),  // FLT_MAX: F16/BF16 Inf
    (0xFF7FFFFF, 0xFC00, 0xFF80, 0xFF, 0xFC),  // -FLT_MAX
    (0x7F7F8000, 0x7C00, 0x7F80, 0x7F, 0x7C),  // BF16 tie below Inf -> Inf
    (0x7F800000, 0x7C00, 0x7F80, 0x7F, 0x7C),  // +Inf
    (0xFF800000, 0xFC00, 0xFF80, 0xFF, 0xFC),  // -Inf
    (0x7FC00000, 0x7E00, 0x7FC0, 0x7F, 0x7F),  // qNaN
    (0xFFC00000, 0xFE00, 0x7FC0, 0xFF, 0xFF),  // -qNaN
    (0x7F800001, 0x7E00, 0x7FC0, 0x7F, 0x7F),  // sNaN low payload
    (0x7FFFFFFF, 0x7FFF, 0x7FC0, 0x7F, 0x7F),  // NaN all payload
    (0xFFA00000, 0xFF00, 0x7FC0, 0xFF, 0xFF),  // -sNaN payload
    (0x38800000, 0x0400, 0x3880, 0x00, 0x04),  // 2^-14: F16 min normal
    (0x387FC000, 0x03FF, 0x3880, 0x00, 0x04),  // 2^-14 - 2^-24: F16 max subnormal
    (0x33800000, 0x0001, 0x3380, 0x00, 0x00),  // 2^-24: F16 min subnormal
    (0x33000000, 0x0000, 0x3300, 0x00, 0x00),  // 2^-25: F16 tie -> 0
    (0x33000001, 0x0001, 0x3300, 0x00, 0x00),  // just above 2^-25 -> min subnormal
    (0x33C00000, 0x0002, 0x33C0, 0x00, 0x00),  // 1.5*2^-24: tie -> 2^-23 (even)
    (0x00000001, 0x0000, 0x0000, 0x00, 0x00),  // float denormal min
    (0x807FFFFF, 0x8000, 0x8080, 0x80, 0x80),  // -float denormal max
    (0x00800000, 0x0000, 0x0080, 0x00, 0x00),  // FLT_MIN
    (0x43E00000, 0x5F00, 0x43E0, 0x7E, 0x5F),  // 448: e4m3 max
    (0x43E80000, 0x5F40, 0x43E8, 0x7E, 0x5F),  // 464: e4m3 tie -> 448
    (0x43E80001, 0x5F40, 0x43E8, 0x7F, 0x5F),  // just above 464 -> NaN
    (0x43F00000, 0x5F80, 0x43F0, 0x7F, 0x60),  // 480 -> e4m3 NaN
    (0x3C800000, 0x2400, 0x3C80, 0x08, 0x24),  // 2^-6: e4m3 min normal
    (0x3B000000, 0x1800, 0x3B00, 0x01, 0x18),  // 2^-9: e4m3 min subnormal
    (0x3A800000, 0x1400, 0x3A80, 0x00, 0x14),  // 2^-10: e4m3 tie -> 0
    (0x3AC00000, 0x1600, 0x3AC0, 0x01, 0x16),  // 1.5*2^-10 -> 2^-9
    (0x47600000, 0x7B00, 0x4760, 0x7F, 0x7B),  // 57344: e5m2 max
    (0x47700000, 0x7B80, 0x4770, 0x7F, 0x7C),  // 61440: e5m2 tie -> Inf
    (0x476FFFFF, 0x7B80, 0x4770, 0x7F, 0x7B),  // just below 61440 -> 57344
    (0x37800000, 0x0100, 0x3780, 0x00, 0x01),  // 2^-16: e5m2 min subnormal
    (0x37000000, 0x0080, 0x3700, 0x00, 0x00),  // 2^-17: e5m2 tie -> 0
    (0xC2F70000, 0xD7B8, 0xC2F7, 0xEF, 0xD8),  // -123.5
    (0x40490FDB, 0x4248, 0x4049, 0x45, 0x42),  // pi
]

@Suite("DType conversion")
struct DTypeConversionTests {
    @Test("F32 → F16, BF16, F8_E4M3, F8_E5M2 matches PyTorch on ties, NaN, Inf, subnormals and overflow")
    func matchesPyTorch() throws {
        for row in pytorchConversions {
            let x = Float(bitPattern: row.input)
            let hex = "0x" + String(row.input, radix: 16)
            #expect(DTypeConversion.floatToHalf(x) == row.f16, "F16 of \(hex)")
            #expect(DTypeConversion.floatToBFloat16(x) == row.bf16, "BF16 of \(hex)")
            #expect(DTypeConversion.floatToF8E4M3(x) == row.e4m3, "F8_E4M3 of \(hex)")
            #expect(DTypeConversion.floatToF8E5M2(x) == row.e5m2, "F8_E5M2 of \(hex)")
        }
        // The vectorized buffer path gives the same bits as the scalar functions, tails included.
        let inputs = pytorchConversions.map { Float(bitPattern: $0.input) }
        #expect(try encode(inputs, as: .f16) == pytorchConversions.flatMap { le($0.f16) })
        #expect(try encode(inputs, as: .bf16) == pytorchConversions.flatMap { le($0.bf16) })
        #expect(try encode(inputs, as: .f8e4m3) == pytorchConversions.map(\.e4m3))
        #expect(try encode(inputs, as: .f8e5m2) == pytorchConversions.map(\.e5m2))
    }

    @Test("all 65536 F16 bit patterns round trip through F32; signaling NaNs come back quiet, as in PyTorch")
    func halfRoundTrip() throws {
        let bits = (0...0xFFFF).map { UInt16($0) }
        let floats = decode(bits.flatMap(le), as: .f16)
        for (h, f) in zip(bits, floats) {
            let isNaN = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0
            if isNaN {
                #expect(f.isNaN && f.sign == ((h & 0x8000) != 0 ? .minus : .plus))
                #expect(f.bitPattern & 0x0040_0000 != 0, "quiet")
            } else {
                #expect(f == Float(Float16(bitPattern: h)) && f.sign == Float16(bitPattern: h).sign)
            }
            #expect(DTypeConversion.halfToFloat(h).bitPattern == f.bitPattern)
        }
        let back = try encode(floats, as: .f16)
        let expected = bits.map { h -> UInt16 in
            let isNaN = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0
            return isNaN ? h | 0x0200 : h
        }
        #expect(back == expected.flatMap(le))
    }

    @Test("all 65536 BF16 bit patterns round trip through F32; every NaN becomes 0x7FC0")
    func bfloat16RoundTrip() throws {
        let bits = (0...0xFFFF).map { UInt16($0) }
        let floats = decode(bits.flatMap(le), as: .bf16)
        #expect(floats.map(\.bitPattern) == bits.map { UInt32($0) << 16 })
        let back = try encode(floats, as: .bf16)
        let expected = bits.map { b -> UInt16 in (b & 0x7F80) == 0x7F80 && (b & 0x7F) != 0 ? 0x7FC0 : b }
        #expect(back == expected.flatMap(le))
    }

    @Test("all 256 F8 bit patterns of both formats round trip through F32")
    func float8RoundTrip() throws {
        let bits = (0...0xFF).map { UInt8($0) }
        let e4m3 = decode(bits, as: .f8e4m3)
        let e5m2 = decode(bits, as: .f8e5m2)
        for (b, f) in zip(bits, e4m3) {
            if b & 0x7F == 0x7F {
                #expect(f.isNaN && f.bitPattern & 0x7FFF_FFFF == 0x7FF0_0000)
            } else {
                // s.eeee.mmm with bias 7; exponent 0 is subnormal (m × 2^-9).
                let e = Int(b >> 3 & 0xF), m = Float(b & 7)
                let magnitude = e == 0 ? m * 0x1p-9 : (1 + m / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
                #expect(f == (b & 0x80 != 0 ? -magnitude : magnitude) && (f.sign == .minus) == (b & 0x80 != 0))
            }
        }
        for (b, f) in zip(bits, e5m2) {
            #expect(f.bitPattern == DTypeConversion.halfToFloat(UInt16(b) << 8).bitPattern)
        }
        #expect(try encode(e4m3, as: .f8e4m3) == bits)
        // e5m2 NaNs (exponent 11111, mantissa ≠ 0) all become 0x7F with their sign.
        #expect(try encode(e5m2, as: .f8e5m2) == bits.map { $0 & 0x7C == 0x7C && $0 & 3 != 0 ? ($0 & 0x80) | 0x7F : $0 })
    }

    @Test("counts overflowed, underflowed and NaN values so callers can warn")
    func countsLosses() throws {
        let values: [Float] = [1, 70000, -70000, .infinity, -.infinity, .nan, 1e-8, -1e-8, 0, -0, 3e-5, 1e38, 500, 1e-12]
        #expect(try stats(values, as: .f16) == ConversionStats(overflowed: 3, underflowed: 3, nan: 1))
        #expect(try stats(values, as: .bf16) == ConversionStats(overflowed: 0, underflowed: 0, nan: 1))
        // No infinity in e4m3fn: ±Inf and everything from 464 up become NaN.
        #expect(try stats(values, as: .f8e4m3) == ConversionStats(overflowed: 6, underflowed: 4, nan: 1))
        #expect(try stats(values, as: .f8e5m2) == ConversionStats(overflowed: 3, underflowed: 3, nan: 1))
        #expect(try stats(values, as: .f32) == ConversionStats(nan: 1))
        #expect(try stats([1, 2, 3], as: .f16).isClean)
        #expect(throws: SafetensorsError.unsupportedEncoding(dtype: .i8)) { try stats([1], as: .i8) }
    }

    @Test("the portable C widening (for processors without AVX-512) equals the vector one on all 65536 F16 and BF16 patterns")
    func portableWideningEqualsVector() {
        let bits = (0...0xFFFF).map { UInt16($0) }
        for dtype in [DType.f16, .bf16] {
            var portable = [Float](repeating: 0, count: bits.count)
            bits.withUnsafeBytes { src in
                portable.withUnsafeMutableBufferPointer { dst in
                    if dtype == .f16 {
                        eaw_widen_f16_portable(src.baseAddress, dst.baseAddress, bits.count)
                    } else {
                        eaw_widen_bf16_portable(src.baseAddress, dst.baseAddress, bits.count)
                    }
                }
            }
            #expect(portable.map(\.bitPattern) == decode(bits.flatMap(le), as: dtype).map(\.bitPattern), "\(dtype)")
        }
    }

    @Test("vectorized loops equal the scalar functions on random bits, any length and alignment")
    func vectorMatchesScalar() throws {
        var generator = SplitMix(seed: 7)
        for count in [0, 1, 7, 8, 9, 31, 1000, 4099] {
            let inputs = (0..<count).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
            for offset in 0..<3 {
                #expect(try encode(inputs, as: .f16, offset: offset) == inputs.flatMap { le(DTypeConversion.floatToHalf($0)) })
                #expect(try encode(inputs, as: .bf16, offset: offset) == inputs.flatMap { le(DTypeConversion.floatToBFloat16($0)) })
                #expect(try encode(inputs, as: .f8e4m3, offset: offset) == inputs.map(DTypeConversion.floatToF8E4M3))
                #expect(try encode(inputs, as: .f8e5m2, offset: offset) == inputs.map(DTypeConversion.floatToF8E5M2))
                let halves = inputs.map(DTypeConversion.floatToHalf)
                #expect(decode(halves.flatMap(le), as: .f16, offset: offset).map(\.bitPattern)
                        == halves.map { DTypeConversion.halfToFloat($0).bitPattern })
            }
        }
    }

    @Test("converting between dtypes goes through F32 like PyTorch, in chunks, for any size")
    func convertsBetweenTypes() throws {
        var generator = SplitMix(seed: 11)
        let count = DTypeConversion.chunkElements * 2 + 5
        let halves = (0..<count).map { _ in UInt16(truncatingIfNeeded: generator.next()) }
        let raw = halves.flatMap(le)
        var out = [UInt8](repeating: 0, count: count * 2)
        let stats = try raw.withUnsafeBytes { r in try out.withUnsafeMutableBytes { try DTypeConversion.convert(r, from: .f16, to: .bf16, into: $0) } }
        #expect(out == halves.flatMap { le(DTypeConversion.floatToBFloat16(DTypeConversion.halfToFloat($0))) })
        #expect(stats.nan == halves.filter { $0 & 0x7C00 == 0x7C00 && $0 & 0x3FF != 0 }.count)
        var e4m3 = [UInt8](repeating: 0, count: count)
        _ = try raw.withUnsafeBytes { r in try e4m3.withUnsafeMutableBytes { try DTypeConversion.convert(r, from: .f16, to: .f8e4m3, into: $0) } }
        #expect(e4m3 == halves.map { DTypeConversion.floatToF8E4M3(DTypeConversion.halfToFloat($0)) })
        // Integers decode exactly and encode like any float.
        let ints: [Int32] = [-3, 0, 7, 1 << 20]
        var asHalf = [UInt8](repeating: 0, count: 8)
        _ = try ints.withUnsafeBytes { r in try asHalf.withUnsafeMutableBytes { try DTypeConversion.convert(r, from: .i32, to: .f16, into: $0) } }
        #expect(asHalf == ints.flatMap { le(DTypeConversion.floatToHalf(Float($0))) })
        // The same dtype is a plain copy.
        var copy = [UInt8](repeating: 0, count: raw.count)
        #expect(try raw.withUnsafeBytes { r in try copy.withUnsafeMutableBytes { try DTypeConversion.convert(r, from: .f16, to: .f16, into: $0) } } == .zero)
        #expect(copy == raw)
    }

    @Test("decodes every dtype to float32")
    func decodesEveryType() {
        #expect(decode(le(Float(1.5).bitPattern) + le(Float(-2).bitPattern), as: .f32) == [1.5, -2])
        #expect(decode(le(Double(0.25).bitPattern), as: .f64) == [0.25])
        #expect(decode([0, 1, 255], as: .u8) == [0, 1, 255])
        #expect(decode([0, 1], as: .bool) == [0, 1])
        #expect(decode([0xFF, 0x80], as: .i8) == [-1, -128])
        #expect(decode(le(UInt16(bitPattern: -300)), as: .i16) == [-300])
        #expect(decode(le(UInt16(65535)), as: .u16) == [65535])
        #expect(decode(le(UInt32(bitPattern: -70000)), as: .i32) == [-70000])
        #expect(decode(le(UInt32(4_000_000_000)), as: .u32) == [4_000_000_000])
        #expect(decode(le(UInt64(bitPattern: -5)), as: .i64) == [-5])
        #expect(decode(le(UInt64(1) << 40), as: .u64) == [0x1p40])
    }
}

// MARK: Helpers

func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// Encodes through the public buffer API, optionally at an unaligned output offset.
func encode(_ values: [Float], as dtype: DType, offset: Int = 0) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: values.count * dtype.size + offset)
    try values.withUnsafeBufferPointer { v in
        try out.withUnsafeMutableBytes { o in
            _ = try DTypeConversion.encode(v, as: dtype, into: UnsafeMutableRawBufferPointer(rebasing: o[offset...]))
        }
    }
    return Array(out[offset...])
}

func stats(_ values: [Float], as dtype: DType) throws -> ConversionStats {
    var out = [UInt8](repeating: 0, count: values.count * dtype.size)
    return try values.withUnsafeBufferPointer { v in try out.withUnsafeMutableBytes { try DTypeConversion.encode(v, as: dtype, into: $0) } }
}

/// Decodes through the public buffer API, optionally from an unaligned input offset.
func decode(_ bytes: [UInt8], as dtype: DType, offset: Int = 0) -> [Float] {
    let padded = [UInt8](repeating: 0xAA, count: offset) + bytes
    var out = [Float](repeating: 0, count: bytes.count / dtype.size)
    padded.withUnsafeBytes { raw in
        out.withUnsafeMutableBufferPointer { DTypeConversion.decode(UnsafeRawBufferPointer(rebasing: raw[offset...]), dtype: dtype, into: $0) }
    }
    return out
}
