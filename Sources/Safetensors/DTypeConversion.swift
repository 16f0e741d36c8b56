/// What a conversion to a narrower float type lost, so callers can warn (PyTorch converts silently).
public struct ConversionStats: Sendable, Equatable, CustomStringConvertible {
    /// Values too large for the target: finite values that became ±Inf (F16, BF16, F8_E5M2), or NaN in
    /// F8_E4M3, which has no infinity (±Inf inputs count here too).
    public var overflowed: Int
    /// Non-zero values that became ±0.
    public var underflowed: Int
    /// NaN values in the input (they stay NaN).
    public var nan: Int

    public init(overflowed: Int = 0, underflowed: Int = 0, nan: Int = 0) {
        self.overflowed = overflowed
        self.underflowed = underflowed
        self.nan = nan
    }

    public static let zero = ConversionStats()
    /// Nothing was lost beyond ordinary rounding.
    public var isClean: Bool { overflowed == 0 && underflowed == 0 && nan == 0 }

    public static func + (a: ConversionStats, b: ConversionStats) -> ConversionStats {
        ConversionStats(overflowed: a.overflowed + b.overflowed, underflowed: a.underflowed + b.underflowed,
                        nan: a.nan + b.nan)
    }

    public static func += (a: inout ConversionStats, b: ConversionStats) { a = a + b }

    public var description: String {
        "\(overflowed) overflowed, \(underflowed) underflowed to zero, \(nan) NaN"
    }
}

/// Conversions between the dtypes, bit-identical to PyTorch's CPU `.to(dtype)` (see `FloatBits` for the exact
/// rules). Every conversion goes through float32 like PyTorch's (so F16 → BF16 rounds twice, as it does there).
/// The loops are branch-free and vectorize in release builds; `convert` works in small chunks, so a GB-sized
/// tensor never needs a full-size float32 temporary.
public enum DTypeConversion {
    /// Elements per step when converting through float32 (a 64 KiB scratch stays in L2).
    public static let chunkElements = 16_384

    /// Targets `encode` can write.
    public static func canEncode(_ dtype: DType) -> Bool {
        switch dtype {
        case .f32, .f64, .f16, .bf16, .f8e4m3, .f8e5m2: return true
        default: return false
        }
    }

    // MARK: Decoding (anything → float32)

    /// Decodes little-endian elements of `dtype` into float32. `raw` may be unaligned.
    public static func decode(_ raw: UnsafeRawBufferPointer, dtype: DType, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        precondition(raw.count == n * dtype.size, "byte count does not match element count")
        guard n > 0, let src = raw.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        case .f16: ConversionKernels.decodeHalf(src, n, dst)
        case .bf16: ConversionKernels.decodeBFloat16(src, n, dst)
        case .f8e4m3: ConversionKernels.decodeF8E4M3(src, n, dst)
        case .f8e5m2: ConversionKernels.decodeF8E5M2(src, n, dst)
        case .f64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .bool, .u8:
            for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        case .i8:
            for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .i16:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .u16:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .i32:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .u32:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .i64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .u64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        }
    }

    // MARK: Encoding (float32 → float dtypes)

    /// Encodes float32 values as little-endian `dtype` elements into `out` (exactly `values.count × dtype.size`
    /// bytes, may be unaligned) and counts what was lost. Throws only for a target that is not a float type.
    @discardableResult
    public static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType,
                              into out: UnsafeMutableRawBufferPointer) throws -> ConversionStats {
        guard canEncode(dtype) else { throw SafetensorsError.unsupportedEncoding(dtype: dtype) }
        let n = values.count
        precondition(out.count == n * dtype.size, "byte count does not match element count")
        guard n > 0, let src = values.baseAddress, let dst = out.baseAddress else { return .zero }
        let raw = UnsafeRawPointer(src)
        switch dtype {
        case .f16: return ConversionKernels.encodeHalf(raw, n, dst)
        case .bf16: return ConversionKernels.encodeBFloat16(raw, n, dst)
        case .f8e4m3: return ConversionKernels.encodeF8E4M3(raw, n, dst)
        case .f8e5m2: return ConversionKernels.encodeF8E5M2(raw, n, dst)
        case .f64:
            var nan = 0
            for i in 0..<n {
                dst.storeBytes(of: Double(src[i]), toByteOffset: 8 * i, as: Double.self)
                nan += src[i].isNaN ? 1 : 0
            }
            return ConversionStats(nan: nan)
        default:   // .f32 (canEncode was checked)
            dst.copyMemory(from: raw, byteCount: n * 4)
            var nan = 0
            for i in 0..<n { nan += src[i].isNaN ? 1 : 0 }
            return ConversionStats(nan: nan)
        }
    }

    // MARK: Converting (any dtype → float dtypes)

    /// Converts little-endian `from` elements in `raw` to `to` elements in `out`, through float32 in chunks, as
    /// PyTorch's `.to(dtype)` does. The same dtype is a plain copy (no counts). Both buffers may be unaligned.
    @discardableResult
    public static func convert(_ raw: UnsafeRawBufferPointer, from: DType, to: DType,
                               into out: UnsafeMutableRawBufferPointer) throws -> ConversionStats {
        guard canEncode(to) else { throw SafetensorsError.unsupportedEncoding(dtype: to) }
        precondition(raw.count % from.size == 0, "byte count is not a whole number of elements")
        let n = raw.count / from.size
        precondition(out.count == n * to.size, "output byte count does not match element count")
        guard n > 0, let src = raw.baseAddress, let dst = out.baseAddress else { return .zero }
        if from == to {
            dst.copyMemory(from: src, byteCount: raw.count)
            return .zero
        }
        var stats = ConversionStats.zero
        try withScratch(bytes: min(n, chunkElements) * 4) { scratch in
            let floats = scratch.bindMemory(to: Float.self, capacity: min(n, chunkElements))
            var start = 0
            while start < n {
                let count = min(chunkElements, n - start)
                let chunk = UnsafeMutableBufferPointer(start: floats, count: count)
                decode(UnsafeRawBufferPointer(start: src + start * from.size, count: count * from.size),
                       dtype: from, into: chunk)
                stats += try encode(UnsafeBufferPointer(chunk), as: to,
                                    into: UnsafeMutableRawBufferPointer(start: dst + start * to.size, count: count * to.size))
                start += count
            }
        }
        return stats
    }

    private static func withScratch<R>(bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        defer { p.deallocate() }
        return try body(p)
    }

    // MARK: Scalars

    /// IEEE half → float, exact (subnormals, ±Inf; NaNs quieted with their payload, as PyTorch).
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float { Float(bitPattern: FloatBits.floatBits(half: h)) }
    /// float → IEEE half, round to nearest even, as PyTorch's `.to(torch.float16)` on x86-64.
    @inline(__always)
    public static func floatToHalf(_ f: Float) -> UInt16 { FloatBits.halfBits(f.bitPattern) }
    @inline(__always)
    public static func bfloat16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
    /// float → bfloat16, round to nearest even; every NaN becomes 0x7FC0 (c10 `round_to_nearest_even`).
    @inline(__always)
    public static func floatToBFloat16(_ f: Float) -> UInt16 { FloatBits.bfloat16Bits(f.bitPattern) }
    /// float8 e4m3fn → float: no infinities, S.1111.111 is NaN.
    @inline(__always)
    public static func f8e4m3ToFloat(_ b: UInt8) -> Float { Float(bitPattern: FloatBits.floatBits(f8e4m3: b)) }
    @inline(__always)
    public static func floatToF8E4M3(_ f: Float) -> UInt8 { FloatBits.f8e4m3Bits(f.bitPattern) }
    @inline(__always)
    public static func f8e5m2ToFloat(_ b: UInt8) -> Float { Float(bitPattern: FloatBits.floatBits(f8e5m2: b)) }
    @inline(__always)
    public static func floatToF8E5M2(_ f: Float) -> UInt8 { FloatBits.f8e5m2Bits(f.bitPattern) }
}
