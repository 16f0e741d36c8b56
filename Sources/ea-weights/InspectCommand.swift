import ArgumentParser
import WeightOps

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Say what checkpoints are: kind, tensors, parameters, dtypes, metadata and dimensions.",
        discussion: """
        PATH may be a .safetensors file, a sharded checkpoint (its folder or *.safetensors.index.json), a \
        diffusers folder (model_index.json: every component is reported), or a folder holding any of \
        these, such as a models/ root laid out as EasyAnimate's README describes (Diffusion_Transformer/, \
        Motion_Module/, Personalized_Model/), which is walked.

        The kind is recognised from tensor names and shapes, never from file names: \
        pixart-transformer-2d, easyanimate-transformer-3d, motion-module, kohya-lora, vae, t5-encoder or \
        unknown. Only headers are read, so a multi-GB checkpoint takes milliseconds (--hash reads the files).

        Examples:
          ea-weights inspect fixtures/ea-tiny
          ea-weights inspect models/Personalized_Model/easyanimate_portrait_lora.safetensors --json
          ea-weights inspect transformer/ --filter 'transformer_blocks\\.0\\.attn1'
        """
    )

    @Argument(help: "Checkpoint files, index files or folders.", completion: .file())
    var paths: [String]

    @Flag(help: "List every tensor: name, dtype, shape, bytes.")
    var tensors = false

    @Option(help: ArgumentHelp("List only tensors whose name matches this regular expression.", valueName: "regex"))
    var filter: String?

    @Flag(help: "Print the SHA-256 of each file (reads the whole file).")
    var hash = false

    @Flag(help: "Print one JSON object {\"files\": [...]} for scripts.")
    var json = false

    func validate() throws {
        if let filter {
            do { _ = try Regex(filter) } catch {
                throw ValidationError("--filter '\(filter)' is not a valid regular expression: \(error)")
            }
        }
    }

    func run() throws {
        let options = InspectOptions(listTensors: tensors, filter: filter, hash: hash)
        let report = try Inspection.inspect(paths, options: options)
        print(json ? try report.json() : report.text(), terminator: json ? "\n" : "")
    }
}
