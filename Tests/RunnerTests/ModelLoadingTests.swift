import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport
import WeightOps

/// Issue 9, "one loader per model": T5Encoder, Transformer3D and VAEDecoder are built only by their `load`
/// functions, which bind every weight by key and end with the unused-key check.
@Suite("Model loading")
struct ModelLoadingTests {
    static let fixture = ModelPaths(pixart: Fixtures.path("tiny-pixart"), motionModule: Fixtures.path("motion_module.safetensors"),
                                    config: Fixtures.path("easyanimate_video_motion_module_v1.yaml"))

    /// The weights of `path` as owned tensors, with `edit` applied (to add, drop or reshape one).
    static func store(_ path: String, _ edit: (inout [String: Tensor]) -> Void) throws -> WeightStore {
        let dict = try openStateDict(path: path)
        var tensors: [String: Tensor] = [:]
        for key in dict.keys {
            let view = try dict.tensor(key)
            tensors[key] = Tensor(shape: view.shape, storage: view.toFloat32())
        }
        edit(&tensors)
        return WeightStore(name: path, layers: [], replacements: tensors)
    }

    static func isUnexpected(_ error: any Error, key: String) -> Bool {
        guard case let RunnerError.unexpectedWeights(_, keys)? = error as? RunnerError else { return false }
        return keys == [key] && "\(error)".contains(key)
    }

    @Test("the text encoder's and the transformer's loaders reject a weight the model does not use, naming it")
    func unusedWeightIsAnError() throws {
        let textEncoder = Fixtures.path("tiny-pixart/text_encoder")
        let extraT5 = "encoder.block.9.layer.0.layer_norm.weight"
        let t5 = try Self.store(textEncoder) { $0[extraT5] = Tensor(zeros: [1]) }
        #expect {
            _ = try T5Encoder.load(t5, config: try T5Config(path: textEncoder))
        } throws: { Self.isUnexpected($0, key: extraT5) }

        let transformer = Fixtures.path("tiny-pixart/transformer")
        let extraDiT = "pos_embed.extra.weight"
        let dit = try Self.store(transformer) { $0[extraDiT] = Tensor(zeros: [1]) }
        #expect {
            _ = try Transformer3D.load(dit, config: try PixArtConfig(contentsOf: transformer + "/config.json"))
        } throws: { Self.isUnexpected($0, key: extraDiT) }
    }

    @Test("a weight of the wrong shape is an error naming its key and both shapes")
    func misshapenWeightNamesBothShapes() throws {
        let transformer = Fixtures.path("tiny-pixart/transformer")
        let config = try PixArtConfig(contentsOf: transformer + "/config.json")
        let store = try Self.store(transformer) { $0["scale_shift_table"] = Tensor(zeros: [3, config.width]) }
        #expect {
            _ = try Transformer3D.load(store, config: config)
        } throws: { error in
            guard case let RunnerError.shapeMismatch(key, _, expected, actual)? = error as? RunnerError else { return false }
            let text = "\(error)"
            return key == "scale_shift_table" && expected == [2, config.width] && actual == [3, config.width]
                && text.contains("scale_shift_table") && text.contains("\(expected)") && text.contains("\(actual)")
        }
    }

    @Test("the pipeline loads a personalized backbone with a LoRA merged in memory through the same loaders")
    func pipelineWithPersonalizedBackboneAndLoRA() throws {
        var paths = Self.fixture
        paths.transformer = Fixtures.path("personalized.safetensors")
        let lora = LoRASpec(path: Fixtures.path("lora.safetensors"), multiplier: 0.55)
        let pipeline = try EasyAnimatePipeline(paths: paths, loras: [lora])
        let report = try #require(pipeline.loraReport)
        #expect(report.applied == report.total && report.total > 0)
        #expect(pipeline.transformer.blocks.count == pipeline.transformer.config.numLayers)
        #expect(pipeline.transformer.blocks.allSatisfy { $0.motionModule != nil })
        #expect(pipeline.textEncoder.blocks.count == pipeline.textEncoder.config.numLayers)
        #expect(!pipeline.vae.ignoredEncoderKeys.isEmpty)
    }

    @Test("generate's defaults and the video size are resolved by the request")
    func requestDefaults() {
        let plain = GenerationRequest(prompt: "a fox")
        // predict_t2v.py's negative prompt, as its web UI shows it.
        #expect(plain.negativePrompt == "Strange motion trajectory, a poor composition and deformed video, worst quality, normal quality, low quality, low resolution, duplicate and ugly")
        #expect(GenerationRequest(prompt: "a fox", negativePrompt: "").negativePrompt == "")
        #expect(plain.sampler == .dpmSolverMultistep && plain.steps == 30)
        #expect(plain.guidanceScale == 6.0 && plain.seed == 43 && plain.fps == 12)
        #expect(plain.videoSize(defaultSize: 128, vaeScaleFactor: 8) == (frames: 16, height: 128, width: 128))

        let latents = Tensor(zeros: [1, 4, 3, 8, 12])
        let fromLatents = GenerationRequest(prompt: "a fox", initialLatents: latents)
        #expect(fromLatents.videoSize(defaultSize: 128, vaeScaleFactor: 8) == (frames: 3, height: 64, width: 96))
        // A given height also sets the width, before the latents do (as `--height` alone always has).
        let tall = GenerationRequest(prompt: "a fox", initialLatents: latents, frames: 5, height: 32)
        #expect(tall.videoSize(defaultSize: 128, vaeScaleFactor: 8) == (frames: 5, height: 32, width: 32))
        let given = GenerationRequest(prompt: "a fox", sampler: .ddim, steps: 2, guidanceScale: 1, seed: 7,
                                      frames: 2, height: 64, width: 32, fps: 8)
        #expect(given.sampler == .ddim && given.steps == 2 && given.guidanceScale == 1 && given.seed == 7 && given.fps == 8)
        #expect(given.videoSize(defaultSize: 128, vaeScaleFactor: 8) == (frames: 2, height: 64, width: 32))
    }

    @Test("the denoising loop stops before the model runs when cancelled")
    func loopStopsWhenCancelled() throws {
        var scheduler = try Sampler.euler.makeScheduler(config: SchedulerConfig(contentsOf: Self.fixture.config ?? ""))
        try scheduler.setTimesteps(3)
        var generator = TorchGenerator(seed: 1)
        var calls = 0
        let loop = DenoisingLoop(guidanceScale: 1, latentChannels: 4)
        #expect {
            _ = try loop.run(latents: Tensor(zeros: [1, 4, 1, 2, 2]), scheduler: &scheduler, generator: &generator,
                             model: { input, _ in calls += 1; return input }, isCancelled: { true })
        } throws: { error in
            guard case RunnerError.cancelled(let stage)? = error as? RunnerError else { return false }
            return stage == "denoising step 1/3"
        }
        #expect(calls == 0)
    }

    @Test("a cancellation while the VAE decodes stops the pipeline before it returns the video")
    func pipelineStopsDuringVAE() throws {
        let pipeline = try EasyAnimatePipeline(paths: Self.fixture)
        var decodedFrames = 0
        let request = GenerationRequest(prompt: "a fox", steps: 1, frames: 2, height: 64, width: 64)
        // Ctrl-C arrives once the first frame is decoded: the second frame is the last one decoded.
        #expect {
            _ = try pipeline.generate(request, isCancelled: { decodedFrames >= 1 }) { event in
                if case .progress(.vae, let done, _) = event { decodedFrames = done }
            }
        } throws: { error in
            guard case RunnerError.cancelled(let stage)? = error as? RunnerError else { return false }
            return stage == "the VAE decode"
        }
        #expect(decodedFrames == 1)
    }
}
