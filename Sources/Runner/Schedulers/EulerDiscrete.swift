/// This implementation matches diffusers 0.27.0 `EulerDiscreteScheduler` (the `Euler` sampler): float32
/// timesteps from `np.linspace`/`np.arange`, sigmas by `np.interp` over the training sigmas in float64 then
/// stored float32, and the Euler step in float32 tensor arithmetic with `s_churn = 0`.
///
/// Supported options: `num_train_timesteps`, `beta_start`, `beta_end`, `beta_schedule`, `trained_betas`,
/// `prediction_type` (epsilon, v_prediction, sample), `timestep_spacing` (default linspace), `steps_offset`,
/// `rescale_betas_zero_snr`. Karras sigmas, log-linear interpolation and continuous timesteps are rejected.
public struct EulerDiscreteScheduler: Scheduler {
    static let name = "Euler"

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
        predictionType = try SchedulerChecks.prediction(config, allowed: ["epsilon", "v_prediction", "sample", "original_sample"], sampler: Self.name)
        spacing = try TimestepSpacing(config, default: .linspace)
        stepsOffset = try config.int("steps_offset", default: 0)
        try config.require("interpolation_type", isDefault: try config.string("interpolation_type", default: "linear") == "linear", sampler: Self.name)
        try config.require("use_karras_sigmas", isDefault: !(try config.bool("use_karras_sigmas", default: false)), sampler: Self.name)
        let continuous = try config.string("timestep_type", default: "discrete") == "continuous"
        try config.require("timestep_type", isDefault: !(continuous && predictionType == "v_prediction"), sampler: Self.name)
    }

    /// The maximum sigma (the first one with linspace/trailing spacing), or `sqrt(max² + 1)` with leading spacing.
    public var initNoiseSigma: Float {
        Self.initNoiseSigma(sigmas: sigmas, noise: noise, spacing: spacing)
    }

    /// Shared with Euler A, which draws its sigmas the same way.
    static func initNoiseSigma(sigmas: [Float], noise: TrainingNoiseSchedule, spacing: TimestepSpacing) -> Float {
        let maxSigma = sigmas.isEmpty ? noise.sigmas.max() ?? 0 : sigmas.max() ?? 0
        return spacing == .leading ? (maxSigma * maxSigma + 1).squareRoot() : maxSigma
    }

    public mutating func setTimesteps(_ numInferenceSteps: Int) throws {
        try SchedulerChecks.requireStepCount(numInferenceSteps, sampler: Self.name)
        (timesteps, sigmas) = Self.schedule(numInferenceSteps, noise: noise, spacing: spacing, stepsOffset: stepsOffset)
        stepIndex = nil
    }

    /// The float32 timesteps and interpolated sigmas (plus a final 0) of Euler's and Euler A's `set_timesteps`.
    static func schedule(_ count: Int, noise: TrainingNoiseSchedule, spacing: TimestepSpacing, stepsOffset: Int)
        -> (timesteps: [Double], sigmas: [Float])
    {
        let trainSteps = noise.count
        let steps: [Float]
        switch spacing {
        case .linspace:
            steps = NumPy.linspace(0, Double(trainSteps - 1), count: count).reversed().map { Float($0) }
        case .leading:
            let ratio = trainSteps / count
            steps = (0..<count).reversed().map { Float($0 * ratio) + Float(stepsOffset) }
        case .trailing:
            let ratio = Double(trainSteps) / Double(count)
            steps = NumPy.arange(Double(trainSteps), 0, step: -ratio).map { Float(NumPy.round($0)) - 1 }
        }
        let trainingSigmas = noise.sigmas
        let sigmas = steps.map { Float(numpyInterpolate(Double($0), trainingSigmas)) } + [0]
        return (steps.map { Double($0) }, sigmas)
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
        // 0.27 draws `randn_tensor(model_output.shape)` on every step even though s_churn = 0 discards it;
        // drawing it keeps a shared generator in step with diffusers.
        _ = try generator.randn(shape: modelOutput.shape)
        let sigmaHat = sigma   // sigma * (gamma + 1) with gamma = 0

        let predictedOriginal: Tensor
        switch predictionType {
        case "epsilon":
            predictedOriginal = TorchOps.sub(sample, TorchOps.mul(sigmaHat, modelOutput))
        case "v_prediction":
            let c = (sigma * sigma + 1)
            predictedOriginal = TorchOps.add(TorchOps.mul(-sigma / c.squareRoot(), modelOutput), TorchOps.div(sample, c))
        default:
            predictedOriginal = modelOutput
        }
        let derivative = TorchOps.div(TorchOps.sub(sample, predictedOriginal), sigmaHat)
        let dt = sigmas[index + 1] - sigmaHat
        stepIndex = index + 1
        return TorchOps.add(sample, TorchOps.mul(dt, derivative))
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
