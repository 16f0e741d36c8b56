import ArgumentParser
import Foundation
import Safetensors
import WeightOps

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Build or complete EasyAnimate's models/ tree from the downloaded release files.",
        discussion: """
        Lays files out as EasyAnimate's README describes:
          models/Diffusion_Transformer/<folder>   --pixart: PixArt-XL-2-512x512.tar (extracted safely, as \
        `extract` does) or an unpacked diffusers folder
          models/Motion_Module/<file>             --motion-module
          models/Personalized_Model/<file>        --personalized (transformers) and --lora
        Files keep their names and are hard-linked when on the same filesystem (no copy, no extra space), \
        or copied/moved with --copy/--move. Each input is checked to be the kind its option says (a LoRA given \
        as --motion-module is refused) before anything is placed.

        Writes models/manifest.json with every file's path, kind, size and SHA-256 (computed while extracting \
        or copying) and the ea-weights version; `ea-weights verify` checks the tree against it later. Running \
        prepare again with the same inputs changes nothing and says so.

        Examples:
          ea-weights prepare --models models --pixart PixArt-XL-2-512x512.tar \\
            --motion-module easyanimate_v1_mm.safetensors --lora easyanimate_portrait_lora.safetensors
          ea-weights prepare --models /tmp/models --pixart fixtures/ea-tiny/tiny-pixart.tar \\
            --motion-module fixtures/ea-tiny/motion_module.safetensors --copy --json
        """
    )

    @Option(help: ArgumentHelp("The models folder to build or complete (created if missing).", valueName: "dir"))
    var models: String

    @Option(help: ArgumentHelp("PixArt-XL-2-512x512.tar (.tar, .tar.gz, .tar.zst, .tar.xz) or an unpacked diffusers folder.", valueName: "tar|folder"), completion: .file())
    var pixart: String?

    @Option(name: .customLong("motion-module"), help: ArgumentHelp("A motion module, e.g. easyanimate_v1_mm.safetensors (repeatable).", valueName: "file"), completion: .file())
    var motionModules: [String] = []

    @Option(help: ArgumentHelp("A personalized transformer, e.g. easyanimate_portrait.safetensors (repeatable).", valueName: "file"), completion: .file())
    var personalized: [String] = []

    @Option(name: .customLong("lora"), help: ArgumentHelp("A kohya LoRA, e.g. easyanimate_portrait_lora.safetensors (repeatable).", valueName: "file"), completion: .file())
    var loras: [String] = []

    @Flag(help: "Copy files instead of hard-linking them.")
    var copy = false

    @Flag(help: "Move files instead of hard-linking them.")
    var move = false

    @Flag(help: "Print what was done as one JSON object for scripts.")
    var json = false

    func validate() throws {
        if copy && move { throw ValidationError("--copy and --move exclude each other") }
        if pixart == nil && motionModules.isEmpty && personalized.isEmpty && loras.isEmpty {
            throw ValidationError("nothing to prepare: give --pixart, --motion-module, --personalized or --lora")
        }
    }

    func run() throws {
        Interruption.install()
        var request = PrepareRequest(models: models, toolVersion: EAWeightsVersion.string)
        request.pixart = pixart
        request.motionModules = motionModules
        request.personalized = personalized
        request.loras = loras
        request.placement = copy ? .copy : move ? .move : .link
        request.progress = { label, total in TerminalProgress(label: label, total: total) }
        let report = try CommandFailure.exitOnInterruption { try ModelsPreparation.prepare(request) }
        if json {
            print(try CommandOutput.json(report))
            return
        }
        for item in report.items {
            let size = TerminalProgress.bytes(item.bytes)
            let what = item.files == 1 ? size : "\(item.files) files, \(size)"
            var line = "\(item.action.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(item.path)  (\(item.kind), \(what))"
            if let note = item.note { line += "; \(note)" }
            print(line)
        }
        if report.changed {
            print(report.manifestWritten ? "wrote \(report.models)/manifest.json" : "manifest.json unchanged")
        } else {
            print("nothing to do: \(report.models) already holds these files and manifest.json is up to date")
        }
    }
}
