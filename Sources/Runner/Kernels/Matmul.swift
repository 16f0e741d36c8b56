import EANumerics

extension Kernels {
    /// [M, K] × [K, N] → [M, N] through OpenBLAS.
    public static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2 && a.shape[1] == b.shape[0], "matmul: \(a.shape) × \(b.shape)")
        let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
        // sgemm with beta = 0 writes every element of C without reading it.
        var out = Tensor(uninitialized: [m, n])
        guard m > 0, n > 0, k > 0 else { return Tensor(zeros: [m, n]) }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                out.withUnsafeMutableBufferPointer { cp in
                    BLAS.sgemm(.none, .none, m: m, n: n, k: k, a: ap.baseAddress!, lda: k,
                               b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
                }
            }
        }
        return out
    }

    /// x [rows, in] · Wᵀ (W is [out, in], PyTorch Linear layout) + bias → [rows, out].
    public static func linear(_ x: Tensor, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
                              outFeatures: Int) -> Tensor {
        let inFeatures = x.shape[x.rank - 1]
        precondition(weight.count == outFeatures * inFeatures, "linear: weight \(weight.count) vs \(outFeatures)×\(inFeatures)")
        let rows = x.count / inFeatures
        var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures])
        guard rows > 0, outFeatures > 0 else { return out }
        if inFeatures == 0 { out.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                BLAS.sgemm(.none, .transpose, m: rows, n: outFeatures, k: inFeatures,
                           a: xp.baseAddress!, lda: inFeatures, b: weight.baseAddress!, ldb: inFeatures,
                           c: op.baseAddress!, ldc: outFeatures)
            }
        }
        if let bias { addRowVector(&out, bias) }
        return out
    }
}
