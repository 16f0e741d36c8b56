import ArgumentParser
import Foundation
import Safetensors
import WeightOps

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove a models/ tree is complete and unchanged since `prepare`.",
        discussion: """
        Checks the tree against models/manifest.json and EasyAnimate's layout: files missing, extra, changed \
        (size, or SHA-256) or invalid (every .safetensors header and index is validated); files of the wrong \
        kind for their folder; a motion module or personalized transformer that does not fit the PixArt \
        transformer (block count and width); a LoRA whose modules match no weight of the transformer or the \
        text encoder. Exit status 0 only when all is well, 1 when anything is wrong.

        --fast skips hashing (sizes, headers, kinds and fit only): seconds instead of minutes for 15 GB.

        Examples:
          ea-weights verify --models models
          ea-weights verify --models models --fast --json
        """
    )

    @Option(help: ArgumentHelp("The models folder.", valueName: "dir"))
    var models: String

    @Flag(help: "Skip hashing; check sizes, headers, kinds and fit.")
    var fast = false

    @Flag(help: "Print the report as one JSON object for scripts.")
    var json = false

    func run() throws {
        Interruption.install()
        var options = VerifyOptions(models: models)
        options.fast = fast
        options.progress = TerminalProgress(label: "hashing", total: nil)
        let report = try CommandFailure.exitOnInterruption { try ModelsVerification.verify(options) }
        if json {
            print(try CommandOutput.json(report))
        } else {
            print(report.text(), terminator: "")
        }
        if !report.ok { throw ExitCode(1) }
    }
}
