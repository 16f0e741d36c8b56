import Safetensors

/// The dimensions of a T5 encoder (transformers' T5EncoderModel), read from the shapes:
///
///     shared.weight                                                   (vocab, d_model)
///     encoder.block.N.layer.0.SelfAttention.q.weight                  (heads × d_kv, d_model)
///     encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight   (buckets, heads)
///     encoder.block.N.layer.1.DenseReluDense.wi_0.weight              (d_ff, d_model)   gated; `wi` otherwise
public struct T5Summary: Sendable, Codable, Equatable {
    public var layers: Int
    public var dModel: Int
    public var heads: Int?
    public var headsSource: ValueSource
    public var dKV: Int?
    public var dFF: Int?
    /// Gated-GELU feed-forward (T5 v1.1, as PixArt uses) rather than the original ReLU one.
    public var gatedFeedForward: Bool
    public var vocabSize: Int?
    public var relativeAttentionBuckets: Int?

    init(_ view: KeyView, config: JSONValue?, notes: inout [String]) {
        let blocks = KeyPatterns.indices(view.keys, after: T5Keys.blocks, where: "layer.0.SelfAttention.")
        layers = blocks.count
        let missing = KeyPatterns.gaps(in: blocks)
        if !missing.isEmpty {
            notes.append("encoder blocks \(missing.map(String.init).joined(separator: ", ")) are missing")
        }
        let b = "encoder.block.\(blocks.first ?? 0)."
        dModel = view.dim(b + "layer.0.SelfAttention.q.weight", 1) ?? 0
        let inner = view.dim(b + "layer.0.SelfAttention.q.weight", 0)
        let bias = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        relativeAttentionBuckets = view.dim(bias, 0)
        if let h = view.dim(bias, 1), h > 0 {
            heads = h
            headsSource = .shapes
        } else if let h = config?.int("num_heads"), h > 0 {
            heads = h
            headsSource = .config
        } else {
            heads = nil
            headsSource = .unknown
        }
        if let heads, let inner, inner % heads == 0 { dKV = inner / heads } else { dKV = nil }
        gatedFeedForward = view.contains(b + "layer.1.DenseReluDense.wi_0.weight")
        dFF = view.dim(b + "layer.1.DenseReluDense.wi_0.weight", 0) ?? view.dim(b + "layer.1.DenseReluDense.wi.weight", 0)
        vocabSize = view.dim("shared.weight", 0) ?? view.dim("encoder.embed_tokens.weight", 0)
        if vocabSize == nil {
            notes.append("no token embedding (shared.weight or encoder.embed_tokens.weight)")
        }
        if !view.contains("encoder.final_layer_norm.weight") {
            notes.append("no encoder.final_layer_norm.weight")
        }

        if let config {
            crossCheck("num_layers", weights: layers, config: config.int("num_layers"), notes: &notes)
            crossCheck("d_model", weights: dModel, config: config.int("d_model"), notes: &notes)
            crossCheck("num_heads", weights: heads, config: config.int("num_heads"), notes: &notes)
            crossCheck("d_kv", weights: dKV, config: config.int("d_kv"), notes: &notes)
            crossCheck("d_ff", weights: dFF, config: config.int("d_ff"), notes: &notes)
            crossCheck("vocab_size", weights: vocabSize, config: config.int("vocab_size"), notes: &notes)
        }
    }
}
