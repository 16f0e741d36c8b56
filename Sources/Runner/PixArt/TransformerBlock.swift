/// One PixArt block (diffusers 0.27 `BasicTransformerBlock` with `norm_type="ada_norm_single"`; with a motion
/// module, EasyAnimate's `TemporalTransformerBlock` from easyanimate/models/attention.py, April 2024):
///
///     shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = scale_shift_table + t.reshape(B, 6, D)
///     h += gate_msa · attn1(norm1(h) · (1 + scale_msa) + shift_msa)      per frame: "(b f) d c"
///     h  = attn_temporal(h)                                              motion module, residual inside
///     h += attn2(h, caption, caption mask)                              no norm before it (PixArt)
///     h += gate_mlp · ff(norm2(h) · (1 + scale_mlp) + shift_mlp)
struct TransformerBlock: Sendable {
    let scaleShiftTable: Parameter   // scale_shift_table (6, width)
    let norm1: LayerNorm
    let norm2: LayerNorm
    let attn1: Attention
    let attn2: Attention
    let ff: FeedForward
    let motionModule: MotionModule?   // attn_temporal (EasyAnimate's 3D model)
    let width: Int

    init(_ w: WeightScope, config: PixArtConfig, motionScope: WeightScope?) throws {
        let width = config.width
        self.width = width
        scaleShiftTable = try w.parameter("scale_shift_table", shape: [6, width])
        if config.normElementwiseAffine {
            norm1 = try LayerNorm(w.scope("norm1"), size: width, eps: config.normEps)
            norm2 = try LayerNorm(w.scope("norm2"), size: width, eps: config.normEps)
        } else {
            norm1 = LayerNorm(size: width, eps: config.normEps)
            norm2 = LayerNorm(size: width, eps: config.normEps)
        }
        attn1 = try Attention(w.scope("attn1"), queryDim: width, heads: config.numAttentionHeads,
                              headDim: config.attentionHeadDim, qkvBias: config.attentionBias)
        attn2 = try Attention(w.scope("attn2"), queryDim: width, contextDim: config.crossAttentionDim,
                              heads: config.numAttentionHeads, headDim: config.attentionHeadDim,
                              qkvBias: config.attentionBias)
        ff = try FeedForward(w.scope("ff"), dim: width, activation: config.activation)
        if let motion = config.motionModule, let motionScope {
            motionModule = try MotionModule(motionScope, channels: width, config: motion)
        } else {
            motionModule = nil
        }
    }

    /// The six modulation rows per batch item: `scale_shift_table[None] + t.reshape(B, 6, D)` → six [B, D] tensors.
    func modulation(_ t: Tensor) -> [Tensor] {
        let batch = t.shape[0]
        let width = width
        return scaleShiftTable.withFloats { table in
            t.withUnsafeBufferPointer { t in
                (0..<6).map { k in
                    var rows = Tensor(uninitialized: [batch, width])
                    rows.withUnsafeMutableBufferPointer { rows in
                        for b in 0..<batch {
                            for c in 0..<width { rows[b * width + c] = table[k * width + c] + t[(b * 6 + k) * width + c] }
                        }
                    }
                    return rows
                }
            }
        }
    }

    /// hidden: [B·F, N, width] (frame-major tokens of each batch item), t: [B, 6·width], caption: [B, L, width],
    /// captionBias: [B, L] additive.
    func callAsFunction(_ hidden: Tensor, t: Tensor, caption: Tensor, captionBias: Tensor,
                        frames: Int, gridHeight: Int, gridWidth: Int) -> Tensor {
        let batch = t.shape[0]
        let tokensPerItem = hidden.count / (batch * width)
        let m = modulation(t)
        let (shiftMSA, scaleMSA, gateMSA, shiftMLP, scaleMLP, gateMLP) = (m[0], m[1], m[2], m[3], m[4], m[5])
        var h = hidden

        var normed = norm1(h)
        Kernels.modulate(&normed, rowsPerGroup: tokensPerItem, shift: shiftMSA, scale: scaleMSA)
        Kernels.addGated(&h, attn1(normed), rowsPerGroup: tokensPerItem, gate: gateMSA)

        if let motionModule {
            h = motionModule(h, frames: frames, gridHeight: gridHeight, gridWidth: gridWidth)
        }

        // Cross-attention sees every frame of a batch item as one query sequence (queries are independent).
        let sequence = h.reshaped([batch, tokensPerItem, width])
        Kernels.add(&h, attn2(sequence, context: caption, keyBias: captionBias).reshaped(h.shape))

        normed = norm2(h)
        Kernels.modulate(&normed, rowsPerGroup: tokensPerItem, shift: shiftMLP, scale: scaleMLP)
        Kernels.addGated(&h, ff(normed), rowsPerGroup: tokensPerItem, gate: gateMLP)
        return h
    }
}
