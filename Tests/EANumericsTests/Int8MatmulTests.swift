import Foundation
import Testing
import TestSupport
@testable import EANumerics

@Suite("Int8 matmul")
struct Int8MatmulTests {
    /// A product to run: x rows × columns, a weight of `outputs` rows with scales per `scaleRows` × `group`.
    struct Case: CustomStringConvertible, Sendable {
        let rows, columns, outputs, group, scaleRows: Int
        var description: String { "\(rows)×\(columns)·\(outputs) group \(group)/\(scaleRows)" }

        var layout: Int8Matmul.Layout {
            Int8Matmul.Layout(rows: outputs, columns: columns, rowStride: (columns + 3) / 4 * 4, group: group, scaleRows: scaleRows)
        }
    }

    /// Tile edges in every direction: rows not a multiple of 16 or 64, columns not a multiple of 4, outputs not
    /// a multiple of 4, a short last group, one scale per block of rows (the `convert` layout).
    static let cases: [Case] = [
        Case(rows: 1, columns: 4, outputs: 1, group: 4, scaleRows: 1),
        Case(rows: 17, columns: 13, outputs: 5, group: 4, scaleRows: 1),
        Case(rows: 70, columns: 130, outputs: 9, group: 32, scaleRows: 1),
        Case(rows: 100, columns: 256, outputs: 33, group: 128, scaleRows: 2),
        Case(rows: 129, columns: 384, outputs: 64, group: 128, scaleRows: 64),
        Case(rows: 33, columns: 300, outputs: 7, group: 64, scaleRows: 1),
    ]

    struct Inputs {
        var x: [Float], weight: [UInt8], scales: [Float], bias: [Float]
    }

    static func inputs(_ c: Case, seed: UInt64) -> Inputs {
        var rng = SplitMix(seed: seed)
        let layout = c.layout
        // Some rows with a large outlier, as activations have, so groups get different scales.
        let x = (0..<(c.rows * c.columns)).map { i in Float(rng.unit() * 2 - 1) * (i % 37 == 0 ? 8 : 1) }
        var weight = [UInt8](repeating: 0, count: c.outputs * layout.rowStride)
        for n in 0..<c.outputs { for k in 0..<c.columns { weight[n * layout.rowStride + k] = UInt8(bitPattern: Int8(Int(rng.next() % 255) - 127)) } }
        // The padding bytes past a row's end may hold anything: the matmul must ignore them.
        for n in 0..<c.outputs { for k in c.columns..<layout.rowStride { weight[n * layout.rowStride + k] = 0x7F } }
        let scales = (0..<layout.scaleCount).map { _ in Float(0.005 + rng.unit() * 0.01) }
        let bias = (0..<c.outputs).map { _ in Float(rng.unit() - 0.5) }
        return Inputs(x: x, weight: weight, scales: scales, bias: bias)
    }

    static func multiply(_ c: Case, _ i: Inputs, bias: Bool = true, portable: Bool) -> [Float] {
        let layout = c.layout
        var y = [Float](repeating: .nan, count: c.rows * c.outputs)
        i.weight.withUnsafeBytes { w in
            let sums = Int8Matmul.weightSums(w, layout: layout)
            i.x.withUnsafeBufferPointer { x in
                i.scales.withUnsafeBufferPointer { s in
                    sums.withUnsafeBufferPointer { sums in
                        i.bias.withUnsafeBufferPointer { b in
                            y.withUnsafeMutableBufferPointer { y in
                                Int8Matmul.multiply(x, rows: c.rows, weight: w, layout: layout, scales: s, sums: sums,
                                                    bias: bias ? b : nil, into: y, portable: portable)
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The definition, in double: each group of each row quantized (scale = max |x| / 127, q = x / scale
    /// rounded half to even), Σ_g xs·ws·Σ_k q·w exactly, plus the bias.
    static func reference(_ c: Case, _ i: Inputs) -> [Double] {
        let layout = c.layout
        var y = [Double](repeating: 0, count: c.rows * c.outputs)
        for m in 0..<c.rows {
            for g in 0..<layout.groups {
                let ks = (g * c.group)..<min(c.columns, (g + 1) * c.group)
                let amax = ks.map { abs(i.x[m * c.columns + $0]) }.max()!
                let inverse: Float = amax > 0 ? 127 / amax : 0
                let q = ks.map { Double((i.x[m * c.columns + $0] * inverse).rounded(.toNearestOrEven)) }
                for n in 0..<c.outputs {
                    var dot = 0.0
                    for (j, k) in ks.enumerated() { dot += q[j] * Double(Int8(bitPattern: i.weight[n * layout.rowStride + k])) }
                    y[m * c.outputs + n] += dot * Double(amax / 127) * Double(i.scales[(n / c.scaleRows) * layout.groups + g])
                }
            }
            for n in 0..<c.outputs { y[m * c.outputs + n] += Double(i.bias[n]) }
        }
        return y
    }

    @Test("gives the quantized product's definition within float32 accumulation", arguments: cases)
    func matchesTheDefinition(_ c: Case) {
        let i = Self.inputs(c, seed: UInt64(c.rows * 1000 + c.columns))
        let y = Self.multiply(c, i, portable: false), expected = Self.reference(c, i)
        #expect(y.count == expected.count)
        let scale = expected.map(abs).max()!
        let worst = zip(y, expected).map { abs(Double($0) - $1) }.max()!
        #expect(worst <= 1e-5 * scale, "\(c): max error \(worst) of \(scale)")
    }

    @Test("the VNNI and portable loops give identical bytes", arguments: cases)
    func vectorizedMatchesPortable(_ c: Case) {
        let i = Self.inputs(c, seed: 7)
        let fast = Self.multiply(c, i, portable: false), plain = Self.multiply(c, i, portable: true)
        #expect(fast.map(\.bitPattern) == plain.map(\.bitPattern), "\(c)")
        let noBias = Self.multiply(c, i, bias: false, portable: false)
        #expect(zip(noBias, fast).enumerated().allSatisfy { $1.1 == $1.0 + i.bias[$0 % c.outputs] })
    }

    @Test("the product tracks float32 within int8 rounding (relative Frobenius error under 2 %)")
    func tracksTheFloatProduct() {
        let c = Case(rows: 64, columns: 256, outputs: 32, group: 128, scaleRows: 1)
        let i = Self.inputs(c, seed: 3)
        let y = Self.multiply(c, i, portable: false)
        var error = 0.0, norm = 0.0
        for m in 0..<c.rows {
            for n in 0..<c.outputs {
                var exact = Double(i.bias[n])
                for k in 0..<c.columns {
                    let w = Double(Int8(bitPattern: i.weight[n * c.layout.rowStride + k])) * Double(i.scales[n * c.layout.groups + k / c.group])
                    exact += Double(i.x[m * c.columns + k]) * w
                }
                error += (Double(y[m * c.outputs + n]) - exact) * (Double(y[m * c.outputs + n]) - exact)
                norm += exact * exact
            }
        }
        #expect((error / norm).squareRoot() < 0.02)
    }

    @Test("a zero row gives the bias; a NaN makes its row's outputs NaN and leaves the other rows")
    func zeroAndNaNRows() {
        let c = Case(rows: 20, columns: 64, outputs: 8, group: 32, scaleRows: 1)
        var i = Self.inputs(c, seed: 5)
        for k in 0..<c.columns { i.x[3 * c.columns + k] = 0 }
        i.x[5 * c.columns + 40] = .nan
        for portable in [false, true] {
            let y = Self.multiply(c, i, portable: portable)
            #expect(Array(y[(3 * c.outputs)..<(4 * c.outputs)]) == i.bias)
            #expect(y[(5 * c.outputs)..<(6 * c.outputs)].allSatisfy { $0.isNaN })
            #expect(y.enumerated().filter { $0.offset / c.outputs != 5 }.allSatisfy { $0.element.isFinite })
        }
    }

    @Test("the weight sums are 128 × Σ w per row and group, the padding ignored")
    func weightSums() {
        let c = Case(rows: 1, columns: 10, outputs: 2, group: 8, scaleRows: 1)
        let i = Self.inputs(c, seed: 9)
        let sums = i.weight.withUnsafeBytes { Int8Matmul.weightSums($0, layout: c.layout) }
        let w = i.weight.map { Int32(Int8(bitPattern: $0)) }
        #expect(sums == [128 * w[0..<8].reduce(0, +), 128 * w[8..<10].reduce(0, +),
                         128 * w[12..<20].reduce(0, +), 128 * w[20..<22].reduce(0, +)])
    }
}
