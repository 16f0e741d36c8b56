import ArgumentParser
import WeightOps

/// What extract-lora, resize-lora and combine-lora write, and how they report it.
struct LoRAOutputOptions: ParsableArguments {
    @Option(help: "Dtype of the factors: f32, f16 or bf16 (alphas are F32).")
    var dtype: LoRADType = .f32

    @Option(name: .customLong("out"), help: ArgumentHelp("The LoRA file to write.", valueName: "lora"))
    var output: String?

    @Flag(help: "Print the report and write nothing.")
    var dryRun = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if output == nil && !dryRun { throw ValidationError("--out is required (or --dry-run)") }
    }
}

extension LoRADType: ExpressibleByArgument {}
