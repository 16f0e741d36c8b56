import ArgumentParser
import Safetensors

@main
struct EAWeights: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ea-weights",
        abstract: "Inspect, arrange, merge, convert and test-run EasyAnimate v1 checkpoints on a CPU.",
        version: EAWeightsVersion.string,
        subcommands: [InspectCommand.self, ExtractCommand.self, PrepareCommand.self, VerifyCommand.self, BenchCommand.self,
                      MergeLoRACommand.self, ExtractLoRACommand.self, ResizeLoRACommand.self, CombineLoRACommand.self,
                      SwapCommand.self, ExtractMotionModuleCommand.self, ConvertCommand.self,
                      DiffCommand.self, TokenizeCommand.self, GenerateCommand.self, ServeCommand.self]
    )

    /// Parses and runs as ArgumentParser does, but every error a command throws reaches the user as one printable
    /// line, whichever module wrote it: input quoted in a message (a CR/LF of a WARC file, the bytes of a zstd
    /// frame, a tensor name with a newline) is escaped there.
    static func main() {
        ChildProcess.reportPeakAtExitIfAsked()
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            try command.run()
        } catch {
            // ArgumentParser's own outcomes (help, exit codes, bad arguments) keep their form.
            let own = error is ExitCode || error is ValidationError || error is CleanExit || exitCode(for: error) == .success
            exit(withError: own ? error : OneLineError(error))
        }
    }
}

/// An error whose message is made one printable line.
struct OneLineError: Error, CustomStringConvertible {
    let description: String

    init(_ error: Error) {
        description = PrintableText.line(String(describing: error))
    }
}

enum EAWeightsVersion {
    static let string = "0.1.0"
}
