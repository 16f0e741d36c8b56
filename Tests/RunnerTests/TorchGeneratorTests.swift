import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

@Suite("TorchGenerator")
struct TorchGeneratorTests {
    @Test("randn equals torch.randn(shape, generator=torch.Generator('cpu').manual_seed(N)) for every golden seed and shape")
    func randnMatchesTorch() throws {
        let golden = try SafetensorsFile(path: Fixtures.golden("torch_cpu_randn.safetensors"))
        #expect(!golden.keys.isEmpty)
        for key in golden.keys {
            // Keys are `seed<N>`: scalar path (< 16 values), one vector block, a partial block, larger tensors.
            let seed = try #require(UInt64(key.dropFirst("seed".count)), "unexpected key \(key)")
            let expected = try golden.tensor(key)
            var generator = TorchGenerator(seed: seed)
            let drawn = try generator.randn(shape: expected.shape)
            #expect(drawn.shape == expected.shape)
            let worst = GoldenComparison.maxAbsDifference(drawn.storage, expected.toFloat32())
            #expect(worst <= Tolerances.randomNumbers, "\(key): max abs diff \(worst)")
        }
    }

    @Test("the engine is the standard mt19937 (C++ [rand.predef]: 10000th output of seed 5489 is 4123659995)")
    func engineIsMT19937() {
        var generator = TorchGenerator(seed: 5489)
        #expect(generator.randomUInt32() == 3_499_211_612)
        for _ in 0..<9_998 { _ = generator.randomUInt32() }
        #expect(generator.randomUInt32() == 4_123_659_995)
    }

    @Test("small draws hand out the cached second Box–Muller value first, and manualSeed drops it")
    func scalarPathCachesSecondNormal() {
        var pair = TorchGenerator(seed: 7)
        let both = pair.randn(count: 2)
        var single = TorchGenerator(seed: 7)
        let first = single.randn(count: 1), second = single.randn(count: 1)
        #expect(both == first + second)

        var reseeded = TorchGenerator(seed: 7)
        _ = reseeded.randn(count: 1)          // leaves a cached value
        reseeded.manualSeed(7)
        #expect(reseeded.randn(count: 2) == both)
    }

    @Test("the vectorised path (16 or more values) neither uses nor sets the cached value")
    func vectorPathIgnoresCache() {
        var withCache = TorchGenerator(seed: 11)
        let cached = withCache.randn(count: 1)     // 4 engine draws, one normal cached
        let block = withCache.randn(count: 16)
        var plain = TorchGenerator(seed: 11)
        _ = plain.randn(count: 1)
        #expect(block == plain.randn(count: 16))
        // The cached value is still there for the next small draw.
        var fresh = TorchGenerator(seed: 11)
        let pair = fresh.randn(count: 2)
        #expect(withCache.randn(count: 1) == [pair[1]])
        #expect(cached == [pair[0]])
    }

    @Test("randn rejects a negative shape")
    func rejectsNegativeShape() {
        var generator = TorchGenerator(seed: 0)
        #expect(throws: RunnerError.self) { try generator.randn(shape: [2, -1]) }
    }
}
