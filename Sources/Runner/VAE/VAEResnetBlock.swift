/// diffusers `ResnetBlock2D` as the VAE decoder builds it (no time embedding, `output_scale_factor` 1):
///
///     h = conv1(silu(norm1(x)));  h = conv2(silu(norm2(h)));  out = shortcut(x) + h
///
/// The shortcut is the 1×1 `conv_shortcut` when the block changes the channel count, else the identity.
struct VAEResnetBlock: Sendable {
    let norm1: GroupNorm        // (in,)
    let conv1: Conv2d           // (out, in, 3, 3)
    let norm2: GroupNorm        // (out,)
    let conv2: Conv2d           // (out, out, 3, 3)
    let convShortcut: Conv2d?   // conv_shortcut (out, in, 1, 1), when in ≠ out

    init(_ w: WeightScope, in inChannels: Int, out outChannels: Int, groups: Int) throws {
        // diffusers builds every decoder ResnetBlock2D with eps 1e-6.
        norm1 = try GroupNorm(w.scope("norm1"), groups: groups, channels: inChannels, eps: 1e-6)
        conv1 = try Conv2d(w.scope("conv1"), in: inChannels, out: outChannels, kernel: 3, padding: 1)
        norm2 = try GroupNorm(w.scope("norm2"), groups: groups, channels: outChannels, eps: 1e-6)
        conv2 = try Conv2d(w.scope("conv2"), in: outChannels, out: outChannels, kernel: 3, padding: 1)
        convShortcut = inChannels == outChannels
            ? nil : try Conv2d(w.scope("conv_shortcut"), in: inChannels, out: outChannels, kernel: 1)
    }

    /// x: [N, in, H, W] → [N, out, H, W]
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        norm1.applyWithSiLU(&h)
        h = conv1(h)
        norm2.applyWithSiLU(&h)
        h = conv2(h)
        Kernels.add(&h, convShortcut?(x) ?? x)
        return h
    }
}
