import ArgumentParser
import Bench
import Foundation
import Runner
import WeightOps

struct BenchGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Time a whole video generation (T5-XXL, the denoising steps, the VAE) on random weights of the real shapes.",
        discussion: """
        Uses (and on first use writes into --dir) the weights of `bench t5`, `bench transformer` and `bench vae`: \
        T5-XXL in BF16 shards, PixArt-XL-2 with the VanillaGrid motion module in F32 (or its convert --to int8 \
        with --compute int8), the SD VAE in F32; --t5-compute int8 uses T5's convert --to int8. It reads them into the page cache, then times what generate \
        does for one video, all three models loaded (mapped) at once: load, T5 encode of the prompt and the \
        negative prompt (120 tokens each; fixed ids stand in for tokenization), --steps DPM++ steps of \
        classifier-free guidance, the VAE decode of every frame. It reports the seconds of the whole run and of \
        each part, GFLOP/s, the peak anonymous memory (RssAnon: the weights are file-backed and do not count). \
        With --python the three PyTorch stage benches run on the same files (T5 once, one transformer step, the \
        VAE on all frames) and their times are summed as steps × step + the rest (in float32 the three models \
        do not fit in one process here: T5-XXL alone is 19 GB).

        Examples:
          ea-weights bench generate                                  # 8 frames of 128x128, 10 steps
          ea-weights bench generate --compute int8 --t5-compute int8 --json
          ea-weights bench generate --python
        """
    )

    @OptionGroup var size: VideoSizeOptions

    @Option(help: "Denoising steps (DPM++).")
    var steps = 10

    @Option(help: ArgumentHelp("How the transformer's Linear layers multiply: f32, or int8 on its convert --to int8.",
                               valueName: "f32|int8"))
    var compute: ComputePrecision = .f32

    @Option(help: ArgumentHelp("How T5 multiplies: f32 (its BF16 weights widened), or int8 on its convert --to int8.", valueName: "f32|int8"))
    var t5Compute: ComputePrecision = .f32

    @OptionGroup var options: StageBenchOptions

    func validate() throws {
        if steps < 1 || steps > 1000 { throw ValidationError("--steps must be 1 to 1000") }
    }

    func run() throws {
        let t5 = T5Benchmark.xxl, transformer = TransformerBenchmark.Config(), vae = VAEBenchmark.sd
        let folders = GenerateBenchmark.Folders(
            t5: options.folder("ea-weights-bench-t5-\(t5.numLayers)x\(t5.dModel)x\(t5.dFF)"),
            transformer: options.folder("ea-weights-bench-transformer-\(transformer.blocks)x\(transformer.width)x\(transformer.heads)"),
            vae: options.folder("ea-weights-bench-vae-" + vae.blockOutChannels.map(String.init).joined(separator: "-")))
        let progress = FileProgress()
        try T5Benchmark.synthesize(in: folders.t5, config: t5, progress: progress.handler)
        try TransformerBenchmark.synthesize(in: folders.transformer, config: transformer, progress: progress.handler)
        try VAEBenchmark.synthesize(in: folders.vae, config: vae, progress: progress.handler)
        let files = try TransformerBenchmark.weights(folder: folders.transformer, compute: compute, progress: progress.handler)
        let t5Weights = try T5Benchmark.weights(folder: folders.t5, compute: t5Compute, progress: progress.handler)
        progress.finish()
        let shards = try FileManager.default.contentsOfDirectory(atPath: t5Weights).filter { $0.hasSuffix(".safetensors") }
            .map { (t5Weights as NSString).appendingPathComponent($0) }
        let weights = shards + [(files.transformer as NSString).appendingPathComponent("diffusion_pytorch_model.safetensors"),
                                files.motionModule, (folders.vae as NSString).appendingPathComponent("diffusion_pytorch_model.safetensors")]
        try MergeBenchmark.readIntoPageCache(weights)
        let bytes = weights.reduce(0) { $0 + BenchMergeCommand.fileSize($1) }
        let result = try GenerateBenchmark.run(folders, frames: size.frames, height: size.height, width: size.width, steps: steps, compute: compute,
                                              textEncoderCompute: t5Compute)
        var report = StageReport(
            stage: "generate",
            work: "generate \(size.frames) frames of \(size.height)x\(size.width), \(steps) DPM++ steps (T5 in \(t5Compute.rawValue), transformer in "
                + "\(compute.rawValue), VAE in f32; \(TerminalProgress.bytes(Int64(bytes))) of weights)",
            sizes: ["frames": size.frames, "height": size.height, "width": size.width, "steps": steps, "weight_bytes": bytes],
            timing: result.timing, parts: result.parts)
        if options.python { report.python = pythonEstimate(folders, oursSeconds: result.timing.seconds) }
        try WeightOpsOutput.print(report, lines: report.lines, asJSON: options.json)
    }

    /// PyTorch's stage benches on the same files, summed as one run would spend them.
    private func pythonEstimate(_ folders: GenerateBenchmark.Folders, oursSeconds: Double) -> BenchMergeCommand.PythonComparison {
        let threads = String(options.pythonThreads)
        let runs = [
            (PythonT5Reference.script, [folders.t5, "2", String(TransformerBenchmark.captionTokens), threads], 1.0),
            (PythonTransformerReference.script, [folders.transformer, String(size.frames), String(size.height), String(size.width), threads], Double(steps)),
            (PythonVAEReference.script, [folders.vae, String(size.frames), String(size.height), String(size.width), threads], 1.0),
        ]
        var total = 0.0
        for (script, arguments, times) in runs {
            let run = BenchMergeCommand.runPythonScript(script, arguments, oursSeconds: 1, oursPeak: 1)
            guard let seconds = run.seconds else { return run }
            total += times * seconds
        }
        return BenchMergeCommand.PythonComparison(
            library: "transformers T5EncoderModel (BF16) + \(steps) x the EasyAnimate transformer step + diffusers AutoencoderKL, timed apart and summed",
            seconds: total, speedup: total / max(oursSeconds, 1e-9))
    }
}
