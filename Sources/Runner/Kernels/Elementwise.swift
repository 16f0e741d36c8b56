import Foundation
import EANumerics

/// Elementwise and row-wise kernels on float32 buffers. Loops are written so the optimizer vectorizes them;
/// large tensors are split across cores.
public enum Kernels {
    // MARK: Arithmetic

    /// a += b (same shape).
    public static func add(_ a: inout Tensor, _ b: Tensor) {
        precondition(a.count == b.count, "add: \(a.shape) vs \(b.shape)")
        b.withUnsafeBufferPointer { bp in
            a.withUnsafeMutableBufferPointer { ap in
                let (ap, bp) = (ap, bp)
                parallelChunks(ap.count) { r in for i in r { ap[i] += bp[i] } }
            }
        }
    }

    /// a += scale * b (same shape).
    public static func addScaled(_ a: inout Tensor, _ b: Tensor, scale: Float) {
        precondition(a.count == b.count)
        b.withUnsafeBufferPointer { bp in
            a.withUnsafeMutableBufferPointer { ap in
                let (ap, bp) = (ap, bp)
                parallelChunks(ap.count) { r in for i in r { ap[i] += scale * bp[i] } }
            }
        }
    }

    /// x[r, c] += v[c] for a [rows, v.count] tensor.
    public static func addRowVector(_ x: inout Tensor, _ v: UnsafeBufferPointer<Float>) {
        applyRowVector(&x, v) { $0 += $1 }
    }

    /// x[r, c] *= v[c].
    public static func mulRowVector(_ x: inout Tensor, _ v: UnsafeBufferPointer<Float>) {
        applyRowVector(&x, v) { $0 *= $1 }
    }

    @inline(__always)
    private static func applyRowVector(_ x: inout Tensor, _ v: UnsafeBufferPointer<Float>, _ op: (inout Float, Float) -> Void) {
        let n = v.count
        precondition(n > 0 && x.count % n == 0)
        let rows = x.count / n
        x.withUnsafeMutableBufferPointer { xp in
            let xp = xp
            withoutActuallyEscaping(op) { op in
                parallelChunks(rows, minimumChunk: max(1, 4096 / n)) { rows in
                    for r in rows {
                        let row = xp.baseAddress! + r * n
                        for c in 0..<n { op(&row[c], v[c]) }
                    }
                }
            }
        }
    }

    /// a *= b (same shape).
    public static func mul(_ a: inout Tensor, _ b: Tensor) {
        precondition(a.count == b.count)
        b.withUnsafeBufferPointer { bp in
            a.withUnsafeMutableBufferPointer { ap in
                let (ap, bp) = (ap, bp)
                parallelChunks(ap.count) { r in for i in r { ap[i] *= bp[i] } }
            }
        }
    }

    public static func scale(_ a: inout Tensor, by s: Float) {
        map(&a) { $0 * s }
    }

    /// Applies `f` to every element in place.
    @inline(__always)
    public static func map(_ a: inout Tensor, _ f: (Float) -> Float) {
        a.withUnsafeMutableBufferPointer { ap in
            let ap = ap
            withoutActuallyEscaping(f) { f in
                parallelChunks(ap.count) { r in for i in r { ap[i] = f(ap[i]) } }
            }
        }
    }

    // MARK: Activations

    public static func silu(_ a: inout Tensor) { chunked(&a, ActivationKernels.silu) }

    /// GELU with the tanh approximation (PyTorch `approximate="tanh"`, T5's `gelu_new`).
    public static func geluTanh(_ a: inout Tensor) { chunked(&a, ActivationKernels.geluTanh) }

    /// Runs an in-place array kernel over `a` on both cores.
    private static func chunked(_ a: inout Tensor, _ kernel: (UnsafeMutableBufferPointer<Float>, Bool) -> Void) {
        a.withUnsafeMutableBufferPointer { ap in
            let ap = ap
            withoutActuallyEscaping(kernel) { kernel in
                parallelChunks(ap.count) { r in kernel(UnsafeMutableBufferPointer(rebasing: ap[r]), false) }
            }
        }
    }

    /// Exact GELU (PyTorch's default): x · Φ(x).
    public static func gelu(_ a: inout Tensor) {
        map(&a) { x in 0.5 * x * (1 + erff(x * 0.7071067811865476)) }
    }

    // MARK: Row-wise

    /// Softmax over each row of length `n`, in place (max-subtracted, like PyTorch).
    public static func softmaxRows(_ p: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows {
            let row = p + r * n
            var m = -Float.infinity
            for i in 0..<n where row[i] > m { m = row[i] }
            if m == -.infinity { for i in 0..<n { row[i] = 0 }; continue }
            let sum = ActivationKernels.expShiftedSum(UnsafeMutableBufferPointer(start: row, count: n), shift: m)
            let inv = 1 / sum
            for i in 0..<n { row[i] *= inv }
        }
    }

    /// LayerNorm over the last `n` values of every row; `weight`/`bias` optional (elementwise_affine=False).
    public static func layerNorm(_ x: inout Tensor, n: Int, eps: Float,
                                 weight: UnsafeBufferPointer<Float>? = nil, bias: UnsafeBufferPointer<Float>? = nil) {
        precondition(x.count % n == 0)
        x.withUnsafeMutableBufferPointer { xp in
            let xp = xp
            parallelChunks(xp.count / n, minimumChunk: max(1, 8192 / n)) { rows in
                for r in rows {
                    let row = xp.baseAddress! + r * n
                    var mean: Float = 0
                    for i in 0..<n { mean += row[i] }
                    mean /= Float(n)
                    var variance: Float = 0
                    for i in 0..<n { let d = row[i] - mean; variance += d * d }
                    variance /= Float(n)
                    let inv = 1 / (variance + eps).squareRoot()
                    for i in 0..<n { row[i] = (row[i] - mean) * inv }
                    if let weight { for i in 0..<n { row[i] *= weight[i] } }
                    if let bias { for i in 0..<n { row[i] += bias[i] } }
                }
            }
        }
    }

    /// T5's RMS layer norm: x / sqrt(mean(x²) + eps) · weight, no mean subtraction, no bias.
    public static func rmsNorm(_ x: inout Tensor, n: Int, eps: Float, weight: UnsafeBufferPointer<Float>) {
        precondition(x.count % n == 0)
        x.withUnsafeMutableBufferPointer { xp in
            let xp = xp
            parallelChunks(xp.count / n, minimumChunk: max(1, 8192 / n)) { rows in
                for r in rows {
                    let row = xp.baseAddress! + r * n
                    var ss: Float = 0
                    for i in 0..<n { ss += row[i] * row[i] }
                    let inv = 1 / (ss / Float(n) + eps).squareRoot()
                    for i in 0..<n { row[i] = weight[i] * (row[i] * inv) }
                }
            }
        }
    }

    /// GroupNorm on [N, C, spatial...] with `groups` groups of C/groups channels.
    public static func groupNorm(_ x: inout Tensor, groups: Int, eps: Float,
                                 weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>) {
        let n = x.shape[0], c = x.shape[1]
        let spatial = x.count / (n * c)
        let perGroup = c / groups
        x.withUnsafeMutableBufferPointer { xp in
            let xp = xp
            parallelFor(n * groups) { job in
                let b = job / groups, g = job % groups
                let base = xp.baseAddress! + (b * c + g * perGroup) * spatial
                let (m, inv) = groupStatistics(base, count: perGroup * spatial, eps: eps)
                for ch in 0..<perGroup {
                    let w = weight[g * perGroup + ch] * inv, bb = bias[g * perGroup + ch]
                    let p = base + ch * spatial
                    for i in 0..<spatial { p[i] = (p[i] - m) * w + bb }
                }
            }
        }
    }
}
