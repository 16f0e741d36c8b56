import Foundation
import Testing
@testable import EANumerics

@Suite("Activation kernels")
struct ActivationKernelsTests {
    /// Both signs over the range where the activations change, the ends where exp saturates, ±0, ±inf, NaN, and
    /// an odd count so the scalar tail runs too.
    static let inputs: [Float] = {
        var values: [Float] = [0, -0, .infinity, -.infinity, .nan, 1e-30, -1e-30, 88, 89, -88, -104, -110, 200, -200]
        for i in -2000...2000 { values.append(Float(i) / 100) }
        return values
    }()

    /// The vectorized result stays within `ulps` units in the last place of the libm one, or within
    /// `floor(x)` absolute (GELU's left tail, where the libm form's `1 + tanh(u)` cancels).
    static func expectClose(_ fast: [Float], _ plain: [Float], ulps: Float, floor: (Float) -> Float, _ what: String) {
        for (i, (f, p)) in zip(fast, plain).enumerated() {
            let x = inputs[i], floor = floor(x)
            if p.isNaN { #expect(f.isNaN, "\(what)(\(x)) should be NaN, is \(f)"); continue }
            if p.isInfinite || p == 0 { #expect(f == p || abs(f) <= floor, "\(what)(\(x)) = \(f), libm \(p)"); continue }
            let tolerance = max(ulps * p.magnitude.ulp, floor)
            #expect(abs(f - p) <= tolerance, "\(what)(\(inputs[i])) = \(f), libm \(p)")
        }
    }

    static func run(_ kernel: (UnsafeMutableBufferPointer<Float>, Bool) -> Void, portable: Bool) -> [Float] {
        var x = inputs
        x.withUnsafeMutableBufferPointer { kernel($0, portable) }
        return x
    }

    @Test("vectorized tanh GELU matches the libm form within 4 ulp, or its own rounding (1.2e-7·|x|) in the left tail")
    func geluTanhMatchesLibm() {
        let fast = Self.run(ActivationKernels.geluTanh, portable: false)
        let plain = Self.run(ActivationKernels.geluTanh, portable: true)
        Self.expectClose(fast, plain, ulps: 4, floor: { x in x < 0 && x.isFinite ? 1.2e-7 * -x : 0 }, "gelu")
        #expect(fast[2] == .infinity && fast[3].isNaN == plain[3].isNaN)
    }

    @Test("vectorized SiLU matches libm's within 4 ulp")
    func siluMatchesLibm() {
        let fast = Self.run(ActivationKernels.silu, portable: false)
        let plain = Self.run(ActivationKernels.silu, portable: true)
        Self.expectClose(fast, plain, ulps: 4, floor: { _ in 1e-37 }, "silu")
    }

    @Test("the softmax exponentials match libm's within 2 ulp and their sum within float rounding")
    func expShiftedSumMatchesLibm() {
        let finite = Self.inputs.filter { $0.isFinite && abs($0) < 100 }
        var fast = finite, plain = finite
        let fastSum = fast.withUnsafeMutableBufferPointer { ActivationKernels.expShiftedSum($0, shift: 20, portable: false) }
        let plainSum = plain.withUnsafeMutableBufferPointer { ActivationKernels.expShiftedSum($0, shift: 20, portable: true) }
        for (f, p) in zip(fast, plain) { #expect(abs(f - p) <= max(2 * p.ulp, 1e-37), "exp \(f) vs \(p)") }
        #expect(abs(fastSum - plainSum) <= 1e-5 * plainSum)
        // Sixteen values, so the vector loop (not the scalar tail) sees NaN and -inf.
        var special: [Float] = [.nan, -.infinity] + [Float](repeating: 0, count: 14)
        _ = special.withUnsafeMutableBufferPointer { ActivationKernels.expShiftedSum($0, shift: 0) }
        #expect(special[0].isNaN && special[1] == 0 && special[2] == 1 && special[15] == 1)
    }
}
