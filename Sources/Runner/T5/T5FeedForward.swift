/// T5's feed-forward: `T5DenseGatedActDense` (act(wi_0 x) ⊙ wi_1 x, then wo) when the config is gated,
/// else `T5DenseActDense` (act(wi x), then wo). All projections without bias.
public struct T5FeedForward: Sendable {
    public enum Input: Sendable {
        case gated(wi0: Linear, wi1: Linear)   // wi_0, wi_1 (d_ff, d_model) each: the activated and the linear half
        case plain(wi: Linear)                 // wi (d_ff, d_model)
    }

    public let input: Input
    public let wo: Linear   // (d_model, d_ff)
    public let activation: T5Activation

    public init(_ w: WeightScope, config: T5Config) throws {
        if config.isGatedActivation {
            input = .gated(wi0: try Linear(w.scope("wi_0"), in: config.dModel, out: config.dFF, bias: false),
                           wi1: try Linear(w.scope("wi_1"), in: config.dModel, out: config.dFF, bias: false))
        } else {
            input = .plain(wi: try Linear(w.scope("wi"), in: config.dModel, out: config.dFF, bias: false))
        }
        wo = try Linear(w.scope("wo"), in: config.dFF, out: config.dModel, bias: false)
        activation = config.activation
    }

    /// x: [..., d_model] → [..., d_model]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var hidden: Tensor
        switch input {
        case let .gated(wi0, wi1):
            hidden = wi0(x)
            activation.apply(&hidden)
            Kernels.mul(&hidden, wi1(x))
        case let .plain(wi):
            hidden = wi(x)
            activation.apply(&hidden)
        }
        return wo(hidden)
    }
}
