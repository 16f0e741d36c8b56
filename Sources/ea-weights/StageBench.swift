import ArgumentParser
import Bench
import Foundation
import WeightOps

/// The options every bench of a runner stage takes.
struct StageBenchOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Folder for the synthetic weights, reused between runs (default: the system temporary folder).",
                               valueName: "folder"))
    var dir: String?

    @Flag(help: "Also time the stage in PyTorch (python3 with torch and the model's library) on the same folder.")
    var python = false

    @Option(help: "torch threads for --python (0: torch's default, one per core).")
    var pythonThreads = 0

    @Flag(help: "Print the result as JSON.")
    var json = false

    /// `name` inside --dir (or the temporary folder).
    func folder(_ name: String) -> String {
        ((dir ?? FileManager.default.temporaryDirectory.path) as NSString).appendingPathComponent(name)
    }
}

/// The video a transformer or whole-run bench works on.
struct VideoSizeOptions: ParsableArguments {
    @Option(help: "Latent frames (EasyAnimate v1 generates 8 to 16).")
    var frames = 8

    @Option(help: "Video height in pixels (a multiple of 32: VAE scale 8 × patch 2 × the motion module's 2×2 cell).")
    var height = 128

    @Option(help: "Video width in pixels (a multiple of 32).")
    var width = 128

    func validate() throws {
        if frames < 1 || frames > 4096 || height < 32 || width < 32 || height % 32 != 0 || width % 32 != 0 {
            throw ValidationError("--frames must be 1 to 4096 and --height, --width positive multiples of 32")
        }
    }
}

/// One stage's result as `bench STAGE` prints it: the timing fields at the top level of the JSON (`stage`,
/// `seconds`, `gflops`, `peak_fraction`, `blas_core`, `peak_anon_mb`, …), the stage's own sizes, and the
/// Python comparison.
struct StageReport: Encodable {
    var stage: String
    /// What was timed, for the text line ("t5 encode of 2 x 120 tokens, …").
    var work: String
    var sizes: [String: Int]
    var timing: StageTiming
    /// The parts of a run of several stages (`bench generate`), in order.
    var parts: [GenerateBenchmark.Part]? = nil
    var python: BenchMergeCommand.PythonComparison?

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: Encoder) throws {
        try timing.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(stage, forKey: Key(stringValue: "stage"))
        for (name, value) in sizes { try c.encode(value, forKey: Key(stringValue: name)) }
        try c.encodeIfPresent(parts, forKey: Key(stringValue: "parts"))
        try c.encodeIfPresent(python, forKey: Key(stringValue: "python"))
    }

    var lines: [String] {
        var lines = [
            "\(work): \(String(format: "%.2f", timing.seconds)) s, \(String(format: "%.0f", timing.gflops)) GFLOP/s = "
                + "\(String(format: "%.0f", timing.peakFraction * 100))% of the \(String(format: "%.0f", timing.peakGflops)) GFLOP/s "
                + "sgemm peak (\(timing.blasCore)), peak anonymous memory \(String(format: "%.0f", timing.peakAnonMB)) MB",
        ]
        if let parts {
            lines.append("  " + parts.map { "\($0.name) \(String(format: "%.2f", $0.seconds)) s" }.joined(separator: ", "))
        }
        if let python {
            if let skipped = python.skipped {
                lines.append("python \(stage): skipped (\(skipped))")
            } else if let seconds = python.seconds {
                lines.append("python \(stage) (\(python.library ?? "?")): \(String(format: "%.2f", seconds)) s: ea-weights is "
                    + "\(String(format: "%.2f", python.speedup ?? 0))x its speed")
            }
        }
        return lines
    }

    /// Runs `script` with `arguments` when --python was given and prints the report.
    mutating func finish(_ options: StageBenchOptions, pythonScript script: String, arguments: [String]) throws {
        if options.python {
            python = BenchMergeCommand.runPythonScript(script, arguments + [String(options.pythonThreads)],
                                                       oursSeconds: timing.seconds, oursPeak: 1)
            python?.memoryRatio = nil
        }
        try WeightOpsOutput.print(self, lines: lines, asJSON: options.json)
    }
}
