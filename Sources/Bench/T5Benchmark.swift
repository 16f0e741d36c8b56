import Foundation
import EANumerics
import Runner
import Safetensors
import WeightOps

/// Synthetic input and the timed stage of `ea-weights bench t5`: PixArt-XL-2's text encoder, T5-v1.1-XXL
/// (24 layers, d_model 4096, 64 heads of 64, d_ff 10240, gated GELU, 4.8 G parameters), with random BF16
/// weights in transformers' shard layout, encoding a prompt and a negative prompt of `tokens` tokens each
/// (the pipeline's batch of two for classifier-free guidance).
public enum T5Benchmark {
    public static let xxl = T5Config(vocabSize: 32128, dModel: 4096, dKV: 64, dFF: 10240, numLayers: 24, numHeads: 64)

    /// The encoder's tensors as T5EncoderModel saves them, in name order.
    public static func shapes(_ c: T5Config) -> [(name: String, shape: [Int])] {
        var t: [(String, [Int])] = [("shared.weight", [c.vocabSize, c.dModel]), ("encoder.final_layer_norm.weight", [c.dModel])]
        for b in 0..<c.numLayers {
            let p = "encoder.block.\(b).layer."
            for proj in ["q", "k", "v"] { t.append((p + "0.SelfAttention.\(proj).weight", [c.innerDim, c.dModel])) }
            t.append((p + "0.SelfAttention.o.weight", [c.dModel, c.innerDim]))
            if b == 0 {
                t.append((p + "0.SelfAttention.relative_attention_bias.weight", [c.relativeAttentionNumBuckets, c.numHeads]))
            }
            t.append((p + "0.layer_norm.weight", [c.dModel]))
            t.append((p + "1.DenseReluDense.wi_0.weight", [c.dFF, c.dModel]))
            t.append((p + "1.DenseReluDense.wi_1.weight", [c.dFF, c.dModel]))
            t.append((p + "1.DenseReluDense.wo.weight", [c.dModel, c.dFF]))
            t.append((p + "1.layer_norm.weight", [c.dModel]))
        }
        return t.sorted { $0.0 < $1.0 }
    }

    /// Writes `config.json` and the BF16 shards (at most `shardBytes` each, with their index) into `folder`,
    /// unless a complete set for the same config is there already. Returns whether it wrote them.
    @discardableResult
    public static func synthesize(in folder: String, config c: T5Config, shardBytes: Int = 2 << 30,
                                  progress: ProgressHandler? = nil) throws -> Bool {
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        if (try? T5Config(path: configPath)) == c, (try? openStateDict(path: folder)) != nil { return false }
        try BenchFolder.create(folder)
        let tensors = RandomWeights.tensors(shapes(c), dtype: .bf16, seed: 0x7335_1F2C_9D4B_0A61) { name, _ in
            name.hasSuffix("layer_norm.weight")
        }
        let writer = SafetensorsWriter(metadata: ["format": "pt"], progress: progress.map { p in { p("text_encoder", $0, $1) } },
                                       isCancelled: { Interruption.isRequested })
        _ = try writer.writeSharded(tensors, to: folder, maxShardBytes: shardBytes, baseName: "model")
        let json = """
        {"architectures": ["T5EncoderModel"], "model_type": "t5", "d_model": \(c.dModel), "d_kv": \(c.dKV), \
        "d_ff": \(c.dFF), "num_layers": \(c.numLayers), "num_heads": \(c.numHeads), "vocab_size": \(c.vocabSize), \
        "relative_attention_num_buckets": \(c.relativeAttentionNumBuckets), \
        "relative_attention_max_distance": \(c.relativeAttentionMaxDistance), "feed_forward_proj": "gated-gelu", \
        "layer_norm_epsilon": 1e-06, "torch_dtype": "bfloat16", "is_encoder_decoder": false}
        """
        try AtomicOutput.writeFile(Array(json.utf8), to: configPath)
        return true
    }

    /// Multiply-adds of one encode of `batch` × `tokens` (× 2 for FLOPs): the projections and the feed-forward,
    /// plus the attention's two batched products.
    public static func flops(_ c: T5Config, batch: Int, tokens: Int) -> Double {
        let t = Double(batch * tokens), d = Double(c.dModel), inner = Double(c.innerDim), ff = Double(c.dFF)
        let projections = 4 * t * d * inner
        let feedForward = (c.isGatedActivation ? 3 : 2) * t * d * ff
        let attention = 2 * Double(batch * c.numHeads) * Double(tokens * tokens) * Double(c.dKV)
        return 2 * Double(c.numLayers) * (projections + feedForward + attention)
    }

    /// The encoder folder `compute` runs on: the synthesized BF16 one, or for `.int8` its `Int8Copy` beside it
    /// (`FOLDER-int8`, with the same config.json).
    public static func weights(folder: String, compute: ComputePrecision, progress: ProgressHandler? = nil) throws -> String {
        guard compute == .int8 else { return folder }
        let int8 = folder + "-int8", encoder = (int8 as NSString).appendingPathComponent("text_encoder")
        let config = (folder as NSString).appendingPathComponent("config.json")
        let stamp = FileManager.default.contents(atPath: config) ?? Data()
        try Int8Copy.ensure([(folder, encoder)], in: int8, stamp: stamp, progress: progress)
        let copied = (encoder as NSString).appendingPathComponent("config.json")
        if !FileManager.default.fileExists(atPath: copied) { try AtomicOutput.writeFile(Array(stamp), to: copied) }
        return encoder
    }

    /// Loads the encoder from `folder` (mapped, not read; with `compute` `.int8` its `weights(folder:compute:)`
    /// copy), encodes once at 8 tokens to warm up, then times `batch` rows of `tokens` random ids (all attended).
    public static func run(folder: String, batch: Int = 2, tokens: Int = 120, compute: ComputePrecision = .f32) throws -> StageTiming {
        let encoder = try T5Encoder.load(directory: try weights(folder: folder, compute: compute), compute: compute)
        func ids(_ length: Int) -> [[Int32]] {
            (0..<batch).map { row in (0..<length).map { Int32((($0 &* 7919) &+ row &* 104729) % encoder.config.vocabSize) } }
        }
        _ = try encoder(ids: ids(8), mask: ids(8).map { $0.map { _ in 1 } })
        return try StageTiming.measure(flops: flops(encoder.config, batch: batch, tokens: tokens)) {
            let input = ids(tokens)
            let output = try encoder(ids: input, mask: input.map { $0.map { _ in 1 } })
            guard output.withUnsafeBufferPointer({ $0.allSatisfy(\.isFinite) }) else {
                throw BenchError.failed(path: folder, reason: "the encoder's output is not finite")
            }
        }
    }
}
