import Foundation

/// The training noise schedule every diffusers 0.27.0 scheduler builds in its `__init__`: `betas`,
/// `alphas = 1 - betas` and `alphas_cumprod`, all float32 torch tensors, computed the way PyTorch's CPU
/// kernels compute them so that sigmas and step coefficients match to the last bit.
struct TrainingNoiseSchedule: Sendable {
    let betas: [Float]
    /// Mutable only for the `rescale_betas_zero_snr` pin of the last value (Euler, Euler A, DPM-Solver).
    var alphasCumprod: [Float]

    var count: Int { alphasCumprod.count }

    /// - Parameter zeroTerminalSNR: diffusers' `rescale_betas_zero_snr` (Lin et al. 2023, Algorithm 1).
    init(_ config: SchedulerConfig, zeroTerminalSNR: Bool) throws {
        let trainSteps = try config.int("num_train_timesteps", default: 1000)
        guard trainSteps >= 2 else {
            throw RunnerError.invalidConfig(path: config.source, reason: "num_train_timesteps must be at least 2, found \(trainSteps)")
        }
        var betas: [Float]
        if let trained = try config.doubles("trained_betas") {
            guard trained.count == trainSteps else {
                throw RunnerError.invalidConfig(
                    path: config.source,
                    reason: "trained_betas has \(trained.count) values but num_train_timesteps is \(trainSteps)")
            }
            betas = trained.map { Float($0) }
        } else {
            let start = try config.double("beta_start", default: 0.0001)
            let end = try config.double("beta_end", default: 0.02)
            let schedule = try config.string("beta_schedule", default: "linear")
            switch schedule {
            case "linear":
                betas = Self.torchLinspace(Float(start), Float(end), count: trainSteps)
            case "scaled_linear":
                betas = Self.torchLinspace(Float(start.squareRoot()), Float(end.squareRoot()), count: trainSteps).map { $0 * $0 }
            case "squaredcos_cap_v2":
                betas = Self.cosineBetas(count: trainSteps)
            default:
                throw RunnerError.invalidConfig(
                    path: config.source,
                    reason: "beta_schedule '\(schedule)' is not one of linear, scaled_linear, squaredcos_cap_v2")
            }
        }
        if zeroTerminalSNR { betas = Self.rescaledForZeroTerminalSNR(betas) }
        self.betas = betas
        alphasCumprod = Self.cumulativeProduct(betas.map { 1 - $0 })
    }

    /// The schedule of the sigma-based samplers (Euler, Euler A, DPM++): `rescale_betas_zero_snr` from the
    /// config and then, as diffusers does to keep the first sigma finite, the last `alphas_cumprod` set to 2^-24.
    static func forSigmas(_ config: SchedulerConfig) throws -> TrainingNoiseSchedule {
        let zeroSNR = try config.bool("rescale_betas_zero_snr", default: false)
        var noise = try TrainingNoiseSchedule(config, zeroTerminalSNR: zeroSNR)
        if zeroSNR, let last = noise.alphasCumprod.indices.last { noise.alphasCumprod[last] = 0x1p-24 }
        return noise
    }

    /// `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5` in float32, indexed by training timestep.
    var sigmas: [Float] {
        alphasCumprod.map { ((1 - $0) / $0).squareRoot() }
    }

    // MARK: - PyTorch kernels

    /// `torch.linspace(start, end, count, dtype=torch.float32)` on CPU: the first half counts up from `start`,
    /// the second half down from `end`. ATen's x86-64 builds compile this loop with FMA enabled and GCC
    /// contracts `start + step * i` into one fused multiply-add (checked against the goldens' sigmas).
    static func torchLinspace(_ start: Float, _ end: Float, count: Int) -> [Float] {
        if count == 1 { return [start] }
        let step = (end - start) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { i in
            i < halfway ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(count - i - 1))
        }
    }

    /// `torch.cumprod` of a float32 tensor on CPU: accumulates in double (`acc_type<float>`), stores float.
    static func cumulativeProduct(_ values: [Float]) -> [Float] {
        var product = 1.0
        return values.map { value in
            product *= Double(value)
            return Float(product)
        }
    }

    /// diffusers' `betas_for_alpha_bar` (cosine, max_beta 0.999), computed in Python floats then stored float32.
    static func cosineBetas(count: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double {
            let c = Foundation.cos((t + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        return (0..<count).map { i in
            let t1 = Double(i) / Double(count)
            let t2 = Double(i + 1) / Double(count)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }

    /// diffusers' `rescale_zero_terminal_snr`, in float32 tensor arithmetic.
    static func rescaledForZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        let alphasCumprod = cumulativeProduct(betas.map { 1 - $0 })
        var roots = alphasCumprod.map { $0.squareRoot() }
        guard let first = roots.first, let last = roots.last else { return betas }
        let scale = first / (first - last)
        roots = roots.map { ($0 - last) * scale }
        let bars = roots.map { $0 * $0 }
        var alphas = [bars[0]]
        for i in 1..<bars.count { alphas.append(bars[i] / bars[i - 1]) }
        return alphas.map { 1 - $0 }
    }
}

/// NumPy's `np.interp(x, arange(n), values)` for ascending integer sample points, in double precision
/// (`slope * (x - xp[j]) + fp[j]`), clamped to the end values outside [0, n-1].
func numpyInterpolate(_ x: Double, _ values: [Float]) -> Double {
    guard let lastValue = values.last else { return .nan }
    let last = values.count - 1
    if x.isNaN { return .nan }
    if x >= Double(last) { return Double(lastValue) }
    if x <= 0 { return Double(values[0]) }
    let j = Int(x.rounded(.down))
    // The sample points are one apart, so NumPy's slope is the plain difference.
    let slope = Double(values[j + 1]) - Double(values[j])
    return slope * (x - Double(j)) + Double(values[j])
}
