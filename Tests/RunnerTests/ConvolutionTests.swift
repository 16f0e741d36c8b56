import Foundation
import Testing
@testable import Runner
import TestSupport

@Suite("Convolution banding")
struct ConvolutionTests {
    private func ramp(_ shape: [Int], seed: Float) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, storage: (0..<n).map { i in sinf(Float(i) * seed + seed) })
    }

    @Test("conv2d computed in bands of output rows equals the single-band result")
    func bandsMatchWholeImage() {
        let x = ramp([2, 5, 9, 7], seed: 0.31), w = ramp([6, 5, 3, 3], seed: 0.13), bias = ramp([6], seed: 0.7)
        for (stride, pad) in [(1, 1), (2, 1), (1, 0)] {
            let convolve = { (budget: Int) in
                w.withUnsafeBufferPointer { wp in bias.withUnsafeBufferPointer { bp in
                    Kernels.conv2d(x, weight: wp, bias: bp, outChannels: 6, kernel: (3, 3), stride: stride, padding: pad,
                                   columnBudget: budget)
                }}
            }
            let whole = convolve(1 << 30)
            // One row per band, then two rows per band (the last band shorter).
            for budget in [1, 5 * 9 * 7 * 2] {
                #expect(convolve(budget).maxAbsDifference(whole) < 1e-5)
            }
        }
    }

    @Test("pointwise conv2d without bias is a channel matmul")
    func pointwiseWithoutBias() {
        let x = ramp([1, 3, 4, 5], seed: 0.41), w = ramp([2, 3, 1, 1], seed: 0.23)
        let y = w.withUnsafeBufferPointer { wp in
            Kernels.conv2d(x, weight: wp, bias: nil, outChannels: 2, kernel: (1, 1))
        }
        for o in 0..<2 { for p in 0..<20 {
            let s = (0..<3).reduce(Float(0)) { $0 + w.storage[o * 3 + $1] * x.storage[$1 * 20 + p] }
            #expect(abs(y.storage[o * 20 + p] - s) < 1e-5)
        }}
    }
}

@Suite("Fused group norm and SiLU")
struct GroupNormSiLUTests {
    @Test("groupNormSiLU equals groupNorm followed by silu")
    func matchesSeparateKernels() {
        // 40 values per channel: exercises the 16-lane body and the tail.
        let shape = [2, 6, 5, 8]
        let count = shape.reduce(1, *)
        let x = Tensor(shape: shape, storage: (0..<count).map { i in 3 * sinf(Float(i) * 0.77) + 0.5 })
        let weight = (0..<6).map { Float($0) * 0.3 - 0.7 }, bias = (0..<6).map { Float($0) * 0.11 + 0.2 }
        var fused = x, separate = x
        weight.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
            Kernels.groupNormSiLU(&fused, groups: 3, eps: 1e-6, weight: w, bias: b)
            Kernels.groupNorm(&separate, groups: 3, eps: 1e-6, weight: w, bias: b)
        }}
        Kernels.silu(&separate)
        #expect(fused.maxAbsDifference(separate) < 1e-5)
    }

    @Test("exponential is within a few ulp of expf, and saturates instead of overflowing")
    func exponentialAccuracy() {
        var worst: Float = 0
        for i in stride(from: -87 * 64, through: 87 * 64, by: 1) {
            let x = Float(i) / 64 + 0.0037
            worst = max(worst, abs(Kernels.exponential(x) - expf(x)) / expf(x))
        }
        #expect(worst < 4e-7)
        #expect(Kernels.exponential(200).isFinite)
        #expect(Kernels.exponential(-200) >= 0 && Kernels.exponential(-200) < 1e-37)
    }
}
