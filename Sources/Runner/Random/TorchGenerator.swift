import Foundation

/// Reproduces PyTorch's CPU generator bit for bit: `g = torch.Generator("cpu").manual_seed(seed)` followed by
/// `torch.randn(shape, generator=g)` (float32, contiguous), as implemented in ATen's `CPUGeneratorImpl.cpp`,
/// `core/MT19937RNGEngine.h`, `core/DistributionsHelper.h`, `core/TransformationHelper.h` and
/// `native/cpu/DistributionTemplates.h` (PyTorch 2.x on x86-64).
///
/// `randn` takes one of two paths, exactly as ATen does:
/// - fewer than 16 values: one Box–Muller pair per two values from 53-bit uniforms in double precision, the
///   second value of each pair cached in the generator (and handed out first by the next small draw);
/// - 16 values or more: 24-bit float uniforms for every element, then Box–Muller in blocks of 16 with the
///   AVX2 kernel's Cephes log/sincos (`BoxMullerAVX2`); a size that is not a multiple of 16 redraws the last
///   16 uniforms and recomputes that block. This path neither reads nor sets the cached value.
///
/// Diffusers' `randn_tensor(shape, generator=g)` on CPU is the same draw, so one generator gives EasyAnimate's
/// initial latents and then Euler A's per-step noise.
public struct TorchGenerator: Sendable {
    private static let stateSize = 624
    private static let shift = 397

    /// The seed given to `manualSeed` (torch's `initial_seed()`).
    public private(set) var initialSeed: UInt64
    private var state: [UInt32]
    private var left: Int
    private var next: Int
    /// ATen's `next_double_normal_sample`: the unused half of the last scalar-path Box–Muller pair.
    private var cachedNormal: Double?

    public init(seed: UInt64) {
        initialSeed = seed
        state = [UInt32](repeating: 0, count: Self.stateSize)
        left = 1
        next = 0
        cachedNormal = nil
        manualSeed(seed)
    }

    /// `torch.Generator.manual_seed(seed)`: reseeds the Mersenne Twister (low 32 bits) and drops the cached normal.
    /// Negative Python seeds map to their two's-complement `UInt64` (`UInt64(bitPattern:)`).
    public mutating func manualSeed(_ seed: UInt64) {
        initialSeed = seed
        cachedNormal = nil
        state[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<Self.stateSize {
            let previous = state[j - 1]
            state[j] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(j)
        }
        left = 1
        next = 0
    }

    /// One 32-bit output of the engine (`CPUGeneratorImpl::random`).
    public mutating func randomUInt32() -> UInt32 {
        left -= 1
        if left == 0 { twist() }
        var y = state[next]
        next += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// Two engine outputs, the first in the high half (`CPUGeneratorImpl::random64`).
    public mutating func randomUInt64() -> UInt64 {
        let high = randomUInt32()
        let low = randomUInt32()
        return UInt64(high) << 32 | UInt64(low)
    }

    /// `torch.randn(count, generator=self)`: `count` standard normal float32 values.
    public mutating func randn(count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: max(count, 0)) { values, initialized in
            randn(into: UnsafeMutableBufferPointer(rebasing: values[0..<max(count, 0)]))
            initialized = max(count, 0)
        }
    }

    /// `torch.randn(values.count, generator=self)` written into `values`.
    public mutating func randn(into values: UnsafeMutableBufferPointer<Float>) {
        let count = values.count
        guard count > 0 else { return }
        if count < BoxMullerAVX2.blockSize {
            for i in 0..<count { values[i] = Float(nextScalarNormal()) }
            return
        }
        for i in 0..<count { values[i] = nextUniformFloat() }
        let block = BoxMullerAVX2.blockSize
        var start = 0
        while start + block <= count {
            BoxMullerAVX2.transform(values, block: start)
            start += block
        }
        if count % block != 0 {
            // ATen redraws the uniforms of the last (overlapping) block and transforms it again.
            let tail = count - block
            for i in tail..<count { values[i] = nextUniformFloat() }
            BoxMullerAVX2.transform(values, block: tail)
        }
    }

    /// `torch.randn(shape, generator=self)` as a tensor; the draw only depends on the element count.
    public mutating func randn(shape: [Int]) throws -> Tensor {
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow else {
                throw RunnerError.invalidInput("randn: shape \(shape) is negative or too large to allocate")
            }
            count = product
        }
        var out = Tensor(uninitialized: shape)
        out.withUnsafeMutableBufferPointer { randn(into: $0) }
        return out
    }

    // MARK: - Distributions

    /// `uniform_real_distribution<float>(0, 1)`: the low 24 bits of one engine output, times 2^-24.
    private mutating func nextUniformFloat() -> Float {
        Float(randomUInt32() & 0xFF_FFFF) * 0x1p-24
    }

    /// `uniform_real_distribution<double>(0, 1)`: the low 53 bits of a 64-bit draw, times 2^-53.
    private mutating func nextUniformDouble() -> Double {
        Double(randomUInt64() & 0x1F_FFFF_FFFF_FFFF) * 0x1p-53
    }

    /// `normal_distribution<double>(0, 1)` with ATen's cached second sample.
    private mutating func nextScalarNormal() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = nextUniformDouble()
        let u2 = nextUniformDouble()
        let radius = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = radius * Foundation.sin(theta)
        return radius * Foundation.cos(theta)
    }

    // MARK: - Engine

    /// Regenerates the 624-word state (mt19937ar-cok's `next_state`).
    private mutating func twist() {
        let n = Self.stateSize, m = Self.shift
        func mixed(_ u: UInt32, _ v: UInt32) -> UInt32 {
            let bits = (u & 0x8000_0000) | (v & 0x7FFF_FFFF)
            return (bits >> 1) ^ ((v & 1) != 0 ? 0x9908_B0DF : 0)
        }
        for k in 0..<(n - m) { state[k] = state[k + m] ^ mixed(state[k], state[k + 1]) }
        for k in (n - m)..<(n - 1) { state[k] = state[k + m - n] ^ mixed(state[k], state[k + 1]) }
        state[n - 1] = state[m - 1] ^ mixed(state[n - 1], state[0])
        left = n
        next = 0
    }
}
