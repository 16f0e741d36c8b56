import Testing
@testable import EANumerics

@Suite("Quantization kernels")
struct QuantizationKernelsTests {
    /// Every float class the encoders must get right: ties, the e4m3 subnormal range and its boundary with the
    /// normals, values that round up across a binade, ±0, ±448 and past it, NaN; then pseudo-random values.
    static func hardValues(count: Int) -> [Float] {
        var special: [Float] = [0, -0, 448, -448, 449, -500, 1e30, -1e30, .nan, -.nan, 0.5, 1.5, 2.5, -2.5, 126.5, -126.5, 127.4]
        for k in 0...16 { special += [Float(k) / 512, -Float(k) / 512, (Float(k) + 0.5) / 512, Float(k) / 512 + 1e-7] }
        special += [Float(2).squareRoot(), 1.0625, 1.1875, 15.5, 240, 247, 248, 464, 0.015625, 0.0146484375, 0.0141]
        var state: UInt64 = 0x1234_5678
        var out = special
        while out.count < count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let bits = UInt32(truncatingIfNeeded: state >> 32)
            // Mostly ordinary magnitudes, with the exponent spread over the whole e4m3 range and beyond.
            let exponent = Float(Int(bits % 40) - 20)
            let mantissa = Float(bits >> 8 & 0xFFFF) / 65536 + 1
            out.append((bits & 1 == 0 ? 1 : -1) * mantissa * Float.pow2(exponent))
        }
        return Array(out.prefix(count))
    }

    @Test("the AVX-512 and portable int8 row kernels give the same bytes and errors")
    func int8VectorEqualsPortable() {
        let group = 32, cols = 32 * 12
        let w = Self.hardValues(count: cols).map { $0.isNaN || abs($0) > 1e6 ? 0.25 : $0 }
        let scales = (0..<(cols / group)).map { j in Float(j + 1) * 0.01 }
        var fast = [UInt8](repeating: 0, count: cols), plain = fast
        var e1 = QuantizationKernels.Error(), e2 = QuantizationKernels.Error()
        w.withUnsafeBufferPointer { wp in scales.withUnsafeBufferPointer { sp in
            fast.withUnsafeMutableBufferPointer { QuantizationKernels.int8Row(wp, group: group, scales: sp, into: $0, error: &e1) }
            plain.withUnsafeMutableBufferPointer {
                QuantizationKernels.int8Row(wp, group: group, scales: sp, into: $0, error: &e2, portable: true)
            }
        } }
        #expect(fast == plain)
        #expect(e1.maxError == e2.maxError)
        #expect(abs(e1.errorSquares - e2.errorSquares) <= 1e-5 * e2.errorSquares)
        #expect(abs(e1.normSquares - e2.normSquares) <= 1e-5 * e2.normSquares)
        for (c, x) in w.enumerated() {
            let expected = Int8(min(max(x / scales[c / group], -127), 127).rounded(.toNearestOrEven))
            #expect(Int8(bitPattern: fast[c]) == expected, "element \(c): \(x)")
        }
    }

    @Test("the AVX-512 and portable block absmax kernels agree, on the sign-cleared bit patterns (NaN wins)")
    func blockAbsMaxVectorEqualsPortable() {
        let group = 64, cols = 64 * 9
        var w = Self.hardValues(count: cols).map { $0.isNaN ? 1 : $0 }
        w[3 * group + 5] = .nan
        var fast = [Float](repeating: 0.5, count: cols / group), plain = fast
        w.withUnsafeBufferPointer { wp in
            fast.withUnsafeMutableBufferPointer { QuantizationKernels.blockAbsMax(wp, group: group, into: $0) }
            plain.withUnsafeMutableBufferPointer { QuantizationKernels.blockAbsMax(wp, group: group, into: $0, portable: true) }
        }
        #expect(fast.map(\.bitPattern) == plain.map(\.bitPattern))
        for j in 0..<(cols / group) where j != 3 {
            #expect(fast[j] == max(0.5, w[(j * group)..<((j + 1) * group)].map(abs).max()!))
        }
        #expect(fast[3].isNaN)
    }

    @Test("the fp8 e4m3 kernels give the bytes of the scalar encoder and their error against the decoded values")
    func float8VectorEqualsPortableAndEncoder() {
        let n = 4099   // not a multiple of 16: the tail goes through the portable loop
        let w = Self.hardValues(count: n)
        let scale: Float = 0.75, inverse = 1 / scale
        var fast = [UInt8](repeating: 0, count: n), plain = fast
        var e1 = QuantizationKernels.Error(), e2 = QuantizationKernels.Error()
        w.withUnsafeBufferPointer { wp in
            fast.withUnsafeMutableBufferPointer { QuantizationKernels.float8E4M3(wp, inverseScale: inverse, scale: scale, into: $0, error: &e1) }
            plain.withUnsafeMutableBufferPointer {
                QuantizationKernels.float8E4M3(wp, inverseScale: inverse, scale: scale, into: $0, error: &e2, portable: true)
            }
        }
        #expect(fast == plain)
        #expect(e1.maxError == e2.maxError)
        var maxError: Float = 0
        for (i, x) in w.enumerated() {
            let y = min(max(x * inverse, -448), 448)
            #expect(fast[i] == Self.referenceE4M3(y), "element \(i): \(x)")
            let e = abs(x - Self.decodeE4M3(fast[i]) * scale)
            maxError = max(maxError, e)
        }
        #expect(e1.maxError == maxError)
    }

    /// e4m3fn by its definition: the nearest of all 254 finite codes (ties to the even code), NaN to 0x7F.
    static func referenceE4M3(_ y: Float) -> UInt8 {
        let sign: UInt8 = y.sign == .minus ? 0x80 : 0
        guard !y.isNaN else { return sign | 0x7F }
        let a = abs(y)
        var best: UInt8 = 0
        var bestDistance = Float.infinity
        for code in UInt8(0)...0x7E {
            let d = abs(decodeE4M3(code) - a)
            if d < bestDistance || (d == bestDistance && code & 1 == 0) { (best, bestDistance) = (code, d) }
        }
        return sign | best
    }

    static func decodeE4M3(_ b: UInt8) -> Float {
        let sign: Float = b & 0x80 != 0 ? -1 : 1
        let e = Int(b >> 3 & 0xF), m = Float(b & 7)
        if e == 0xF && b & 7 == 7 { return .nan }
        return sign * (e == 0 ? m / 8 * Float.pow2(-6) : (1 + m / 8) * Float.pow2(Float(e - 7)))
    }
}

private extension Float {
    static func pow2(_ e: Float) -> Float { Float(sign: .plus, exponent: Int(e), significand: 1) }
}
