import Foundation

/// This implementation matches diffusers 0.27.0 `DPMSolverMultistepScheduler` (the `DPM++` sampler); its
/// defaults are DPM-Solver++ of order 2 with the midpoint update, `linspace` timesteps rounded from
/// `np.linspace(0, 999, N + 1)`, a final sigma of 0 and a first-order last step. Coefficients are computed as
/// diffusers' 0-d float32 tensors (float32 `log`/`exp`), the update as float32 tensor arithmetic.
///
/// Supported options: `num_train_timesteps`, `beta_start`, `beta_end`, `beta_schedule`, `trained_betas`,
/// `solver_order` (1–3), `prediction_type` (epsilon, sample, v_prediction), `algorithm_type` (dpmsolver++,
/// dpmsolver; deis maps to dpmsolver++ as in diffusers), `solver_type` (midpoint, heun), `lower_order_final`,
/// `euler_at_final`, `final_sigmas_type`, `lambda_min_clipped`, `timestep_spacing`, `steps_offset`,
/// `rescale_betas_zero_snr`. Thresholding, Karras/Lu sigmas, the SDE variants and learned variance are rejected.
public struct DPMSolverMultistepScheduler: Scheduler {
    static let name = "DPM++"

    private enum Algorithm { case dpmSolverPlusPlus, dpmSolver }

    private let noise: TrainingNoiseSchedule
    private let solverOrder: Int
    private let predictionType: String
    private let algorithm: Algorithm
    private let heun: Bool
    private let lowerOrderFinal: Bool
    private let eulerAtFinal: Bool
    private let finalSigmaIsZero: Bool
    private let lambdaMinClipped: Double
    private let spacing: TimestepSpacing
    private let stepsOffset: Int

    public private(set) var timesteps: [Double] = []
    /// Per timestep, plus the final sigma.
    private(set) var sigmas: [Float] = []
    private var stepIndex: Int?
    /// The last `solverOrder` converted model outputs, oldest first (diffusers' `model_outputs`).
    private var modelOutputs: [Tensor] = []
    private var lowerOrderCount = 0

    public init(config: SchedulerConfig) throws {
        noise = try TrainingNoiseSchedule.forSigmas(config)
        solverOrder = try config.int("solver_order", default: 2)
        guard (1...3).contains(solverOrder) else {
            throw RunnerError.invalidConfig(path: config.source, reason: "solver_order must be 1, 2 or 3, found \(solverOrder)")
        }
        predictionType = try SchedulerChecks.prediction(config, allowed: ["epsilon", "sample", "v_prediction"], sampler: Self.name)
        switch try config.string("algorithm_type", default: "dpmsolver++") {
        case "dpmsolver++", "deis": algorithm = .dpmSolverPlusPlus
        case "dpmsolver": algorithm = .dpmSolver
        case let other:
            throw RunnerError.invalidConfig(
                path: config.source, reason: "algorithm_type '\(other)' is not supported by the \(Self.name) sampler (use dpmsolver++ or dpmsolver)")
        }
        switch try config.string("solver_type", default: "midpoint") {
        case "midpoint", "logrho", "bh1", "bh2": heun = false
        case "heun": heun = true
        case let other:
            throw RunnerError.invalidConfig(path: config.source, reason: "solver_type '\(other)' is not one of midpoint, heun")
        }
        lowerOrderFinal = try config.bool("lower_order_final", default: true)
        eulerAtFinal = try config.bool("euler_at_final", default: false)
        switch try config.string("final_sigmas_type", default: "zero") {
        case "zero": finalSigmaIsZero = true
        case "sigma_min": finalSigmaIsZero = false
        case let other:
            throw RunnerError.invalidConfig(path: config.source, reason: "final_sigmas_type '\(other)' is not one of zero, sigma_min")
        }
        if finalSigmaIsZero && algorithm == .dpmSolver {
            throw RunnerError.invalidConfig(
                path: config.source, reason: "final_sigmas_type 'zero' needs algorithm_type dpmsolver++ (diffusers rejects it for dpmsolver)")
        }
        lambdaMinClipped = try config.double("lambda_min_clipped", default: -.infinity)
        spacing = try TimestepSpacing(config, default: .linspace)
        stepsOffset = try config.int("steps_offset", default: 0)
        try config.require("thresholding", isDefault: !(try config.bool("thresholding", default: false)), sampler: Self.name)
        try config.require("use_karras_sigmas", isDefault: !(try config.bool("use_karras_sigmas", default: false)), sampler: Self.name)
        try config.require("use_lu_lambdas", isDefault: !(try config.bool("use_lu_lambdas", default: false)), sampler: Self.name)
        let variance = try config.string("variance_type", default: "")
        try config.require("variance_type", isDefault: variance != "learned" && variance != "learned_range", sampler: Self.name)
    }

    public var initNoiseSigma: Float { 1 }

    public mutating func setTimesteps(_ numInferenceSteps: Int) throws {
        try SchedulerChecks.requireStepCount(numInferenceSteps, sampler: Self.name)
        let trainSteps = noise.count
        // `searchsorted(flip(lambda_t), lambda_min_clipped)`: how many of the noisiest timesteps to drop.
        let lambdas = noise.alphasCumprod.map { Foundation.log($0.squareRoot()) - Foundation.log((1 - $0).squareRoot()) }
        let clippedIndex = lambdas.filter { Double($0) < lambdaMinClipped }.count
        let lastTimestep = trainSteps - clippedIndex

        var steps: [Int]
        switch spacing {
        case .linspace:
            steps = Array(NumPy.linspace(0, Double(lastTimestep - 1), count: numInferenceSteps + 1)
                .map { Int(NumPy.round($0)) }.reversed().dropLast())
        case .leading:
            let ratio = lastTimestep / (numInferenceSteps + 1)
            steps = (0...numInferenceSteps).reversed().dropLast().map { $0 * ratio + stepsOffset }
        case .trailing:
            let ratio = Double(trainSteps) / Double(numInferenceSteps)
            steps = NumPy.arange(Double(lastTimestep), 0, step: -ratio).map { Int(NumPy.round($0)) - 1 }
        }
        let trainingSigmas = noise.sigmas
        guard steps.allSatisfy({ trainingSigmas.indices.contains($0) }) else {
            throw RunnerError.invalidInput("\(Self.name): \(numInferenceSteps) steps give timesteps outside 0..<\(trainSteps)")
        }
        let finalSigma: Float = finalSigmaIsZero ? 0 : trainingSigmas[0]
        sigmas = steps.map { trainingSigmas[$0] } + [finalSigma]
        timesteps = steps.map { Double($0) }
        stepIndex = nil
        modelOutputs = []
        lowerOrderCount = 0
    }

    public mutating func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try SchedulerChecks.requireTimesteps(timesteps, sampler: Self.name)
        return sample
    }

    public mutating func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: inout TorchGenerator) throws -> Tensor {
        try SchedulerChecks.requireTimesteps(timesteps, sampler: Self.name)
        try SchedulerChecks.requireSameCount(modelOutput, sample, sampler: Self.name)
        if stepIndex == nil {
            stepIndex = try SchedulerChecks.stepIndex(of: timestep, in: timesteps, sampler: Self.name, notFound: timesteps.count - 1)
        }
        guard let index = stepIndex, index < timesteps.count else {
            throw RunnerError.invalidInput("\(Self.name): step called more times than there are timesteps (\(timesteps.count))")
        }
        let count = timesteps.count
        let finalLowOrder = index == count - 1 && (eulerAtFinal || (lowerOrderFinal && count < 15) || finalSigmaIsZero)
        let secondLowOrder = index == count - 2 && lowerOrderFinal && count < 15

        modelOutputs.append(convert(modelOutput, sample: sample, sigma: sigmas[index]))
        if modelOutputs.count > solverOrder { modelOutputs.removeFirst() }

        let previous: Tensor
        if solverOrder == 1 || lowerOrderCount < 1 || finalLowOrder {
            previous = firstOrderUpdate(sample, index: index)
        } else if solverOrder == 2 || lowerOrderCount < 2 || secondLowOrder {
            previous = secondOrderUpdate(sample, index: index)
        } else {
            previous = thirdOrderUpdate(sample, index: index)
        }
        if lowerOrderCount < solverOrder { lowerOrderCount += 1 }
        stepIndex = index + 1
        return previous
    }

    // MARK: - diffusers' helpers

    /// `_sigma_to_alpha_sigma_t`, plus `lambda = log(alpha) - log(sigma)`.
    private func coefficients(_ sigma: Float) -> (alpha: Float, sigma: Float, lambda: Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        let sigmaT = sigma * alpha
        return (alpha, sigmaT, Foundation.log(alpha) - Foundation.log(sigmaT))
    }

    /// `convert_model_output`: the data prediction x0 (dpmsolver++) or the noise prediction (dpmsolver).
    private func convert(_ modelOutput: Tensor, sample: Tensor, sigma: Float) -> Tensor {
        let c = coefficients(sigma)
        switch (algorithm, predictionType) {
        case (.dpmSolverPlusPlus, "epsilon"):
            return TorchOps.div(TorchOps.sub(sample, TorchOps.mul(c.sigma, modelOutput)), c.alpha)
        case (.dpmSolverPlusPlus, "v_prediction"):
            return TorchOps.sub(TorchOps.mul(c.alpha, sample), TorchOps.mul(c.sigma, modelOutput))
        case (.dpmSolver, "sample"):
            return TorchOps.div(TorchOps.sub(sample, TorchOps.mul(c.alpha, modelOutput)), c.sigma)
        case (.dpmSolver, "v_prediction"):
            return TorchOps.add(TorchOps.mul(c.alpha, modelOutput), TorchOps.mul(c.sigma, sample))
        default:   // dpmsolver++ with sample prediction, dpmsolver with epsilon prediction
            return modelOutput
        }
    }

    private func firstOrderUpdate(_ sample: Tensor, index: Int) -> Tensor {
        let t = coefficients(sigmas[index + 1]), s = coefficients(sigmas[index])
        let h = t.lambda - s.lambda
        guard let m0 = modelOutputs.last else { return sample }
        switch algorithm {
        case .dpmSolverPlusPlus:
            return TorchOps.sub(TorchOps.mul(t.sigma / s.sigma, sample), TorchOps.mul(t.alpha * (Foundation.exp(-h) - 1), m0))
        case .dpmSolver:
            return TorchOps.sub(TorchOps.mul(t.alpha / s.alpha, sample), TorchOps.mul(t.sigma * (Foundation.exp(h) - 1), m0))
        }
    }

    private func secondOrderUpdate(_ sample: Tensor, index: Int) -> Tensor {
        let t = coefficients(sigmas[index + 1]), s0 = coefficients(sigmas[index]), s1 = coefficients(sigmas[index - 1])
        let m0 = modelOutputs[modelOutputs.count - 1], m1 = modelOutputs[modelOutputs.count - 2]
        let h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda
        let r0 = h0 / h
        let d0 = m0
        let d1 = TorchOps.mul(1 / r0, TorchOps.sub(m0, m1))
        switch (algorithm, heun) {
        case (.dpmSolverPlusPlus, false):
            let c = t.alpha * (Foundation.exp(-h) - 1)
            let x = TorchOps.sub(TorchOps.mul(t.sigma / s0.sigma, sample), TorchOps.mul(c, d0))
            return TorchOps.sub(x, TorchOps.mul(0.5 * c, d1))
        case (.dpmSolverPlusPlus, true):
            let e = Foundation.exp(-h) - 1
            let x = TorchOps.sub(TorchOps.mul(t.sigma / s0.sigma, sample), TorchOps.mul(t.alpha * e, d0))
            return TorchOps.add(x, TorchOps.mul(t.alpha * (e / h + 1), d1))
        case (.dpmSolver, false):
            let c = t.sigma * (Foundation.exp(h) - 1)
            let x = TorchOps.sub(TorchOps.mul(t.alpha / s0.alpha, sample), TorchOps.mul(c, d0))
            return TorchOps.sub(x, TorchOps.mul(0.5 * c, d1))
        case (.dpmSolver, true):
            let e = Foundation.exp(h) - 1
            let x = TorchOps.sub(TorchOps.mul(t.alpha / s0.alpha, sample), TorchOps.mul(t.sigma * e, d0))
            return TorchOps.sub(x, TorchOps.mul(t.sigma * (e / h - 1), d1))
        }
    }

    private func thirdOrderUpdate(_ sample: Tensor, index: Int) -> Tensor {
        let t = coefficients(sigmas[index + 1]), s0 = coefficients(sigmas[index])
        let s1 = coefficients(sigmas[index - 1]), s2 = coefficients(sigmas[index - 2])
        let n = modelOutputs.count
        let m0 = modelOutputs[n - 1], m1 = modelOutputs[n - 2], m2 = modelOutputs[n - 3]
        let h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda, h1 = s1.lambda - s2.lambda
        let r0 = h0 / h, r1 = h1 / h
        let d0 = m0
        let d10 = TorchOps.mul(1 / r0, TorchOps.sub(m0, m1))
        let d11 = TorchOps.mul(1 / r1, TorchOps.sub(m1, m2))
        let d10MinusD11 = TorchOps.sub(d10, d11)
        let d1 = TorchOps.add(d10, TorchOps.mul(r0 / (r0 + r1), d10MinusD11))
        let d2 = TorchOps.mul(1 / (r0 + r1), d10MinusD11)
        switch algorithm {
        case .dpmSolverPlusPlus:
            let e = Foundation.exp(-h) - 1
            var x = TorchOps.sub(TorchOps.mul(t.sigma / s0.sigma, sample), TorchOps.mul(t.alpha * e, d0))
            x = TorchOps.add(x, TorchOps.mul(t.alpha * (e / h + 1), d1))
            return TorchOps.sub(x, TorchOps.mul(t.alpha * ((e + h) / (h * h) - 0.5), d2))
        case .dpmSolver:
            let e = Foundation.exp(h) - 1
            var x = TorchOps.sub(TorchOps.mul(t.alpha / s0.alpha, sample), TorchOps.mul(t.sigma * e, d0))
            x = TorchOps.sub(x, TorchOps.mul(t.sigma * (e / h - 1), d1))
            return TorchOps.sub(x, TorchOps.mul(t.sigma * ((e - h) / (h * h) - 0.5), d2))
        }
    }
}
