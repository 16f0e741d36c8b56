import ArgumentParser
import Safetensors
import WeightOps

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint to f32/f16/bf16, or quantize its Linear weights to int8 or fp8.",
        discussion: """
        f32, f16, bf16: exact round-to-nearest-even (bit-identical to PyTorch's .to(dtype)). Tensors matching \
        --keep-f32 are not narrowed; by default norms, the motion module's pos_encoder.pe and T5's wo layers \
        (fp16 T5 wo is a known source of noise). Overflow (values that would become infinite) is an error \
        naming the tensor unless --allow-overflow; overflow and underflow counts are reported per tensor.

        int8, fp8: weight-only quantization of the transformer's and T5's Linear weights in the checkpoint \
        format ComfyUI documents (QUANTIZATION.md): int8_blockwise stores the weight as I8 with an F32 \
        weight_scale per --group-size x --group-size block (absmax/127); float8_e4m3fn stores F8_E4M3 with one \
        F32 weight_scale (absmax/448). The file metadata's _quantization_metadata lists every quantized layer. \
        Layers whose shape does not divide by the group size, embeddings, norms and positional encodings stay \
        in their dtype and are listed; the report gives each layer's max abs and relative error.

        IN may be a file, a sharded folder or index (the shards are kept, with a new index) or a diffusers \
        folder (every component for f16/bf16/f32; transformer and text encoder for int8/fp8; the rest linked).

        Examples:
          ea-weights convert transformer3d.safetensors --to f16 --out t3d-f16.safetensors
          ea-weights convert models/Diffusion_Transformer/PixArt-XL-2-512x512 \\
            --to int8 --out pixart-int8
          ea-weights convert text_encoder/ --to fp8 --out text_encoder-fp8 --json
          ea-weights convert model.safetensors --to f16 --keep-f32 '' --out m16.safetensors
        """
    )

    @Argument(help: "The checkpoint to convert: a file, a folder, an index or a diffusers folder.", completion: .file())
    var input: String

    @Option(help: "Target: f32, f16, bf16, int8 (int8_blockwise) or fp8 (float8_e4m3fn).")
    var to: ConvertTarget

    @Option(name: .customLong("out"), help: ArgumentHelp("Where to write (a file for a file, else a new folder).", valueName: "path"))
    var output: String?

    @Option(name: .customLong("keep-f32"),
            help: ArgumentHelp("Regular expression of tensors to leave as they are ('' for none).", valueName: "regex"))
    var keepPattern: String?

    @Option(help: "Block size of int8 blockwise quantization.")
    var groupSize = 128

    @Flag(help: "Write infinities where f16/bf16 overflow, as PyTorch would, instead of failing.")
    var allowOverflow = false

    @Flag(help: "Report what would be converted (and the quantization error), write nothing.")
    var dryRun = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if output == nil && !dryRun { throw ValidationError("--out is required (or --dry-run)") }
        if groupSize <= 0 { throw ValidationError("--group-size must be positive") }
        if let keepPattern, !keepPattern.isEmpty {
            do { _ = try Regex(keepPattern) } catch {
                throw ValidationError("--keep-f32 '\(keepPattern)' is not a valid regular expression: \(error)")
            }
        }
    }

    func run() throws {
        var options = ConvertOptions(input: input, output: output ?? "", target: to)
        options.keepPattern = keepPattern
        options.groupSize = groupSize
        options.allowOverflow = allowOverflow
        options.dryRun = dryRun
        Interruption.install()
        let progress = FileProgress()
        defer { progress.finish() }
        let report = try CommandFailure.exitOnInterruption { try Convert.run(options, progress: progress.handler) }
        progress.finish()
        try WeightOpsOutput.print(report, lines: report.lines, asJSON: json)
    }
}

extension ConvertTarget: ExpressibleByArgument {}
