import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

/// Issue 5, "buffers allocated once per run, not per step": after the first transformer forward, denoising step
/// or VAE frame, every tensor buffer (activations, scratch, decoded weights) comes from the pool.
@Suite("Buffers reused across steps")
struct BufferReuseTests {
    typealias Inputs = (latents: Tensor, timesteps: [Float], caption: Tensor, mask: Tensor)

    static func inputs() throws -> Inputs {
        let golden = try SafetensorsFile(path: Fixtures.golden("transformer3d.safetensors"))
        return (try PixArtTransformerTests.tensor(golden, "hidden_states"),
                try PixArtTransformerTests.tensor(golden, "timestep").storage,
                try PixArtTransformerTests.tensor(golden, "encoder_hidden_states"),
                try PixArtTransformerTests.tensor(golden, "encoder_attention_mask"))
    }

    /// Runs `forward` twice in a private pool; returns both outputs and the pool's counters after each.
    static func twice(_ forward: () throws -> Tensor) rethrows
        -> (first: [Float], second: [Float], afterFirst: BufferPool.Statistics, afterSecond: BufferPool.Statistics)
    {
        let pool = BufferPool(capacity: 1 << 30)
        return try BufferPool.$current.withValue(pool) {
            let first = try forward().storage   // an array copy: the output's buffer goes back to the pool
            let afterFirst = pool.statistics
            let second = try forward().storage
            return (first, second, afterFirst, pool.statistics)
        }
    }

    @Test("a second Transformer3D forward takes every buffer from the pool and gives the same output")
    func transformerForward() throws {
        let model = try PixArtTransformerTests.model3D()
        let x = try Self.inputs()
        let run = try Self.twice {
            try model.forward(latents: x.latents, timesteps: x.timesteps, encoderHiddenStates: x.caption, encoderMask: x.mask)
        }
        #expect(run.afterFirst.freshAllocations > 0)
        #expect(run.afterSecond.freshAllocations == run.afterFirst.freshAllocations)
        #expect(run.afterSecond.reuses - run.afterFirst.reuses >= run.afterFirst.freshAllocations)
        #expect(run.second == run.first)
    }

    @Test("BF16 weights decoded at each use reuse their decode buffers at the next forward")
    func decodedWeightsReuseBuffers() throws {
        try PixArtTransformerTests.withTemporaryFolder { folder in
            let backbone = folder + "/bf16.safetensors", motion = folder + "/mm-bf16.safetensors"
            for (source, target) in [(PixArtTransformerTests.backbonePath, backbone),
                                     (PixArtTransformerTests.motionModulePath, motion)] {
                let file = try SafetensorsFile(path: source)
                _ = try SafetensorsWriter().write(try file.keys.map { key in
                    let view = try file.tensor(key)
                    return .floats(view.toFloat32(), name: key, dtype: .bf16, shape: view.shape)
                }, to: target)
            }
            let config = try PixArtConfig(contentsOf: PixArtTransformerTests.configPath,
                                          easyAnimateYAML: PixArtTransformerTests.yamlPath)
            let model = try Transformer3D.load(config: config, backbone: try SafetensorsFile(path: backbone),
                                               motionModule: try SafetensorsFile(path: motion))
            let x = try Self.inputs()
            let run = try Self.twice {
                try model.forward(latents: x.latents, timesteps: x.timesteps, encoderHiddenStates: x.caption, encoderMask: x.mask)
            }
            #expect(run.afterSecond.freshAllocations == run.afterFirst.freshAllocations)
            #expect(run.second == run.first)
            // Every weight is decoded once per forward, so the F32 model's reuse count is exceeded by at least
            // the number of weights.
            let f32 = try Self.twice {
                try PixArtTransformerTests.model3D().forward(latents: x.latents, timesteps: x.timesteps,
                                                             encoderHiddenStates: x.caption, encoderMask: x.mask)
            }
            let weights = try SafetensorsFile(path: backbone).keys.count + SafetensorsFile(path: motion).keys.count
            let decodeReuses = (run.afterSecond.reuses - run.afterFirst.reuses) - (f32.afterSecond.reuses - f32.afterFirst.reuses)
            #expect(decodeReuses >= weights)
        }
    }

    @Test("denoising steps allocate no tensor buffers once the sampler's history is full", arguments: Sampler.allCases)
    func denoisingLoop(_ sampler: Sampler) throws {
        let model = try PixArtTransformerTests.model3D()
        let x = try Self.inputs()
        let pool = BufferPool(capacity: 1 << 30)
        var counters: [BufferPool.Statistics] = []
        try BufferPool.$current.withValue(pool) {
            var scheduler = try sampler.makeScheduler(config: try SchedulerTests.config())
            try scheduler.setTimesteps(5)
            var generator = TorchGenerator(seed: 7)
            let loop = DenoisingLoop(guidanceScale: 4.5, latentChannels: model.config.inChannels)
            let latents = x.latents.slice(first: 0..<1)   // one item; guidance doubles it
            let caption = x.caption, mask = x.mask
            _ = try loop.run(latents: latents, scheduler: &scheduler, generator: &generator, model: { input, t in
                try model.forward(latents: input, timestep: Float(t), encoderHiddenStates: caption, encoderMask: mask)
            }, onStep: { _, _ in counters.append(pool.statistics) })
        }
        #expect(counters.count >= 5)
        #expect(counters[0].freshAllocations > 0)
        // Samplers without history (Euler, Euler A, DDIM) take nothing after the first step. DPM++ keeps one more
        // past model output from the second step on, whose second-order update also holds one more intermediate
        // than the first-order first step; PNDM keeps up to four past outputs, one buffer each while they fill.
        let history = [Sampler.dpmSolverMultistep: 2, .pndm: 4][sampler] ?? 0
        let later = counters.last!.freshAllocations - counters[0].freshAllocations
        #expect(later <= history, "\(sampler): \(later) buffers after the first step")
        #expect(counters[counters.count - 1].freshAllocations == counters[counters.count - 2].freshAllocations)
    }

    @Test("the VAE decodes a second frame without new buffers")
    func vaeFrames() throws {
        let vae = try VAEDecoder.load(folder: Fixtures.path("tiny-pixart/vae"))
        let golden = try SafetensorsFile(path: Fixtures.golden("vae_decode.safetensors"))
        let view = try golden.tensor("latents")
        let latents = Tensor(shape: view.shape, storage: view.toFloat32())   // [2, C, h, w]: two frames
        let (c, h, w) = (latents.shape[1], latents.shape[2], latents.shape[3])
        let video = Kernels.permute(latents, [1, 0, 2, 3]).reshaped([1, c, 2, h, w])
        let pool = BufferPool(capacity: 1 << 30)
        var counters: [BufferPool.Statistics] = []
        _ = try BufferPool.$current.withValue(pool) {
            try vae.decodeVideo(video) { _, _ in counters.append(pool.statistics) }
        }
        #expect(counters.count == 2)
        #expect(counters[1].freshAllocations == counters[0].freshAllocations)
        #expect(counters[1].reuses > counters[0].reuses)
    }
}
