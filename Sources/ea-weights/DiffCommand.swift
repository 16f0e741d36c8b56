import ArgumentParser
import WeightOps

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two checkpoints tensor by tensor.",
        discussion: """
        Lists keys only in A or only in B, shape and dtype changes, and for tensors in both the largest \
        absolute and relative (max |a-b| / max |a|) difference, counting identical tensors. Values are \
        compared as float32, so A and B may have different dtypes ("is this conversion lossless?"); keys, \
        not files, are compared, so sharded and single-file layouts compare directly. Quantized layers \
        (ComfyUI's _quantization_metadata) are dequantized before comparing.

        Examples:
          ea-weights diff transformer3d.safetensors transformer3d-merged.safetensors
          ea-weights diff text_encoder/ text_encoder-f16/ --json
        """
    )

    @Argument(help: "First checkpoint (file, folder or index).", completion: .file())
    var a: String

    @Argument(help: "Second checkpoint.", completion: .file())
    var b: String

    @Option(help: "How many changed tensors to list (all in --json).")
    var limit = 20

    @Flag(help: "Print the comparison as JSON.")
    var json = false

    func run() throws {
        let diff = try CheckpointDiff.run(a, b)
        try WeightOpsOutput.print(diff, lines: diff.lines(limit: limit), asJSON: json)
    }
}
