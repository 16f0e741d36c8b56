/// One encoder layer (transformers' `T5Block` without cross-attention): pre-norm self-attention and pre-norm
/// feed-forward, each added back to the residual stream.
public struct T5EncoderBlock: Sendable {
    public let attentionNorm: RMSNorm        // layer.0.layer_norm (d_model)
    public let attention: T5Attention        // layer.0.SelfAttention
    public let feedForwardNorm: RMSNorm      // layer.1.layer_norm (d_model)
    public let feedForward: T5FeedForward    // layer.1.DenseReluDense

    public init(_ w: WeightScope, config: T5Config) throws {
        let attentionLayer = w.scope("layer").scope(0)
        let feedForwardLayer = w.scope("layer").scope(1)
        attentionNorm = try RMSNorm(attentionLayer.scope("layer_norm"), size: config.dModel, eps: config.layerNormEpsilon)
        attention = try T5Attention(attentionLayer.scope("SelfAttention"), config: config)
        feedForwardNorm = try RMSNorm(feedForwardLayer.scope("layer_norm"), size: config.dModel, eps: config.layerNormEpsilon)
        feedForward = try T5FeedForward(feedForwardLayer.scope("DenseReluDense"), config: config)
    }

    /// x: [B, L, d_model] → [B, L, d_model]
    public func callAsFunction(_ x: Tensor, positionBias: Tensor, maskBias: Tensor) -> Tensor {
        var h = x
        Kernels.add(&h, attention(attentionNorm(x), positionBias: positionBias, maskBias: maskBias))
        Kernels.add(&h, feedForward(feedForwardNorm(h)))
        return h
    }
}
