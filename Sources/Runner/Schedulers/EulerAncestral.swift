/// This implementation matches diffusers 0.27.0 `EulerAncestralDiscreteScheduler` (the `Euler A` sampler):
/// the same float32 timesteps and interpolated sigmas as Euler, an Euler step to `sigma_down`, then
/// `randn_tensor(model_output.shape, generator=generator) * sigma_up` added, all in float32.
///
/// Supported options: `num_train_timesteps`, `beta_start`, `beta_end`, `beta_schedule`, `trained_betas`,
/// `prediction_type` (epsilon, v_prediction), `timestep_spacing` (default linspace), `steps_offset`,
/// `rescale_betas_zero_snr`.
public struct EulerAncestralDiscreteScheduler: Scheduler {
    static let name = "Euler A"

    private let noise: TrainingNoiseSchedule
    private let predictionType: String
    private let spacing: TimestepSpacing
    private let stepsOffset: Int

    public private(set) var timesteps: [Double] = []
    /// Per timestep, plus a final 0.
    private(set) var sigmas: [Float] = []
    private var stepIndex: Int?

    public init(config: SchedulerConfig) throws {
        noise = try TrainingNoiseSchedule.forSigmas(config)
        predictionType = try SchedulerChecks.prediction(config, allowed: ["epsilon", "v_prediction"], sampler: Self.name)
        spacing = try TimestepSpacing(config, default: .linspace)
        stepsOffset = try config.int("steps_offset", default: 0)
    }

    public var initNoiseSigma: Float {
        EulerDiscreteScheduler.initNoiseSigma(sigmas: sigmas, noise: noise, spacing: spacing)
    }

    public mutating func setTimesteps(_ numInferenceSteps: Int) throws {
        try SchedulerChecks.requireStepCount(numInferenceSteps, sampler: Self.name)
        (timesteps, sigmas) = EulerDiscreteScheduler.schedule(
            numInferenceSteps, noise: noise, spacing: spacing, stepsOffset: stepsOffset)
        stepIndex = nil
    }

    public mutating func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        let index = try currentIndex(timestep)
        let sigma = sigmas[index]
        return TorchOps.div(sample, (sigma * sigma + 1).squareRoot())
    }

    public mutating func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: inout TorchGenerator) throws -> Tensor {
        try SchedulerChecks.requireSameCount(modelOutput, sample, sampler: Self.name)
        let index = try currentIndex(timestep)
        let sigma = sigmas[index]

        let predictedOriginal: Tensor
        if predictionType == "epsilon" {
            predictedOriginal = TorchOps.sub(sample, TorchOps.mul(sigma, modelOutput))
        } else {
            let c = sigma * sigma + 1
            predictedOriginal = TorchOps.add(TorchOps.mul(-sigma / c.squareRoot(), modelOutput), TorchOps.div(sample, c))
        }
        let sigmaFrom = sigma, sigmaTo = sigmas[index + 1]
        let fromSquared = sigmaFrom * sigmaFrom, toSquared = sigmaTo * sigmaTo
        let sigmaUp = (toSquared * (fromSquared - toSquared) / fromSquared).squareRoot()
        let sigmaDown = (toSquared - sigmaUp * sigmaUp).squareRoot()

        let derivative = TorchOps.div(TorchOps.sub(sample, predictedOriginal), sigma)
        let dt = sigmaDown - sigma
        let previous = TorchOps.add(sample, TorchOps.mul(dt, derivative))
        let noise = try generator.randn(shape: modelOutput.shape)
        stepIndex = index + 1
        return TorchOps.add(previous, TorchOps.mul(sigmaUp, noise))
    }

    private mutating func currentIndex(_ timestep: Double) throws -> Int {
        try SchedulerChecks.requireTimesteps(timesteps, sampler: Self.name)
        if stepIndex == nil { stepIndex = try SchedulerChecks.stepIndex(of: timestep, in: timesteps, sampler: Self.name) }
        guard let index = stepIndex, index < timesteps.count else {
            throw RunnerError.invalidInput("\(Self.name): step called more times than there are timesteps (\(timesteps.count))")
        }
        return index
    }
}
