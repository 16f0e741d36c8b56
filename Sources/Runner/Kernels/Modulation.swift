import EANumerics

extension Kernels {
    /// adaLN modulation of row groups: rows `g·rowsPerGroup ..< (g+1)·rowsPerGroup` of `x` [G·rowsPerGroup, D]
    /// become `x · (1 + scale[g]) + shift[g]`, with `shift` and `scale` [G, D] (PyTorch's broadcast
    /// `norm * (1 + scale) + shift`, same operation order).
    public static func modulate(_ x: inout Tensor, rowsPerGroup: Int, shift: Tensor, scale: Tensor) {
        let n = x.shape[x.rank - 1]
        let rows = x.count / max(1, n)
        precondition(rowsPerGroup > 0 && rows % rowsPerGroup == 0, "modulate: \(x.shape) in groups of \(rowsPerGroup)")
        precondition(shift.count == rows / rowsPerGroup * n && scale.count == shift.count, "modulate: shift/scale size")
        shift.withUnsafeBufferPointer { sh in
        scale.withUnsafeBufferPointer { sc in
        x.withUnsafeMutableBufferPointer { xp in
            let (sh, sc, xp) = (sh, sc, xp)
            parallelChunks(rows, minimumChunk: max(1, 8192 / max(1, n))) { range in
                for r in range {
                    let g = r / rowsPerGroup
                    let row = xp.baseAddress! + r * n
                    let s = sc.baseAddress! + g * n, b = sh.baseAddress! + g * n
                    for c in 0..<n { row[c] = row[c] * (1 + s[c]) + b[c] }
                }
            }
        }}}
    }

    /// Gated residual of row groups: `h[r] += gate[g] · y[r]` for row r in group g (`gate` [G, D]).
    public static func addGated(_ h: inout Tensor, _ y: Tensor, rowsPerGroup: Int, gate: Tensor) {
        let n = h.shape[h.rank - 1]
        let rows = h.count / max(1, n)
        precondition(h.count == y.count && rowsPerGroup > 0 && rows % rowsPerGroup == 0, "addGated: \(h.shape) vs \(y.shape)")
        precondition(gate.count == rows / rowsPerGroup * n, "addGated: gate size")
        gate.withUnsafeBufferPointer { gp in
        y.withUnsafeBufferPointer { yp in
        h.withUnsafeMutableBufferPointer { hp in
            let (gp, yp, hp) = (gp, yp, hp)
            parallelChunks(rows, minimumChunk: max(1, 8192 / max(1, n))) { range in
                for r in range {
                    let g = gp.baseAddress! + (r / rowsPerGroup) * n
                    let dst = hp.baseAddress! + r * n, src = yp.baseAddress! + r * n
                    for c in 0..<n { dst[c] = g[c] * src[c] + dst[c] }
                }
            }
        }}}
    }

    /// Adds one vector per row group, cycling through `vectors` [V, D]: group g (rows g·rowsPerGroup...) gets
    /// `vectors[g % V]`. A [(B·F), N, D] activation with per-frame vectors [F, D] is the motion module's
    /// temporal position encoding.
    public static func addCyclicRowVectors(_ x: inout Tensor, rowsPerGroup: Int, vectors: UnsafeBufferPointer<Float>, count: Int) {
        let n = x.shape[x.rank - 1]
        let rows = x.count / max(1, n)
        precondition(rowsPerGroup > 0 && rows % rowsPerGroup == 0 && count > 0 && vectors.count >= count * n,
                     "addCyclicRowVectors: \(x.shape) in groups of \(rowsPerGroup), \(count) vectors")
        x.withUnsafeMutableBufferPointer { xp in
            let xp = xp
            parallelChunks(rows, minimumChunk: max(1, 8192 / max(1, n))) { range in
                for r in range {
                    let v = vectors.baseAddress! + ((r / rowsPerGroup) % count) * n
                    let row = xp.baseAddress! + r * n
                    for c in 0..<n { row[c] += v[c] }
                }
            }
        }
    }

    /// GEGLU (diffusers `GEGLU`): splits the last axis of `x` [..., 2n] into halves (a, gate) and returns
    /// `a · gelu(gate)` [..., n] with PyTorch's exact (erf) GELU.
    public static func geglu(_ x: Tensor) -> Tensor {
        let twice = x.shape[x.rank - 1]
        precondition(twice % 2 == 0, "geglu: odd last dimension \(x.shape)")
        let n = twice / 2
        let rows = x.count / max(1, twice)
        var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [n])   // every element is written
        x.withUnsafeBufferPointer { xp in
        out.withUnsafeMutableBufferPointer { op in
            let (xp, op) = (xp, op)
            parallelChunks(rows, minimumChunk: max(1, 8192 / max(1, twice))) { range in
                for r in range {
                    let a = xp.baseAddress! + r * twice, gate = a + n
                    let o = op.baseAddress! + r * n
                    for c in 0..<n {
                        let g = gate[c]
                        o[c] = a[c] * (0.5 * g * (1 + erff(g * 0.7071067811865476)))
                    }
                }
            }
        }}
        return out
    }

    /// GroupNorm on channels-last data: `x` [S, P, C] holds S samples of P positions with C channels each; the
    /// statistics of group k of sample s run over its P positions and C/groups channels, exactly what
    /// `nn.GroupNorm` computes on the [S, C, P] layout, without transposing.
    public static func groupNormChannelsLast(_ x: inout Tensor, samples: Int, groups: Int, eps: Float,
                                             weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>) {
        let c = x.shape[x.rank - 1]
        precondition(samples > 0 && groups > 0 && c % groups == 0 && x.count % (samples * c) == 0,
                     "groupNormChannelsLast: \(x.shape), \(samples) samples, \(groups) groups")
        let positions = x.count / (samples * c)
        let perGroup = c / groups
        x.withUnsafeMutableBufferPointer { xp in
            let xp = xp
            parallelFor(samples) { s in
                let base = xp.baseAddress! + s * positions * c
                // Per-channel sums in Double (one vectorizable pass over the rows), then per-group statistics.
                var scratch = [Double](repeating: 0, count: c)
                var channelScale = [Float](repeating: 0, count: c)
                var channelShift = [Float](repeating: 0, count: c)
                scratch.withUnsafeMutableBufferPointer { acc in
                channelScale.withUnsafeMutableBufferPointer { scale in
                channelShift.withUnsafeMutableBufferPointer { shift in
                    let count = Double(positions * perGroup)
                    for p in 0..<positions {
                        let row = base + p * c
                        for ch in 0..<c { acc[ch] += Double(row[ch]) }
                    }
                    for g in 0..<groups {
                        var total: Double = 0
                        for ch in (g * perGroup)..<((g + 1) * perGroup) { total += acc[ch] }
                        let m = total / count
                        for ch in (g * perGroup)..<((g + 1) * perGroup) { acc[ch] = m }
                    }
                    // acc now holds each channel's group mean; the squared deviations go to a second buffer.
                    var deviations = [Double](repeating: 0, count: c)
                    deviations.withUnsafeMutableBufferPointer { dev in
                        for p in 0..<positions {
                            let row = base + p * c
                            for ch in 0..<c { let d = Double(row[ch]) - acc[ch]; dev[ch] += d * d }
                        }
                        for g in 0..<groups {
                            var total: Double = 0
                            for ch in (g * perGroup)..<((g + 1) * perGroup) { total += dev[ch] }
                            let inv = Float(1 / (total / count + Double(eps)).squareRoot())
                            for ch in (g * perGroup)..<((g + 1) * perGroup) {
                                // y = (x - mean) · inv · weight + bias = x · scale + shift
                                scale[ch] = inv * weight[ch]
                                shift[ch] = bias[ch] - Float(acc[ch]) * scale[ch]
                            }
                        }
                    }
                    for p in 0..<positions {
                        let row = base + p * c
                        for ch in 0..<c { row[ch] = row[ch] * scale[ch] + shift[ch] }
                    }
                }}}
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
