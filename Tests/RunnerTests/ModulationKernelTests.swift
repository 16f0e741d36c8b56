import Foundation
import Testing
@testable import Runner
import TestSupport

/// Small deterministic values without a random generator.
private func wave(_ shape: [Int], seed: Float) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor(shape: shape, storage: (0..<n).map { i in sinf(Float(i) * seed + seed) * 1.7 })
}

@Suite("Modulation kernels")
struct ModulationKernelTests {
    @Test("modulate applies each group's shift and scale to its rows")
    func modulateByGroup() {
        let x = wave([2, 3, 4], seed: 0.3), shift = wave([2, 4], seed: 0.7), scale = wave([2, 4], seed: 0.9)
        var y = x
        Kernels.modulate(&y, rowsPerGroup: 3, shift: shift, scale: scale)
        for g in 0..<2 { for r in 0..<3 { for c in 0..<4 {
            let i = (g * 3 + r) * 4 + c
            #expect(abs(y.storage[i] - (x.storage[i] * (1 + scale.storage[g * 4 + c]) + shift.storage[g * 4 + c])) < 1e-6)
        }}}
    }

    @Test("addGated adds gate × y per group")
    func gatedResidual() {
        let h = wave([4, 3], seed: 0.2), y = wave([4, 3], seed: 0.5), gate = wave([2, 3], seed: 0.8)
        var out = h
        Kernels.addGated(&out, y, rowsPerGroup: 2, gate: gate)
        for r in 0..<4 { for c in 0..<3 {
            #expect(abs(out.storage[r * 3 + c] - (gate.storage[(r / 2) * 3 + c] * y.storage[r * 3 + c] + h.storage[r * 3 + c])) < 1e-6)
        }}
    }

    @Test("addCyclicRowVectors gives group g the vector g mod count")
    func cyclicVectors() {
        let x = wave([6, 2, 3], seed: 0.4), vectors = wave([3, 3], seed: 0.6)
        var y = x
        vectors.withUnsafeBufferPointer { Kernels.addCyclicRowVectors(&y, rowsPerGroup: 2, vectors: $0, count: 3) }
        for g in 0..<6 { for r in 0..<2 { for c in 0..<3 {
            let i = (g * 2 + r) * 3 + c
            #expect(y.storage[i] == x.storage[i] + vectors.storage[(g % 3) * 3 + c])
        }}}
    }

    @Test("geglu is first half × exact GELU(second half)")
    func gegluHalves() {
        let x = wave([3, 8], seed: 0.35)
        let y = Kernels.geglu(x)
        #expect(y.shape == [3, 4])
        for r in 0..<3 { for c in 0..<4 {
            let a = x.storage[r * 8 + c], g = x.storage[r * 8 + 4 + c]
            #expect(abs(y.storage[r * 4 + c] - a * 0.5 * g * (1 + erff(g * 0.70710678))) < 1e-6)
        }}
    }

    @Test("channels-last GroupNorm equals GroupNorm on the transposed layout")
    func groupNormChannelsLastMatchesChannelsFirst() {
        let (samples, positions, channels, groups) = (3, 10, 8, 4)
        let x = wave([samples, positions, channels], seed: 0.27)
        let weight = wave([channels], seed: 0.61), bias = wave([channels], seed: 0.83)
        var channelsLast = x
        weight.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
            Kernels.groupNormChannelsLast(&channelsLast, samples: samples, groups: groups, eps: 1e-6, weight: w, bias: b)
        }}
        var channelsFirst = Kernels.permute(x, [0, 2, 1])
        weight.withUnsafeBufferPointer { w in bias.withUnsafeBufferPointer { b in
            Kernels.groupNorm(&channelsFirst, groups: groups, eps: 1e-6, weight: w, bias: b)
        }}
        #expect(channelsLast.maxAbsDifference(Kernels.permute(channelsFirst, [0, 2, 1])) < 1e-5)
    }
}
