import Foundation
import Testing
import Safetensors
@testable import WeightOps
import TestSupport

@Suite("LoRA merge")
struct LoRAMergeTests {
    static let multiplier = 0.55

    static func transformer3D() throws -> StateDictUnion {
        try StateDictUnion([SafetensorsFile(path: Fixtures.transformer2D), SafetensorsFile(path: Fixtures.motionModule)])
    }

    static func textEncoderShards() throws -> StateDictUnion {
        let folder = Fixtures.textEncoderFolder
        return try StateDictUnion((1...3).map { try SafetensorsFile(path: "\(folder)/model-0000\($0)-of-00003.safetensors") })
    }

    /// The plan's merged state dict against the golden: the same keys and shapes (the merge keeps the base's),
    /// every tensor within the fixture README's 1e-6.
    static func expectMatchesGolden(_ plan: LoRAMergePlan, golden name: String) throws {
        let golden = try SafetensorsFile(path: Fixtures.golden(name))
        let base = try #require(plan.components.first).base
        #expect(Set(base.keys.filter { !GoldenComparison.isLeftOutOfGoldens($0) }) == Set(golden.keys))
        for key in golden.keys {
            let expected = try golden.tensor(key)
            #expect(base.info(key)?.shape == expected.shape, "\(key)")
            let diff = GoldenComparison.maxAbsDifference(try plan.mergedTensor(key: key), expected.toFloat32())
            #expect(diff <= Tolerances.stateDict, "\(key): max abs diff \(diff)")
        }
    }

    @Test("merging the fixture LoRA at 0.55 into the 3D transformer matches EasyAnimate's merge_lora")
    func transformerMatchesGolden() throws {
        let lora = try LoRAFile(path: Fixtures.lora)
        let plan = LoRAMergePlan(components: [("transformer", try Self.transformer3D(), .transformer)],
                                 loras: [lora], specs: [LoRASpec(path: Fixtures.lora, multiplier: Self.multiplier)])
        let transformerModules = lora.modules(for: .transformer).count
        #expect(plan.report.applied == transformerModules)
        #expect(plan.report.unmatchedCount == 0)
        #expect(plan.report.otherModel[.textEncoder] == lora.modules(for: .textEncoder).count)
        try Self.expectMatchesGolden(plan, golden: "merged_lora_transformer3d.safetensors")
    }

    @Test("merging the fixture LoRA at 0.55 into the sharded BF16 T5 matches merge_lora in float32")
    func textEncoderMatchesGolden() throws {
        let lora = try LoRAFile(path: Fixtures.lora)
        let plan = LoRAMergePlan(components: [("text_encoder", try Self.textEncoderShards(), .textEncoder)],
                                 loras: [lora], specs: [LoRASpec(path: Fixtures.lora, multiplier: Self.multiplier)])
        #expect(plan.report.applied == lora.modules(for: .textEncoder).count)
        #expect(plan.report.unmatchedCount == 0)
        try Self.expectMatchesGolden(plan, golden: "merged_lora_text_encoder.safetensors")
    }

    @Test("parses FILE:MULT, negative multipliers and paths with colons")
    func parsesSpecs() {
        #expect(LoRASpec(parsing: "a.safetensors:0.55") == LoRASpec(path: "a.safetensors", multiplier: 0.55))
        #expect(LoRASpec(parsing: "a.safetensors:-1") == LoRASpec(path: "a.safetensors", multiplier: -1))
        #expect(LoRASpec(parsing: "a.safetensors") == LoRASpec(path: "a.safetensors", multiplier: 1))
        #expect(LoRASpec(parsing: "C:dir/a.safetensors") == LoRASpec(path: "C:dir/a.safetensors", multiplier: 1))
    }
}

@Suite("LoRA merge semantics")
struct LoRAMergeSemanticsTests {
    typealias T = SyntheticSafetensors.Tensor

    @Test("merge then unmerge returns the base within 1e-6, in one plan")
    func unmergeRestoresBase() throws {
        let lora = try LoRAFile(path: Fixtures.lora)
        let base = try LoRAMergeTests.transformer3D()
        let spec = LoRASpec(path: Fixtures.lora, multiplier: 0.55)
        let plan = LoRAMergePlan(components: [("transformer", base, .transformer)], loras: [lora, lora],
                                 specs: [spec, spec.negated])
        #expect(plan.report.applied == 2 * lora.modules(for: .transformer).count)
        for key in plan.components[0].updates.keys {
            let restored = try plan.mergedTensor(key: key)
            let original = try base.tensor(key).toFloat32()
            #expect(GoldenComparison.maxAbsDifference(restored, original) <= Tolerances.stateDict, "\(key)")
        }
    }

    @Test("two LoRAs apply in order like two merge_lora calls")
    func twoLoRAsAccumulate() throws {
        let lora = try LoRAFile(path: Fixtures.lora)
        let base = try LoRAMergeTests.transformer3D()
        let twice = LoRAMergePlan(components: [("transformer", base, .transformer)], loras: [lora, lora],
                                  specs: [LoRASpec(path: lora.path, multiplier: 0.25), LoRASpec(path: lora.path, multiplier: 0.30)])
        let golden = try SafetensorsFile(path: Fixtures.golden("merged_lora_transformer3d.safetensors"))
        // 0.25 + 0.30 = 0.55: the same update in two steps, equal up to float32 rounding of the extra step.
        for key in twice.components[0].updates.keys {
            let diff = GoldenComparison.maxAbsDifference(try twice.mergedTensor(key: key), try golden.tensor(key).toFloat32())
            #expect(diff <= Tolerances.stateDictMergedInTwoSteps, "\(key)")
        }
    }

    @Test("unmatched modules are grouped, and --strict makes them an error")
    func unmatchedAndStrict() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lora = try LoRAFile(path: Fixtures.lora)
        // The 2D transformer alone: every module matches; a temporal module does not.
        let extra = try SyntheticSafetensors.write([
            T(name: "lora_unet__transformer_blocks_0_attn_temporal_temporal_transformer_proj_in.lora_down.weight", shape: [4, 64]),
            T(name: "lora_unet__transformer_blocks_0_attn_temporal_temporal_transformer_proj_in.lora_up.weight", shape: [64, 4]),
            T(name: "lora_unet__transformer_blocks_9_attn1_to_q.lora_down.weight", shape: [4, 64]),
            T(name: "lora_unet__transformer_blocks_9_attn1_to_q.lora_up.weight", shape: [64, 4]),
            T(name: "lora_unet__proj_out.lora_down.weight", shape: [4, 64]),
            T(name: "lora_unet__proj_out.lora_up.weight", shape: [16, 4]),
        ], to: dir.appendingPathComponent("extra.safetensors").path)
        let extraLoRA = try LoRAFile(path: extra)
        let base = try SafetensorsFile(path: Fixtures.transformer2D)
        let plan = LoRAMergePlan(components: [("transformer", base, .transformer)], loras: [lora, extraLoRA],
                                 specs: [LoRASpec(path: lora.path, multiplier: 1), LoRASpec(path: extra, multiplier: 1)])
        #expect(plan.report.unmatched[.transformerTemporal]?.count == 1)
        #expect(plan.report.unmatched[.transformerSpatial] == ["lora_unet__transformer_blocks_9_attn1_to_q"])
        #expect(plan.report.shapeMismatches.map(\.tensor) == ["proj_out.weight"])
        #expect(plan.report.lines.contains { $0.contains("unmatched transformer (temporal") })
        try plan.validate(strict: false)
        #expect(throws: WeightOpsError.self) { try plan.validate(strict: true) }
    }

    @Test("a LoRA that matches nothing is an error even without --strict")
    func nothingApplies() throws {
        let lora = try LoRAFile(path: Fixtures.lora)
        let plan = LoRAMergePlan(components: [("transformer", try SafetensorsFile(path: Fixtures.motionModule), .transformer)],
                                 loras: [lora], specs: [LoRASpec(path: lora.path, multiplier: 1)])
        #expect(plan.report.applied == 0)
        #expect(throws: WeightOpsError.self) { try plan.validate(strict: false) }
    }
}
