import ArgumentParser
import Bench
import Foundation
import Runner
import WeightOps

struct BenchTransformerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transformer",
        abstract: "Time one denoising step (the CFG batch of two) of the 3D transformer on random F32 weights of the real shapes.",
        discussion: """
        Writes EasyAnimate v1's transformer into --dir, reused by later runs: PixArt-XL-2 as a diffusers \
        transformer/ folder (28 blocks, width 1152, 16 heads of 72; 2.4 GB F32) and the VanillaGrid motion module \
        as its own file (one temporal block of two attentions per PixArt block, with their 4096-frame position \
        tables; 4.3 GB F32), with the yaml that joins them. It reads them into the page cache, loads them as \
        generate does (mapped, not copied), evaluates a tiny input to warm up, then times one evaluation of a \
        batch of two (the prompt and the negative prompt of classifier-free guidance) on --frames latent frames \
        of a --height × --width video. It reports seconds, GFLOP/s, the fraction of the FP32 sgemm peak measured \
        just before, the OpenBLAS kernels and the peak anonymous memory (RssAnon) of the step. With --python \
        diffusers' Transformer2DModel, with the motion module written in PyTorch, runs the same step on the \
        same files, and the ratio is printed. --compute int8 converts the weights once (convert --to int8, \
        128×128 blocks, into --dir/…/int8) and times the step with int8 Linear layers; --python still times \
        PyTorch's float32 step.

        Examples:
          ea-weights bench transformer                               # 8 frames of 128x128
          ea-weights bench transformer --height 256 --width 256 --python --json
          ea-weights bench transformer --compute int8 --python       # int8 weights and activations (VNNI)
          ea-weights bench transformer --blocks 2 --channels 288 --heads 4     # a small model, for a quick check
        """
    )

    @Option(help: "PixArt blocks (each with its motion module).")
    var blocks = 28

    @Option(help: "Token width (the PixArt-XL-2 hidden size).")
    var channels = 1152

    @Option(help: "Attention heads of the PixArt blocks.")
    var heads = 16

    @OptionGroup var size: VideoSizeOptions

    @Option(help: ArgumentHelp("How the Linear layers multiply: f32, or int8 on the weights' convert --to int8 (written into --dir on first use).",
                               valueName: "f32|int8"))
    var compute: ComputePrecision = .f32

    @OptionGroup var options: StageBenchOptions

    func validate() throws {
        if blocks < 1 || heads < 1 || channels < 32 || channels % heads != 0 || channels % 32 != 0 {
            throw ValidationError("--blocks and --heads must be positive, --channels a multiple of 32 and of --heads")
        }
    }

    func run() throws {
        var config = TransformerBenchmark.Config()
        config.blocks = blocks
        config.width = channels
        config.heads = heads
        let folder = options.folder("ea-weights-bench-transformer-\(blocks)x\(channels)x\(heads)")
        let progress = FileProgress()
        try TransformerBenchmark.synthesize(in: folder, config: config, progress: progress.handler)
        progress.finish()
        let paths = TransformerBenchmark.Paths(folder: folder)
        let files = try TransformerBenchmark.weights(folder: folder, compute: compute, progress: progress.handler)
        progress.finish()
        let weights = [(files.transformer as NSString).appendingPathComponent("diffusion_pytorch_model.safetensors"), files.motionModule]
        try MergeBenchmark.readIntoPageCache(weights)
        let bytes = weights.reduce(0) { $0 + BenchMergeCommand.fileSize($1) }
        var report = StageReport(
            stage: "transformer",
            work: "transformer step (CFG batch 2) of \(size.frames) frames of \(size.height)x\(size.width), \(blocks) blocks "
                + "(\(compute == .int8 ? "int8" : "F32") weights, \(TerminalProgress.bytes(Int64(bytes))))",
            sizes: ["blocks": blocks, "frames": size.frames, "height": size.height, "width": size.width, "weight_bytes": bytes],
            timing: try TransformerBenchmark.run(folder: folder, frames: size.frames, height: size.height, width: size.width, compute: compute))
        try report.finish(options, pythonScript: PythonTransformerReference.script,
                          arguments: [folder, String(size.frames), String(size.height), String(size.width)])
    }
}
