import WeightOps

extension Kernels {
    /// Multi-head scaled dot-product attention.
    ///
    /// q: [B, Lq, H·D], k and v: [B, Lk, H·D] (heads interleaved as PyTorch's `view(B, L, H, D)`), result [B, Lq, H·D].
    /// `keyBias` [B, Lk] is added to every query's scores (masks as 0 / -inf or a large negative number);
    /// `scoreBias` [H, Lq, Lk] (T5's relative position bias) is added per head. `scale` multiplies QKᵀ.
    public static func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, scale: Float,
                                 keyBias: Tensor? = nil, scoreBias: Tensor? = nil) -> Tensor {
        let b = q.shape[0], lq = q.shape[1], width = q.shape[2]
        let lk = k.shape[1]
        let d = width / heads
        precondition(k.shape == [b, lk, width] && v.shape == [b, lk, width], "attention: \(q.shape) \(k.shape) \(v.shape)")
        var out = Tensor(zeros: [b, lq, width])
        guard b > 0, lq > 0, lk > 0 else { return out }
        q.withUnsafeBufferPointer { qp in
        k.withUnsafeBufferPointer { kp in
        v.withUnsafeBufferPointer { vp in
        out.withUnsafeMutableBufferPointer { op in
            let (qp, kp, vp, op) = (qp, kp, vp, op)
            let kb = keyBias?.storage, sb = scoreBias?.storage
            // One score matrix per job; jobs are independent (batch, head) pairs.
            parallelFor(b * heads) { job in
                let bi = job / heads, h = job % heads
                var scores = [Float](repeating: 0, count: lq * lk)
                scores.withUnsafeMutableBufferPointer { sp in
                    let s = sp.baseAddress!
                    BLAS.sgemm(.none, .transpose, m: lq, n: lk, k: d, alpha: scale,
                               a: qp.baseAddress! + bi * lq * width + h * d, lda: width,
                               b: kp.baseAddress! + bi * lk * width + h * d, ldb: width,
                               c: s, ldc: lk)
                    if let sb {
                        let base = h * lq * lk
                        for i in 0..<(lq * lk) { s[i] += sb[base + i] }
                    }
                    if let kb {
                        for r in 0..<lq {
                            let row = s + r * lk
                            for j in 0..<lk { row[j] += kb[bi * lk + j] }
                        }
                    }
                    softmaxRows(s, rows: lq, n: lk)
                    BLAS.sgemm(.none, .none, m: lq, n: d, k: lk,
                               a: s, lda: lk,
                               b: vp.baseAddress! + bi * lk * width + h * d, ldb: width,
                               c: op.baseAddress! + bi * lq * width + h * d, ldc: width)
                }
            }
        }}}}
        return out
    }
}
