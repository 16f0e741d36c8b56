import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

/// Goldens: fixtures/ea-tiny/goldens/transformer{2d,3d}.safetensors, produced by diffusers 0.27.0
/// `Transformer2DModel` and EasyAnimate's `Transformer3DModel` (float32, CPU). Module outputs must be within
/// `Tolerances.moduleOutput` (max abs), the fixture README's tolerance.
@Suite("PixArt transformer")
struct PixArtTransformerTests {
    static var transformerFolder: String { Fixtures.path("tiny-pixart/transformer") }
    static var configPath: String { transformerFolder + "/config.json" }
    static var backbonePath: String { transformerFolder + "/diffusion_pytorch_model.safetensors" }
    static var motionModulePath: String { Fixtures.path("motion_module.safetensors") }
    static var yamlPath: String { Fixtures.path("easyanimate_video_motion_module_v1.yaml") }

    static func tensor(_ file: SafetensorsFile, _ key: String) throws -> Tensor {
        let view = try file.tensor(key)
        return Tensor(shape: view.shape, storage: view.toFloat32())
    }

    static func model3D(motionModule: String? = motionModulePath) throws -> Transformer3D {
        let config = try PixArtConfig(contentsOf: configPath, easyAnimateYAML: yamlPath)
        return try Transformer3D.load(config: config, backbone: try SafetensorsFile(path: backbonePath),
                                      motionModule: try motionModule.map { try SafetensorsFile(path: $0) })
    }

    /// A temporary folder removed after `body`.
    static func withTemporaryFolder<R>(_ body: (String) throws -> R) throws -> R {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pixart-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try body(folder)
    }

    /// Copies `source` to `path` with `edit` applied to each (name, values, shape); returning nil drops a tensor.
    static func writeEdited(_ source: String, to path: String,
                            _ edit: (String, [Float], [Int]) -> (values: [Float], shape: [Int])?) throws {
        let file = try SafetensorsFile(path: source)
        var tensors = [OutputTensor]()
        for key in file.keys {
            let view = try file.tensor(key)
            guard let edited = edit(key, view.toFloat32(), view.shape) else { continue }
            tensors.append(.floats(edited.values, name: key, dtype: .f32, shape: edited.shape))
        }
        _ = try SafetensorsWriter().write(tensors, to: path)
    }

    @Test("config.json alone is diffusers' 2D transformer; with the yaml it is EasyAnimate's 3D model")
    func readsConfig() throws {
        let config2D = try PixArtConfig(contentsOf: Self.configPath)
        #expect(config2D.motionModule == nil)
        #expect(config2D.width == config2D.numAttentionHeads * config2D.attentionHeadDim)
        #expect(config2D.outChannels == 2 * config2D.inChannels)
        let config3D = try PixArtConfig(contentsOf: Self.configPath, easyAnimateYAML: Self.yamlPath)
        let motion = try #require(config3D.motionModule)
        #expect(motion.grid)
        #expect(motion.blockSize == 2)
        #expect(motion.attentionBlocks == 2)
        #expect(motion.temporalPositionEncoding)
    }

    @Test("2D transformer on frame 0 matches diffusers' Transformer2DModel")
    func matches2DGolden() throws {
        let golden = try SafetensorsFile(path: Fixtures.golden("transformer2d.safetensors"))
        let config = try PixArtConfig(contentsOf: Self.configPath)
        let model = try Transformer3D.load(WeightStore(try SafetensorsFile(path: Self.backbonePath)), config: config)
        #expect(model.blocks.allSatisfy { $0.motionModule == nil })
        let timesteps = try Self.tensor(golden, "timestep").storage
        let out = try model.forward(latents: try Self.tensor(golden, "hidden_states"), timesteps: timesteps,
                                    encoderHiddenStates: try Self.tensor(golden, "encoder_hidden_states"),
                                    encoderMask: try Self.tensor(golden, "encoder_attention_mask"))
        let expected = try Self.tensor(golden, "sample")
        try #require(out.shape == expected.shape)
        let diff = out.maxAbsDifference(expected)
        #expect(diff <= Tolerances.moduleOutput, "max abs diff \(diff)")
    }

    @Test("3D transformer with the VanillaGrid motion module matches EasyAnimate at t=999 and t=17")
    func matches3DGolden() throws {
        let golden = try SafetensorsFile(path: Fixtures.golden("transformer3d.safetensors"))
        let model = try Self.model3D()
        let latents = try Self.tensor(golden, "hidden_states")
        let caption = try Self.tensor(golden, "encoder_hidden_states")
        let mask = try Self.tensor(golden, "encoder_attention_mask")
        for (timestepKey, sampleKey) in [("timestep", "sample"), ("timestep_b", "sample_b")] {
            let timesteps = try Self.tensor(golden, timestepKey).storage
            let out = try model.forward(latents: latents, timesteps: timesteps, encoderHiddenStates: caption, encoderMask: mask)
            let expected = try Self.tensor(golden, sampleKey)
            try #require(out.shape == expected.shape)
            let diff = out.maxAbsDifference(expected)
            #expect(diff <= Tolerances.moduleOutput, "\(sampleKey): max abs diff \(diff)")
        }
    }

    @Test("a single timestep applies to the whole batch")
    func scalarTimestep() throws {
        let golden = try SafetensorsFile(path: Fixtures.golden("transformer3d.safetensors"))
        let model = try Self.model3D()
        let timesteps = try Self.tensor(golden, "timestep_b").storage
        #expect(Set(timesteps).count == 1)
        let out = try model.forward(latents: try Self.tensor(golden, "hidden_states"), timestep: timesteps[0],
                                    encoderHiddenStates: try Self.tensor(golden, "encoder_hidden_states"),
                                    encoderMask: try Self.tensor(golden, "encoder_attention_mask"))
        let expected = try Self.tensor(golden, "sample_b")
        try #require(out.shape == expected.shape)
        #expect(out.maxAbsDifference(expected) <= Tolerances.moduleOutput)
    }

    @Test("the recomputed temporal position encoding equals the motion module's pos_encoder.pe buffer")
    func positionEncodingMatchesBuffer() throws {
        let file = try SafetensorsFile(path: Self.motionModulePath)
        let key = try #require(file.keys.first { $0.hasSuffix("pos_encoder.pe") })
        let stored = try Self.tensor(file, key)
        let computed = TemporalSelfAttention.sinusoidalTable(length: stored.shape[1], dim: stored.shape[2])
        #expect(computed.shape == stored.shape)
        // Positions up to a few hundred frames agree to float32 rounding; far positions amplify exp's last-bit
        // differences between libm and PyTorch's vectorized exp.
        let rows = 256 * stored.shape[2]
        let near = Tensor(shape: [rows], storage: Array(computed.storage.prefix(rows)))
        #expect(near.maxAbsDifference(Tensor(shape: [rows], storage: Array(stored.storage.prefix(rows)))) <= Tolerances.moduleOutput)
    }

    @Test("a 3D model without pos_encoder.pe buffers recomputes them and gives the same output")
    func recomputesMissingPositionBuffers() throws {
        try Self.withTemporaryFolder { folder in
            let stripped = folder + "/mm.safetensors"
            try Self.writeEdited(Self.motionModulePath, to: stripped) { key, values, shape in
                key.hasSuffix("pos_encoder.pe") ? nil : (values, shape)
            }
            let golden = try SafetensorsFile(path: Fixtures.golden("transformer3d.safetensors"))
            let model = try Self.model3D(motionModule: stripped)
            let out = try model.forward(latents: try Self.tensor(golden, "hidden_states"),
                                        timesteps: try Self.tensor(golden, "timestep").storage,
                                        encoderHiddenStates: try Self.tensor(golden, "encoder_hidden_states"),
                                        encoderMask: try Self.tensor(golden, "encoder_attention_mask"))
            let expected = try Self.tensor(golden, "sample")
            try #require(out.shape == expected.shape)
            #expect(out.maxAbsDifference(expected) <= Tolerances.moduleOutput)
        }
    }

    @Test("a full 3D state dict without pos_encoder.pe buffers (as merge/swap save it) loads as one file")
    func loadsFull3DStateDict() throws {
        let config = try PixArtConfig(contentsOf: Self.configPath, easyAnimateYAML: Self.yamlPath)
        let file = try SafetensorsFile(path: Fixtures.golden("personalized_transformer3d.safetensors"))
        #expect(!file.keys.contains { $0.hasSuffix("pos_encoder.pe") })
        let model = try Transformer3D.load(WeightStore(file), config: config)
        #expect(model.blocks.count == config.numLayers && model.blocks.allSatisfy { $0.motionModule != nil })
    }

    @Test("a missing backbone weight is an error naming the key")
    func missingWeight() throws {
        try Self.withTemporaryFolder { folder in
            let damaged = folder + "/transformer.safetensors"
            try Self.writeEdited(Self.backbonePath, to: damaged) { key, values, shape in
                key == "transformer_blocks.1.attn2.to_k.weight" ? nil : (values, shape)
            }
            let config = try PixArtConfig(contentsOf: Self.configPath)
            #expect {
                _ = try Transformer3D.load(WeightStore(try SafetensorsFile(path: damaged)), config: config)
            } throws: { error in
                guard case let RunnerError.missingWeight(key, _)? = error as? RunnerError else { return false }
                return key == "transformer_blocks.1.attn2.to_k.weight"
            }
        }
    }

    @Test("the 3D model without a motion module says it needs one")
    func needsMotionModule() throws {
        #expect {
            _ = try Self.model3D(motionModule: nil)
        } throws: { error in
            "\(error)".contains("motion module")
        }
    }

    @Test("a motion module of another width is rejected naming the motion module file")
    func motionModuleOfOtherWidth() throws {
        try Self.withTemporaryFolder { folder in
            // Half the channels: what a motion module trained for a narrower transformer looks like.
            let narrow = folder + "/narrow_mm.safetensors"
            try Self.writeEdited(Self.motionModulePath, to: narrow) { _, values, shape in
                let halved = shape.map { $0 == 1 ? 1 : max(1, $0 / 2) }
                return (Array(values.prefix(halved.reduce(1, *))), halved)
            }
            #expect {
                _ = try Self.model3D(motionModule: narrow)
            } throws: { error in
                let text = "\(error)"
                return text.contains(narrow) && text.contains("does not fit") && text.contains("attn_temporal")
            }
        }
    }

    @Test("a motion module for more blocks than the transformer has is rejected naming it")
    func motionModuleWithExtraBlocks() throws {
        try Self.withTemporaryFolder { folder in
            let longer = folder + "/long_mm.safetensors"
            let source = try SafetensorsFile(path: Self.motionModulePath)
            var tensors = [OutputTensor]()
            for key in source.keys {
                let view = try source.tensor(key)
                tensors.append(.floats(view.toFloat32(), name: key, dtype: .f32, shape: view.shape))
                if key.hasPrefix("transformer_blocks.0.") {
                    let extra = key.replacingOccurrences(of: "transformer_blocks.0.", with: "transformer_blocks.9.")
                    tensors.append(.floats(view.toFloat32(), name: extra, dtype: .f32, shape: view.shape))
                }
            }
            _ = try SafetensorsWriter().write(tensors, to: longer)
            #expect {
                _ = try Self.model3D(motionModule: longer)
            } throws: { error in
                let text = "\(error)"
                return text.contains(longer) && text.contains("does not fit") && text.contains("transformer_blocks.9.")
            }
        }
    }

    @Test("motion module weights given to the 2D model are reported, not ignored")
    func unexpectedMotionWeights() throws {
        let config = try PixArtConfig(contentsOf: Self.configPath)
        let store = WeightStore(name: "backbone+mm", layers: [try SafetensorsFile(path: Self.backbonePath),
                                                             try SafetensorsFile(path: Self.motionModulePath)])
        #expect {
            _ = try Transformer3D.load(store, config: config)
        } throws: { error in
            "\(error)".contains("attn_temporal")
        }
    }

    @Test("a latent size the patch or the motion grid does not divide is a clear error")
    func indivisibleLatentSize() throws {
        let model = try Self.model3D()
        let config = model.config
        let caption = Tensor(zeros: [1, 3, try #require(config.captionChannels)])
        let mask = Tensor(repeating: 1, shape: [1, 3])
        let p = config.patchSize, cell = try #require(config.motionModule).blockSize
        for (h, w) in [(p * cell + 1, p * cell), (p * cell, p * cell * 2 + p)] {
            let latents = Tensor(zeros: [1, config.inChannels, 2, h, w])
            #expect {
                _ = try model.forward(latents: latents, timestep: 1, encoderHiddenStates: caption, encoderMask: mask)
            } throws: { error in
                guard case let RunnerError.invalidInput(message)? = error as? RunnerError else { return false }
                return message.contains("\(h)×\(w)") || message.contains("grid")
            }
        }
    }

    @Test("wrong caption width and mask shape are rejected before any work")
    func rejectsMismatchedConditioning() throws {
        let model = try Self.model3D()
        let config = model.config
        let latents = Tensor(zeros: [1, config.inChannels, 1, 4 * config.patchSize, 4 * config.patchSize])
        let channels = try #require(config.captionChannels)
        #expect(throws: RunnerError.self) {
            _ = try model.forward(latents: latents, timestep: 1, encoderHiddenStates: Tensor(zeros: [1, 3, channels + 1]),
                                  encoderMask: Tensor(repeating: 1, shape: [1, 3]))
        }
        #expect(throws: RunnerError.self) {
            _ = try model.forward(latents: latents, timestep: 1, encoderHiddenStates: Tensor(zeros: [1, 3, channels]),
                                  encoderMask: Tensor(repeating: 1, shape: [1, 4]))
        }
    }
}
