/// diffusers' `FeedForward`: `net.0` (a projection with its activation), `net.2` (the output projection);
/// `net.1` is dropout. The inner width is `dim × mult` (4 in every model here).
public struct FeedForward: Sendable {
    /// diffusers' `activation_fn` names.
    public enum Activation: String, Sendable {
        /// `GELU(approximate="tanh")` after `net.0.proj` (PixArt).
        case geluTanh = "gelu-approximate"
        /// Exact GELU after `net.0.proj`.
        case gelu = "gelu"
        /// `GEGLU`: `net.0.proj` doubles the width; first half × gelu(second half) (AnimateDiff motion modules).
        case geglu = "geglu"
    }

    public let proj: Linear   // net.0.proj: (inner or 2·inner, dim)
    public let out: Linear    // net.2: (dimOut, inner)
    public let activation: Activation

    public init(_ w: WeightScope, dim: Int, dimOut: Int? = nil, mult: Int = 4, activation: Activation) throws {
        let inner = dim * mult
        self.activation = activation
        proj = try Linear(w.scope("net").scope("0").scope("proj"), in: dim, out: activation == .geglu ? 2 * inner : inner)
        out = try Linear(w.scope("net").scope("2"), in: inner, out: dimOut ?? dim)
    }

    /// x: [..., dim] → [..., dimOut]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var hidden = proj(x)
        switch activation {
        case .geluTanh: Kernels.geluTanh(&hidden)
        case .gelu: Kernels.gelu(&hidden)
        case .geglu: hidden = Kernels.geglu(hidden)
        }
        return out(hidden)
    }
}
