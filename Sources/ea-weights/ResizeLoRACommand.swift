import ArgumentParser
import Safetensors
import WeightOps

struct ResizeLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resize-lora",
        abstract: "Give a LoRA a lower rank, fixed or per module (kohya's resize_lora).",
        discussion: """
        Per module the SVD of up @ down (exact, from QR factorizations of the two factors), truncated to \
        --rank R, or to the rank a dynamic rule picks from the singular values S, as kohya's \
        networks/resize_lora.py defines them: sv_ratio keeps S > S[0] / X, sv_fro enough for X of the \
        Frobenius norm, sv_cumulative enough for X of sum(S) (kohya's rank choice, its +1 included). With \
        --dynamic, --rank is the largest rank allowed. No module gets a rank above its own. alpha is rescaled \
        so that the effective change (alpha / rank) * up @ down keeps its scale. The report gives per module \
        the new rank and the fraction of the Frobenius norm kept.

        Examples:
          ea-weights resize-lora portrait_lora.safetensors --rank 32 --out portrait_r32.safetensors
          ea-weights resize-lora portrait_lora.safetensors --dynamic sv_fro --param 0.9 --rank 64 \\
            --out portrait_fro90.safetensors --dtype f16
        """
    )

    @Argument(help: "The LoRA to resize.", completion: .file())
    var lora: String

    @Option(help: "The new rank (with --dynamic: the largest allowed).")
    var rank: Int?

    @Option(help: "Pick each module's rank by a rule: sv_ratio, sv_fro or sv_cumulative.")
    var dynamic: DynamicRankRule?

    @Option(help: "The rule's parameter (sv_ratio: a ratio > 1; sv_fro, sv_cumulative: a fraction).")
    var param: Double?

    @OptionGroup var written: LoRAOutputOptions

    func validate() throws {
        if dynamic == nil && rank == nil { throw ValidationError("give --rank R, or --dynamic RULE --param X [--rank MAX]") }
        if dynamic != nil && param == nil { throw ValidationError("--dynamic needs --param") }
        if dynamic == nil && param != nil { throw ValidationError("--param goes with --dynamic") }
        if let rank, rank < 1 { throw ValidationError("--rank must be at least 1") }
    }

    func run() throws {
        var options = LoRAResizeOptions(input: lora, output: written.output ?? "", rank: rank)
        options.dynamic = dynamic
        options.param = param
        options.dtype = written.dtype
        options.dryRun = written.dryRun
        Interruption.install()
        let progress = FileProgress()
        defer { progress.finish() }
        let result = try CommandFailure.exitOnInterruption { try LoRAResize.run(options, progress: progress.handler) }
        progress.finish()
        try WeightOpsOutput.print(result, lines: result.lines, asJSON: written.json)
    }
}
