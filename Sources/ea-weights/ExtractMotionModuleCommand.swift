import ArgumentParser
import Safetensors
import WeightOps

struct ExtractMotionModuleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract-motion-module",
        abstract: "Take the motion module (every tensor named '...temporal...') out of a 3D transformer.",
        discussion: """
        Keeps the tensors whose name contains "temporal", as EasyAnimate's scripts/extra_motion_module.py \
        does, unchanged and without metadata (like that script's save_file(..., None)), so extracting from a \
        `swap` result gives back the original motion-module file byte for byte. Reports what was kept and \
        dropped, with sizes.

        Example:
          ea-weights extract-motion-module trained3d.safetensors --out my_mm.safetensors
        """
    )

    @Argument(help: "A 3D transformer checkpoint (file, folder or index).", completion: .file())
    var source: String

    @Option(name: .customLong("out"), help: ArgumentHelp("The motion-module file to write.", valueName: "file"))
    var output: String?

    @Flag(help: "Report, write nothing.")
    var dryRun = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if output == nil && !dryRun { throw ValidationError("--out is required (or --dry-run)") }
    }

    func run() throws {
        Interruption.install()
        let progress = FileProgress()
        defer { progress.finish() }
        let report = try CommandFailure.exitOnInterruption { try MotionModuleExtraction.run(source: source, output: output ?? "", dryRun: dryRun, progress: progress.handler) }
        progress.finish()
        try WeightOpsOutput.print(report, lines: report.lines + [dryRun ? "dry run: nothing written" : "wrote \(output ?? "")"],
                                  asJSON: json)
    }
}
