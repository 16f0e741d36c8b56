import Foundation
import Safetensors

/// The decoder half of a diffusers `AutoencoderKL` config (`vae/config.json`).
///
/// The SD VAE of EasyAnimate v1 has `block_out_channels` [128, 256, 512, 512], `layers_per_block` 2,
/// `latent_channels` 4, `norm_num_groups` 32, `scaling_factor` 0.18215; nothing here assumes those values.
public struct VAEConfig: Sendable, Equatable {
    /// Channels per resolution level, highest resolution first; the decoder walks them in reverse.
    public var blockOutChannels: [Int]
    /// ResNet blocks per encoder level; each decoder up block has one more.
    public var layersPerBlock: Int
    public var latentChannels: Int
    public var outChannels: Int
    public var normNumGroups: Int
    public var scalingFactor: Double
    /// diffusers' `mid_block_add_attention` (true unless a config turns it off).
    public var midBlockAttention: Bool

    public init(blockOutChannels: [Int], layersPerBlock: Int, latentChannels: Int = 4, outChannels: Int = 3,
                normNumGroups: Int = 32, scalingFactor: Double = 0.18215, midBlockAttention: Bool = true) {
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.latentChannels = latentChannels
        self.outChannels = outChannels
        self.normNumGroups = normNumGroups
        self.scalingFactor = scalingFactor
        self.midBlockAttention = midBlockAttention
    }

    /// Pixels per latent along each side: 2^(levels - 1).
    public var spatialScale: Int { 1 << max(0, blockOutChannels.count - 1) }

    /// Reads `config.json`; unknown keys are ignored (they configure the encoder or training), values the
    /// decoder cannot honour are errors.
    public init(contentsOf path: String) throws {
        try self.init(json: ConfigFile.json(at: path, what: "the VAE config"), path: path)
    }

    public init(json: JSONValue, path: String) throws {
        func fail(_ reason: String) -> RunnerError { RunnerError.invalidConfig(path: path, reason: reason) }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let field = json[key] else {
                if let value { return value }
                throw fail("missing '\(key)'")
            }
            guard let v = field.intValue, v > 0, v < 1 << 20 else { throw fail("'\(key)' must be a positive integer") }
            return Int(v)
        }
        guard let channels = json["block_out_channels"]?.arrayValue, !channels.isEmpty else {
            throw fail("missing 'block_out_channels'")
        }
        blockOutChannels = try channels.map { value in
            guard let v = value.intValue, v > 0, v < 1 << 20 else { throw fail("'block_out_channels' must hold positive integers") }
            return Int(v)
        }
        layersPerBlock = try int("layers_per_block", default: 1)
        latentChannels = try int("latent_channels", default: 4)
        outChannels = try int("out_channels", default: 3)
        normNumGroups = try int("norm_num_groups", default: 32)
        if let field = json["scaling_factor"] {
            guard let v = field.doubleValue, v > 0, v.isFinite else { throw fail("'scaling_factor' must be a positive number") }
            scalingFactor = v
        } else {
            scalingFactor = 0.18215
        }
        if let field = json["mid_block_add_attention"] {
            guard case let .bool(v) = field else { throw fail("'mid_block_add_attention' must be true or false") }
            midBlockAttention = v
        } else {
            midBlockAttention = true
        }
        if let act = json["act_fn"]?.stringValue, act != "silu" {
            throw fail("act_fn '\(act)' is not supported (the runner implements AutoencoderKL with 'silu')")
        }
        if let types = json["up_block_types"]?.arrayValue {
            guard types.count == blockOutChannels.count else {
                throw fail("'up_block_types' has \(types.count) entries but 'block_out_channels' has \(blockOutChannels.count)")
            }
            if let other = types.first(where: { $0.stringValue != "UpDecoderBlock2D" }) {
                throw fail("up block type \(other.compactText) is not supported (only UpDecoderBlock2D)")
            }
        }
        if let bad = blockOutChannels.first(where: { $0 % normNumGroups != 0 }) {
            throw fail("\(bad) channels cannot be split into \(normNumGroups) groups ('norm_num_groups')")
        }
    }
}
