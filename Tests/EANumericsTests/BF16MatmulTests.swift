import Foundation
import Testing
import TestSupport
@testable import EANumerics

@Suite("BF16 matmul")
struct BF16MatmulTests {
    /// A product to run: x rows × columns by a weight of `outputs` rows.
    struct Case: CustomStringConvertible, Sendable {
        let rows, columns, outputs: Int
        var description: String { "\(rows)×\(columns)·\(outputs)" }
    }

    /// Tile edges in every direction (rows not a multiple of 16 or 64, outputs not a multiple of 4), and products
    /// whose columns span several cache blocks of pairs (the sums carried through y from block to block).
    static let cases: [Case] = [
        Case(rows: 1, columns: 2, outputs: 1),
        Case(rows: 17, columns: 14, outputs: 5),
        Case(rows: 70, columns: 130, outputs: 9),
        Case(rows: 129, columns: 384, outputs: 64),
        Case(rows: 1000, columns: 1100, outputs: 6),
    ]

    struct Inputs {
        var x: [Float], weight: [UInt16], bias: [Float]
    }

    static func bf16(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        return UInt16((b + 0x7FFF + ((b >> 16) & 1)) >> 16)
    }

    static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    static func inputs(_ c: Case, seed: UInt64) -> Inputs {
        var rng = SplitMix(seed: seed)
        let x = (0..<(c.rows * c.columns)).map { i in Float(rng.unit() * 2 - 1) * (i % 37 == 0 ? 8 : 1) }
        let weight = (0..<(c.outputs * c.columns)).map { _ in bf16(Float(rng.unit() - 0.5) * 0.2) }
        let bias = (0..<c.outputs).map { _ in Float(rng.unit() - 0.5) }
        return Inputs(x: x, weight: weight, bias: bias)
    }

    static func multiply(_ c: Case, _ i: Inputs, bias: Bool = true, portable: Bool) -> [Float] {
        var y = [Float](repeating: .nan, count: c.rows * c.outputs)
        i.x.withUnsafeBufferPointer { x in
            i.weight.withUnsafeBufferPointer { w in
                i.bias.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { y in
                        BF16Matmul.multiply(x, rows: c.rows, weight: w, outputs: c.outputs, columns: c.columns,
                                            bias: bias ? b : nil, into: y, portable: portable)
                    }
                }
            }
        }
        return y
    }

    /// The definition, in double: x rounded to BF16 (nearest even), Σ_k x·w exactly, plus the bias.
    static func reference(_ c: Case, _ i: Inputs) -> [Double] {
        var y = [Double](repeating: 0, count: c.rows * c.outputs)
        for m in 0..<c.rows {
            let row = (0..<c.columns).map { Double(float(bf16(i.x[m * c.columns + $0]))) }
            for n in 0..<c.outputs {
                var dot = Double(i.bias[n])
                for k in 0..<c.columns { dot += row[k] * Double(float(i.weight[n * c.columns + k])) }
                y[m * c.outputs + n] = dot
            }
        }
        return y
    }

    @Test("gives the BF16 product's definition within float32 accumulation", arguments: cases)
    func matchesTheDefinition(_ c: Case) {
        let i = Self.inputs(c, seed: UInt64(c.rows * 1000 + c.columns))
        let y = Self.multiply(c, i, portable: false), expected = Self.reference(c, i)
        #expect(y.count == expected.count)
        let scale = expected.map(abs).max()!
        let worst = zip(y, expected).map { abs(Double($0) - $1) }.max()!
        #expect(worst <= 1e-5 * scale, "\(c): max error \(worst) of \(scale)")
    }

    @Test("the AVX-512 BF16 and portable loops give identical bits", arguments: cases)
    func vectorizedMatchesPortable(_ c: Case) {
        let i = Self.inputs(c, seed: 7)
        let fast = Self.multiply(c, i, portable: false), plain = Self.multiply(c, i, portable: true)
        #expect(fast.map(\.bitPattern) == plain.map(\.bitPattern), "\(c)")
        let noBias = Self.multiply(c, i, bias: false, portable: false)
        #expect(zip(noBias, fast).enumerated().allSatisfy { $1.1 == $1.0 + i.bias[$0 % c.outputs] })
    }

    @Test("rounding x to BF16 is nearest-even, denormals to zero, NaN stays NaN, the same in both loops")
    func roundingOfTheActivations() {
        let c = Case(rows: 3, columns: 8, outputs: 1)
        // Row 0 picks single columns through the weight; 1 + 2⁻⁸ is a tie (to 1), 1 + 3·2⁻⁸ a tie up.
        let values: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-9, -(1 + 0x1p-7), 0x1p-130, -0x1p-140, 65504, 0]
        let rounded: [Float] = [1, 1 + 0x1p-6, 1, -(1 + 0x1p-7), 0, 0, 65536, 0]
        for (k, expected) in rounded.enumerated() {
            var i = Inputs(x: values + [Float](repeating: 0, count: 16), weight: [UInt16](repeating: 0, count: 8), bias: [0])
            i.weight[k] = Self.bf16(1)
            i.x[8 + 3] = .nan
            for portable in [false, true] {
                let y = Self.multiply(c, i, portable: portable)
                #expect(y[0] == expected, "column \(k), portable \(portable): \(y[0])")
                #expect(y[1].isNaN && y[2] == 0)
            }
        }
    }
}
