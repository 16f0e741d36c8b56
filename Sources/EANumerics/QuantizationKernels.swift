import CKernels

/// The quantizers' inner loops, from CKernels: AVX-512 where the processor has it, a portable C loop otherwise,
/// both giving the same bytes.
public enum QuantizationKernels {
    /// What a quantizer lost: max |w − dequant(q)|, Σ (w − dequant(q))², Σ w².
    public struct Error: Sendable, Equatable {
        public var maxError: Float = 0
        public var errorSquares: Double = 0
        public var normSquares: Double = 0

        public init() {}

        init(_ e: eaw_quantization_error) {
            (maxError, errorSquares, normSquares) = (e.max_error, e.error_squares, e.norm_squares)
        }

        var c: eaw_quantization_error {
            eaw_quantization_error(max_error: maxError, error_squares: errorSquares, norm_squares: normSquares)
        }
    }

    /// Whether the AVX-512 loops run here (for reports).
    public static var vectorized: Bool { eaw_kernels_use_avx512() != 0 }

    /// For one row in groups of `group`: `amax[j] = max(amax[j], max |w| of group j)` (a NaN wins).
    public static func blockAbsMax(_ w: UnsafeBufferPointer<Float>, group: Int, into amax: UnsafeMutableBufferPointer<Float>,
                                   portable: Bool = false) {
        precondition(group > 0 && w.count % group == 0 && amax.count == w.count / group, "block absmax shapes")
        guard let wp = w.baseAddress, let ap = amax.baseAddress else { return }
        if portable {
            eaw_block_absmax_row_portable(wp, w.count, group, ap)
        } else {
            eaw_block_absmax_row(wp, w.count, group, ap)
        }
    }

    /// One row of an int8 blockwise weight: element c with `scales[c / group]`,
    /// `q = round_half_even(clamp(w / scale, -127, 127))` as two's complement bytes; `error` is added to.
    public static func int8Row(_ w: UnsafeBufferPointer<Float>, group: Int, scales: UnsafeBufferPointer<Float>,
                               into q: UnsafeMutableBufferPointer<UInt8>, error: inout Error, portable: Bool = false) {
        precondition(group > 0 && w.count % group == 0 && scales.count == w.count / group && q.count == w.count,
                     "int8 row shapes")
        guard let wp = w.baseAddress, let sp = scales.baseAddress, let qp = q.baseAddress else { return }
        var e = error.c
        if portable {
            eaw_quantize_int8_row_portable(wp, w.count, group, sp, qp, &e)
        } else {
            eaw_quantize_int8_row(wp, w.count, group, sp, qp, &e)
        }
        error = Error(e)
    }

    /// float8 e4m3fn bytes of `clamp(w * inverseScale, -448, 448)` (round half to even; NaN stays NaN);
    /// `error` is added to, against `fp8 * scale`.
    public static func float8E4M3(_ w: UnsafeBufferPointer<Float>, inverseScale: Float, scale: Float,
                                  into q: UnsafeMutableBufferPointer<UInt8>, error: inout Error, portable: Bool = false) {
        precondition(q.count == w.count, "fp8 shapes")
        guard let wp = w.baseAddress, let qp = q.baseAddress else { return }
        var e = error.c
        if portable {
            eaw_quantize_f8e4m3_portable(wp, w.count, inverseScale, scale, qp, &e)
        } else {
            eaw_quantize_f8e4m3(wp, w.count, inverseScale, scale, qp, &e)
        }
        error = Error(e)
    }
}
