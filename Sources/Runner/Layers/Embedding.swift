import Safetensors

/// PyTorch `nn.Embedding`: rows of a (count, dim) table by index. Only the rows asked for are decoded, so a
/// BF16 vocabulary table (32128 × 4096 for T5-XXL) is never expanded to float32 as a whole.
public struct Embedding: Sendable {
    public let weight: Parameter   // (count, dim)
    public let count: Int
    public let dim: Int

    public init(_ w: WeightScope, count: Int, dim: Int) throws {
        try self.init(weight: w.parameter("weight", shape: [count, dim]))
    }

    public init(weight: Parameter) throws {
        guard weight.shape.count == 2 else {
            throw RunnerError.shapeMismatch(key: weight.key, source: "embedding", expected: [-1, -1], actual: weight.shape)
        }
        self.weight = weight
        count = weight.shape[0]
        dim = weight.shape[1]
    }

    /// [ids.count, dim]; throws for an index outside the table.
    public func callAsFunction(_ ids: [Int]) throws -> Tensor {
        if let bad = ids.first(where: { $0 < 0 || $0 >= count }) {
            throw RunnerError.invalidInput("token id \(bad) is outside the embedding table '\(weight.key)' of \(count) rows")
        }
        var out = Tensor(uninitialized: [ids.count, dim])   // every row is written
        let dim = dim
        if case let .mapped(view) = weight.source, [.f16, .bf16, .f32].contains(view.dtype) {
            out.withUnsafeMutableBufferPointer { o in
                for (r, id) in ids.enumerated() {
                    view.decode(elements: (id * dim)..<((id + 1) * dim),
                                into: UnsafeMutableBufferPointer(rebasing: o[(r * dim)..<((r + 1) * dim)]))
                }
            }
        } else {
            weight.withFloats { table in
                out.withUnsafeMutableBufferPointer { o in
                    for (r, id) in ids.enumerated() {
                        for c in 0..<dim { o[r * dim + c] = table[id * dim + c] }
                    }
                }
            }
        }
        return out
    }
}
