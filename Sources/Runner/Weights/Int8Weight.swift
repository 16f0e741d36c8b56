import EANumerics
import Safetensors
import WeightOps

/// A Linear weight for `--compute int8`: the signed bytes of a `convert --to int8` file read in place from its
/// mapping, or float (or fp8) weights quantized at load exactly as `convert --to int8` would write them
/// (`Quantizer.int8Blockwise`, g×g blocks, g = 128 or the largest power of two that divides the shape), the
/// layers its default `--keep-f32` keeps (T5's `wo`) left in float as it leaves them.
struct Int8Weight: @unchecked Sendable {
    private enum Bytes {
        case mapped(TensorView)
        case owned([UInt8])
    }

    let layout: Int8Matmul.Layout
    private let bytes: Bytes
    private let scales: [Float]
    private let sums: [Int32]

    /// The group sizes tried for a weight quantized at load, largest first (`convert`'s default first).
    static let loadGroupSizes = [128, 64, 32, 16, 8, 4]

    /// nil when the weight is not to be multiplied in int8 (convert keeps it in float, its input width is not a
    /// multiple of 4, or no block size divides its shape): that layer stays float32.
    init?(_ weight: Parameter) {
        guard weight.shape.count == 2, weight.shape[1] % 4 == 0 else { return nil }
        let (rows, columns) = (weight.shape[0], weight.shape[1])
        if case let .quantized(view, scale, groupSize?) = weight.source, view.dtype == .i8, groupSize % 4 == 0 {
            layout = Int8Matmul.Layout(rows: rows, columns: columns, rowStride: columns, group: groupSize, scaleRows: groupSize)
            bytes = .mapped(view)
            scales = scale
        } else {
            guard !Convert.keepsByDefault(weight.key),
                  let g = Self.loadGroupSizes.first(where: { rows % $0 == 0 && columns % $0 == 0 }) else { return nil }
            let quantized = weight.withFloats { Quantizer.int8Blockwise($0, rows: rows, cols: columns, groupSize: g) }
            layout = Int8Matmul.Layout(rows: rows, columns: columns, rowStride: columns, group: g, scaleRows: g)
            bytes = .owned(quantized.data)
            scales = quantized.scale
        }
        let layout = layout
        sums = Self.withBytes(bytes) { Int8Matmul.weightSums($0, layout: layout) }
    }

    private static func withBytes<R>(_ bytes: Bytes, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch bytes {
        case let .mapped(view): return view.withUnsafeBytes(body)
        case let .owned(data): return data.withUnsafeBytes(body)
        }
    }

    /// x [rows, in] · Wᵀ + bias → [rows, out].
    func multiply(_ x: Tensor, bias: Parameter?) -> Tensor {
        let rows = x.count / layout.columns
        var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [layout.rows])
        Self.withBytes(bytes) { w in
            scales.withUnsafeBufferPointer { scales in
                sums.withUnsafeBufferPointer { sums in
                    x.withUnsafeBufferPointer { xp in
                        out.withUnsafeMutableBufferPointer { op in
                            func run(_ b: UnsafeBufferPointer<Float>?) {
                                Int8Matmul.multiply(xp, rows: rows, weight: w, layout: layout, scales: scales, sums: sums,
                                                    bias: b, into: op)
                            }
                            if let bias { bias.withFloats { run($0) } } else { run(nil) }
                        }
                    }
                }
            }
        }
        return out
    }
}
