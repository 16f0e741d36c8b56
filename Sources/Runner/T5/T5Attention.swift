/// T5's self-attention (transformers' `T5Attention`, encoder side): bias-free q/k/v/o projections, scores
/// q·kᵀ with no 1/√d scaling (T5 folds it into the initialisation), plus the shared position bias and the mask.
public struct T5Attention: Sendable {
    public let q: Linear   // (heads · d_kv, d_model)
    public let k: Linear   // (heads · d_kv, d_model)
    public let v: Linear   // (heads · d_kv, d_model)
    public let o: Linear   // (d_model, heads · d_kv)
    public let heads: Int

    public init(_ w: WeightScope, config: T5Config) throws {
        q = try Linear(w.scope("q"), in: config.dModel, out: config.innerDim, bias: false)
        k = try Linear(w.scope("k"), in: config.dModel, out: config.innerDim, bias: false)
        v = try Linear(w.scope("v"), in: config.dModel, out: config.innerDim, bias: false)
        o = try Linear(w.scope("o"), in: config.innerDim, out: config.dModel, bias: false)
        heads = config.numHeads
    }

    /// x: [B, L, d_model]; positionBias: [heads, L, L]; maskBias: [B, L] (0 or float32's minimum) → [B, L, d_model].
    public func callAsFunction(_ x: Tensor, positionBias: Tensor, maskBias: Tensor) -> Tensor {
        let context = Kernels.attention(q: q(x), k: k(x), v: v(x), heads: heads, scale: 1,
                                        keyBias: maskBias, scoreBias: positionBias)
        return o(context)
    }
}
