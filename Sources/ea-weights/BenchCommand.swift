import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure how fast ea-weights does its heavy jobs on this machine.",
        discussion: """
        Each subcommand builds its own synthetic input in a temporary folder, times the job and prints the \
        throughput (--json for scripts).

        Example:
          ea-weights bench extract --size 2G
          ea-weights bench merge
          ea-weights bench convert --to int8 --python
          ea-weights bench extract-lora --python
          ea-weights bench transformer --python
          ea-weights bench t5 --python
          ea-weights bench vae --python
          ea-weights bench generate --compute int8
        """,
        subcommands: [BenchExtractCommand.self, BenchMergeCommand.self, BenchConvertCommand.self, BenchExtractLoRACommand.self,
                      BenchTransformerCommand.self, BenchT5Command.self, BenchVAECommand.self,
                      BenchGenerateCommand.self]
    )
}
