import ArgumentParser
import Safetensors
import WeightOps

struct SwapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swap",
        abstract: "Put a personalized 2D backbone under a motion module, giving a 3D transformer checkpoint.",
        discussion: """
        EasyAnimate's predict_t2v.py loads a backbone and then the motion module into its Transformer3DModel \
        with strict=False, so a wrong file silently leaves weights untouched. This does the same, checked: \
        the backbone must hold no temporal keys, the motion module only temporal keys, and their block counts \
        and widths must agree. The result holds every tensor of both, unchanged (bit for bit), with the input \
        files and their SHA-256 in its metadata. --base takes the transformer of a diffusers folder instead.

        Examples:
          ea-weights swap \\
            --backbone models/Personalized_Model/easyanimate_portrait.safetensors \\
            --motion-module models/Motion_Module/easyanimate_v1_mm.safetensors \\
            --out portrait3d.safetensors
          ea-weights swap --base models/Diffusion_Transformer/PixArt-XL-2-512x512 \\
            --motion-module models/Motion_Module/easyanimate_v1_mm.safetensors \\
            --out transformer3d.safetensors
        """
    )

    @Option(help: ArgumentHelp("The 2D backbone (.safetensors file or folder).", valueName: "file"), completion: .file())
    var backbone: String?

    @Option(help: ArgumentHelp("A diffusers folder whose transformer/ is the backbone.", valueName: "folder"), completion: .directory)
    var base: String?

    @Option(help: ArgumentHelp("The motion module (only temporal keys).", valueName: "file"), completion: .file())
    var motionModule: String

    @Option(name: .customLong("out"), help: ArgumentHelp("The 3D checkpoint to write.", valueName: "file"))
    var output: String?

    @Flag(help: "Check and report, write nothing.")
    var dryRun = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if (backbone == nil) == (base == nil) { throw ValidationError("give exactly one of --backbone FILE or --base FOLDER") }
        if output == nil && !dryRun { throw ValidationError("--out is required (or --dry-run)") }
    }

    func run() throws {
        let options = BackboneSwap.Options(backbone: backbone ?? base ?? "", motionModule: motionModule, output: output ?? "",
                                           fromDiffusersFolder: base != nil)
        Interruption.install()
        let progress = FileProgress()
        defer { progress.finish() }
        let report = try CommandFailure.exitOnInterruption { try BackboneSwap.run(options, dryRun: dryRun, progress: progress.handler) }
        progress.finish()
        let lines = report.lines + [dryRun ? "dry run: nothing written" : "wrote \(options.output)"]
        try WeightOpsOutput.print(report, lines: lines, asJSON: json)
    }
}
