import Safetensors

/// Random weights of given names and shapes for the stage benches, computed as the writer reaches each tensor:
/// norm weights near 1 and small projections, as in a trained model, so the activations stay finite.
enum RandomWeights {
    static func tensors(_ shapes: [(name: String, shape: [Int])], dtype: DType, seed start: UInt64,
                        isNorm: (_ name: String, _ shape: [Int]) -> Bool) -> [OutputTensor] {
        var seed = start
        return shapes.map { name, shape in
            seed &+= 0x1234_5678_9ABC_DEF1
            let s = seed, norm = isNorm(name, shape)
            return .computingFloats(name: name, dtype: dtype, shape: shape) {
                var values = MergeBenchmark.uniform(count: shape.reduce(1, *), amplitude: norm ? 0.1 : 0.02, seed: s)
                if norm { for i in values.indices { values[i] += 1 } }
                return values
            }
        }
    }
}
