import EANumerics

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
        guard b > 0, lq > 0, lk > 0 else { return Tensor(zeros: [b, lq, width]) }
        // Each (batch, head) block of the output is written by its second sgemm (beta 0).
        var out = Tensor(uninitialized: [b, lq, width])
        // One score matrix per worker, all taken before the parallel loop, so a call needs the same buffers
        // however the jobs happen to be scheduled. Each worker claims the next (batch, head) job; jobs are
        // independent, so the order they run in does not change any result.
        let jobs = b * heads
        let workers = min(ProcessInfoCache.activeProcessorCount, jobs)
        var scores = Tensor(uninitialized: [workers, lq * lk])
        let queue = JobQueue(count: jobs)
        q.withUnsafeBufferPointer { qp in
        k.withUnsafeBufferPointer { kp in
        v.withUnsafeBufferPointer { vp in
        withOptionalBuffer(keyBias) { kb in
        withOptionalBuffer(scoreBias) { sb in
        scores.withUnsafeMutableBufferPointer { scoreBuffers in
        out.withUnsafeMutableBufferPointer { op in
            let (qp, kp, vp, op, scoreBuffers) = (qp, kp, vp, op, scoreBuffers)
            parallelFor(workers) { worker in
                let s = scoreBuffers.baseAddress! + worker * lq * lk
                while let job = queue.next() {
                    let bi = job / heads, h = job % heads
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
        }}}}}}}
        return out
    }

    /// Calls `body` with the tensor's elements, or with nil.
    private static func withOptionalBuffer<R>(_ tensor: Tensor?, _ body: (UnsafeBufferPointer<Float>?) -> R) -> R {
        guard let tensor else { return body(nil) }
        return tensor.withUnsafeBufferPointer { body($0) }
    }
}
