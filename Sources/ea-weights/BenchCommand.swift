import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure how fast ea-weights does its heavy jobs on this machine.",
        subcommands: [BenchMergeCommand.self]
    )
}
