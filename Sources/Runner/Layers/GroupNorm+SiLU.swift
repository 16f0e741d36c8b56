extension GroupNorm {
    /// `silu(self(x))` in place, in one fused kernel (`Kernels.groupNormSiLU`).
    public func applyWithSiLU(_ x: inout Tensor) {
        precondition(x.shape[1] == channels, "GroupNorm \(weight.key): input \(x.shape), expected \(channels) channels")
        weight.withFloats { w in
            bias.withFloats { b in Kernels.groupNormSiLU(&x, groups: groups, eps: eps, weight: w, bias: b) }
        }
    }
}
