/// This implementation matches diffusers 0.27.0 `PNDMScheduler` (the `PNDM` sampler) as EasyAnimate builds it:
/// `leading` timesteps plus `steps_offset`, a Runge–Kutta (PRK) warm-up of 12 model calls over the last
/// four timesteps (so `timesteps` holds N + 9 entries), then linear multistep (PLMS) steps of up to fourth
/// order; `alphas_cumprod[0]` as the final alpha. Arithmetic is float32 tensor arithmetic in diffusers' order.
///
/// Supported options: `num_train_timesteps`, `beta_start`, `beta_end`, `beta_schedule`, `trained_betas`,
/// `skip_prk_steps`, `set_alpha_to_one`, `prediction_type` (epsilon, v_prediction), `timestep_spacing`,
/// `steps_offset`.
public struct PNDMScheduler: Scheduler {
    static let name = "PNDM"
    private static let pndmOrder = 4

    private let noise: TrainingNoiseSchedule
    private let skipPRKSteps: Bool
    private let finalAlphaCumprod: Float
    private let predictionType: String
    private let spacing: TimestepSpacing
    private let stepsOffset: Int

    public private(set) var timesteps: [Double] = []
    private var numInferenceSteps = 0
    private var prkTimesteps: [Int] = []
    private var counter = 0
    /// Model outputs kept for the multistep formula (diffusers' `ets`).
    private var ets: [Tensor] = []
    /// The running Runge–Kutta combination (`cur_model_output`; nil stands for diffusers' integer 0).
    private var currentModelOutput: Tensor?
    private var currentSample: Tensor?

    public init(config: SchedulerConfig) throws {
        noise = try TrainingNoiseSchedule(config, zeroTerminalSNR: false)
        skipPRKSteps = try config.bool("skip_prk_steps", default: false)
        finalAlphaCumprod = try config.bool("set_alpha_to_one", default: false) ? 1 : noise.alphasCumprod[0]
        predictionType = try SchedulerChecks.prediction(config, allowed: ["epsilon", "v_prediction"], sampler: Self.name)
        spacing = try TimestepSpacing(config, default: .leading)
        stepsOffset = try config.int("steps_offset", default: 0)
    }

    public var initNoiseSigma: Float { 1 }

    public mutating func setTimesteps(_ numInferenceSteps: Int) throws {
        try SchedulerChecks.requireStepCount(numInferenceSteps, sampler: Self.name)
        let trainSteps = noise.count
        // Ascending here; the schedule runs them backwards.
        let base: [Int]
        switch spacing {
        case .linspace:
            base = NumPy.linspace(0, Double(trainSteps - 1), count: numInferenceSteps).map { Int(NumPy.round($0)) }
        case .leading:
            let ratio = trainSteps / numInferenceSteps
            base = (0..<numInferenceSteps).map { $0 * ratio + stepsOffset }
        case .trailing:
            let ratio = Double(trainSteps) / Double(numInferenceSteps)
            base = NumPy.arange(Double(trainSteps), 0, step: -ratio).reversed().map { Int(NumPy.round($0)) - 1 }
        }

        let plms: [Int]
        if skipPRKSteps {
            prkTimesteps = []
            plms = (Self.slice(base, to: -1) + Self.slice(base, from: -2, to: -1) + Self.slice(base, from: -1)).reversed()
        } else {
            guard base.count >= Self.pndmOrder else {
                throw RunnerError.invalidInput(
                    "\(Self.name): the Runge–Kutta warm-up needs at least \(Self.pndmOrder) inference steps, found \(numInferenceSteps)")
            }
            // `_timesteps[-4:].repeat(2) + tile([0, half], 4)`, then `[:-1].repeat(2)[1:-1][::-1]`.
            let half = trainSteps / numInferenceSteps / 2
            let pairs = base.suffix(Self.pndmOrder).flatMap { [$0, $0 + half] }
            let doubled = pairs.dropLast().flatMap { [$0, $0] }
            prkTimesteps = Array(doubled.dropFirst().dropLast().reversed())
            plms = Self.slice(base, to: -3).reversed()
        }
        let all = prkTimesteps + plms
        guard all.allSatisfy({ $0 < trainSteps }) else {
            throw RunnerError.invalidInput("\(Self.name): \(numInferenceSteps) steps give timesteps beyond \(trainSteps - 1)")
        }
        self.numInferenceSteps = numInferenceSteps
        timesteps = all.map { Double($0) }
        counter = 0
        ets = []
        currentModelOutput = nil
        currentSample = nil
    }

    public mutating func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try SchedulerChecks.requireTimesteps(timesteps, sampler: Self.name)
        return sample
    }

    public mutating func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: inout TorchGenerator) throws -> Tensor {
        try SchedulerChecks.requireTimesteps(timesteps, sampler: Self.name)
        try SchedulerChecks.requireSameCount(modelOutput, sample, sampler: Self.name)
        guard timestep.rounded() == timestep, abs(timestep) < Double(Int32.max) else {
            throw RunnerError.invalidInput("\(Self.name): timestep \(timestep) is not an integer training timestep")
        }
        let t = Int(timestep)
        if counter < prkTimesteps.count && !skipPRKSteps {
            return try stepPRK(modelOutput, timestep: t, sample: sample)
        }
        return try stepPLMS(modelOutput, timestep: t, sample: sample)
    }

    /// `step_prk`: four model calls per Runge–Kutta step, all from the sample at its start.
    private mutating func stepPRK(_ modelOutput: Tensor, timestep: Int, sample: Tensor) throws -> Tensor {
        let halfStep = noise.count / numInferenceSteps / 2
        let previousTimestep = timestep - (counter % 2 == 1 ? 0 : halfStep)
        let rkTimestep = prkTimesteps[counter / 4 * 4]
        var output = modelOutput
        switch counter % 4 {
        case 0:
            currentModelOutput = accumulate(currentModelOutput, TorchOps.mul(Float(1.0 / 6.0), modelOutput))
            ets.append(modelOutput)
            currentSample = sample
        case 1, 2:
            currentModelOutput = accumulate(currentModelOutput, TorchOps.mul(Float(1.0 / 3.0), modelOutput))
        default:
            output = accumulate(currentModelOutput, TorchOps.mul(Float(1.0 / 6.0), modelOutput))
            currentModelOutput = nil
        }
        let previous = try previousSample(currentSample ?? sample, timestep: rkTimestep, previousTimestep: previousTimestep, modelOutput: output)
        counter += 1
        return previous
    }

    /// `step_plms`: Adams–Bashforth combination of the stored outputs.
    private mutating func stepPLMS(_ modelOutput: Tensor, timestep: Int, sample: Tensor) throws -> Tensor {
        if !skipPRKSteps && ets.count < 3 {
            throw RunnerError.invalidInput("\(Self.name): the multistep phase needs the Runge–Kutta warm-up to run first")
        }
        let stride = noise.count / numInferenceSteps
        var timestep = timestep
        var previousTimestep = timestep - stride
        if counter != 1 {
            ets = Array(ets.suffix(3)) + [modelOutput]
        } else {
            previousTimestep = timestep
            timestep += stride
        }

        var sample = sample
        let output: Tensor
        let n = ets.count
        if n == 1 && counter == 0 {
            output = modelOutput
            currentSample = sample
        } else if n == 1 && counter == 1 {
            output = TorchOps.div(TorchOps.add(modelOutput, ets[n - 1]), 2)
            sample = currentSample ?? sample
            currentSample = nil
        } else if n == 2 {
            output = TorchOps.div(TorchOps.sub(TorchOps.mul(3, ets[n - 1]), ets[n - 2]), 2)
        } else if n == 3 {
            let sum = TorchOps.add(TorchOps.sub(TorchOps.mul(23, ets[n - 1]), TorchOps.mul(16, ets[n - 2])), TorchOps.mul(5, ets[n - 3]))
            output = TorchOps.div(sum, 12)
        } else {
            var sum = TorchOps.sub(TorchOps.mul(55, ets[n - 1]), TorchOps.mul(59, ets[n - 2]))
            sum = TorchOps.add(sum, TorchOps.mul(37, ets[n - 3]))
            sum = TorchOps.sub(sum, TorchOps.mul(9, ets[n - 4]))
            output = TorchOps.mul(Float(1.0 / 24.0), sum)
        }
        let previous = try previousSample(sample, timestep: timestep, previousTimestep: previousTimestep, modelOutput: output)
        counter += 1
        return previous
    }

    /// `_get_prev_sample`: formula (9) of the PNDM paper, in diffusers' float32 order.
    private func previousSample(_ sample: Tensor, timestep: Int, previousTimestep: Int, modelOutput: Tensor) throws -> Tensor {
        let alphas = noise.alphasCumprod
        guard alphas.indices.contains(timestep), previousTimestep < alphas.count else {
            throw RunnerError.invalidInput("\(Self.name): timestep \(timestep) is outside the training schedule 0..<\(alphas.count)")
        }
        let alphaProd = alphas[timestep]
        let alphaProdPrevious = previousTimestep >= 0 ? alphas[previousTimestep] : finalAlphaCumprod
        let betaProd = 1 - alphaProd
        let betaProdPrevious = 1 - alphaProdPrevious
        var modelOutput = modelOutput
        if predictionType == "v_prediction" {
            modelOutput = TorchOps.add(TorchOps.mul(alphaProd.squareRoot(), modelOutput), TorchOps.mul(betaProd.squareRoot(), sample))
        }
        let sampleCoefficient = (alphaProdPrevious / alphaProd).squareRoot()
        let denominator = alphaProd * betaProdPrevious.squareRoot() + (alphaProd * betaProd * alphaProdPrevious).squareRoot()
        let scaledOutput = TorchOps.div(TorchOps.mul(alphaProdPrevious - alphaProd, modelOutput), denominator)
        return TorchOps.sub(TorchOps.mul(sampleCoefficient, sample), scaledOutput)
    }

    /// `cur_model_output += term`, where nil is diffusers' initial integer 0.
    private func accumulate(_ current: Tensor?, _ term: Tensor) -> Tensor {
        guard let current else { return term }
        return TorchOps.add(current, term)
    }

    /// Python's `values[from:to]` with negative indices counted from the end.
    private static func slice(_ values: [Int], from start: Int? = nil, to end: Int? = nil) -> [Int] {
        func clamp(_ index: Int) -> Int { min(max(index < 0 ? values.count + index : index, 0), values.count) }
        let lower = start.map(clamp) ?? 0
        let upper = end.map(clamp) ?? values.count
        return lower < upper ? Array(values[lower..<upper]) : []
    }
}
