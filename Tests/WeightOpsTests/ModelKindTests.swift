import Foundation
import Safetensors
import Testing
@testable import WeightOps
import TestSupport

@Suite("ModelKind")
struct ModelKindTests {
    private func summary(_ relative: String, config: String? = nil) throws -> ModelSummary {
        let dict = try SafetensorsFile(path: Fixtures.path(relative))
        let json = try config.map { try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path($0))))) }
        return try ModelSummary.summarize(dict, config: json)
    }

    // MARK: fixture files

    @Test("recognises every fixture file from names and shapes")
    func fixtureKinds() throws {
        let expected: [(String, ModelKind)] = [
            ("tiny-pixart/transformer/diffusion_pytorch_model.safetensors", .pixartTransformer2D),
            ("personalized.safetensors", .pixartTransformer2D),
            ("tiny-pixart/vae/diffusion_pytorch_model.safetensors", .vae),
            ("motion_module.safetensors", .motionModule),
            ("lora.safetensors", .kohyaLoRA),
            ("goldens/merged_lora_transformer3d.safetensors", .easyAnimateTransformer3D),
            ("goldens/personalized_transformer3d.safetensors", .easyAnimateTransformer3D),
            ("goldens/merged_lora_text_encoder.safetensors", .t5Encoder),
            ("goldens/pipeline.safetensors", .unknown),
            ("goldens/schedulers.safetensors", .unknown),
        ]
        for (path, kind) in expected {
            let dict = try SafetensorsFile(path: Fixtures.path(path))
            #expect(ModelKind.detect(dict) == kind, "\(path)")
        }
    }

    @Test("the kind strings are exactly the documented ones")
    func kindStrings() {
        #expect(ModelKind.allCases.map(\.rawValue) == [
            "pixart-transformer-2d", "easyanimate-transformer-3d", "motion-module", "kohya-lora", "vae", "t5-encoder", "unknown",
        ])
    }

    @Test("a transformer summary agrees with its config.json and takes heads from it")
    func transformerSummary() throws {
        let config = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-pixart/transformer/config.json")))))
        let s = try summary("tiny-pixart/transformer/diffusion_pytorch_model.safetensors", config: "tiny-pixart/transformer/config.json")
        let t = try #require(s.transformer)
        #expect(t.depth == config.int("num_layers"))
        #expect(t.heads == config.int("num_attention_heads"))
        #expect(t.headsSource == .config)
        #expect(t.width == (config.int("num_attention_heads") ?? 0) * (config.int("attention_head_dim") ?? 0))
        #expect(t.headDim == config.int("attention_head_dim"))
        #expect(t.patchSize == config.int("patch_size"))
        #expect(t.inChannels == config.int("in_channels"))
        #expect(t.outChannels == config.int("out_channels"))
        #expect(t.captionChannels == config.int("caption_channels"))
        #expect(t.learnedSigma == (config.int("out_channels") == 2 * (config.int("in_channels") ?? 0)))
        #expect(!t.hasMotionModule)
        #expect(s.motionModule == nil)
        #expect(s.notes.isEmpty, "\(s.notes)")
    }

    @Test("without config.json heads are unknown unless the width fits PixArt's head dim 72")
    func headsWithoutConfig() throws {
        let s = try summary("personalized.safetensors")
        let t = try #require(s.transformer)
        let width = try #require(SafetensorsFile(path: Fixtures.path("personalized.safetensors")).info("transformer_blocks.0.attn1.to_q.weight")?.shape.first)
        #expect(t.width == width)
        if width % 72 == 0 {
            #expect(t.headsSource == .pixartHeadDim)
        } else {
            #expect(t.heads == nil && t.headsSource == .unknown)
        }
    }

    @Test("a 3D transformer reports its motion module with blocks matching the transformer depth")
    func transformer3D() throws {
        let s = try summary("goldens/personalized_transformer3d.safetensors")
        let t = try #require(s.transformer)
        let mm = try #require(s.motionModule)
        #expect(t.hasMotionModule)
        #expect(mm.blocks == t.depth)
        #expect(mm.blockIndices == Array(0..<t.depth))
        #expect(mm.channels == t.width)
        #expect(mm.layers >= 1)
        #expect(mm.attentionsPerLayer >= 1)
        #expect(mm.headsSource == .unknown)
    }

    @Test("a motion module reports blocks, width, layers and its position encodings")
    func motionModule() throws {
        let s = try summary("motion_module.safetensors")
        let mm = try #require(s.motionModule)
        let dict = try SafetensorsFile(path: Fixtures.path("motion_module.safetensors"))
        let blocks = Set(dict.keys.compactMap { $0.split(separator: ".").dropFirst().first }).count
        #expect(mm.blocks == blocks)
        let proj = try #require(dict.info("transformer_blocks.0.attn_temporal.temporal_transformer.proj_in.weight"))
        #expect(mm.width == proj.shape[0])
        #expect(mm.channels == proj.shape[1])
        #expect(mm.positionalEncoding)
        let pe = try #require(dict.keys.first { $0.hasSuffix("pos_encoder.pe") }.flatMap { dict.info($0) })
        #expect(mm.positionalEncodingLength == pe.shape[1])
        #expect(s.transformer == nil)
    }

    @Test("a LoRA reports rank, alpha, module counts per network and ss_ metadata")
    func loraSummary() throws {
        let dict = try SafetensorsFile(path: Fixtures.path("lora.safetensors"))
        let s = try ModelSummary.summarize(dict)
        let lora = try #require(s.lora)
        let downs = dict.keys.filter { $0.hasSuffix(".lora_down.weight") }
        #expect(lora.modules == downs.count)
        #expect(lora.transformerModules == downs.filter { $0.hasPrefix("lora_unet_") }.count)
        #expect(lora.textEncoderModules == downs.filter { $0.hasPrefix("lora_te_") }.count)
        #expect(lora.transformerModules + lora.textEncoderModules == lora.modules)
        #expect(lora.rank == dict.info(downs[0])?.shape[0])
        #expect(lora.ranks.count == 1)
        let alpha = try dict.tensor(dict.keys.first { $0.hasSuffix(".alpha") } ?? "").toFloat32()[0]
        #expect(lora.alpha == Double(alpha))
        #expect(lora.modulesWithoutAlpha == 0)
        #expect(lora.trainingMetadata == dict.metadata.filter { $0.key.hasPrefix("ss_") })
        #expect(!lora.trainingMetadata.isEmpty)
        #expect(s.notes.isEmpty, "\(s.notes)")
    }

    @Test("a VAE reports its channels and blocks as its config.json has them")
    func vaeSummary() throws {
        let s = try summary("tiny-pixart/vae/diffusion_pytorch_model.safetensors", config: "tiny-pixart/vae/config.json")
        let config = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-pixart/vae/config.json")))))
        let vae = try #require(s.vae)
        #expect(vae.layout == "diffusers")
        #expect(vae.blockOutChannels == config["block_out_channels"]?.arrayValue?.compactMap { $0.intValue.map(Int.init) })
        #expect(vae.layersPerBlock == config.int("layers_per_block"))
        #expect(vae.latentChannels == config.int("latent_channels"))
        #expect(vae.inChannels == config.int("in_channels"))
        #expect(vae.outChannels == config.int("out_channels"))
        #expect(vae.hasEncoder && vae.hasDecoder && vae.midBlockAttention)
        #expect(s.notes.isEmpty, "\(s.notes)")
    }

    @Test("a T5 encoder reports layers, width, heads from the relative bias shape and vocabulary")
    func t5Summary() throws {
        let s = try summary("goldens/merged_lora_text_encoder.safetensors", config: "tiny-pixart/text_encoder/config.json")
        let config = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-pixart/text_encoder/config.json")))))
        let t5 = try #require(s.t5)
        #expect(t5.layers == config.int("num_layers"))
        #expect(t5.dModel == config.int("d_model"))
        #expect(t5.heads == config.int("num_heads"))
        #expect(t5.headsSource == .shapes)
        #expect(t5.dKV == config.int("d_kv"))
        #expect(t5.dFF == config.int("d_ff"))
        #expect(t5.vocabSize == config.int("vocab_size"))
        #expect(t5.gatedFeedForward)
        #expect(s.notes.isEmpty, "\(s.notes)")
    }

    @Test("a disagreement with config.json is noted")
    func configDisagreement() throws {
        let config = try JSONParser.parse(Array(#"{"num_layers": 999, "num_attention_heads": 4, "attention_head_dim": 16}"#.utf8))
        let dict = try SafetensorsFile(path: Fixtures.path("personalized.safetensors"))
        let s = try ModelSummary.summarize(dict, config: config)
        #expect(s.notes.contains { $0.contains("num_layers 999") })
    }

    // MARK: synthetic headers

    private func names(_ keys: [String]) -> ModelKind { ModelKind.detect(keys: keys) }

    @Test("recognises kinds from bare key lists, independent of depth and naming of shards")
    func syntheticKinds() {
        let spatial = ["pos_embed.proj.weight", "adaln_single.linear.weight"]
            + (0..<28).flatMap { ["transformer_blocks.\($0).attn1.to_q.weight", "transformer_blocks.\($0).attn2.to_k.weight"] }
        let temporal = (0..<28).map { "transformer_blocks.\($0).attn_temporal.temporal_transformer.proj_in.weight" }
        #expect(names(spatial) == .pixartTransformer2D)
        #expect(names(spatial + temporal) == .easyAnimateTransformer3D)
        #expect(names(temporal) == .motionModule)
        #expect(names(["lora_unet_proj_out.lora_down.weight", "lora_unet_proj_out.lora_up.weight"]) == .kohyaLoRA)
        #expect(names(["lora_te1_encoder_block_0_q.lora_down.weight", "lora_te1_encoder_block_0_q.lora_up.weight", "lora_te1_encoder_block_0_q.alpha"]) == .kohyaLoRA)
        #expect(names(["encoder.block.0.layer.0.SelfAttention.q.weight", "shared.weight"]) == .t5Encoder)
        #expect(names(["encoder.conv_in.weight", "encoder.down.0.block.0.conv1.weight", "decoder.up.0.block.0.conv1.weight"]) == .vae)
    }

    @Test("near misses stay unknown")
    func syntheticUnknowns() {
        #expect(names([]) == .unknown)
        #expect(names(["foo", "bar.weight"]) == .unknown)
        // A LoRA with only one side, or with LyCORIS parts, is not a kohya LoRA.
        #expect(names(["lora_unet_proj_out.lora_down.weight", "lora_unet_proj_out.alpha"]) == .unknown)
        #expect(names(["lora_unet_proj_out.hada_w1_a", "lora_unet_proj_out.lora_down.weight", "lora_unet_proj_out.lora_up.weight"]) == .unknown)
        // PEFT LoRA names.
        #expect(names(["transformer_blocks.0.attn1.to_q.lora_A.weight", "transformer_blocks.0.attn1.to_q.lora_B.weight"]) == .unknown)
        // Temporal keys of another family (AnimateDiff) are not an EasyAnimate motion module.
        #expect(names(["down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight"]) == .unknown)
        // A full T5 with a decoder.
        #expect(names(["encoder.block.0.layer.0.SelfAttention.q.weight", "decoder.block.0.layer.0.SelfAttention.q.weight"]) == .unknown)
        // Wrapped under a pipeline prefix.
        #expect(names(["transformer.pos_embed.proj.weight", "transformer.adaln_single.linear.weight", "transformer.transformer_blocks.0.attn1.to_q.weight"]) == .unknown)
    }

    @Test("explains common unknown formats in notes")
    func unknownNotes() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try SyntheticSafetensors.write([
            .init(name: "transformer_blocks.0.attn1.to_q.lora_A.weight", shape: [4, 8]),
            .init(name: "transformer_blocks.0.attn1.to_q.lora_B.weight", shape: [8, 4]),
        ], to: dir.appendingPathComponent("peft.safetensors").path)
        let s = try ModelSummary.summarize(SafetensorsFile(path: path))
        #expect(s.kind == .unknown)
        #expect(s.notes.contains { $0.contains("PEFT") })
    }

    @Test("a quantized transformer keeps its kind and reports its formats from _quantization_metadata")
    func quantizedWithMetadata() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let meta = #"{"format_version":"1.0","layers":{"transformer_blocks.0.attn1.to_q":{"format":"int8_blockwise","group_size":128},"transformer_blocks.0.attn1.to_k":{"format":"float8_e4m3fn"}}}"#
        let path = try SyntheticSafetensors.write([
            .init(name: "pos_embed.proj.weight", shape: [256, 4, 2, 2]),
            .init(name: "adaln_single.linear.weight", shape: [1536, 256]),
            .init(name: "proj_out.weight", shape: [32, 256]),
            .init(name: "transformer_blocks.0.attn1.to_q.weight", dtype: .i8, shape: [256, 256]),
            .init(name: "transformer_blocks.0.attn1.to_q.weight_scale", shape: [2, 2]),
            .init(name: "transformer_blocks.0.attn1.to_k.weight", dtype: .f8e4m3, shape: [256, 256]),
            .init(name: "transformer_blocks.0.attn1.to_k.weight_scale", shape: []),
        ], metadata: ["_quantization_metadata": meta], to: dir.appendingPathComponent("q.safetensors").path)
        let s = try ModelSummary.summarize(SafetensorsFile(path: path))
        #expect(s.kind == .pixartTransformer2D)
        let q = try #require(s.quantization)
        #expect(q.source == "_quantization_metadata")
        #expect(q.formatVersion == "1.0")
        #expect(q.layers == 2)
        #expect(q.formats["int8_blockwise"] == .init(layers: 1, groupSizes: [128]))
        #expect(q.formats["float8_e4m3fn"] == .init(layers: 1, groupSizes: []))
    }

    @Test("quantized layers without metadata are inferred from dtype and scale shape")
    func quantizedWithoutMetadata() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try SyntheticSafetensors.write([
            .init(name: "encoder.block.0.layer.0.SelfAttention.q.weight", dtype: .i8, shape: [128, 256]),
            .init(name: "encoder.block.0.layer.0.SelfAttention.q.weight_scale", shape: [2, 4]),
            .init(name: "encoder.block.0.layer.0.SelfAttention.k.weight", dtype: .f8e4m3, shape: [128, 256]),
            .init(name: "encoder.block.0.layer.0.SelfAttention.k.weight_scale", shape: []),
            .init(name: "shared.weight", shape: [10, 256]),
        ], to: dir.appendingPathComponent("t5q.safetensors").path)
        let s = try ModelSummary.summarize(SafetensorsFile(path: path))
        #expect(s.kind == .t5Encoder)
        let q = try #require(s.quantization)
        #expect(q.source == "weight_scale tensors")
        #expect(q.formats["int8_blockwise"] == .init(layers: 1, groupSizes: [64]))
        #expect(q.formats["float8_e4m3fn"]?.layers == 1)
    }

    @Test("malformed _quantization_metadata is an error naming the file")
    func badQuantizationMetadata() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try SyntheticSafetensors.write([.init(name: "a.weight", shape: [2])],
                                                  metadata: ["_quantization_metadata": "{not json"],
                                                  to: dir.appendingPathComponent("bad.safetensors").path)
        let error = #expect(throws: WeightOpsError.self) {
            try ModelSummary.summarize(SafetensorsFile(path: path))
        }
        #expect(error.map { "\($0)".contains(path) && "\($0)".contains("_quantization_metadata") } == true)
    }

    @Test("an unquantized file has no quantization summary")
    func notQuantized() throws {
        #expect(try summary("personalized.safetensors").quantization == nil)
    }

    @Test("LoRA without alpha tensors and with mixed ranks is summarized, problems noted")
    func loraEdgeCases() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try SyntheticSafetensors.write([
            .init(name: "lora_unet__transformer_blocks_0_attn1_to_q.lora_down.weight", shape: [8, 64]),
            .init(name: "lora_unet__transformer_blocks_0_attn1_to_q.lora_up.weight", shape: [64, 8]),
            .init(name: "lora_unet__transformer_blocks_0_attn_temporal_x.lora_down.weight", shape: [4, 64]),
            .init(name: "lora_unet__transformer_blocks_0_attn_temporal_x.lora_up.weight", shape: [64, 4]),
            .init(name: "lora_unet__transformer_blocks_0_attn_temporal_x.alpha", shape: [], values: [2]),
            .init(name: "lora_te_encoder_block_0_q.lora_down.weight", shape: [4, 32]),
        ], to: dir.appendingPathComponent("l.safetensors").path)
        let s = try ModelSummary.summarize(SafetensorsFile(path: path))
        #expect(s.kind == .kohyaLoRA)
        let lora = try #require(s.lora)
        #expect(lora.modules == 2)
        #expect(lora.transformerModules == 2)
        #expect(lora.temporalModules == 1)
        #expect(lora.textEncoderModules == 0)
        #expect(lora.ranks == [4, 8])
        #expect(lora.alphas == [2])
        #expect(lora.modulesWithoutAlpha == 1)
        #expect(lora.incompleteModules == 1)
        #expect(s.notes.contains { $0.contains("lora_te_encoder_block_0_q") })
    }
}
