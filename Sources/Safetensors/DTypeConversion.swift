/// Exact conversions between the floating-point dtypes, bit-identical to PyTorch's `.to(dtype)`.
public enum DTypeConversion {
    /// Decodes little-endian elements of `dtype` into float32. `raw` may be unaligned.
    public static func decode(_ raw: UnsafeRawBufferPointer, dtype: DType, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        precondition(raw.count == n * dtype.size, "byte count does not match element count")
        switch dtype {
        case .f32:
            UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
        case .f16:
            for i in 0..<n { out[i] = halfToFloat(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
        case .f64:
            for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .f8e4m3:
            for i in 0..<n { out[i] = f8e4m3ToFloat(raw[i]) }
        case .f8e5m2:
            for i in 0..<n { out[i] = halfToFloat(UInt16(raw[i]) << 8) }
        case .bool, .u8:
            for i in 0..<n { out[i] = Float(raw[i]) }
        case .i8:
            for i in 0..<n { out[i] = Float(Int8(bitPattern: raw[i])) }
        case .i16:
            for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .u16:
            for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .i32:
            for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .u32:
            for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        case .i64:
            for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .u64:
            for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        }
    }

    /// IEEE half → float, exact (subnormals, ±Inf, NaN payloads kept like PyTorch).
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        if exp == 0 {
            // ±0 and subnormals: mant × 2^-24, exact in float32.
            let magnitude = Float(mant) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// float8 e4m3fn → float: no infinities, S.1111.111 is NaN.
    @inline(__always)
    public static func f8e4m3ToFloat(_ b: UInt8) -> Float {
        let sign: Float = (b & 0x80) != 0 ? -1 : 1
        let exp = Int((b >> 3) & 0x0F)
        let mant = Float(b & 0x07)
        if exp == 0x0F && (b & 0x07) == 0x07 { return Float.nan * sign }
        if exp == 0 { return sign * mant * 0x1p-9 }
        return sign * (1 + mant / 8) * Float(sign: .plus, exponent: exp - 7, significand: 1)
    }
}
