/// The sampling loop of EasyAnimate's `EasyAnimatePipeline.__call__` (easyanimate/pipeline/pipeline_easyanimate.py,
/// April 2024): classifier-free guidance on a doubled batch (negative prompt first), the learned-sigma half of the
/// transformer's output dropped, one scheduler step per timestep.
public struct DenoisingLoop {
    public var guidanceScale: Float
    /// Latent channels; the model predicts `2 × channels` when it learns sigma.
    public var latentChannels: Int

    public init(guidanceScale: Float, latentChannels: Int) {
        self.guidanceScale = guidanceScale
        self.latentChannels = latentChannels
    }

    /// Guidance is on when the scale is above 1, as in diffusers' pipelines.
    public var usesGuidance: Bool { guidanceScale > 1 }

    /// Runs every timestep of `scheduler` (already `setTimesteps`) from `latents` (already × init_noise_sigma).
    /// `model(input, t)` receives the doubled batch [uncond; cond] when guidance is on and returns the raw
    /// transformer output [B, outChannels, F, h, w]. `onStep(i, count)` reports progress. `isCancelled` is
    /// polled before each step; when it answers yes the loop throws `RunnerError.cancelled`.
    public func run(
        latents initial: Tensor,
        scheduler: inout any Scheduler,
        generator: inout TorchGenerator,
        model: (Tensor, Double) throws -> Tensor,
        isCancelled: () -> Bool = { false },
        onStep: (Int, Int) -> Void = { _, _ in }
    ) throws -> Tensor {
        // A buffer of the loop's own: with `initial` still held by the caller, sharing it would make the first
        // step hold one latent buffer fewer than the next ones, which would then allocate one.
        var latents = initial.copy()
        let timesteps = scheduler.timesteps
        for (i, t) in timesteps.enumerated() {
            try Self.stopIfCancelled(isCancelled, during: "denoising step \(i + 1)/\(timesteps.count)")
            let batchInput = usesGuidance ? Tensor.concatenate([latents, latents]) : latents
            let input = try scheduler.scaleModelInput(batchInput, timestep: t)
            let output = try model(input, t)
            var noise = usesGuidance ? guided(output) : output
            noise = dropLearnedSigma(noise)
            latents = try scheduler.step(modelOutput: noise, timestep: t, sample: latents, generator: &generator)
            onStep(i + 1, timesteps.count)
        }
        return latents
    }

    /// The one place a generation is cancelled (Ctrl-C): before each denoising step here, and between the
    /// frames the VAE decodes after the loop (`EasyAnimatePipeline.generate`).
    static func stopIfCancelled(_ isCancelled: () -> Bool, during stage: @autoclosure () -> String) throws {
        if isCancelled() { throw RunnerError.cancelled(stage: stage()) }
    }

    /// uncond + scale · (cond − uncond) over the two halves of the batch.
    func guided(_ output: Tensor) -> Tensor {
        let half = output.shape[0] / 2
        var uncond = output.slice(first: 0..<half)
        let cond = output.slice(first: half..<(2 * half))
        var difference = cond
        Kernels.addScaled(&difference, uncond, scale: -1)
        Kernels.addScaled(&uncond, difference, scale: guidanceScale)
        return uncond
    }

    /// `noise_pred.chunk(2, dim=1)[0]` when the model predicts twice the latent channels.
    func dropLearnedSigma(_ noise: Tensor) -> Tensor {
        let channels = noise.shape[1]
        guard channels == 2 * latentChannels else { return noise }
        let batch = noise.shape[0]
        let inner = noise.count / (batch * channels)
        var shape = noise.shape
        shape[1] = latentChannels
        var out = Tensor(uninitialized: shape)
        let kept = latentChannels * inner
        noise.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                for b in 0..<batch where kept > 0 {
                    (destination.baseAddress! + b * kept).update(from: source.baseAddress! + b * channels * inner, count: kept)
                }
            }
        }
        return out
    }
}
