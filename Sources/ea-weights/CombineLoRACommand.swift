import ArgumentParser
import Safetensors
import WeightOps

struct CombineLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "combine-lora",
        abstract: "Combine several LoRAs into one of a given rank (kohya's svd_merge_lora).",
        discussion: """
        Per module the sum of MULT * (alpha / rank) * up @ down over the inputs that have it (modules in only \
        some inputs are kept), re-decomposed at rank R exactly (from QR factorizations of the stacked factors, \
        so the sum is never formed when it is of low rank): lora_up = U*S, lora_down = Vh, alpha = rank. A \
        module whose sum has a lower rank than R keeps that rank. Merging the result gives the same change as \
        merging every input at its multiplier, up to what rank R cannot hold; the report gives per module the \
        fraction of the Frobenius norm kept. kohya clamps the factors at the 0.99 quantile; \
        --clamp-quantile 0.99 does the same (off by default).

        Examples:
          ea-weights combine-lora style.safetensors:0.7 detail.safetensors:0.3 --rank 64 --out mix.safetensors
          ea-weights combine-lora a.safetensors b.safetensors:-1 --rank 32 --dry-run
        """
    )

    @Argument(help: ArgumentHelp("The LoRAs, each with its multiplier (default 1).", valueName: "lora[:mult]"), completion: .file())
    var loras: [String]

    @Option(help: "The rank of the result (alpha is the same).")
    var rank: Int

    @OptionGroup var written: LoRAOutputOptions

    @Option(help: "kohya's clamp of the factors at this quantile; 1 (the default) turns it off.")
    var clampQuantile: Double = 1

    func validate() throws {
        if loras.isEmpty { throw ValidationError("give at least one LoRA FILE[:MULT]") }
        if rank < 1 { throw ValidationError("--rank must be at least 1") }
        if !(clampQuantile > 0 && clampQuantile <= 1) { throw ValidationError("--clamp-quantile must be in (0, 1]") }
    }

    func run() throws {
        var options = LoRACombineOptions(inputs: loras.map { LoRASpec(parsing: $0) }, output: written.output ?? "", rank: rank)
        options.dtype = written.dtype
        options.clampQuantile = clampQuantile
        options.dryRun = written.dryRun
        Interruption.install()
        let progress = FileProgress()
        defer { progress.finish() }
        let result = try CommandFailure.exitOnInterruption { try LoRACombine.run(options, progress: progress.handler) }
        progress.finish()
        try WeightOpsOutput.print(result, lines: result.lines, asJSON: written.json)
    }
}
