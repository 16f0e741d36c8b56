import Foundation
import Safetensors

/// The text encoder: transformers 4.37's `T5EncoderModel` forward in float32, as EasyAnimate's pipeline calls it
/// (`text_encoder(input_ids, attention_mask=mask)[0]`, the last hidden state).
///
/// Embedding → for each layer: RMS norm, self-attention with the relative position bias of layer 0 (shared by
/// all layers) and the padding mask as an additive bias of float32's minimum (`get_extended_attention_mask`),
/// residual; RMS norm, feed-forward, residual → final RMS norm. Dropout is off (inference).
/// Weights stay in their checkpoint dtype and are decoded at each use, one tensor at a time.
public final class T5Encoder: Sendable {
    public let config: T5Config
    public let embedding: Embedding                    // shared.weight (vocab_size, d_model)
    public let positionBias: T5RelativePositionBias    // encoder.block.0.layer.0.SelfAttention.relative_attention_bias
    public let blocks: [T5EncoderBlock]                // encoder.block.N
    public let finalLayerNorm: RMSNorm                 // encoder.final_layer_norm (d_model)

    /// The embedding table's names: T5EncoderModel ties `encoder.embed_tokens` to `shared`, and checkpoints
    /// keep either or both (transformers' save_pretrained keeps `shared.weight`).
    public static let embeddingKeys = ["shared.weight", "encoder.embed_tokens.weight"]

    /// Builds the encoder from `weights` (keys as T5EncoderModel names them): every weight of `config`'s model
    /// must be there with its shape, and nothing else but the decoder of a full T5, which T5EncoderModel drops
    /// too (`_keys_to_ignore_on_load_unexpected = [r"decoder"]`). With `compute` `.bf16` the Linear layers multiply
    /// in BF16 (`BF16Weight`).
    public static func load(_ weights: WeightStore, config: T5Config, compute: ComputePrecision = .f32) throws -> T5Encoder {
        try weights.load(ignoring: isIgnoredKey, compute: compute) { try T5Encoder($0, config: config) }
    }

    /// Loads a text encoder folder: `config.json` and its safetensors, sharded or not.
    public static func load(directory: String, compute: ComputePrecision = .f32) throws -> T5Encoder {
        try load(weightStore(directory: directory), config: T5Config(path: directory), compute: compute)
    }

    /// Keys T5EncoderModel drops when loading.
    public static func isIgnoredKey(_ key: String) -> Bool { key.contains("decoder") }

    private init(_ w: WeightScope, config: T5Config) throws {
        self.config = config
        let shape = [config.vocabSize, config.dModel]
        guard let key = T5Encoder.embeddingKeys.first(where: w.contains) else {
            throw RunnerError.missingWeight(key: T5Encoder.embeddingKeys.joined(separator: "' or '"), source: w.store.name)
        }
        embedding = try Embedding(weight: w.parameter(key, shape: shape))
        // The tied twin is the same tensor: bound (shape-checked) so it is not reported as unexpected.
        for twin in T5Encoder.embeddingKeys where twin != key && w.contains(twin) {
            _ = try w.parameter(twin, shape: shape)
        }
        let encoder = w.scope("encoder")
        positionBias = try T5RelativePositionBias(
            encoder.scope("block").scope(0).scope("layer").scope(0).scope("SelfAttention").scope("relative_attention_bias"),
            numBuckets: config.relativeAttentionNumBuckets, maxDistance: config.relativeAttentionMaxDistance,
            heads: config.numHeads)
        blocks = try (0..<config.numLayers).map { try T5EncoderBlock(encoder.scope("block").scope($0), config: config) }
        finalLayerNorm = try RMSNorm(encoder.scope("final_layer_norm"), size: config.dModel, eps: config.layerNormEpsilon)
    }

    /// ids and mask: B rows of L (the tokenizer's `input_ids` and `attention_mask`) → last_hidden_state [B, L, d_model].
    public func callAsFunction(ids: [[Int32]], mask: [[Int32]]) throws -> Tensor {
        let batch = ids.count
        let length = ids.first?.count ?? 0
        guard batch > 0, length > 0, ids.allSatisfy({ $0.count == length }) else {
            throw RunnerError.invalidInput("text encoder input ids must be \(max(batch, 1)) non-empty rows of equal length")
        }
        guard mask.count == batch, mask.allSatisfy({ $0.count == length }) else {
            throw RunnerError.invalidInput("the attention mask must have the shape of the input ids [\(batch), \(length)]")
        }
        var h = try embedding(ids.flatMap { $0.map(Int.init) }).reshaped([batch, length, config.dModel])
        let bias = positionBias(queryLength: length, keyLength: length)
        // get_extended_attention_mask: (1 - mask) · finfo(float32).min, added to every query's scores.
        let maskBias = Tensor(shape: [batch, length],
                              storage: mask.flatMap { $0.map { (1 - Float($0)) * -Float.greatestFiniteMagnitude } })
        for block in blocks {
            h = block(h, positionBias: bias, maskBias: maskBias)
        }
        return finalLayerNorm(h)
    }

    /// The tokenizer's encodings as one batch → [B, L, d_model].
    public func callAsFunction(_ encodings: [T5Tokenizer.Encoding]) throws -> Tensor {
        try self(ids: encodings.map(\.ids), mask: encodings.map(\.mask))
    }

    /// The folder's checkpoint as one store: its index and shards, or its single file.
    static func weightStore(directory: String) throws -> WeightStore {
        WeightStore(name: directory, layers: [try openStateDict(path: directory)])
    }
}
