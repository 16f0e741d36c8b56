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

    /// Rows per pass are bounded so the inner activation stays under this many floats (64 MB): at 256×256 with
    /// 16 frames the motion module's GEGLU input would otherwise be 604 MB of a step's anonymous memory.
    public static let innerBudget = 16 << 20

    /// x: [..., dim] → [..., dimOut]. `innerBudget` (floats) bounds each pass's inner activation; tests lower it.
    public func callAsFunction(_ x: Tensor, innerBudget: Int = innerBudget) -> Tensor {
        let rows = x.count / proj.inFeatures
        let chunk = max(1, innerBudget / proj.outFeatures)
        guard rows > chunk else { return forward(x) }
        // Rows are independent: each pass multiplies a band of them, as the whole would.
        let flat = x.reshaped([rows, proj.inFeatures])
        let parts = stride(from: 0, to: rows, by: chunk).map { forward(flat.slice(first: $0..<min(rows, $0 + chunk))) }
        return Tensor.concatenate(parts).reshaped(Array(x.shape.dropLast()) + [out.outFeatures])
    }

    private func forward(_ x: Tensor) -> Tensor {
        var hidden = proj(x)
        switch activation {
        case .geluTanh: Kernels.geluTanh(&hidden)
        case .gelu: Kernels.gelu(&hidden)
        case .geglu: hidden = Kernels.geglu(hidden)
        }
        return out(hidden)
    }
}
