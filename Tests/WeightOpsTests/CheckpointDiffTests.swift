import Testing
import Safetensors
@testable import WeightOps
import TestSupport

@Suite("Checkpoint diff")
struct CheckpointDiffTests {
    @Test("a LoRA-merged golden differs from its base exactly in the LoRA's target weights")
    func diffShowsLoRATargets() throws {
        let base = try StateDictUnion([SafetensorsFile(path: Fixtures.transformer2D), SafetensorsFile(path: Fixtures.motionModule)])
        let merged = try SafetensorsFile(path: Fixtures.golden("merged_lora_transformer3d.safetensors"))
        let diff = try CheckpointDiff(base, merged)
        let lora = try LoRAFile(path: Fixtures.lora)
        #expect(diff.changed.count == lora.modules(for: .transformer).count)
        #expect(diff.onlyInB.isEmpty)
        #expect(diff.onlyInA.allSatisfy { $0.hasSuffix("pos_encoder.pe") })
        #expect(diff.changed.allSatisfy { $0.maxAbs > 0 && $0.name.hasSuffix(".weight") })
        #expect(diff.identical == merged.keys.count - diff.changed.count)
        #expect(!diff.sameValues)
    }

    @Test("a BF16 checkpoint and its float32 upcast have equal values across sharded and single layouts")
    func diffAcrossDTypesAndLayouts() throws {
        let folder = Fixtures.textEncoderFolder
        let shards = try StateDictUnion((1...3).map { try SafetensorsFile(path: "\(folder)/model-0000\($0)-of-00003.safetensors") })
        let diff = try CheckpointDiff(shards, shards)
        #expect(diff.identical == shards.keys.count)
        #expect(diff.sameValues)
    }
}
