import Safetensors

/// The dimensions of a PixArt Transformer2DModel (diffusers 0.27 names), read from the weight shapes.
///
///     pos_embed.proj.weight                      (width, in_channels, patch, patch)
///     transformer_blocks.N.attn1.to_q.weight     (width, width)
///     transformer_blocks.N.attn2.to_k.weight     (width, cross_attention_dim)
///     transformer_blocks.N.ff.net.2.weight       (width, ff_dim)
///     caption_projection.linear_1.weight         (width, caption_channels)
///     proj_out.weight                            (patch * patch * out_channels, width)
public struct TransformerSummary: Sendable, Codable, Equatable {
    /// Number of transformer blocks.
    public var depth: Int
    /// Inner dimension (heads × head dim).
    public var width: Int
    public var heads: Int?
    public var headDim: Int?
    public var headsSource: ValueSource
    public var patchSize: Int
    /// Set for a 3D patch embedding (5-D `pos_embed.proj.weight`).
    public var timePatchSize: Int?
    public var inChannels: Int
    public var outChannels: Int?
    /// out = 2 × in: the model predicts a variance too (PixArt's learned sigma); the pipeline keeps the first half.
    public var learnedSigma: Bool
    public var captionChannels: Int?
    public var crossAttentionDim: Int?
    public var feedForwardDim: Int?
    /// PixArt-alpha 1024's resolution and aspect-ratio embedders.
    public var additionalConditions: Bool
    public var hasMotionModule: Bool

    init(_ view: KeyView, config: JSONValue?, notes: inout [String]) {
        let blocks = KeyPatterns.indices(view.keys, after: PixArtKeys.blocks, where: "attn1.")
        let missing = KeyPatterns.gaps(in: blocks)
        if !missing.isEmpty {
            notes.append("transformer blocks \(missing.map(String.init).joined(separator: ", ")) are missing")
        }
        let b = "transformer_blocks.\(blocks.first ?? 0)."
        depth = blocks.count
        width = view.dim(b + "attn1.to_q.weight", 0) ?? view.dim("pos_embed.proj.weight", 0) ?? 0

        let patchWeight = view.shape("pos_embed.proj.weight") ?? []
        patchSize = patchWeight.last ?? 0
        timePatchSize = patchWeight.count == 5 ? patchWeight[2] : nil
        inChannels = patchWeight.count >= 2 ? patchWeight[1] : 0
        let outRows = view.dim("proj_out.weight", 0) ?? view.dim("proj_out_2.weight", 0)
        let patchArea = patchSize * patchSize * (timePatchSize ?? 1)
        if let outRows, patchArea > 0, outRows % patchArea == 0 {
            outChannels = outRows / patchArea
        } else {
            outChannels = nil
        }
        learnedSigma = outChannels == 2 * inChannels
        captionChannels = view.dim("caption_projection.linear_1.weight", 1)
        crossAttentionDim = view.dim(b + "attn2.to_k.weight", 1)
        feedForwardDim = view.dim(b + "ff.net.2.weight", 1)
        additionalConditions = view.keys.contains { $0.hasPrefix("adaln_single.emb.resolution_embedder.") }
        hasMotionModule = view.keys.contains(where: PixArtKeys.isMotionModuleKey)

        // Heads: config.json when there is one; PixArt's fixed head dim when the width fits it.
        let configHeads = config?.int("num_attention_heads")
        let configHeadDim = config?.int("attention_head_dim")
        if let configHeads, configHeads > 0 {
            heads = configHeads
            headDim = width % configHeads == 0 ? width / configHeads : configHeadDim
            headsSource = .config
        } else if width > 0, width % 72 == 0 {
            heads = width / 72
            headDim = 72
            headsSource = .pixartHeadDim
        } else {
            heads = nil
            headDim = nil
            headsSource = .unknown
        }

        if let config {
            crossCheck("num_layers", weights: depth, config: config.int("num_layers"), notes: &notes)
            if let configHeads, let configHeadDim {
                crossCheck("num_attention_heads × attention_head_dim", weights: width, config: configHeads * configHeadDim, notes: &notes)
            }
            crossCheck("in_channels", weights: inChannels, config: config.int("in_channels"), notes: &notes)
            crossCheck("out_channels", weights: outChannels, config: config.int("out_channels"), notes: &notes)
            crossCheck("patch_size", weights: patchSize, config: config.int("patch_size"), notes: &notes)
            crossCheck("caption_channels", weights: captionChannels, config: config.int("caption_channels"), notes: &notes)
        }
    }
}

/// The dimensions of EasyAnimate v1's motion module (VanillaGrid/Vanilla), one per transformer block:
///
///     transformer_blocks.N.attn_temporal.temporal_transformer.proj_in.weight                 (width, channels)
///       ….transformer_blocks.L.attention_blocks.A.to_q.weight                                 (width, width)
///       ….transformer_blocks.L.attention_blocks.A.pos_encoder.pe                               (1, max_len, width)
///       ….transformer_blocks.L.ff.net.2.weight                                                 (width, ff_dim)
public struct MotionModuleSummary: Sendable, Codable, Equatable {
    /// Number of transformer blocks carrying a motion module.
    public var blocks: Int
    /// Which transformer blocks (normally 0..<depth).
    public var blockIndices: [Int]
    /// Inner width of the temporal transformer.
    public var width: Int
    /// Channels it reads and writes (the spatial transformer's width).
    public var channels: Int
    /// Temporal transformer layers per module (`num_transformer_block`).
    public var layers: Int
    /// Attention blocks per layer (`attention_block_types`, e.g. two Temporal_Self).
    public var attentionsPerLayer: Int
    public var heads: Int?
    public var headsSource: ValueSource
    public var feedForwardDim: Int?
    /// Sinusoidal position-encoding buffers stored in the file, and their length.
    public var positionalEncoding: Bool
    public var positionalEncodingLength: Int?

    init?(_ view: KeyView, config: JSONValue?, notes: inout [String]) {
        let mmKeys = view.keys.filter(PixArtKeys.isMotionModuleKey)
        let outer = KeyPatterns.indices(mmKeys, after: PixArtKeys.blocks)
        guard let first = outer.first else { return nil }
        blocks = outer.count
        blockIndices = outer
        let missing = KeyPatterns.gaps(in: outer)
        if !missing.isEmpty {
            notes.append("motion module blocks \(missing.map(String.init).joined(separator: ", ")) are missing")
        }
        let t = "transformer_blocks.\(first).attn_temporal.temporal_transformer."
        width = view.dim(t + "proj_in.weight", 0) ?? 0
        channels = view.dim(t + "proj_in.weight", 1) ?? 0
        let layerIndices = KeyPatterns.indices(mmKeys, after: t + "transformer_blocks.")
        layers = layerIndices.count
        let l = t + "transformer_blocks.\(layerIndices.first ?? 0)."
        attentionsPerLayer = KeyPatterns.indices(mmKeys, after: l + "attention_blocks.").count
        feedForwardDim = view.dim(l + "ff.net.2.weight", 1)
        let pe = mmKeys.first { $0.hasSuffix(".pos_encoder.pe") }
        positionalEncoding = pe != nil
        positionalEncodingLength = pe.flatMap { view.dim($0, 1) }

        // EasyAnimate writes the motion module's kwargs into the transformer's config when it saves one.
        if let h = config?["motion_module_kwargs"]?.int("num_attention_heads"), h > 0 {
            heads = h
            headsSource = .config
        } else {
            heads = nil
            headsSource = .unknown
        }
        if let heads, width % heads != 0 {
            notes.append("config.json gives the motion module \(heads) heads, which do not divide its width \(width)")
        }
    }
}
