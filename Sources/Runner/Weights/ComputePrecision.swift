/// How a model's Linear layers multiply: float32 (the default, which every golden is computed in); int8
/// weights with activations quantized per row at each call (`--compute int8`, for the transformer); or BF16
/// weights with activations rounded to BF16 at each call, float32 sums (`--t5-compute bf16`, for T5, whose
/// released weights are BF16: PyTorch runs it so on a CPU).
public enum ComputePrecision: String, Sendable, CaseIterable, Codable {
    case f32, int8, bf16
}
