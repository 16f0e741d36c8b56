import CKernels

/// The BF16 matmul of `--t5-compute bf16` (CKernels/BF16Matmul.c): `y = x · wᵀ + bias` with w's BF16 bits read in
/// place and x rounded to BF16 (nearest even) at each call, products summed in float32: AVX-512 BF16 where the
/// processor has it, portable C otherwise (the same bits).
public enum BF16Matmul {
    /// Whether the vdpbf16ps loops run here (for reports).
    public static var vectorized: Bool { eaw_kernels_use_bf16() != 0 }

    /// `y[m, n] = Σ_k bf16(x[m, k]) · w[n, k] (+ bias[n])` for the `rows` rows of x (row-major, `columns` wide, an
    /// even number) and w (`outputs` rows of `columns` BF16 values) into y (`rows` × `outputs`). `portable` runs
    /// the portable loops whatever the processor (for tests).
    public static func multiply(_ x: UnsafeBufferPointer<Float>, rows: Int, weight: UnsafeBufferPointer<UInt16>,
                                outputs n: Int, columns k: Int, bias: UnsafeBufferPointer<Float>?,
                                into y: UnsafeMutableBufferPointer<Float>, portable: Bool = false) {
        precondition(k > 0 && k % 2 == 0 && n > 0, "bf16 matmul: \(n)×\(k) weight (columns must be even)")
        precondition(x.count == rows * k && y.count == rows * n, "bf16 matmul: x \(x.count), y \(y.count) for \(rows)×\(k)·\(n)")
        precondition(weight.count == n * k && (bias.map { $0.count == n } ?? true), "bf16 matmul: weight or bias")
        guard rows > 0 else { return }
        let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: eaw_bf16_packed_bytes(rows, k), alignment: 64)
        defer { packed.deallocate() }
        let bytes = packed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        parallelChunks((rows + 15) / 16, minimumChunk: max(1, (1 << 16) / (16 * k))) { chunk in
            let (begin, end) = (chunk.lowerBound * 16, chunk.upperBound * 16)
            if portable {
                eaw_bf16_pack_rows_portable(x.baseAddress!, rows, k, k, begin, end, bytes)
            } else {
                eaw_bf16_pack_rows(x.baseAddress!, rows, k, k, begin, end, bytes)
            }
        }
        // Output columns split over the cores in multiples of 4 (one tile's width); small products stay on one.
        parallelChunks((n + 3) / 4, minimumChunk: max(1, (1 << 22) / max(1, rows * k * 4))) { chunk in
            let (begin, end) = (chunk.lowerBound * 4, min(n, chunk.upperBound * 4))
            if portable {
                eaw_bf16_gemm_portable(bytes, rows, k, weight.baseAddress!, k, bias?.baseAddress, y.baseAddress!, n, begin, end)
            } else {
                eaw_bf16_gemm(bytes, rows, k, weight.baseAddress!, k, bias?.baseAddress, y.baseAddress!, n, begin, end)
            }
        }
    }
}
