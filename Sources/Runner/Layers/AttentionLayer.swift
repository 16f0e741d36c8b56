import Foundation
// (Named AttentionLayer.swift: SwiftPM needs file names unique within a module, and Kernels/Attention.swift exists.)

/// diffusers' `Attention` (and EasyAnimate's `CrossAttention`) with the default processor: `to_q`, `to_k`,
/// `to_v` projections, scaled dot-product attention over `heads` heads, `to_out.0` output projection.
/// Self-attention when called without a context, cross-attention with one.
public struct Attention: Sendable {
    public let toQ: Linear   // to_q (heads·headDim, queryDim)
    public let toK: Linear   // to_k (heads·headDim, contextDim)
    public let toV: Linear   // to_v (heads·headDim, contextDim)
    public let toOut: Linear // to_out.0 (queryDim, heads·headDim)
    public let heads: Int
    public let headDim: Int

    /// `qkvBias`: whether `to_q/to_k/to_v` carry a bias (diffusers' `bias`); `to_out.0` always has one.
    public init(_ w: WeightScope, queryDim: Int, contextDim: Int? = nil, heads: Int, headDim: Int,
                qkvBias: Bool, outBias: Bool = true) throws {
        let inner = heads * headDim
        let context = contextDim ?? queryDim
        self.heads = heads
        self.headDim = headDim
        toQ = try Linear(w.scope("to_q"), in: queryDim, out: inner, bias: qkvBias)
        toK = try Linear(w.scope("to_k"), in: context, out: inner, bias: qkvBias)
        toV = try Linear(w.scope("to_v"), in: context, out: inner, bias: qkvBias)
        toOut = try Linear(w.scope("to_out").scope("0"), in: inner, out: queryDim, bias: outBias)
    }

    /// x: [B, Lq, queryDim], context: [B, Lk, contextDim] (nil: x itself), keyBias: [B, Lk] added to the scores
    /// of every query (a mask as 0 / -10000) → [B, Lq, queryDim]. Scores are scaled by 1/√headDim.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, keyBias: Tensor? = nil) -> Tensor {
        let source = context ?? x
        let q = toQ(x), k = toK(source), v = toV(source)
        let attended = Kernels.attention(q: q, k: k, v: v, heads: heads,
                                         scale: Float(1 / Double(headDim).squareRoot()), keyBias: keyBias)
        return toOut(attended)
    }
}
