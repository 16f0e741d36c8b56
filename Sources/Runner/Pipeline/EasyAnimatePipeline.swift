import Foundation
import Safetensors
import WeightOps

/// EasyAnimate v1's text-to-video pipeline (easyanimate/pipeline/pipeline_easyanimate.py, April 2024) on the CPU:
/// T5 prompt encoding (negative prompt first for classifier-free guidance), the 3D transformer with its motion
/// module under one of five samplers, the learned-sigma half dropped, the VAE decoding frame by frame, and
/// `(video / 2 + 0.5).clamp(0, 1)`.
public final class EasyAnimatePipeline {
    public let paths: ModelPaths
    public let tokenizer: T5Tokenizer
    public let textEncoder: T5Encoder
    public let transformer: Transformer3D
    public let vae: VAEDecoder
    public let schedulerConfig: SchedulerConfig
    /// What `--lora` merged, when LoRAs were given.
    public let loraReport: LoRAMergeReport?
    /// Pixels per latent cell: 2^(VAE levels − 1).
    public let vaeScaleFactor: Int
    /// How the transformer's Linear layers multiply.
    public let compute: ComputePrecision
    /// How T5's Linear layers multiply (the VAE always computes in float32).
    public let textEncoderCompute: ComputePrecision

    /// Loads every component through its model's loader (`T5Encoder.load`, `Transformer3D.load`,
    /// `VAEDecoder.load`), which checks OpenBLAS first and that each weight file holds exactly what the model binds.
    public init(paths: ModelPaths, loras: [LoRASpec] = [], compute: ComputePrecision = .f32,
                textEncoderCompute: ComputePrecision = .f32) throws {
        try ModelLocator.validate(paths)
        self.paths = paths
        self.compute = compute
        self.textEncoderCompute = textEncoderCompute
        let folder = URL(fileURLWithPath: paths.pixart)
        func component(_ name: String) -> String { folder.appendingPathComponent(name).path }

        let config = try paths.config.map { try EasyAnimateConfig(path: $0) } ?? EasyAnimateConfig.v1
        schedulerConfig = try SchedulerConfig(easyAnimateYAML: config.yaml, source: config.source)
        let transformerConfig = try Self.transformerConfig(folder: component("transformer"), easyAnimate: config)

        // The 3D state dict as EasyAnimate loads it: diffusers weights, then --transformer, then the motion module.
        var layers: [any StateDict] = [try openStateDict(path: component("transformer"))]
        if let file = paths.transformer { layers.append(try openStateDict(path: file)) }
        if let file = paths.motionModule { layers.append(try openStateDict(path: file)) }
        let transformerDict = LayeredStateDict(layers)
        let textEncoderDict = try openStateDict(path: component("text_encoder"))

        var merged = InMemoryLoRA.Merged(report: LoRAMergeReport())
        if !loras.isEmpty {
            merged = try InMemoryLoRA.merge(loras, transformer: transformerDict, textEncoder: textEncoderDict)
            loraReport = merged.report
        } else {
            loraReport = nil
        }

        tokenizer = try T5Tokenizer(directory: component("tokenizer"))
        // The LoRA-merged tensors, when there are any, are the top layer of each store.
        let textStore = WeightStore(name: component("text_encoder"),
                                    layers: [textEncoderDict] + (merged.textEncoder.map { [$0] } ?? []))
        textEncoder = try T5Encoder.load(textStore, config: T5Config(path: component("text_encoder")), compute: textEncoderCompute)
        let transformerStore = WeightStore(name: transformerDict.path, layers: layers + (merged.transformer.map { [$0] } ?? []))
        transformer = try Transformer3D.load(transformerStore, config: transformerConfig, motionModuleSource: paths.motionModule,
                                             compute: compute)
        vae = try VAEDecoder.load(folder: component("vae"))
        vaeScaleFactor = vae.config.spatialScale
    }

    static func transformerConfig(folder: String, easyAnimate: EasyAnimateConfig) throws -> PixArtConfig {
        let path = (folder as NSString).appendingPathComponent("config.json")
        let json = try ConfigFile.json(at: path, what: "the transformer config")
        let kwargs = try PixArtConfig.transformerAdditionalKwargs(yaml: easyAnimate.yaml, source: easyAnimate.source)
        return try PixArtConfig(json: json, path: path, additionalKwargs: kwargs, kwargsSource: easyAnimate.source)
    }

    /// The pipeline's default size: the transformer's `sample_size` latent cells.
    public var defaultSize: Int { transformer.config.sampleSize * vaeScaleFactor }

    /// Height and width must divide by this: VAE factor × patch size × the motion module's grid cell.
    public var sizeMultiple: Int { Self.sizeMultiple(vaeScaleFactor: vaeScaleFactor, transformer: transformer.config) }

    /// `defaultSize` and `sizeMultiple` of a model set not loaded, from its config files alone (the web UI checks
    /// a request's size with it before the job runs).
    public static func sizeRule(paths: ModelPaths) throws -> (defaultSize: Int, multiple: Int) {
        let folder = URL(fileURLWithPath: paths.pixart)
        let config = try paths.config.map { try EasyAnimateConfig(path: $0) } ?? EasyAnimateConfig.v1
        let transformer = try transformerConfig(folder: folder.appendingPathComponent("transformer").path, easyAnimate: config)
        let vae = try VAEConfig(contentsOf: folder.appendingPathComponent("vae/config.json").path)
        return (transformer.sampleSize * vae.spatialScale, sizeMultiple(vaeScaleFactor: vae.spatialScale, transformer: transformer))
    }

    private static func sizeMultiple(vaeScaleFactor: Int, transformer: PixArtConfig) -> Int {
        vaeScaleFactor * transformer.patchSize * (transformer.motionModule?.blockSize ?? 1)
    }

    /// The latent shape of a request: [1, C, F, H/8, W/8], with the size `request.videoSize` resolves for this model.
    public func latentShape(_ request: GenerationRequest) throws -> [Int] {
        let (frames, height, width) = request.videoSize(defaultSize: defaultSize, vaeScaleFactor: vaeScaleFactor)
        let multiple = sizeMultiple
        guard height > 0, width > 0, height % multiple == 0, width % multiple == 0 else {
            let grid = transformer.config.motionModule.map { " × motion-module grid \($0.blockSize)" } ?? ""
            throw RunnerError.invalidInput(
                "height and width must be positive multiples of \(multiple) (VAE factor \(vaeScaleFactor) × patch size \(transformer.config.patchSize)\(grid)); got \(height)x\(width)")
        }
        guard frames > 0 else { throw RunnerError.invalidInput("frames must be at least 1; got \(frames)") }
        return [1, transformer.config.inChannels, frames, height / vaeScaleFactor, width / vaeScaleFactor]
    }

    /// Generates a video [1, 3, F, H, W] with values in [0, 1]. `isCancelled` (Ctrl-C) is polled before each
    /// denoising step and between decoded frames; when it answers yes this throws `RunnerError.cancelled`.
    public func generate(_ request: GenerationRequest, isCancelled: () -> Bool = { false },
                         onEvent: (PipelineEvent) -> Void = { _ in }) throws -> Tensor {
        let shape = try latentShape(request)
        if let latents = request.initialLatents, latents.shape != shape {
            throw RunnerError.invalidInput("initial latents have shape \(latents.shape); this request needs \(shape)")
        }
        var scheduler = try request.sampler.makeScheduler(config: schedulerConfig)
        try scheduler.setTimesteps(request.steps)
        var generator = TorchGenerator(seed: request.seed)

        // Prompt embeddings: [negative; positive] when guidance is on, as the pipeline concatenates them.
        let loop = DenoisingLoop(guidanceScale: request.guidanceScale, latentChannels: transformer.config.inChannels)
        let (embeddings, mask) = try timed(.textEncoder, onEvent) { () -> (Tensor, Tensor) in
            let prompts = loop.usesGuidance ? [request.negativePrompt, request.prompt] : [request.prompt]
            let encodings = try prompts.map { try tokenizer.encode($0) }
            let hidden = try textEncoder(encodings)
            let mask = Tensor(shape: [encodings.count, encodings[0].mask.count],
                              storage: encodings.flatMap { $0.mask.map(Float.init) })
            return (hidden, mask)
        }
        // Each stage reuses its own buffer sizes step after step; idle buffers of a finished stage are freed.
        let pool = BufferPool.current
        pool.drain()

        var latents = try request.initialLatents ?? generator.randn(shape: shape)
        Kernels.scale(&latents, by: scheduler.initNoiseSigma)
        latents = try timed(.denoising, onEvent) {
            try loop.run(latents: latents, scheduler: &scheduler, generator: &generator, model: { input, t in
                try transformer.forward(latents: input, timestep: Float(t), encoderHiddenStates: embeddings, encoderMask: mask)
            }, isCancelled: isCancelled, onStep: { onEvent(.progress(.denoising, done: $0, total: $1)) })
        }
        pool.drain()
        try DenoisingLoop.stopIfCancelled(isCancelled, during: "the VAE decode")
        defer { pool.drain() }
        return try withoutActuallyEscaping(onEvent) { onEvent in
            try timed(.vae, onEvent) {
                try vae.decodeVideo(latents, progress: { done, total in
                    try DenoisingLoop.stopIfCancelled(isCancelled, during: "the VAE decode")
                    onEvent(.progress(.vae, done: done, total: total))
                })
            }
        }
    }

    private func timed<R>(_ stage: PipelineStage, _ onEvent: (PipelineEvent) -> Void, _ body: () throws -> R) rethrows -> R {
        onEvent(.stageStarted(stage))
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        onEvent(.stageFinished(stage, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        return result
    }
}
