import Foundation
import Safetensors

/// The decoder of diffusers' `AutoencoderKL` (0.27.0): `post_quant_conv`, then `Decoder`:
///
///     conv_in → mid block (resnet, attention, resnet) → up blocks (lowest resolution first)
///             → conv_norm_out → SiLU → conv_out
///
/// built from `vae/config.json` with the weights bound by checkpoint key. Only the decoder is loaded: text-to-video
/// never encodes, so the encoder's weights (`encoder.*`, `quant_conv.*`) are left in the file and counted in
/// `ignoredEncoderKeys`, while any other unbound key is an error.
public struct VAEDecoder: Sendable {
    public let config: VAEConfig
    /// Encoder weights present in the checkpoint that the decoder deliberately does not load.
    public let ignoredEncoderKeys: [String]

    let postQuantConv: Conv2d          // post_quant_conv (latent, latent, 1, 1)
    let convIn: Conv2d                 // decoder.conv_in (C[-1], latent, 3, 3)
    let midResnets: [VAEResnetBlock]   // decoder.mid_block.resnets.{0,1} at C[-1]
    let midAttention: VAEAttentionBlock?   // decoder.mid_block.attentions.0 (mid_block_add_attention)
    let upBlocks: [VAEUpBlock]         // decoder.up_blocks.i: C[-1-i] channels out
    let convNormOut: GroupNorm         // decoder.conv_norm_out (C[0],)
    let convOut: Conv2d                // decoder.conv_out (out, C[0], 3, 3)

    /// Keys of the encoder half of an AutoencoderKL checkpoint.
    public static func isEncoderKey(_ key: String) -> Bool {
        key.hasPrefix("encoder.") || key.hasPrefix("quant_conv.")
    }

    /// Loads a diffusers `vae/` folder: `config.json` and the weights `ComponentWeights` chooses.
    public static func load(folder: String) throws -> VAEDecoder {
        let folderURL = URL(fileURLWithPath: folder)
        let config = try VAEConfig(contentsOf: folderURL.appendingPathComponent("config.json").path)
        let store = WeightStore(try ComponentWeights(folder: folder, library: .diffusers).open())
        return try load(store, config: config)
    }

    /// Builds the decoder from `weights` (an AutoencoderKL checkpoint): every decoder weight must be there with
    /// its configured shape, and nothing but the encoder may be left over.
    public static func load(_ weights: WeightStore, config: VAEConfig) throws -> VAEDecoder {
        // The encoder is not needed to decode; ignoring it is the one deliberate exception.
        try weights.load(ignoring: isEncoderKey) { try VAEDecoder($0, config: config) }
    }

    private init(_ w: WeightScope, config: VAEConfig) throws {
        self.config = config
        let channels = config.blockOutChannels
        guard let top = channels.last, let bottom = channels.first else {
            throw RunnerError.invalidConfig(path: w.store.name, reason: "the VAE config has no 'block_out_channels'")
        }
        let (latent, groups) = (config.latentChannels, config.normNumGroups)
        postQuantConv = try Conv2d(w.scope("post_quant_conv"), in: latent, out: latent, kernel: 1)
        let d = w.scope("decoder")
        convIn = try Conv2d(d.scope("conv_in"), in: latent, out: top, kernel: 3, padding: 1)
        let mid = d.scope("mid_block")
        midResnets = try (0..<2).map { try VAEResnetBlock(mid.scope("resnets").scope($0), in: top, out: top, groups: groups) }
        midAttention = config.midBlockAttention
            ? try VAEAttentionBlock(mid.scope("attentions").scope(0), channels: top, groups: groups) : nil
        var blocks: [VAEUpBlock] = []
        var previous = top
        for (i, out) in channels.reversed().enumerated() {
            blocks.append(try VAEUpBlock(d.scope("up_blocks").scope(i), in: previous, out: out,
                                         layers: config.layersPerBlock + 1, groups: groups,
                                         upsample: i < channels.count - 1))
            previous = out
        }
        upBlocks = blocks
        convNormOut = try GroupNorm(d.scope("conv_norm_out"), groups: groups, channels: bottom, eps: 1e-6)
        convOut = try Conv2d(d.scope("conv_out"), in: bottom, out: config.outChannels, kernel: 3, padding: 1)
        ignoredEncoderKeys = w.store.unusedKeys().filter(VAEDecoder.isEncoderKey)
    }

    /// `AutoencoderKL.decode(z).sample`: latents [N, latent, h, w], already divided by `scaling_factor`, →
    /// images [N, out, h·s, w·s] in the VAE's own range (about [-1, 1]). Decodes one sample at a time, which is
    /// exact (every layer is per sample) and bounds memory.
    public func decode(_ latents: Tensor) throws -> Tensor {
        try checkLatents(latents.shape, rank: 4, channelAxis: 1)
        let n = latents.shape[0]
        return Tensor.concatenate((0..<n).map { decodeSample(latents.slice(first: $0..<($0 + 1))) })
    }

    /// EasyAnimate's `decode_latents` for a 2D VAE: latents [B, latent, F, h, w] as the sampler leaves them →
    /// video [B, out, F, h·s, w·s] in [0, 1]. Each frame is decoded on its own (as EasyAnimate does, one frame
    /// per `vae.decode`), so memory stays that of one frame; `progress(done, total)` is called after each frame,
    /// and an error it throws (a cancellation) stops the decode.
    public func decodeVideo(_ latents: Tensor, progress: (Int, Int) throws -> Void = { _, _ in }) throws -> Tensor {
        try checkLatents(latents.shape, rank: 5, channelAxis: 1)
        let (b, c, f, h, w) = (latents.shape[0], latents.shape[1], latents.shape[2], latents.shape[3], latents.shape[4])
        let scale = config.spatialScale
        let (oh, ow, oc) = (h * scale, w * scale, config.outChannels)
        var video = Tensor(zeros: [b, oc, f, oh, ow])
        // EasyAnimate: `latents = 1 / 0.18215 * latents`: a multiplication by the reciprocal, as a float32 scalar.
        let inverseScale = Float(1 / config.scalingFactor)
        let plane = h * w, outPlane = oh * ow
        for bi in 0..<b {
            for fi in 0..<f {
                var frame = Tensor(uninitialized: [1, c, h, w])   // every element is written below
                latents.withUnsafeBufferPointer { src in
                    frame.withUnsafeMutableBufferPointer { dst in
                        for ci in 0..<c {
                            let from = ((bi * c + ci) * f + fi) * plane
                            for i in 0..<plane { dst[ci * plane + i] = src[from + i] * inverseScale }
                        }
                    }
                }
                let image = decodeSample(frame)   // [1, out, oh, ow]
                image.withUnsafeBufferPointer { src in
                    video.withUnsafeMutableBufferPointer { dst in
                        for ci in 0..<oc {
                            let to = ((bi * oc + ci) * f + fi) * outPlane
                            // `(video / 2 + 0.5).clamp(0, 1)`
                            for i in 0..<outPlane { dst[to + i] = min(max(src[ci * outPlane + i] / 2 + 0.5, 0), 1) }
                        }
                    }
                }
                try progress(bi * f + fi + 1, b * f)
            }
        }
        return video
    }

    /// One latent [1, latent, h, w] → [1, out, h·s, w·s].
    func decodeSample(_ z: Tensor) -> Tensor {
        var x = convIn(postQuantConv(z))
        x = midResnets[0](x)
        if let midAttention { x = midAttention(x) }
        x = midResnets[1](x)
        for block in upBlocks { x = block(x) }
        convNormOut.applyWithSiLU(&x)
        return convOut(x)
    }

    private func checkLatents(_ shape: [Int], rank: Int, channelAxis: Int) throws {
        let expected = rank == 4 ? "[N, \(config.latentChannels), h, w]" : "[B, \(config.latentChannels), F, h, w]"
        guard shape.count == rank, shape[channelAxis] == config.latentChannels, shape.allSatisfy({ $0 > 0 }) else {
            throw RunnerError.invalidInput("VAE latents have shape \(shape), the decoder expects \(expected)")
        }
    }
}
