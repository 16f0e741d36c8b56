/// What to generate: EasyAnimatePipeline.__call__'s arguments, plus the frame rate the video is saved at.
///
/// `generate`'s defaults live here and nowhere else: an argument passed as nil takes its default below, and the
/// video's size left nil is resolved by `videoSize` from the initial latents or the model. The command line
/// passes its options through unchanged.
public struct GenerationRequest: Sendable {
    /// The defaults `ea-weights generate` documents (README, `ea-weights help generate`): those of EasyAnimate's
    /// `predict_t2v.py` (April 2024), so the same seed gives the same video, except the frame count.
    public enum Defaults {
        /// predict_t2v.py's and the web UI's negative prompt (the pipeline class itself defaults to none).
        public static let negativePrompt = "Strange motion trajectory, a poor composition and deformed video, worst quality, "
            + "normal quality, low quality, low resolution, duplicate and ugly"
        public static let sampler = Sampler.dpmSolverMultistep
        public static let steps = 30
        public static let guidanceScale: Float = 6.0
        public static let seed: UInt64 = 43
        /// When neither the request nor its initial latents give a frame count. predict_t2v.py renders 80; on a
        /// CPU a first look at 16 frames takes a fifth of the time.
        public static let frames = 16
        /// Frames per second of .mp4 and .gif output.
        public static let fps = 12
    }

    public var prompt: String
    public var negativePrompt: String
    public var sampler: Sampler
    public var steps: Int
    public var guidanceScale: Float
    /// Seeds the one PyTorch-compatible CPU generator that draws the initial latents and the samplers' noise.
    public var seed: UInt64
    /// Initial noise [1, latent channels, frames, height/8, width/8] before `init_noise_sigma` scaling;
    /// nil draws it from the generator.
    public var initialLatents: Tensor?
    /// nil: the initial latents' frame count, else `Defaults.frames`.
    public var frames: Int?
    /// Pixels; nil: the initial latents' height × the VAE factor, else the transformer's sample size.
    public var height: Int?
    /// Pixels; nil: the height when that is given, else as `height` from the initial latents or the model.
    public var width: Int?
    public var fps: Int

    public init(prompt: String, negativePrompt: String? = nil, sampler: Sampler? = nil, steps: Int? = nil,
                guidanceScale: Float? = nil, seed: UInt64? = nil, initialLatents: Tensor? = nil,
                frames: Int? = nil, height: Int? = nil, width: Int? = nil, fps: Int? = nil) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt ?? Defaults.negativePrompt
        self.sampler = sampler ?? Defaults.sampler
        self.steps = steps ?? Defaults.steps
        self.guidanceScale = guidanceScale ?? Defaults.guidanceScale
        self.seed = seed ?? Defaults.seed
        self.initialLatents = initialLatents
        self.frames = frames
        self.height = height
        self.width = width
        self.fps = fps ?? Defaults.fps
    }

    /// The video's frame count and size in pixels: as given, else the initial latents' ([1, C, F, h, w] with
    /// `vaeScaleFactor` pixels per latent cell), else `Defaults.frames` and the model's `defaultSize` square.
    public func videoSize(defaultSize: Int, vaeScaleFactor: Int) -> (frames: Int, height: Int, width: Int) {
        // Latents of another rank are refused by the pipeline, which names the shape it needs.
        let latentShape = initialLatents.map(\.shape).flatMap { $0.count == 5 ? $0 : nil }
        let latentHeight = latentShape.map { $0[3] * vaeScaleFactor }
        let latentWidth = latentShape.map { $0[4] * vaeScaleFactor }
        return (frames: frames ?? latentShape?[2] ?? Defaults.frames,
                height: height ?? latentHeight ?? defaultSize,
                width: width ?? height ?? latentWidth ?? defaultSize)
    }
}

/// What the pipeline reports while it works.
public enum PipelineEvent: Sendable {
    case stageStarted(PipelineStage)
    /// `done` of `total` units of the current stage (denoising steps, decoded frames).
    case progress(PipelineStage, done: Int, total: Int)
    case stageFinished(PipelineStage, seconds: Double)
}

public enum PipelineStage: String, Sendable, CaseIterable {
    case loading = "load"
    case textEncoder = "text encoder"
    case denoising = "denoising"
    case vae = "VAE decode"
}
