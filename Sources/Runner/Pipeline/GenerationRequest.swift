/// What to generate: EasyAnimatePipeline.__call__'s arguments.
public struct GenerationRequest: Sendable {
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
    public var frames: Int
    public var height: Int
    public var width: Int

    public init(prompt: String, negativePrompt: String = "", sampler: Sampler = .dpmSolverMultistep, steps: Int = 30,
                guidanceScale: Float = 6.0, seed: UInt64 = 43, initialLatents: Tensor? = nil,
                frames: Int, height: Int, width: Int) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.sampler = sampler
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.seed = seed
        self.initialLatents = initialLatents
        self.frames = frames
        self.height = height
        self.width = width
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
