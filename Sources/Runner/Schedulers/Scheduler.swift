/// A diffusion sampler with diffusers' scheduler interface, on float32 latent tensors (elementwise: the shape
/// is kept, never interpreted). Every intermediate is a pooled tensor, so a step after the first allocates nothing.
///
/// The pipeline uses it as diffusers' pipelines do:
/// ```swift
/// var scheduler = try Sampler.euler.makeScheduler(config: config)
/// try scheduler.setTimesteps(steps)
/// var latents = TorchOps.mul(scheduler.initNoiseSigma, try generator.randn(shape: latentShape))
/// for t in scheduler.timesteps {
///     let input = try scheduler.scaleModelInput(latents, timestep: t)      // (CFG batch: scale both halves)
///     let noise = model(input, t)                                           // epsilon, learned-sigma half removed
///     latents = try scheduler.step(modelOutput: noise, timestep: t, sample: latents, generator: &generator)
/// }
/// ```
/// Implementations reproduce diffusers 0.27.0 operation by operation in float32 (with the float64 NumPy steps
/// where diffusers uses NumPy): timesteps, sigmas and `init_noise_sigma` are bit-identical to PyTorch's.
/// Steps agree to rounding: PyTorch's x86-64 wheels evaluate `sqrt`/`log`/`exp` of (0-d) tensors with MKL VML,
/// which is not always correctly rounded, while these ports use IEEE `sqrt` and libm, so a step coefficient
/// can differ by one ulp (measured: under 7% of the golden tolerance after 30 steps).
public protocol Scheduler: Sendable {
    /// diffusers' `scheduler.timesteps` after `setTimesteps` (float for Euler/Euler A, integral otherwise);
    /// also the value the transformer's timestep embedding receives.
    var timesteps: [Double] { get }
    /// diffusers' `init_noise_sigma`: initial latents are `randn * initNoiseSigma`.
    var initNoiseSigma: Float { get }
    /// `set_timesteps(numInferenceSteps)`: resets all per-run state.
    mutating func setTimesteps(_ numInferenceSteps: Int) throws
    /// `scale_model_input(sample, t)`: elementwise, so it also takes the doubled classifier-free-guidance batch.
    mutating func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor
    /// `step(model_output, t, sample, generator=generator).prev_sample`, of the sample's shape. Samplers that draw
    /// noise in 0.27 (Euler A, and Euler, whose unused draw still advances the generator) draw
    /// `randn(modelOutput.count)`.
    mutating func step(modelOutput: Tensor, timestep: Double, sample: Tensor, generator: inout TorchGenerator) throws -> Tensor
}

extension Scheduler {
    /// `scaleModelInput` on flat values.
    public mutating func scaleModelInput(_ sample: [Float], timestep: Double) throws -> [Float] {
        try scaleModelInput(Tensor(shape: [sample.count], storage: sample), timestep: timestep).storage
    }

    /// `step` on flat values.
    public mutating func step(modelOutput: [Float], timestep: Double, sample: [Float], generator: inout TorchGenerator) throws -> [Float] {
        try step(modelOutput: Tensor(shape: [modelOutput.count], storage: modelOutput), timestep: timestep,
                 sample: Tensor(shape: [sample.count], storage: sample), generator: &generator).storage
    }
}

/// Shared checks and the `index_for_timestep` lookup of the sigma-indexed schedulers.
enum SchedulerChecks {
    static func requireTimesteps(_ timesteps: [Double], sampler: String) throws {
        guard !timesteps.isEmpty else {
            throw RunnerError.invalidInput("\(sampler): call setTimesteps before scaleModelInput or step")
        }
    }

    static func requireStepCount(_ count: Int, sampler: String) throws {
        guard count >= 1 else {
            throw RunnerError.invalidInput("\(sampler): the number of inference steps must be at least 1, found \(count)")
        }
    }

    static func requireSameCount(_ modelOutput: Tensor, _ sample: Tensor, sampler: String) throws {
        guard modelOutput.count == sample.count else {
            throw RunnerError.invalidInput(
                "\(sampler): the model output has \(modelOutput.count) values but the latents have \(sample.count)")
        }
    }

    /// diffusers' `index_for_timestep`: the first match, or the second when the timestep occurs more than once
    /// (so an img2img start in the middle of the schedule does not skip a sigma).
    static func stepIndex(of timestep: Double, in timesteps: [Double], sampler: String, notFound: Int? = nil) throws -> Int {
        let matches = timesteps.indices.filter { timesteps[$0] == timestep }
        if matches.count > 1 { return matches[1] }
        if let first = matches.first { return first }
        if let notFound { return notFound }
        throw RunnerError.invalidInput("\(sampler): timestep \(timestep) is not one of the scheduler's timesteps")
    }

    static func prediction(_ config: SchedulerConfig, allowed: [String], sampler: String) throws -> String {
        let type = try config.string("prediction_type", default: "epsilon")
        guard allowed.contains(type) else {
            throw RunnerError.invalidConfig(
                path: config.source,
                reason: "prediction_type '\(type)' is not supported by the \(sampler) sampler (use \(allowed.joined(separator: " or ")))")
        }
        return type
    }
}

/// Elementwise float32 arithmetic with one rounding per operation, in the order diffusers' torch expressions
/// evaluate (a 0-d tensor or Python float operand acts as a float32 scalar). Results are pooled tensors of the
/// first operand's shape.
public enum TorchOps {
    public static func mul(_ s: Float, _ a: Tensor) -> Tensor { map(a) { s * $0 } }
    public static func div(_ a: Tensor, _ s: Float) -> Tensor { map(a) { $0 / s } }
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor { zip(a, b) { $0 + $1 } }
    public static func sub(_ a: Tensor, _ b: Tensor) -> Tensor { zip(a, b) { $0 - $1 } }
    public static func clamp(_ a: Tensor, _ bound: Float) -> Tensor { map(a) { min(max($0, -bound), bound) } }

    @inline(__always)
    private static func map(_ a: Tensor, _ f: (Float) -> Float) -> Tensor {
        var out = Tensor(uninitialized: a.shape)
        a.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { y in
                for i in 0..<x.count { y[i] = f(x[i]) }
            }
        }
        return out
    }

    @inline(__always)
    private static func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(a.count == b.count, "elementwise operands of \(a.count) and \(b.count) values")
        var out = Tensor(uninitialized: a.shape)
        a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { z in
                out.withUnsafeMutableBufferPointer { y in
                    for i in 0..<x.count { y[i] = f(x[i], z[i]) }
                }
            }
        }
        return out
    }
}
