import ArgumentParser

@main
struct EAWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ea-weights",
        abstract: "Inspect, arrange, merge, convert and test-run EasyAnimate v1 checkpoints on a CPU.",
        version: EAWeightsVersion.string,
        subcommands: [InspectCommand.self, ExtractCommand.self, PrepareCommand.self, VerifyCommand.self, BenchCommand.self,
                      MergeLoRACommand.self, ExtractLoRACommand.self, ResizeLoRACommand.self, CombineLoRACommand.self,
                      SwapCommand.self, ExtractMotionModuleCommand.self, ConvertCommand.self,
                      DiffCommand.self, TokenizeCommand.self, GenerateCommand.self]
    )
}

enum EAWeightsVersion {
    static let string = "0.1.0"
}
