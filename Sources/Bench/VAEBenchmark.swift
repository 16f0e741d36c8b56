import Foundation
import Runner
import Safetensors
import WeightOps

/// Synthetic input and the timed stage of `ea-weights bench vae`: the SD VAE that PixArt-XL-2 ships
/// (AutoencoderKL, block_out_channels 128/256/512/512, two ResNets per block, a mid-block attention), with
/// random F32 decoder weights, decoding frames as the pipeline does, one at a time.
public enum VAEBenchmark {
    public static let sd = VAEConfig(blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2)

    /// The decoder's tensors (diffusers' AutoencoderKL names), in name order.
    public static func shapes(_ c: VAEConfig) -> [(name: String, shape: [Int])] {
        var t: [(String, [Int])] = []
        func conv(_ name: String, out: Int, in n: Int, kernel k: Int) {
            t.append((name + ".weight", [out, n, k, k]))
            t.append((name + ".bias", [out]))
        }
        func norm(_ name: String, _ channels: Int) {
            t.append((name + ".weight", [channels]))
            t.append((name + ".bias", [channels]))
        }
        func resnet(_ name: String, in n: Int, out: Int) {
            norm(name + ".norm1", n)
            conv(name + ".conv1", out: out, in: n, kernel: 3)
            norm(name + ".norm2", out)
            conv(name + ".conv2", out: out, in: out, kernel: 3)
            if n != out { conv(name + ".conv_shortcut", out: out, in: n, kernel: 1) }
        }
        let channels = c.blockOutChannels, top = channels.last!, latent = c.latentChannels
        conv("post_quant_conv", out: latent, in: latent, kernel: 1)
        conv("decoder.conv_in", out: top, in: latent, kernel: 3)
        for i in 0..<2 { resnet("decoder.mid_block.resnets.\(i)", in: top, out: top) }
        if c.midBlockAttention {
            let a = "decoder.mid_block.attentions.0"
            norm(a + ".group_norm", top)
            for proj in ["to_q", "to_k", "to_v", "to_out.0"] {
                t.append((a + ".\(proj).weight", [top, top]))
                t.append((a + ".\(proj).bias", [top]))
            }
        }
        var previous = top
        for (i, out) in channels.reversed().enumerated() {
            for j in 0...c.layersPerBlock { resnet("decoder.up_blocks.\(i).resnets.\(j)", in: j == 0 ? previous : out, out: out) }
            if i < channels.count - 1 { conv("decoder.up_blocks.\(i).upsamplers.0.conv", out: out, in: out, kernel: 3) }
            previous = out
        }
        norm("decoder.conv_norm_out", channels[0])
        conv("decoder.conv_out", out: c.outChannels, in: channels[0], kernel: 3)
        return t.sorted { $0.0 < $1.0 }
    }

    /// FLOPs of decoding one frame of `height` × `width` pixels: the convolutions (2·out·in·k² per output pixel)
    /// and the mid-block attention (its four projections and two products over the h·w tokens).
    public static func flops(_ c: VAEConfig, height: Int, width: Int) -> Double {
        let channels = c.blockOutChannels, top = Double(channels.last!)
        var side = Double(height / c.spatialScale) * Double(width / c.spatialScale)   // pixels at this resolution
        var total = 0.0
        func conv(out: Double, in n: Double, kernel k: Double) { total += 2 * out * n * k * k * side }
        func resnet(in n: Double, out: Double) {
            conv(out: out, in: n, kernel: 3)
            conv(out: out, in: out, kernel: 3)
            if n != out { conv(out: out, in: n, kernel: 1) }
        }
        conv(out: Double(c.latentChannels), in: Double(c.latentChannels), kernel: 1)
        conv(out: top, in: Double(c.latentChannels), kernel: 3)
        resnet(in: top, out: top)
        resnet(in: top, out: top)
        if c.midBlockAttention { total += 4 * 2 * side * top * top + 2 * 2 * side * side * top }
        var previous = top
        for (i, out) in channels.reversed().map(Double.init).enumerated() {
            for j in 0...c.layersPerBlock { resnet(in: j == 0 ? previous : out, out: out) }
            if i < channels.count - 1 {
                side *= 4
                conv(out: out, in: out, kernel: 3)
            }
            previous = out
        }
        conv(out: Double(c.outChannels), in: Double(channels[0]), kernel: 3)
        return total
    }

    /// Writes `config.json` and `diffusion_pytorch_model.safetensors` (F32) into `folder`, unless a complete
    /// set for the same config is there. Returns whether it wrote them.
    @discardableResult
    public static func synthesize(in folder: String, config c: VAEConfig, progress: ProgressHandler? = nil) throws -> Bool {
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        let weights = (folder as NSString).appendingPathComponent("diffusion_pytorch_model.safetensors")
        if (try? VAEConfig(contentsOf: configPath)) == c, (try? SafetensorsFile(path: weights)) != nil { return false }
        try BenchFolder.create(folder)
        let tensors = RandomWeights.tensors(shapes(c), dtype: .f32, seed: 0x5DEE_CE66_D1CE_4E5B) { name, shape in
            name.contains("norm") && shape.count == 1 && name.hasSuffix(".weight")
        }
        try CheckpointStreamer.write(to: weights, tensors: tensors, metadata: ["format": "pt"],
                                     progress: progress.map { p in { p("vae", $0, $1) } })
        let json = """
        {"_class_name": "AutoencoderKL", "_diffusers_version": "0.27.0", "act_fn": "silu", \
        "block_out_channels": [\(c.blockOutChannels.map(String.init).joined(separator: ", "))], \
        "down_block_types": [\(c.blockOutChannels.map { _ in "\"DownEncoderBlock2D\"" }.joined(separator: ", "))], \
        "up_block_types": [\(c.blockOutChannels.map { _ in "\"UpDecoderBlock2D\"" }.joined(separator: ", "))], \
        "in_channels": 3, "out_channels": \(c.outChannels), "latent_channels": \(c.latentChannels), \
        "layers_per_block": \(c.layersPerBlock), "norm_num_groups": \(c.normNumGroups), "sample_size": 512, \
        "scaling_factor": \(c.scalingFactor)}
        """
        try AtomicOutput.writeFile(Array(json.utf8), to: configPath)
        return true
    }

    /// Loads the decoder from `folder` (mapped), decodes one small frame to warm up, then times the decode of
    /// `frames` frames of `height` × `width` pixels from random latents.
    public static func run(folder: String, frames: Int = 1, height: Int, width: Int) throws -> StageTiming {
        let decoder = try VAEDecoder.load(folder: folder)
        let c = decoder.config, s = c.spatialScale
        func latents(_ f: Int, _ h: Int, _ w: Int) -> Tensor {
            let count = c.latentChannels * f * h * w
            return Tensor(shape: [1, c.latentChannels, f, h, w], storage: MergeBenchmark.uniform(count: count, amplitude: 1, seed: 42))
        }
        _ = try decoder.decodeVideo(latents(1, 2, 2))
        let input = latents(frames, height / s, width / s)
        return try StageTiming.measure(flops: Double(frames) * flops(c, height: height, width: width)) {
            let video = try decoder.decodeVideo(input)
            guard video.withUnsafeBufferPointer({ $0.allSatisfy(\.isFinite) }) else {
                throw BenchError.failed(path: folder, reason: "the decoded video is not finite")
            }
        }
    }
}
