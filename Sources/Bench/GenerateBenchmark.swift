import Foundation
import Runner
import Safetensors
import WeightOps

/// The timed whole run of `ea-weights bench generate`: what `EasyAnimatePipeline.generate` does for one video, on
/// the real-size random weights of the three stage benches (BF16 T5-XXL shards or their `convert --to int8`, the
/// F32 or `convert --to int8` transformer with its motion module, the F32 SD VAE), all loaded (mapped) at once
/// as generate loads them: T5 encodes the prompt and the negative prompt, the transformer runs `steps` DPM++
/// steps of classifier-free guidance (the yaml's scheduler), the VAE decodes every frame. Only tokenization (microseconds, and the bench
/// has no 32k-piece vocabulary to ship) is replaced by fixed token ids of the pipeline's padded length.
public enum GenerateBenchmark {
    public struct Folders: Sendable {
        public var t5: String
        public var transformer: String
        public var vae: String
        public init(t5: String, transformer: String, vae: String) {
            self.t5 = t5
            self.transformer = transformer
            self.vae = vae
        }
    }

    /// One stage inside the run (load, t5, denoising, vae) and its wall seconds.
    public struct Part: Sendable, Encodable {
        public var name: String
        public var seconds: Double
    }

    public struct Result: Sendable {
        public var timing: StageTiming
        public var parts: [Part]
    }

    /// The run: load, encode, `steps` denoising steps, decode `frames` frames of `height` × `width`; the
    /// transformer's Linear layers in `compute`, T5's in `textEncoderCompute`.
    public static func run(_ folders: Folders, frames: Int, height: Int, width: Int, steps: Int,
                           compute: ComputePrecision = .f32, textEncoderCompute: ComputePrecision = .f32) throws -> Result {
        let paths = TransformerBenchmark.Paths(folder: folders.transformer)
        let files = try TransformerBenchmark.weights(folder: folders.transformer, compute: compute)
        let t5Folder = try T5Benchmark.weights(folder: folders.t5, compute: textEncoderCompute)
        let config = try PixArtConfig(contentsOf: (paths.transformer as NSString).appendingPathComponent("config.json"),
                                      easyAnimateYAML: paths.yaml)
        let t5Config = try T5Config(path: (folders.t5 as NSString).appendingPathComponent("config.json"))
        let vaeConfig = try VAEConfig(contentsOf: (folders.vae as NSString).appendingPathComponent("config.json"))
        let scale = vaeConfig.spatialScale
        let tokens = TransformerBenchmark.captionTokens
        let flops = T5Benchmark.flops(t5Config, batch: 2, tokens: tokens)
            + Double(steps) * TransformerBenchmark.flops(TransformerBenchmark.Config(config), batch: 2, frames: frames,
                                                         height: height / scale, width: width / scale)
            + Double(frames) * VAEBenchmark.flops(vaeConfig, height: height, width: width)

        var parts: [Part] = []
        func stage<R>(_ name: String, _ body: () throws -> R) rethrows -> R {
            let start = Date()
            defer { parts.append(Part(name: name, seconds: Date().timeIntervalSince(start))) }
            return try body()
        }
        let pool = BufferPool.current
        let timing = try StageTiming.measure(flops: flops) {
            let (encoder, transformer, vae) = try stage("load") {
                (try T5Encoder.load(directory: t5Folder, compute: textEncoderCompute),
                 try Transformer3D.load(config: config, backbone: try openStateDict(path: files.transformer),
                                        motionModule: try openStateDict(path: files.motionModule), compute: compute),
                 try VAEDecoder.load(folder: folders.vae))
            }
            // A prompt and the negative prompt, each a few words and </s> padded to the pipeline's 120 tokens.
            let words = 12
            let ids: [[Int32]] = (0..<2).map { row in
                (0..<tokens).map { i in i < words ? Int32((i &* 7919 &+ row &* 104_729) % (t5Config.vocabSize - 2) + 2) : (i == words ? 1 : 0) }
            }
            let mask: [[Int32]] = (0..<2).map { _ in (0..<tokens).map { $0 <= words ? 1 : 0 } }
            let embeddings = try stage("t5") { try encoder(ids: ids, mask: mask) }
            pool.drain()
            let encoderMask = Tensor(shape: [2, tokens], storage: mask.flatMap { $0.map(Float.init) })

            var scheduler = try Sampler.dpmSolverMultistep.makeScheduler(
                config: try SchedulerConfig(easyAnimateYAML: EasyAnimateConfig.v1.yaml, source: EasyAnimateConfig.v1.source))
            try scheduler.setTimesteps(steps)
            var generator = TorchGenerator(seed: 42)
            let loop = DenoisingLoop(guidanceScale: GenerationRequest.Defaults.guidanceScale, latentChannels: config.inChannels)
            var latents = try generator.randn(shape: [1, config.inChannels, frames, height / scale, width / scale])
            Kernels.scale(&latents, by: scheduler.initNoiseSigma)
            latents = try stage("denoising") {
                try loop.run(latents: latents, scheduler: &scheduler, generator: &generator, model: { input, t in
                    try transformer.forward(latents: input, timestep: Float(t), encoderHiddenStates: embeddings,
                                            encoderMask: encoderMask)
                })
            }
            pool.drain()
            let video = try stage("vae") { try vae.decodeVideo(latents) }
            pool.drain()
            guard video.withUnsafeBufferPointer({ $0.allSatisfy(\.isFinite) }) else {
                throw BenchError.failed(path: folders.transformer, reason: "the generated video is not finite")
            }
        }
        return Result(timing: timing, parts: parts)
    }
}
