import Foundation

/// The VAE mid block's self-attention: diffusers `Attention` built by `UNetMidBlock2D` with one head over all
/// channels, a group norm in front, a residual connection and `rescale_output_factor` 1 (AttnProcessor2_0):
///
///     tokens = group_norm(x) as [N, H·W, C];  out = to_out.0(softmax(q kᵀ / √C) v) as [N, C, H, W] + x
struct VAEAttentionBlock: Sendable {
    let groupNorm: GroupNorm   // group_norm (C,)
    let toQ: Linear            // to_q (C, C), or query before diffusers 0.14
    let toK: Linear            // to_k (C, C), or key
    let toV: Linear            // to_v (C, C), or value
    let toOut: Linear          // to_out.0 (C, C), or proj_attn
    let channels: Int

    init(_ w: WeightScope, channels: Int, groups: Int) throws {
        self.channels = channels
        groupNorm = try GroupNorm(w.scope("group_norm"), groups: groups, channels: channels, eps: 1e-6)
        // Checkpoints saved before diffusers 0.14 name the projections query/key/value/proj_attn; diffusers
        // renames them on load (`_convert_deprecated_attention_blocks`), so both spellings are accepted.
        let deprecated = !w.contains("to_q.weight") && w.contains("query.weight")
        toQ = try Linear(w.scope(deprecated ? "query" : "to_q"), in: channels, out: channels)
        toK = try Linear(w.scope(deprecated ? "key" : "to_k"), in: channels, out: channels)
        toV = try Linear(w.scope(deprecated ? "value" : "to_v"), in: channels, out: channels)
        toOut = try Linear(deprecated ? w.scope("proj_attn") : w.scope("to_out").scope(0), in: channels, out: channels)
    }

    /// x: [N, C, H, W] → [N, C, H, W]
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let tokens = Kernels.permute(groupNorm(x).reshaped([n, c, h * w]), [0, 2, 1])   // [N, H·W, C]
        let attended = Kernels.attention(q: toQ(tokens), k: toK(tokens), v: toV(tokens), heads: 1,
                                         scale: Float(1 / Double(channels).squareRoot()))
        var y = Kernels.permute(toOut(attended), [0, 2, 1]).reshaped([n, c, h, w])
        // residual_connection=True; rescale_output_factor is 1 in the decoder, and dividing by 1 is exact.
        Kernels.add(&y, x)
        return y
    }
}
