import ArgumentParser
import Bench
import Foundation
import Runner
import WeightOps

struct BenchT5Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "t5",
        abstract: "Time the T5-XXL text encoder (prompt + negative prompt) on random BF16 weights of the real shapes.",
        discussion: """
        Writes PixArt-XL-2's text encoder, T5-v1.1-XXL (24 layers, d_model 4096, 64 heads, d_ff 10240, gated GELU, \
        4.8 G parameters), with random BF16 weights in transformers' sharded layout into --dir (about 9.5 GB, \
        reused by later runs), reads it into the page cache, loads it as generate does (mapped, not copied), \
        encodes 8 tokens once to warm up, then times the encode of a batch of --batch rows of --tokens tokens \
        (2 × 120: the prompt and the negative prompt). It reports seconds, GFLOP/s, the fraction of the FP32 \
        sgemm peak measured just before, the OpenBLAS kernels and the peak anonymous memory (RssAnon) of the \
        stage. With --python transformers' T5EncoderModel (BF16, as PixArt's pipeline loads it on a CPU) encodes \
        the same ids from the same folder, and the ratio is printed.

        Examples:
          ea-weights bench t5
          ea-weights bench t5 --python --json
          ea-weights bench t5 --compute int8 --python                # int8 products on its convert --to int8
          ea-weights bench t5 --layers 2 --width 512 --ff 1024     # a small encoder, for a quick check
        """
    )

    @Option(help: "Encoder layers.")
    var layers = 24

    @Option(help: "d_model (heads of 64).")
    var width = 4096

    @Option(help: "d_ff.")
    var ff = 10240

    @Option(help: "Rows of the batch (2: prompt and negative prompt).")
    var batch = 2

    @Option(help: "Tokens per row.")
    var tokens = 120

    @Option(help: ArgumentHelp("How the Linear layers multiply: f32 (the BF16 weights widened), or int8 on the encoder's convert --to int8 (written into --dir on first use).",
                               valueName: "f32|int8"))
    var compute: ComputePrecision = .f32

    @OptionGroup var options: StageBenchOptions

    func validate() throws {
        if layers < 1 || width < 64 || width % 64 != 0 || ff < 1 || batch < 1 || tokens < 1 {
            throw ValidationError("--layers, --ff, --batch and --tokens must be positive, --width a multiple of 64")
        }
    }

    func run() throws {
        let config = T5Config(vocabSize: 32128, dModel: width, dKV: 64, dFF: ff, numLayers: layers, numHeads: width / 64)
        let folder = options.folder("ea-weights-bench-t5-\(layers)x\(width)x\(ff)")
        let progress = FileProgress()
        try T5Benchmark.synthesize(in: folder, config: config, progress: progress.handler)
        let weights = try T5Benchmark.weights(folder: folder, compute: compute, progress: progress.handler)
        progress.finish()
        let shards = try FileManager.default.contentsOfDirectory(atPath: weights).filter { $0.hasSuffix(".safetensors") }
            .map { (weights as NSString).appendingPathComponent($0) }
        try MergeBenchmark.readIntoPageCache(shards)
        let bytes = shards.reduce(0) { $0 + BenchMergeCommand.fileSize($1) }
        var report = StageReport(
            stage: "t5",
            work: "t5 encode of \(batch) x \(tokens) tokens, \(layers) layers ("
                + "\(compute == .int8 ? "int8 weights of its convert --to int8" : "BF16 weights widened to F32"), \(TerminalProgress.bytes(Int64(bytes))))",
            sizes: ["layers": layers, "batch": batch, "tokens": tokens, "weight_bytes": bytes],
            timing: try T5Benchmark.run(folder: folder, batch: batch, tokens: tokens, compute: compute))
        try report.finish(options, pythonScript: PythonT5Reference.script, arguments: [folder, String(batch), String(tokens)])
    }
}
