import Foundation

/// EasyAnimate's motion module (`attn_temporal`: `VanillaTemporalModule` → `TemporalTransformer3DModel`,
/// easyanimate/models/motion_module.py, April 2024), run inside each PixArt block after self-attention.
///
/// On tokens [(B·F), N, C] (N = gh·gw per frame): GroupNorm(32) per frame, `proj_in`, temporal blocks,
/// `proj_out`, plus the input (the residual). Each temporal block runs its `Temporal_Self` attentions (each
/// after its own LayerNorm, with a residual) and a GEGLU feed-forward after `ff_norm` (with a residual).
struct MotionModule: Sendable {
    let norm: GroupNorm        // temporal_transformer.norm (C,)
    let projIn: Linear         // temporal_transformer.proj_in: (inner, C)
    let blocks: [TemporalBlock]  // temporal_transformer.transformer_blocks.i
    let projOut: Linear        // temporal_transformer.proj_out: (C, inner)
    let config: MotionModuleConfig

    init(_ w: WeightScope, channels: Int, config: MotionModuleConfig) throws {
        let t = w.scope("temporal_transformer")
        let inner = config.innerDim(channels: channels)
        self.config = config
        norm = try GroupNorm(t.scope("norm"), groups: config.normGroups, channels: channels, eps: 1e-6)
        projIn = try Linear(t.scope("proj_in"), in: channels, out: inner)
        blocks = try (0..<config.numTransformerBlocks).map {
            try TemporalBlock(t.scope("transformer_blocks").scope($0), dim: inner, config: config,
                              headDim: config.headDim(channels: channels))
        }
        projOut = try Linear(t.scope("proj_out"), in: inner, out: channels)
    }

    /// x: [(B·F), gh·gw, C] → same shape. `frames` F; the grid cell needs gh, gw divisible by the block size
    /// (checked by the caller before the forward starts).
    func callAsFunction(_ x: Tensor, frames: Int, gridHeight gh: Int, gridWidth gw: Int) -> Tensor {
        let samples = x.shape[0]
        var hidden = x
        norm.weight.withFloats { wp in norm.bias.withFloats { bp in
            Kernels.groupNormChannelsLast(&hidden, samples: samples, groups: norm.groups, eps: norm.eps, weight: wp, bias: bp)
        }}
        hidden = projIn(hidden)
        let layout = TemporalLayout(batch: samples / frames, frames: frames, gridHeight: gh, gridWidth: gw,
                                    blockSize: config.blockSize)
        for block in blocks { hidden = block(hidden, layout: layout) }
        var out = projOut(hidden)
        Kernels.add(&out, x)
        return out
    }
}

/// How `VersatileAttention` regroups tokens [(B·F), gh·gw, C] into temporal sequences: with the grid, one
/// sequence per batch item and blockSize×blockSize cell, ordered (frame, row in cell, column in cell); without,
/// one per pixel over frames (block size 1).
struct TemporalLayout: Sendable {
    let batch: Int, frames: Int, gridHeight: Int, gridWidth: Int, blockSize: Int

    /// The token tensor seen as [B, F, gh/bs, bs, gw/bs, bs, C].
    func gridShape(channels: Int) -> [Int] {
        [batch, frames, gridHeight / blockSize, blockSize, gridWidth / blockSize, blockSize, channels]
    }

    /// "(b f) (h n w m) c -> (b h w) (f n m) c"
    func toSequences(_ x: Tensor) -> Tensor {
        let channels = x.shape[x.rank - 1]
        let sequences = Kernels.permute(x.reshaped(gridShape(channels: channels)), [0, 2, 4, 1, 3, 5, 6])
        return sequences.reshaped([sequenceCount, sequenceLength, channels])
    }

    /// The inverse of `toSequences`.
    func fromSequences(_ x: Tensor) -> Tensor {
        let channels = x.shape[x.rank - 1]
        let (h, w) = (gridHeight / blockSize, gridWidth / blockSize)
        let grid = x.reshaped([batch, h, w, frames, blockSize, blockSize, channels])
        return Kernels.permute(grid, [0, 3, 1, 4, 2, 5, 6]).reshaped([batch * frames, gridHeight * gridWidth, channels])
    }

    var sequenceCount: Int { batch * (gridHeight / blockSize) * (gridWidth / blockSize) }
    var sequenceLength: Int { frames * blockSize * blockSize }
}

/// motion_module.py `TemporalTransformerBlock`: `attention_blocks.i` after `norms.i`, then `ff` (GEGLU) after `ff_norm`.
struct TemporalBlock: Sendable {
    let attentions: [TemporalSelfAttention]   // attention_blocks.i
    let norms: [LayerNorm]                    // norms.i (dim,)
    let ff: FeedForward                       // ff (GEGLU)
    let ffNorm: LayerNorm                     // ff_norm (dim,)

    init(_ w: WeightScope, dim: Int, config: MotionModuleConfig, headDim: Int) throws {
        attentions = try (0..<config.attentionBlocks).map {
            try TemporalSelfAttention(w.scope("attention_blocks").scope($0), dim: dim, config: config, headDim: headDim)
        }
        norms = try (0..<config.attentionBlocks).map { try LayerNorm(w.scope("norms").scope($0), size: dim) }
        ff = try FeedForward(w.scope("ff"), dim: dim, activation: .geglu)
        ffNorm = try LayerNorm(w.scope("ff_norm"), size: dim)
    }

    func callAsFunction(_ x: Tensor, layout: TemporalLayout) -> Tensor {
        var hidden = x
        for (attention, norm) in zip(attentions, norms) {
            Kernels.add(&hidden, attention(norm(hidden), layout: layout))
        }
        Kernels.add(&hidden, ff(ffNorm(hidden)))
        return hidden
    }
}

/// motion_module.py `VersatileAttention` in `Temporal` mode: the sinusoidal `pos_encoder.pe` of each token's
/// frame is added to the (normalized) input, tokens are regrouped into temporal sequences, attended (no bias on
/// q/k/v, scale 1/√headDim) and put back.
struct TemporalSelfAttention: Sendable {
    let attention: Attention   // to_q, to_k, to_v (no bias), to_out.0
    /// pos_encoder.pe [1, maxLength, dim]: the checkpoint's buffer when it has one (EasyAnimate loads it),
    /// otherwise recomputed as `PositionalEncoding` builds it.
    let positionEncoding: Parameter?
    let maxLength: Int

    init(_ w: WeightScope, dim: Int, config: MotionModuleConfig, headDim: Int) throws {
        attention = try Attention(w, queryDim: dim, heads: config.numAttentionHeads, headDim: headDim, qkvBias: false)
        maxLength = config.positionEncodingMaxLength
        if config.temporalPositionEncoding {
            let encoder = w.scope("pos_encoder")
            positionEncoding = try encoder.optionalParameter("pe", shape: [1, maxLength, dim])
                ?? Parameter(key: encoder.key("pe"), tensor: Self.sinusoidalTable(length: maxLength, dim: dim))
        } else {
            positionEncoding = nil
        }
    }

    func callAsFunction(_ x: Tensor, layout: TemporalLayout) -> Tensor {
        var input = x
        if let positionEncoding {
            let tokensPerFrame = layout.gridHeight * layout.gridWidth
            positionEncoding.withFloats { pe in
                Kernels.addCyclicRowVectors(&input, rowsPerGroup: tokensPerFrame, vectors: pe, count: layout.frames)
            }
        }
        let attended = attention(layout.toSequences(input))
        return layout.fromSequences(attended)
    }

    /// `PositionalEncoding`'s buffer in float32 as PyTorch builds it: pe[p, 2i] = sin(p·d_i), pe[p, 2i+1] =
    /// cos(p·d_i), d_i = exp(2i · (-ln(10000)/dim)).
    static func sinusoidalTable(length: Int, dim: Int) -> Tensor {
        let factor = Float(-log(10000.0) / Double(dim))
        let divisors = stride(from: 0, to: dim, by: 2).map { expf(Float($0) * factor) }
        var table = [Float](repeating: 0, count: length * dim)
        for p in 0..<length {
            for (i, d) in divisors.enumerated() {
                let angle = Float(p) * d
                table[p * dim + 2 * i] = sinf(angle)
                if 2 * i + 1 < dim { table[p * dim + 2 * i + 1] = cosf(angle) }
            }
        }
        return Tensor(shape: [1, length, dim], storage: table)
    }
}
