import Testing
@testable import WeightOps
import TestSupport

@Suite("KeyMap")
struct KeyMapTests {
    @Test("resolves EasyAnimate's double-underscore transformer names to weight keys")
    func resolvesTransformerNames() throws {
        let map = KeyMap(keys: ["transformer_blocks.0.attn1.to_q.weight", "transformer_blocks.0.attn1.to_q.bias",
                                "transformer_blocks.0.attn1.to_out.0.weight", "proj_out.weight", "scale_shift_table"])
        let q = try #require(LoRAModuleName("lora_unet__transformer_blocks_0_attn1_to_q"))
        #expect(q.target == .transformer)
        #expect(map.resolve(q, target: .transformer) == "transformer_blocks.0.attn1.to_q.weight")
        let out = try #require(LoRAModuleName("lora_unet__transformer_blocks_0_attn1_to_out_0"))
        #expect(map.resolve(out, target: .transformer) == "transformer_blocks.0.attn1.to_out.0.weight")
        // kohya's single-underscore spelling names the same module.
        let single = try #require(LoRAModuleName("lora_unet_proj_out"))
        #expect(map.resolve(single, target: .transformer) == "proj_out.weight")
        #expect(map.resolve(flatPath: "transformer_blocks_0_attn1_to_k") == .missing)
        #expect(map.resolve(flatPath: "scale_shift_table") == .missing)
    }

    @Test("resolves T5 names, and keeps targets apart")
    func resolvesTextEncoderNames() throws {
        let map = KeyMap(keys: ["encoder.block.0.layer.1.DenseReluDense.wi_0.weight", "shared.weight"])
        let wi = try #require(LoRAModuleName("lora_te_encoder_block_0_layer_1_DenseReluDense_wi_0"))
        #expect(wi.target == .textEncoder)
        #expect(map.resolve(wi, target: .textEncoder) == "encoder.block.0.layer.1.DenseReluDense.wi_0.weight")
        #expect(map.resolve(wi, target: .transformer) == nil)
    }

    @Test("names round-trip: the module name of a weight key resolves back to it")
    func namesRoundTrip() throws {
        let keys = ["transformer_blocks.3.attn_temporal.temporal_transformer.proj_in.weight",
                    "adaln_single.emb.timestep_embedder.linear_1.weight"]
        let map = KeyMap(keys: keys)
        for key in keys {
            let name = LoRAModuleName.name(forWeightKey: key, target: .transformer)
            #expect(name.hasPrefix("lora_unet__"))
            let parsed = try #require(LoRAModuleName(name))
            #expect(map.resolve(parsed, target: .transformer) == key)
        }
        #expect(try #require(LoRAModuleName(LoRAModuleName.name(forWeightKey: keys[0], target: .transformer))).isTemporal)
    }

    @Test("colliding flattened paths resolve like the original attribute walk and are reported")
    func collisionsPreferShortLeadingSegments() {
        let map = KeyMap(keys: ["a_b.c.weight", "a.b_c.weight"])
        #expect(map.resolve(flatPath: "a_b_c") == .matched("a.b_c.weight"))
        #expect(map.collisions["a_b_c"] == ["a.b_c.weight", "a_b.c.weight"])
    }

    @Test("rejects names without a kohya prefix")
    func rejectsForeignNames() {
        #expect(LoRAModuleName("transformer.blocks.0") == nil)
        #expect(LoRAModuleName("lora_unet_") == nil)
    }
}
