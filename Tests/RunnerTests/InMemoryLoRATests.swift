import Foundation
import Runner
import Safetensors
import TestSupport
import Testing
import WeightOps

@Suite("LoRA merged for generation")
struct InMemoryLoRATests {
    static func multiplier() throws -> Double {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.golden("settings.json")))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(json["lora_multiplier"] as? Double)
    }

    @Test("merged weights are float32, equal EasyAnimate's merge (fixture README: 1e-6), and leave no file behind")
    func mergedWeightsAreMappedAndMatchTheGoldens() throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let spec = LoRASpec(path: Fixtures.path("lora.safetensors"), multiplier: try Self.multiplier())
        let transformer = LayeredStateDict([try openStateDict(path: Fixtures.path("tiny-pixart/transformer")),
                                            try openStateDict(path: Fixtures.path("motion_module.safetensors"))])
        let textEncoder = try openStateDict(path: Fixtures.path("tiny-pixart/text_encoder"))
        let merged = try InMemoryLoRA.merge([spec], transformer: transformer, textEncoder: textEncoder,
                                            temporaryFolder: folder.path)
        // The files are unlinked as soon as they are mapped.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)

        for (base, file, golden) in [(transformer as any StateDict, merged.transformer, "merged_lora_transformer3d.safetensors"),
                                     (textEncoder, merged.textEncoder, "merged_lora_text_encoder.safetensors")] {
            let file = try #require(file)
            #expect(!file.keys.isEmpty)
            #expect(file.keys.allSatisfy { file.info($0)?.dtype == .f32 }, "\(golden)")
            // The merged tensors layered over the checkpoint, as the pipeline loads them, are the golden state dict.
            let problems = try GoldenComparison.stateDictProblems(LayeredStateDict([base, file]), golden: SafetensorsFile(path: Fixtures.golden(golden)),
                                                                  tolerance: Tolerances.stateDict, ignoring: GoldenComparison.isLeftOutOfGoldens)
            #expect(problems.isEmpty, "\(golden): \(problems.prefix(5))")
        }
        #expect(merged.report.applied == merged.report.total)
    }
}
