/// diffusers `UpDecoderBlock2D`: `layers_per_block + 1` ResNet blocks, then (except at the highest
/// resolution) `Upsample2D` with a convolution: nearest-neighbour 2× and a 3×3 conv.
struct VAEUpBlock: Sendable {
    let resnets: [VAEResnetBlock]   // resnets.i
    let upsampleConv: Conv2d?   // upsamplers.0.conv (out, out, 3, 3)

    init(_ w: WeightScope, in inChannels: Int, out outChannels: Int, layers: Int, groups: Int, upsample: Bool) throws {
        resnets = try (0..<layers).map { i in
            try VAEResnetBlock(w.scope("resnets").scope(i), in: i == 0 ? inChannels : outChannels, out: outChannels,
                               groups: groups)
        }
        upsampleConv = upsample
            ? try Conv2d(w.scope("upsamplers").scope(0).scope("conv"), in: outChannels, out: outChannels, kernel: 3, padding: 1)
            : nil
    }

    /// x: [N, in, H, W] → [N, out, 2H, 2W] (or [N, out, H, W] for the last block)
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for resnet in resnets { h = resnet(h) }
        if let upsampleConv { h = upsampleConv(Kernels.upsampleNearest2x(h)) }
        return h
    }
}
