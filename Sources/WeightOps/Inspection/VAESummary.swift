import Safetensors

/// The dimensions of an AutoencoderKL, read from the shapes (diffusers names, or the original Stable
/// Diffusion names for files converted from .ckpt):
///
///     encoder.conv_in.weight                          (block_out_channels[0], in_channels, 3, 3)
///     encoder.down_blocks.I.resnets.J.conv2.weight    (block_out_channels[I], …)      ldm: encoder.down.I.block.J
///     decoder.conv_in.weight                          (block_out_channels[-1], latent_channels, 3, 3)
///     decoder.conv_out.weight                         (out_channels, block_out_channels[0], 3, 3)
public struct VAESummary: Sendable, Codable, Equatable {
    /// "diffusers" or "ldm" key names.
    public var layout: String
    public var hasEncoder: Bool
    public var hasDecoder: Bool
    public var inChannels: Int?
    public var outChannels: Int?
    public var latentChannels: Int?
    /// Channels of each resolution level, highest resolution first (diffusers' `block_out_channels`).
    public var blockOutChannels: [Int]
    /// ResNet blocks per encoder level (`layers_per_block`; the decoder has one more).
    public var layersPerBlock: Int?
    public var midBlockAttention: Bool
    /// 5-D convolution weights: a video VAE (not the SD VAE of EasyAnimate v1).
    public var has3DConvolutions: Bool

    init(_ view: KeyView, config: JSONValue?, notes: inout [String]) {
        let isLDM = VAEKeys.layout(of: view) == .ldm
        layout = isLDM ? VAEKeys.Layout.ldm.rawValue : VAEKeys.Layout.diffusers.rawValue
        hasEncoder = view.keys.contains { $0.hasPrefix("encoder.") }
        hasDecoder = view.keys.contains { $0.hasPrefix("decoder.") }
        inChannels = view.dim("encoder.conv_in.weight", 1)
        outChannels = view.dim("decoder.conv_out.weight", 0)
        // The encoder's conv_out holds mean and log-variance: 2 × latent channels.
        latentChannels = view.dim("decoder.conv_in.weight", 1)
            ?? view.dim("post_quant_conv.weight", 0)
            ?? view.dim("encoder.conv_out.weight", 0).map { $0 / 2 }

        let down = isLDM ? "encoder.down." : "encoder.down_blocks."
        let up = isLDM ? "decoder.up." : "decoder.up_blocks."
        let resnets = isLDM ? "block." : "resnets."
        let encoderLevels = KeyPatterns.indices(view.keys, after: down)
        if !encoderLevels.isEmpty {
            blockOutChannels = encoderLevels.compactMap { view.dim("\(down)\($0).\(resnets)0.conv2.weight", 0) }
            layersPerBlock = KeyPatterns.indices(view.keys, after: "\(down)\(encoderLevels[0]).\(resnets)").count
        } else {
            // Decoder only: diffusers numbers up blocks from the lowest resolution, LDM from the highest.
            let levels = KeyPatterns.indices(view.keys, after: up)
            let channels = levels.compactMap { view.dim("\(up)\($0).\(resnets)0.conv2.weight", 0) }
            blockOutChannels = isLDM ? channels : channels.reversed()
            let count = levels.first.map { KeyPatterns.indices(view.keys, after: "\(up)\($0).\(resnets)").count } ?? 0
            layersPerBlock = count > 0 ? count - 1 : nil
        }
        midBlockAttention = view.keys.contains {
            $0.hasPrefix("encoder.mid_block.attentions.") || $0.hasPrefix("decoder.mid_block.attentions.")
                || $0.hasPrefix("encoder.mid.attn_1.") || $0.hasPrefix("decoder.mid.attn_1.")
        }
        has3DConvolutions = view.keys.contains { view.shape($0)?.count == 5 }

        if let config {
            crossCheck("latent_channels", weights: latentChannels, config: config.int("latent_channels"), notes: &notes)
            crossCheck("layers_per_block", weights: layersPerBlock, config: config.int("layers_per_block"), notes: &notes)
            let configured = config["block_out_channels"]?.arrayValue?.compactMap { $0.intValue.map(Int.init) }
            if let configured, !blockOutChannels.isEmpty, configured != blockOutChannels {
                notes.append("config.json says block_out_channels \(configured) but the weights have \(blockOutChannels)")
            }
        }
    }
}
