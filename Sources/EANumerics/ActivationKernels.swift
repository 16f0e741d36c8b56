import CKernels

/// The runner's elementwise activations and softmax exponentials, from CKernels: AVX-512 with a polynomial
/// `exp` where the processor has it (within a few ulp of libm), libm's `tanhf`/`expf` otherwise.
public enum ActivationKernels {
    /// tanh-approximated GELU in place (PyTorch `approximate="tanh"`, T5's `gelu_new`).
    public static func geluTanh(_ x: UnsafeMutableBufferPointer<Float>, portable: Bool = false) {
        guard let p = x.baseAddress else { return }
        if portable { eaw_gelu_tanh_portable(p, x.count) } else { eaw_gelu_tanh(p, x.count) }
    }

    /// SiLU `x / (1 + exp(-x))` in place.
    public static func silu(_ x: UnsafeMutableBufferPointer<Float>, portable: Bool = false) {
        guard let p = x.baseAddress else { return }
        if portable { eaw_silu_portable(p, x.count) } else { eaw_silu(p, x.count) }
    }

    /// `x[i] = exp(x[i] - shift)` in place; returns the sum (a softmax row before its division).
    public static func expShiftedSum(_ x: UnsafeMutableBufferPointer<Float>, shift: Float, portable: Bool = false) -> Float {
        guard let p = x.baseAddress else { return 0 }
        return portable ? eaw_exp_shifted_sum_portable(p, x.count, shift) : eaw_exp_shifted_sum(p, x.count, shift)
    }
}
