/// The Box–Muller block of PyTorch's vectorised CPU `normal_` (`normal_fill_16_AVX2` in
/// `aten/src/ATen/native/cpu/DistributionTemplates.h`), with the Cephes-derived `log256_ps` and `sincos256_ps`
/// of `avx_mathfun.h`, evaluated one lane at a time.
///
/// ATen dispatches `normal_` to its AVX2 build on every x86-64 CPU with AVX2 (the AVX-512 build is deliberately
/// not registered for it). GCC compiles those intrinsics with `-mfma` and contracts each multiply whose only
/// use is an add/subtract into one fused multiply-add, in statement order; the `addingProduct` calls below are
/// exactly those fusions (checked bit for bit against `goldens/torch_cpu_randn.safetensors`). Plain libm
/// log/sin/cos would differ by a few ulp.
enum BoxMullerAVX2 {
    static let blockSize = 16

    /// Turns 16 uniforms in [0, 1) at `values[block...]` into 16 standard normals: lane j pairs
    /// `u1 = 1 - values[block + j]` with `u2 = values[block + 8 + j]`, writing `r·cos θ` then `r·sin θ`.
    static func transform(_ values: UnsafeMutableBufferPointer<Float>, block: Int) {
        let twoPi = Float(2.0 * Double.pi)
        for lane in 0..<8 {
            let u1 = 1 - values[block + lane]
            let u2 = values[block + 8 + lane]
            let radius = (-2 * cephesLog(u1)).squareRoot()
            let (sine, cosine) = cephesSinCos(twoPi * u2)
            values[block + lane] = radius * cosine
            values[block + 8 + lane] = radius * sine
        }
    }

    /// `log256_ps` for one lane: NaN for x <= 0, denormals cut to the smallest normal.
    static func cephesLog(_ input: Float) -> Float {
        if input <= 0 || input.isNaN { return .nan }
        let x0 = max(input, Float(bitPattern: 0x0080_0000))
        let bits = x0.bitPattern
        var e = Float(Int32(bitPattern: bits >> 23) - 0x7F) + 1
        // Mantissa in [0.5, 1).
        var x = Float(bitPattern: (bits & ~0x7F80_0000) | Float(0.5).bitPattern)
        let belowSqrtHalf = x < 0.707106781186547524
        let tmp: Float = belowSqrtHalf ? x : 0
        x -= 1
        e -= belowSqrtHalf ? 1 : 0
        x += tmp

        let z = x * x
        var y: Float = 7.0376836292E-2
        y = Float(-1.1514610310E-1).addingProduct(y, x)
        y = Float(1.1676998740E-1).addingProduct(y, x)
        y = Float(-1.2420140846E-1).addingProduct(y, x)
        y = Float(1.4249322787E-1).addingProduct(y, x)
        y = Float(-1.6668057665E-1).addingProduct(y, x)
        y = Float(2.0000714765E-1).addingProduct(y, x)
        y = Float(-2.4999993993E-1).addingProduct(y, x)
        y = Float(3.3333331174E-1).addingProduct(y, x)
        y = y * x
        y = (e * Float(-2.12194440e-4)).addingProduct(y, z)
        y = y.addingProduct(-z, 0.5)
        x = x + y
        return x.addingProduct(e, 0.693359375)
    }

    /// `sincos256_ps` for one lane (Cephes sinf/cosf with the extended-precision range reduction).
    static func cephesSinCos(_ input: Float) -> (sin: Float, cos: Float) {
        var x = abs(input)
        let sinSignFromInput = input.sign == .minus

        var j = Int32(x * 1.27323954473516)   // truncation, as _mm256_cvttps_epi32
        j = (j &+ 1) & ~1
        let y = Float(j)
        let swapSinSign = (j & 4) != 0
        let usesSinPolynomial = (j & 2) == 0   // "poly_mask"
        x = x.addingProduct(y, -0.78515625)
        x = x.addingProduct(y, -2.4187564849853515625e-4)
        x = x.addingProduct(y, -3.77489497744594108e-8)
        let cosSign = (~(j &- 2) & 4) != 0
        let sinSign = sinSignFromInput != swapSinSign

        let z = x * x
        var cosPoly: Float = 2.443315711809948E-005
        cosPoly = Float(-1.388731625493765E-003).addingProduct(cosPoly, z)
        cosPoly = Float(4.166664568298827E-002).addingProduct(cosPoly, z)
        cosPoly = cosPoly * z
        cosPoly = (-(z * 0.5)).addingProduct(cosPoly, z)
        cosPoly = cosPoly + 1

        var sinPoly: Float = -1.9515295891E-4
        sinPoly = Float(8.3321608736E-3).addingProduct(sinPoly, z)
        sinPoly = Float(-1.6666654611E-1).addingProduct(sinPoly, z)
        sinPoly = sinPoly * z
        sinPoly = x.addingProduct(sinPoly, x)

        let sine = usesSinPolynomial ? sinPoly : cosPoly
        let cosine = usesSinPolynomial ? cosPoly : sinPoly
        return (sinSign ? -sine : sine, cosSign ? -cosine : cosine)
    }
}
