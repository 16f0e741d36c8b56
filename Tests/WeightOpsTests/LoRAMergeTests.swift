import Testing
import Safetensors
@testable import WeightOps

@Suite("LoRA merge")
struct LoRAMergeTests {
    /// The fixture README: merged state dicts are within 1e-6 (max abs) per tensor of EasyAnimate's.
    static let tolerance: Float = 1e-6
    static let multiplier = 0.55

    static func transformer3D() throws -> StateDictUnion {
        try StateDictUnion([SafetensorsFile(path: Fixtures.transformer2D), SafetensorsFile(path: Fixtures.motionModule)])
    }

    static func textEncoderShards() throws -> StateDictUnion {
        let folder = Fixtures.textEncoderFolder
        return try StateDictUnion((1...3).map { try SafetensorsFile(path: "\(folder)/model-0000\($0)-of-00003.safetensors") })
    }

    static func expectMatchesGolden(_ plan: LoRAMergePlan, golden name: String) throws {
        let golden = try SafetensorsFile(path: Fixtures.golden(name))
        for key in golden.keys {
            let expected = try golden.tensor(key).toFloat32()
            let actual = try plan.mergedTensor(key: key)
            let diff = Fixtures.maxAbsDiff(actual, expected)
            #expect(diff <= tolerance, "\(key): max abs diff \(diff)")
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
