import Foundation
import Testing
import Safetensors
@testable import WeightOps
import TestSupport

@Suite("merge-lora on disk")
struct LoRAMergeOperationTests {
    /// A merged state dict written as f32 against the golden: the same keys and shapes, every tensor within the
    /// fixture README's 1e-6.
    static func expectGolden(_ dict: any StateDict, golden name: String) throws {
        let golden = try SafetensorsFile(path: Fixtures.golden(name))
        let problems = try GoldenComparison.stateDictProblems(dict, golden: golden, tolerance: Tolerances.stateDict,
                                                              ignoring: GoldenComparison.isLeftOutOfGoldens)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        for key in golden.keys { #expect(dict.info(key)?.dtype == .f32, "\(key)") }
    }

    @Test("a 3D transformer file merged at 0.55 matches the golden and records its provenance")
    func transformerFile() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let threeD = dir.appendingPathComponent("transformer3d.safetensors").path
        _ = try BackboneSwap.run(.init(backbone: Fixtures.transformer2D, motionModule: Fixtures.motionModule, output: threeD))
        let out = dir.appendingPathComponent("merged.safetensors").path
        var options = LoRAMergeOptions(base: threeD, loras: [LoRASpec(path: Fixtures.lora, multiplier: 0.55)], output: out)
        options.dtype = .f32
        let result = try LoRAMerge.run(options)
        #expect(result.report.applied == result.report.loras[0].applied)
        let merged = try SafetensorsFile(path: out)
        try Self.expectGolden(merged, golden: "merged_lora_transformer3d.safetensors")
        #expect(merged.keys == (try SafetensorsFile(path: threeD)).keys)
        #expect(merged.metadata["format"] == "pt")
        let provenance = try #require(merged.metadata[LoRAMerge.provenanceKey])
        #expect(provenance.contains("\"multiplier\":0.55"))
        #expect(provenance.contains(try FileDigest.sha256(path: Fixtures.lora)))
        #expect(provenance.contains(try FileDigest.sha256(path: threeD)))
    }

    @Test("a sharded BF16 T5 is merged into the same shards with a new index; f32 matches the golden")
    func shardedTextEncoder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("text_encoder").path
        var options = LoRAMergeOptions(base: Fixtures.textEncoderFolder, loras: [LoRASpec(path: Fixtures.lora, multiplier: 0.55)], output: out)
        options.dtype = .f32
        _ = try LoRAMerge.run(options)
        let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        let input = try FileManager.default.contentsOfDirectory(atPath: Fixtures.textEncoderFolder).sorted()
        #expect(files == input)
        let layout = try WeightFiles.locate(out)
        let (dict, shards) = try layout.open()
        try Self.expectGolden(dict, golden: "merged_lora_text_encoder.safetensors")
        // Same key → shard assignment as the input.
        let (inputDict, inputShards) = try WeightFiles.locate(Fixtures.textEncoderFolder).open()
        #expect(dict.keys == inputDict.keys)
        #expect(shards.count == inputShards.count)
        for ((name, file), (inputName, inputFile)) in zip(shards, inputShards) {
            #expect(name == inputName)
            #expect(file.keys == inputFile.keys)
        }
        guard case let .sharded(_, contents) = layout.files else { Issue.record("not sharded"); return }
        #expect(contents.totalSize == dict.byteCount)
    }

    @Test("--dtype keep stores the merged T5 as BF16; a single-file T5 works too")
    func keepDTypeAndSingleFile() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A single-file T5, as some releases ship it.
        let single = dir.appendingPathComponent("t5.safetensors").path
        let shards = try WeightFiles.locate(Fixtures.textEncoderFolder).open().dict
        try CheckpointStreamer.write(to: single, tensors: try shards.keys.map { OutputTensor.from(try shards.tensor($0)) }, metadata: [:])
        let out = dir.appendingPathComponent("merged.safetensors").path
        _ = try LoRAMerge.run(LoRAMergeOptions(base: single, loras: [LoRASpec(path: Fixtures.lora, multiplier: 0.55)], output: out))
        let merged = try SafetensorsFile(path: out)
        #expect(merged.allInfos.allSatisfy { $0.dtype == .bf16 })
        let golden = try SafetensorsFile(path: Fixtures.golden("merged_lora_text_encoder.safetensors"))
        for key in golden.keys {
            // BF16 keeps 8 bits of mantissa: within half a BF16 ulp of the float32 result.
            let g = try golden.tensor(key).toFloat32(), m = try merged.tensor(key).toFloat32()
            for i in g.indices { #expect(abs(g[i] - m[i]) <= abs(g[i]) * 0x1p-8 + 1e-30, "\(key)[\(i)]") }
        }
    }

    @Test("a diffusers folder: transformer and text encoder merged, everything else linked, nothing else changed")
    func diffusersFolder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("pipeline").path
        var options = LoRAMergeOptions(base: Fixtures.pipelineFolder, loras: [LoRASpec(path: Fixtures.lora, multiplier: 0.55)], output: out)
        options.dtype = .f32
        let result = try LoRAMerge.run(options)
        #expect(result.report.applied == result.report.total)
        try Self.expectGolden(try WeightFiles.locate(out + "/text_encoder").open().dict, golden: "merged_lora_text_encoder.safetensors")
        // The folder's 2D transformer: the golden's tensors without the motion module's.
        let transformer = try WeightFiles.locate(out + "/transformer").open().dict
        let golden = try SafetensorsFile(path: Fixtures.golden("merged_lora_transformer3d.safetensors"))
        let problems = try GoldenComparison.stateDictProblems(transformer, golden: golden, tolerance: Tolerances.stateDict,
                                                              ignoring: { $0.contains(".attn_temporal.") })
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: out + "/transformer/config.json"))
        #expect(fm.contentsEqual(atPath: out + "/model_index.json", andPath: Fixtures.pipelineFolder + "/model_index.json"))
        #expect(fm.contentsEqual(atPath: out + "/vae/diffusion_pytorch_model.safetensors",
                                 andPath: Fixtures.pipelineFolder + "/vae/diffusion_pytorch_model.safetensors"))
        #expect(fm.contentsEqual(atPath: out + "/tokenizer/spiece.model", andPath: Fixtures.pipelineFolder + "/tokenizer/spiece.model"))
        #expect(!(try fm.contentsOfDirectory(atPath: dir.path)).contains { $0.hasPrefix(".") })
    }

    @Test("dry run writes nothing; an existing output folder is refused")
    func dryRunAndExistingFolder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.safetensors").path
        var options = LoRAMergeOptions(base: Fixtures.transformer2D, loras: [LoRASpec(path: Fixtures.lora, multiplier: 1)], output: out)
        options.dryRun = true
        let result = try LoRAMerge.run(options)
        #expect(result.output == nil && result.report.applied > 0)
        #expect(!FileManager.default.fileExists(atPath: out))
        var folder = LoRAMergeOptions(base: Fixtures.textEncoderFolder, loras: [LoRASpec(path: Fixtures.lora, multiplier: 1)], output: dir.path)
        folder.dtype = .f32
        #expect(throws: WeightOpsError.self) { _ = try LoRAMerge.run(folder) }
    }

    @Test("an F16 overflow is an error naming the tensor, and nothing is written")
    func f16OverflowIsAnError() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        typealias T = SyntheticSafetensors.Tensor
        let base = try SyntheticSafetensors.write([
            T(name: "pos_embed.proj.weight", shape: [4, 4, 2, 2]), T(name: "adaln_single.linear.weight", shape: [2, 2]),
            T(name: "transformer_blocks.0.attn1.to_q.weight", shape: [2, 2], values: [1, 2, 3, 4]),
        ], to: dir.appendingPathComponent("base.safetensors").path)
        let lora = try SyntheticSafetensors.write([
            T(name: "lora_unet__transformer_blocks_0_attn1_to_q.lora_down.weight", shape: [1, 2], values: [1, 1]),
            T(name: "lora_unet__transformer_blocks_0_attn1_to_q.lora_up.weight", shape: [2, 1], values: [70000, 0]),
        ], to: dir.appendingPathComponent("lora.safetensors").path)
        let out = dir.appendingPathComponent("out.safetensors").path
        var options = LoRAMergeOptions(base: base, loras: [LoRASpec(path: lora, multiplier: 1)], output: out)
        options.dtype = .f16
        let error = #expect(throws: WeightOpsError.self) { _ = try LoRAMerge.run(options) }
        #expect(error?.description.contains("transformer_blocks.0.attn1.to_q.weight") == true)
        #expect(!FileManager.default.fileExists(atPath: out))
        // Infinite multipliers make non-finite weights: also an error.
        options.dtype = .f32
        options.loras = [LoRASpec(path: lora, multiplier: .infinity)]
        #expect(throws: WeightOpsError.self) { _ = try LoRAMerge.run(options) }
    }
}
