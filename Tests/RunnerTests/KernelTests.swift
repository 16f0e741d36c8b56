import Foundation
import Testing
@testable import Runner
import TestSupport

/// Small deterministic values without a random generator.
private func ramp(_ shape: [Int], seed: Float = 0.37) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor(shape: shape, storage: (0..<n).map { i in sinf(Float(i) * seed + seed) })
}

private func naiveMatmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n { var s: Float = 0; for p in 0..<k { s += a[i * k + p] * b[p * n + j] }; c[i * n + j] = s } }
    return c
}

@Suite("Kernels")
struct KernelTests {
    @Test("matmul matches a naive product")
    func matmulMatchesNaive() {
        let a = ramp([7, 5]), b = ramp([5, 3], seed: 0.11)
        let c = Kernels.matmul(a, b)
        let expected = naiveMatmul(a.storage, b.storage, m: 7, k: 5, n: 3)
        #expect(c.shape == [7, 3])
        #expect(c.maxAbsDifference(Tensor(shape: [7, 3], storage: expected)) < 1e-5)
    }

    @Test("attention equals softmax(QKᵀ·scale + bias)·V per head")
    func attentionMatchesReference() {
        let (b, lq, lk, h, d) = (2, 3, 4, 2, 3)
        let q = ramp([b, lq, h * d]), k = ramp([b, lk, h * d], seed: 0.21), v = ramp([b, lk, h * d], seed: 0.53)
        var maskStorage = [Float](repeating: 0, count: b * lk)
        maskStorage[lk - 1] = -.infinity   // batch 0 cannot see its last key
        let mask = Tensor(shape: [b, lk], storage: maskStorage)
        let out = Kernels.attention(q: q, k: k, v: v, heads: h, scale: 0.5, keyBias: mask)
        for bi in 0..<b { for hi in 0..<h { for i in 0..<lq {
            var scores = (0..<lk).map { j -> Float in
                var s: Float = 0
                for x in 0..<d { s += q.storage[(bi * lq + i) * h * d + hi * d + x] * k.storage[(bi * lk + j) * h * d + hi * d + x] }
                return s * 0.5 + maskStorage[bi * lk + j]
            }
            let m = scores.max()!
            scores = scores.map { expf($0 - m) }
            let total = scores.reduce(0, +)
            for x in 0..<d {
                var o: Float = 0
                for j in 0..<lk { o += scores[j] / total * v.storage[(bi * lk + j) * h * d + hi * d + x] }
                #expect(abs(o - out.storage[(bi * lq + i) * h * d + hi * d + x]) < 1e-5)
            }
        }}}
    }

    @Test("feed-forward in bands of rows equals the whole product", arguments: [FeedForward.Activation.geluTanh, .geglu])
    func feedForwardBandsMatchWhole(activation: FeedForward.Activation) throws {
        let (dim, rows) = (8, 37)
        let inner = activation == .geglu ? 64 : 32
        let store = WeightStore(name: "ff", layers: [], replacements: [
            "net.0.proj.weight": ramp([inner, dim], seed: 0.13), "net.0.proj.bias": ramp([inner], seed: 0.7),
            "net.2.weight": ramp([dim, 32], seed: 0.29), "net.2.bias": ramp([dim], seed: 0.41),
        ])
        let ff = try FeedForward(store.root, dim: dim, activation: activation)
        let x = ramp([rows, 1, dim], seed: 0.19)
        let whole = ff(x)
        let banded = ff(x, innerBudget: 5 * inner)   // 8 bands, the last of 2 rows
        #expect(banded.shape == [rows, 1, dim] && whole.shape == banded.shape)
        #expect(banded.maxAbsDifference(whole) < 1e-6)
    }

    @Test("conv2d with padding and stride matches a direct convolution")
    func convMatchesDirect() {
        let (n, cin, hgt, wid, cout, ks) = (2, 3, 5, 6, 4, 3)
        let x = ramp([n, cin, hgt, wid]), w = ramp([cout, cin, ks, ks], seed: 0.17), bias = ramp([cout], seed: 0.9)
        for (stride, pad) in [(1, 1), (2, 0), (2, 1)] {
            let y = w.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { bp in
                Kernels.conv2d(x, weight: wp, bias: bp, outChannels: cout, kernel: (ks, ks), stride: stride, padding: pad)
            }}
            let oh = (hgt + 2 * pad - ks) / stride + 1, ow = (wid + 2 * pad - ks) / stride + 1
            #expect(y.shape == [n, cout, oh, ow])
            for b in 0..<n { for o in 0..<cout { for oy in 0..<oh { for ox in 0..<ow {
                var s = bias.storage[o]
                for c in 0..<cin { for ky in 0..<ks { for kx in 0..<ks {
                    let iy = oy * stride - pad + ky, ix = ox * stride - pad + kx
                    if iy >= 0 && iy < hgt && ix >= 0 && ix < wid {
                        s += x.storage[((b * cin + c) * hgt + iy) * wid + ix] * w.storage[((o * cin + c) * ks + ky) * ks + kx]
                    }
                }}}
                #expect(abs(s - y.storage[((b * cout + o) * oh + oy) * ow + ox]) < 1e-4)
            }}}}
        }
    }

    @Test("permute reorders axes like torch.permute")
    func permuteReorders() {
        let x = ramp([2, 3, 4, 5])
        let y = Kernels.permute(x, [2, 0, 3, 1])
        #expect(y.shape == [4, 2, 5, 3])
        for a in 0..<2 { for b in 0..<3 { for c in 0..<4 { for d in 0..<5 {
            #expect(y.storage[((c * 2 + a) * 5 + d) * 3 + b] == x.storage[((a * 3 + b) * 4 + c) * 5 + d])
        }}}}
    }

    @Test("group norm normalizes each group to zero mean and unit variance")
    func groupNormNormalizes() {
        var x = ramp([1, 4, 3, 3])
        let ones = [Float](repeating: 1, count: 4), zeros = [Float](repeating: 0, count: 4)
        ones.withUnsafeBufferPointer { w in zeros.withUnsafeBufferPointer { b in Kernels.groupNorm(&x, groups: 2, eps: 0, weight: w, bias: b) } }
        for g in 0..<2 {
            let values = Array(x.storage[(g * 18)..<((g + 1) * 18)])
            let mean = values.reduce(0, +) / 18
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 18
            #expect(abs(mean) < 1e-5)
            #expect(abs(variance - 1) < 1e-4)
        }
    }
}
