import ArgumentParser
import Bench
import Foundation
import Runner
import WeightOps

struct BenchVAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "Time the SD VAE decoder on random F32 weights of the real shapes.",
        discussion: """
        Writes the VAE of PixArt-XL-2 (diffusers' AutoencoderKL: 128/256/512/512 channels, two ResNets per block, \
        a mid-block attention; the decoder's 49 M parameters in F32) into --dir, reused by later runs, loads it as \
        generate does (mapped), decodes a tiny frame to warm up, then times the decode of --frames frames of \
        --height × --width pixels, one frame at a time as EasyAnimate decodes them. It reports seconds, GFLOP/s, \
        the fraction of the FP32 sgemm peak measured just before, the OpenBLAS kernels and the peak anonymous \
        memory (RssAnon) of the stage. With --python diffusers' AutoencoderKL decodes the same number of frames \
        from the same folder, and the ratio is printed.

        Examples:
          ea-weights bench vae
          ea-weights bench vae --height 256 --width 256 --python --json
          ea-weights bench vae --channels 32,64 --height 16 --width 16    # a small VAE, for a quick check
        """
    )

    @Option(help: ArgumentHelp("block_out_channels, comma-separated (the SD VAE's by default).", valueName: "list"))
    var channels = "128,256,512,512"

    @Option(help: "Frames to decode.")
    var frames = 1

    @Option(help: "Frame height in pixels (a multiple of 8).")
    var height = 128

    @Option(help: "Frame width in pixels (a multiple of 8).")
    var width = 128

    @OptionGroup var options: StageBenchOptions

    func validate() throws {
        guard let config, config.blockOutChannels.allSatisfy({ $0 > 0 && $0 % config.normNumGroups == 0 }) else {
            throw ValidationError("--channels must be positive multiples of 32, comma-separated, not '\(channels)'")
        }
        let s = config.spatialScale
        if frames < 1 || height < s || width < s || height % s != 0 || width % s != 0 {
            throw ValidationError("--frames must be positive and --height, --width multiples of \(s)")
        }
    }

    var config: VAEConfig? {
        let list = channels.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty, list.allSatisfy({ $0 != nil }) else { return nil }
        var c = VAEBenchmark.sd
        c.blockOutChannels = list.compactMap { $0 }
        return c
    }

    func run() throws {
        guard let config else { throw ValidationError("--channels: not a list of numbers") }
        let folder = options.folder("ea-weights-bench-vae-" + config.blockOutChannels.map(String.init).joined(separator: "-"))
        let progress = FileProgress()
        try VAEBenchmark.synthesize(in: folder, config: config, progress: progress.handler)
        progress.finish()
        try MergeBenchmark.readIntoPageCache([(folder as NSString).appendingPathComponent("diffusion_pytorch_model.safetensors")])
        var report = StageReport(
            stage: "vae", work: "vae decode of \(frames) frame(s) of \(height)x\(width)",
            sizes: ["frames": frames, "height": height, "width": width],
            timing: try VAEBenchmark.run(folder: folder, frames: frames, height: height, width: width))
        try report.finish(options, pythonScript: PythonVAEReference.script,
                          arguments: [folder, String(frames), String(height), String(width)])
    }
}
