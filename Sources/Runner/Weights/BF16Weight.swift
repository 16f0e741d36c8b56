import EANumerics
import Safetensors

/// A Linear weight for `--t5-compute bf16`: the BF16 bits of a BF16 checkpoint read in place from its mapping,
/// or other weights rounded to BF16 once at load (nearest even, as `convert --to bf16` writes them).
struct BF16Weight: @unchecked Sendable {
    private enum Bits {
        case mapped(TensorView)
        case owned([UInt16])
    }

    let outputs: Int
    let columns: Int
    private let bits: Bits

    /// nil when the weight cannot be multiplied in BF16 (its input width is odd): that layer stays float32.
    init?(_ weight: Parameter) {
        guard weight.shape.count == 2, weight.shape[1] % 2 == 0 else { return nil }
        (outputs, columns) = (weight.shape[0], weight.shape[1])
        if case let .mapped(view) = weight.source, view.dtype == .bf16,
           view.withUnsafeBytes({ Int(bitPattern: $0.baseAddress) % MemoryLayout<UInt16>.alignment == 0 }) {
            bits = .mapped(view)
        } else {
            bits = .owned(weight.withFloats { $0.map(DTypeConversion.floatToBFloat16) })
        }
    }

    private func withBits<R>(_ body: (UnsafeBufferPointer<UInt16>) -> R) -> R {
        switch bits {
        case let .mapped(view): return view.withUnsafeBytes { raw in raw.withMemoryRebound(to: UInt16.self, body) }
        case let .owned(values): return values.withUnsafeBufferPointer(body)
        }
    }

    /// x [rows, in] · Wᵀ + bias → [rows, out].
    func multiply(_ x: Tensor, bias: Parameter?) -> Tensor {
        let rows = x.count / columns
        var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outputs])
        withBits { w in
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    func run(_ b: UnsafeBufferPointer<Float>?) {
                        BF16Matmul.multiply(xp, rows: rows, weight: w, outputs: outputs, columns: columns, bias: b, into: op)
                    }
                    if let bias { bias.withFloats { run($0) } } else { run(nil) }
                }
            }
        }
        return out
    }
}
