/// How close to the goldens is close enough: every bound a test compares a golden with, in one place, each citing
/// the line of fixtures/ea-tiny/README.md ("How close is close enough") it comes from. A correct float32
/// implementation differs from the goldens only by rounding (README lines 52-57); never loosen these.
public enum Tolerances {
    /// README line 60: merged / swapped state dicts, max abs diff ≤ 1e-6 per tensor (same math in float32).
    public static let stateDict: Float = 1e-6

    /// README line 60 for a merge done in two steps (0.25, then 0.30, against the golden's single 0.55): one
    /// more float32 rounding of every changed weight, so twice the single-merge bound.
    public static let stateDictMergedInTwoSteps: Float = 2 * stateDict

    /// README line 62: module outputs (text encoder, transformers, VAE), max abs diff ≤ 1e-4.
    public static let moduleOutput: Float = 1e-4

    /// README line 63: scheduler steps, max abs diff ≤ 1e-5 × max(1, max |golden tensor|).
    public static func schedulerStep(_ golden: [Double]) -> Double {
        1e-5 * max(1, golden.map(abs).max() ?? 0)
    }

    /// README line 64: full pipeline videos (values in [0, 1]), max abs diff ≤ 1e-4.
    public static let video: Float = 1e-4

    /// README line 64: DDIM's video ≤ 5e-4 (its first step is ill-conditioned, lines 55-56).
    public static let ddimVideo: Float = 5e-4

    /// README line 65: torch-compatible random numbers, max abs diff ≤ 1e-6.
    public static let randomNumbers: Float = 1e-6

    /// Videos from checkpoints `convert` narrowed, against the float32 golden: not a README bound (a converted
    /// checkpoint is another model), a mean abs diff per format set from its precision: bf16's 8-bit mantissa,
    /// int8 blocks of 16 with one scale each, fp8 e4m3's 3-bit mantissa.
    public static let convertedVideoMean: [String: Float] = ["bf16": 0.002, "int8": 0.01, "fp8": 0.03]
}
