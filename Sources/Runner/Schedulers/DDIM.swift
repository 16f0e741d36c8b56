/// This implementation matches diffusers 0.27.0 `DDIMScheduler` (the `DDIM` sampler) as EasyAnimate runs it:
/// `leading` timesteps plus `steps_offset`, `eta = 0` (deterministic, no noise drawn), the predicted original
/// sample clipped to `[-clip_sample_range, clip_sample_range]` (`clip_sample` defaults to true) and a final
/// alpha of 1 (`set_alpha_to_one`). Arithmetic is float32 tensor arithmetic in diffusers' order.
///
/// At high noise the predicted original sample divides by a small `sqrt(alpha_prod_t)`, amplifying rounding
/// differences, and clipping makes the step discontinuous (a value within rounding of ±1 may land on either
/// side of the clip in two implementations).
///
/// Supported options: `num_train_timesteps`, `beta_start`, `beta_end`, `beta_schedule`, `trained_betas`,
/// `clip_sample`, `clip_sample_range`, `set_alpha_to_one`, `prediction_type` (epsilon, sample, v_prediction),
/// `timestep_spacing`, `steps_offset`, `rescale_betas_zero_snr`. Dynamic thresholding is rejected.
public struct DDIMScheduler: Scheduler {
    static let name = "DDIM"

    private let noise: TrainingNoiseSchedule
    private let clipSample: Bool
    private let clipSampleRange: Float
    private let finalAlphaCumprod: Float
    private let predictionType: String
    private let spacing: TimestepSpacing
    private let stepsOffset: Int

    public private(set) var timesteps: [Double] = []
    private var numInferenceSteps = 0

    public init(config: SchedulerConfig) throws {
        noise = try TrainingNoiseSchedule(config, zeroTerminalSNR: try config.bool("rescale_betas_zero_snr", default: false))
        clipSample = try config.bool("clip_sample", default: true)
        clipSampleRange = Float(try config.double("clip_sample_range", default: 1.0))
        finalAlphaCumprod = try config.bool("set_alpha_to_one", default: true) ? 1 : noise.alphasCumprod[0]
        predictionType = try SchedulerChecks.prediction(config, allowed: ["epsilon", "sample", "v_prediction"], sampler: Self.name)
        spacing = try TimestepSpacing(config, default: .leading)
        stepsOffset = try config.int("steps_offset", default: 0)
        try config.require("thresholding", isDefault: !(try config.bool("thresholding", default: false)), sampler: Self.name)
    }

    public var initNoiseSigma: Float { 1 }

    public mutating func setTimesteps(_ numInferenceSteps: Int) throws {
        try SchedulerChecks.requireStepCount(numInferenceSteps, sampler: Self.name)
        let trainSteps = noise.count
        guard numInferenceSteps <= trainSteps else {
            throw RunnerError.invalidInput(
                "\(Self.name): \(numInferenceSteps) inference steps exceed the \(trainSteps) training timesteps")
        }
        let steps: [Int]
        switch spacing {
        case .linspace:
            steps = Array(NumPy.linspace(0, Double(trainSteps - 1), count: numInferenceSteps).map { Int(NumPy.round($0)) }.reversed())
        case .leading:
            let ratio = trainSteps / numInferenceSteps
            steps = (0..<numInferenceSteps).reversed().map { $0 * ratio + stepsOffset }
        case .trailing:
            let ratio = Double(trainSteps) / Double(numInferenceSteps)
            steps = NumPy.arange(Double(trainSteps), 0, step: -ratio).map { Int(NumPy.round($0)) - 1 }
        }
        guard steps.allSatisfy({ (0..<trainSteps).contains($0) }) else {
            throw RunnerError.invalidInput("\(Self.name): \(numInferenceSteps) steps give timesteps outside 0..<\(trainSteps)")
        }
        self.numInferenceSteps = numInferenceSteps
        timesteps = steps.map { Double($0) }
    }

    public mutating func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try SchedulerChecks.requireTimesteps(timesteps, sampler: Self.name)
        return sample
    }

    public mutating func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: inout TorchGenerator) throws -> Tensor {
        try SchedulerChecks.requireTimesteps(timesteps, sampler: Self.name)
        try SchedulerChecks.requireSameCount(modelOutput, sample, sampler: Self.name)
        let alphas = noise.alphasCumprod
        guard timestep.rounded() == timestep, timestep >= 0, timestep < Double(alphas.count) else {
            throw RunnerError.invalidInput("\(Self.name): timestep \(timestep) is not a training timestep in 0..<\(alphas.count)")
        }
        let t = Int(timestep)
        let previousTimestep = t - noise.count / numInferenceSteps
        let alphaProd = alphas[t]
        let alphaProdPrevious = previousTimestep >= 0 ? alphas[previousTimestep] : finalAlphaCumprod
        let betaProd = 1 - alphaProd

        var predictedOriginal: Tensor
        let predictedEpsilon: Tensor
        switch predictionType {
        case "epsilon":
            predictedOriginal = TorchOps.div(TorchOps.sub(sample, TorchOps.mul(betaProd.squareRoot(), modelOutput)), alphaProd.squareRoot())
            predictedEpsilon = modelOutput
        case "sample":
            predictedOriginal = modelOutput
            predictedEpsilon = TorchOps.div(TorchOps.sub(sample, TorchOps.mul(alphaProd.squareRoot(), modelOutput)), betaProd.squareRoot())
        default:   // v_prediction
            predictedOriginal = TorchOps.sub(TorchOps.mul(alphaProd.squareRoot(), sample), TorchOps.mul(betaProd.squareRoot(), modelOutput))
            predictedEpsilon = TorchOps.add(TorchOps.mul(alphaProd.squareRoot(), modelOutput), TorchOps.mul(betaProd.squareRoot(), sample))
        }
        if clipSample { predictedOriginal = TorchOps.clamp(predictedOriginal, clipSampleRange) }

        // eta = 0: std_dev_t = 0, so the direction coefficient is sqrt(1 - alpha_prod_t_prev - 0).
        let direction = TorchOps.mul((1 - alphaProdPrevious - 0).squareRoot(), predictedEpsilon)
        return TorchOps.add(TorchOps.mul(alphaProdPrevious.squareRoot(), predictedOriginal), direction)
    }
}
