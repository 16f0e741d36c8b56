import ArgumentParser
import EANumerics
import Safetensors
import WeightOps

struct ExtractLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract-lora",
        abstract: "Make a LoRA that carries the change from BASE to TUNED (kohya's extract_lora_from_models).",
        discussion: """
        For every Linear (or 1x1 conv) weight of TUNED that differs from BASE by at least --min-diff, the \
        rank-R truncated SVD of TUNED - BASE in float32 becomes one LoRA module: lora_up = U*S, lora_down = Vh, \
        alpha = rank, as kohya's networks/extract_lora_from_models.py does, with its 0.99-quantile clamp of \
        the factors (--clamp-quantile 1 turns it off). Layers smaller than R get their own size as rank. Module \
        names are EasyAnimate's (lora_unet__..., lora_te_...), so merge-lora, generate --lora and EasyAnimate's \
        merge_lora read the result.

        BASE and TUNED are two models of the same kind and shapes: 2D or 3D transformers (motion module \
        included), motion modules, T5 encoders (file, shards or folder), or diffusers folders (both the \
        transformer and the text encoder). Changed tensors a LoRA cannot hold (biases, norms, the 2x2 patch \
        embedding) are listed as not carried. The report gives per layer the rank, the Frobenius norm of the \
        change and the fraction of it kept. One layer at a time: memory is that of the largest layer.

        Examples:
          ea-weights extract-lora models/Diffusion_Transformer/PixArt-XL-2-512x512 \\
            models/Personalized_Model/easyanimate_portrait.safetensors --rank 128 \\
            --out portrait_lora.safetensors
          ea-weights extract-lora base.safetensors tuned.safetensors --rank 32 --dtype f16 \\
            --clamp-quantile 1 --out tuned_r32.safetensors
          ea-weights extract-lora base/ tuned/ --rank 64 --dry-run
        """
    )

    @Argument(help: "The model before fine-tuning.", completion: .file())
    var base: String

    @Argument(help: "The fine-tuned model (same kind and shapes).", completion: .file())
    var tuned: String

    @Option(help: "The LoRA rank (alpha is the same).")
    var rank: Int

    @Option(help: "Skip layers whose largest |TUNED - BASE| is below this (kohya's default).")
    var minDiff: Double = 0.01

    @Option(help: "kohya's clamp of the factors at this quantile; 1 turns it off.")
    var clampQuantile: Double = 0.99

    @OptionGroup var written: LoRAOutputOptions

    func validate() throws {
        if rank < 1 { throw ValidationError("--rank must be at least 1") }
        if !(clampQuantile > 0 && clampQuantile <= 1) { throw ValidationError("--clamp-quantile must be in (0, 1]") }
        if minDiff < 0 { throw ValidationError("--min-diff must not be negative") }
    }

    func run() throws {
        var options = LoRAExtractionOptions(base: base, tuned: tuned, output: written.output ?? "", rank: rank)
        options.minDiff = minDiff
        options.clampQuantile = clampQuantile
        options.dtype = written.dtype
        options.dryRun = written.dryRun
        Interruption.install()
        // Products on one thread: the other core hashes the inputs for the provenance (measured on the real-size
        // bench with OpenBLAS's own threads: 22.6 s CPU with one, 27.3 s with two).
        BLAS.setThreadCount(1)
        let progress = FileProgress()
        defer { progress.finish() }
        let result = try CommandFailure.exitOnInterruption { try LoRAExtraction.run(options, progress: progress.handler) }
        progress.finish()
        try WeightOpsOutput.print(result, lines: result.lines, asJSON: written.json)
    }
}

extension DynamicRankRule: ExpressibleByArgument {}
