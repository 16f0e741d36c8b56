import ArgumentParser
import EANumerics
import Safetensors
import WeightOps

struct MergeLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge-lora",
        abstract: "Merge kohya LoRAs into a transformer, a T5 encoder or a whole diffusers folder.",
        discussion: """
        Reproduces EasyAnimate's merge_lora (easyanimate/utils/lora_utils.py): for each LoRA module, \
        W += MULT * (alpha / rank) * (up @ down) in float32 (alpha = rank when the file has none; 1x1 conv \
        LoRAs too), then stores the result in the output dtype. Modules are matched against BASE's real \
        key list (lora_unet__transformer_blocks_0_attn1_to_q -> transformer_blocks.0.attn1.to_q.weight), \
        motion-module and T5 (lora_te_...) names included.

        BASE may be a 2D or 3D transformer (the LoRA's lora_unet part is applied), a T5 encoder as one file, \
        a sharded folder or its index (the lora_te part; OUT keeps the same shards with a new index), or a \
        diffusers folder (both parts; OUT is a complete new folder, other components hard-linked). Several \
        LoRAs apply in one pass, in order: every --lora, then every --unmerge (which subtracts).

        The report says "applied N/M LoRA modules" and lists unmatched modules by group (transformer \
        spatial, temporal, text encoder) and shape mismatches; --strict makes those errors. Non-finite \
        results and F16 overflow are errors naming the tensor, and nothing is written. The output's metadata \
        records the base and LoRA files with their SHA-256 and multipliers (modelspec.merged_from).

        Examples:
          ea-weights merge-lora models/Diffusion_Transformer/PixArt-XL-2-512x512 \\
            --lora models/Personalized_Model/easyanimate_portrait_lora.safetensors:0.55 \\
            --out pixart-portrait
          ea-weights merge-lora transformer3d.safetensors --lora style.safetensors:0.7 \\
            --lora detail.safetensors:0.3 --out styled.safetensors --dtype f16
          ea-weights merge-lora styled.safetensors --unmerge detail.safetensors:0.3 \\
            --out style-only.safetensors
          ea-weights merge-lora text_encoder/ --lora lora.safetensors --dry-run --strict
        """
    )

    @Argument(help: "The checkpoint to merge into: a file, a folder, an index or a diffusers folder.", completion: .file())
    var base: String

    @Option(name: .customLong("lora"), help: ArgumentHelp("A LoRA to merge, with its multiplier (default 1).", valueName: "file[:mult]"))
    var loras: [String] = []

    @Option(name: .customLong("unmerge"), help: ArgumentHelp("A LoRA to take out again: the same as --lora FILE:-MULT.", valueName: "file[:mult]"))
    var unmerges: [String] = []

    @Option(name: .customLong("out"), help: ArgumentHelp("Where to write the result (a file for a file, else a new folder).", valueName: "path"))
    var output: String?

    @Option(help: "Dtype of the output: keep (each tensor's own), f32, f16 or bf16 (all floating-point tensors).")
    var dtype: OutputDType = .keep

    @Flag(help: "Print the report and write nothing.")
    var dryRun = false

    @Flag(help: "Make unmatched LoRA modules and shape mismatches errors.")
    var strict = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if loras.isEmpty && unmerges.isEmpty { throw ValidationError("give at least one --lora FILE[:MULT] (or --unmerge)") }
        if output == nil && !dryRun { throw ValidationError("--out is required (or --dry-run)") }
    }

    func run() throws {
        let specs = loras.map { LoRASpec(parsing: $0) } + unmerges.map { LoRASpec(parsing: $0).negated }
        var options = LoRAMergeOptions(base: base, loras: specs, output: output ?? "")
        options.dtype = dtype
        options.dryRun = dryRun
        options.strict = strict
        Interruption.install()
        // The LoRA products are small (rank × width) and the other core hashes the inputs while the output is
        // written, so products stay on one thread (with OpenBLAS's own workers, which spun between calls, the
        // real-size bench merge from a cold cache took 6.9-7.1 s instead of 5.1-5.4 s).
        BLAS.setThreadCount(1)
        let progress = FileProgress()
        defer { progress.finish() }
        let result = try CommandFailure.exitOnInterruption { try LoRAMerge.run(options, progress: progress.handler) }
        progress.finish()
        try WeightOpsOutput.print(result, lines: result.lines, asJSON: json)
    }
}

extension OutputDType: ExpressibleByArgument {}
