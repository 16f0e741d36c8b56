import Foundation
import Safetensors
import Testing
@testable import WeightOps
import TestSupport

/// A state dict of names and shapes only, for checkpoints too large to write in a test.
private struct ShapesOnly: StateDict {
    let path = "<synthetic>"
    let keys: [String]
    let metadata: [String: String] = [:]
    private let infos: [String: TensorInfo]

    init(_ shapes: [String: [Int]], dtype: DType = .f16) {
        var infos: [String: TensorInfo] = [:]
        for (name, shape) in shapes {
            let bytes = shape.reduce(dtype.size, *)
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataBegin: 0, dataEnd: bytes)
        }
        self.infos = infos
        keys = shapes.keys.sorted()
    }

    func info(_ name: String) -> TensorInfo? { infos[name] }
    func tensor(_ name: String) throws -> TensorView { throw SafetensorsError.tensorNotFound(path: path, tensor: name) }
}

/// Kind detection on the real EasyAnimate v1 dimensions (PixArt-XL-2-512x512, T5 v1.1 XXL), written from
/// diffusers' and EasyAnimate's module definitions: it must not depend on the fixture's tiny sizes.
@Suite("ModelKind at real size")
struct RealSizeKindTests {
    static let width = 1152, depth = 28, ff = 4608, caption = 4096

    static func pixart2D() -> [String: [Int]] {
        let w = width
        var s: [String: [Int]] = [
            "pos_embed.proj.weight": [w, 4, 2, 2], "pos_embed.proj.bias": [w],
            "adaln_single.emb.timestep_embedder.linear_1.weight": [w, 256],
            "adaln_single.emb.timestep_embedder.linear_2.weight": [w, w],
            "adaln_single.linear.weight": [6 * w, w], "adaln_single.linear.bias": [6 * w],
            "caption_projection.linear_1.weight": [w, caption], "caption_projection.linear_2.weight": [w, w],
            "scale_shift_table": [2, w], "proj_out.weight": [2 * 2 * 8, w], "proj_out.bias": [32],
        ]
        for b in 0..<depth {
            let p = "transformer_blocks.\(b)."
            for attn in ["attn1", "attn2"] {
                for proj in ["to_q", "to_k", "to_v", "to_out.0"] {
                    s[p + "\(attn).\(proj).weight"] = [w, w]
                    s[p + "\(attn).\(proj).bias"] = [w]
                }
            }
            s[p + "ff.net.0.proj.weight"] = [ff, w]
            s[p + "ff.net.2.weight"] = [w, ff]
            s[p + "scale_shift_table"] = [6, w]
        }
        return s
    }

    static func motionModule(positions: Bool = true) -> [String: [Int]] {
        let w = width
        var s: [String: [Int]] = [:]
        for b in 0..<depth {
            let t = "transformer_blocks.\(b).attn_temporal.temporal_transformer."
            s[t + "norm.weight"] = [w]
            s[t + "proj_in.weight"] = [w, w]
            s[t + "proj_out.weight"] = [w, w]
            for a in 0..<2 {
                let ab = t + "transformer_blocks.0.attention_blocks.\(a)."
                for proj in ["to_q", "to_k", "to_v", "to_out.0"] { s[ab + "\(proj).weight"] = [w, w] }
                if positions { s[ab + "pos_encoder.pe"] = [1, 4096, w] }
                s[t + "transformer_blocks.0.norms.\(a).weight"] = [w]
            }
            s[t + "transformer_blocks.0.ff.net.0.proj.weight"] = [2 * 4 * w, w]
            s[t + "transformer_blocks.0.ff.net.2.weight"] = [w, 4 * w]
            s[t + "transformer_blocks.0.ff_norm.weight"] = [w]
        }
        return s
    }

    @Test("PixArt-XL-2 2D, with the motion module, and the motion module alone")
    func transformers() throws {
        let config = try JSONParser.parse(Array(#"{"_class_name": "Transformer2DModel", "num_attention_heads": 16, "attention_head_dim": 72, "num_layers": 28}"#.utf8))
        let twoD = try ModelSummary.summarize(ShapesOnly(Self.pixart2D()), config: config)
        #expect(twoD.kind == .pixartTransformer2D)
        let t = try #require(twoD.transformer)
        #expect(t.depth == Self.depth && t.width == Self.width && t.heads == 16 && t.headDim == 72 && t.headsSource == .config)
        #expect(t.patchSize == 2 && t.inChannels == 4 && t.outChannels == 8 && t.learnedSigma)
        #expect(t.captionChannels == Self.caption && t.feedForwardDim == Self.ff)
        #expect(twoD.notes.isEmpty, "\(twoD.notes)")

        let noConfig = try ModelSummary.summarize(ShapesOnly(Self.pixart2D()))
        #expect(noConfig.transformer?.heads == 16 && noConfig.transformer?.headsSource == .pixartHeadDim)

        let threeD = try ModelSummary.summarize(ShapesOnly(Self.pixart2D().merging(Self.motionModule(positions: false)) { a, _ in a }))
        #expect(threeD.kind == .easyAnimateTransformer3D)
        let mm = try #require(threeD.motionModule)
        #expect(mm.blocks == Self.depth && mm.width == Self.width && mm.layers == 1 && mm.attentionsPerLayer == 2)
        #expect(mm.feedForwardDim == 4 * Self.width && !mm.positionalEncoding)

        let alone = try ModelSummary.summarize(ShapesOnly(Self.motionModule()))
        #expect(alone.kind == .motionModule)
        #expect(alone.motionModule?.positionalEncodingLength == 4096)
    }

    @Test("a transformer missing a block is still recognised, and the gap noted")
    func missingBlock() throws {
        let shapes = Self.pixart2D().filter { !$0.key.hasPrefix("transformer_blocks.13.") }
        let s = try ModelSummary.summarize(ShapesOnly(shapes))
        #expect(s.kind == .pixartTransformer2D)
        #expect(s.transformer?.depth == Self.depth - 1)
        #expect(s.notes.contains { $0.contains("13") })
    }

    @Test("T5 v1.1 XXL encoder")
    func t5XXL() throws {
        var s: [String: [Int]] = ["shared.weight": [32128, 4096], "encoder.final_layer_norm.weight": [4096]]
        for b in 0..<24 {
            let p = "encoder.block.\(b).layer."
            for proj in ["q", "k", "v"] { s[p + "0.SelfAttention.\(proj).weight"] = [4096, 4096] }
            s[p + "0.SelfAttention.o.weight"] = [4096, 4096]
            s[p + "0.layer_norm.weight"] = [4096]
            s[p + "1.DenseReluDense.wi_0.weight"] = [10240, 4096]
            s[p + "1.DenseReluDense.wi_1.weight"] = [10240, 4096]
            s[p + "1.DenseReluDense.wo.weight"] = [4096, 10240]
            s[p + "1.layer_norm.weight"] = [4096]
        }
        s["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = [32, 64]
        let summary = try ModelSummary.summarize(ShapesOnly(s, dtype: .bf16))
        #expect(summary.kind == .t5Encoder)
        let t5 = try #require(summary.t5)
        #expect(t5.layers == 24 && t5.dModel == 4096 && t5.heads == 64 && t5.dKV == 64 && t5.dFF == 10240 && t5.vocabSize == 32128)
        #expect(summary.notes.isEmpty, "\(summary.notes)")
    }
}
