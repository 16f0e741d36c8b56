/// How a model's Linear layers multiply: float32 (the default, which every golden is computed in), or int8
/// weights with activations quantized per row and group at each call (`--compute int8` for the transformer,
/// `--t5-compute int8` for T5).
public enum ComputePrecision: String, Sendable, CaseIterable, Codable {
    case f32, int8
}
