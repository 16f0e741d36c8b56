import ArgumentParser
import Foundation
import EANumerics
import Runner
import Safetensors
import WeightOps

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a short video on the CPU, exactly as EasyAnimate v1's pipeline would.",
        discussion: """
        Runs EasyAnimate's text-to-video pipeline in float32 (T5 text encoder, PixArt transformer with the \
        motion module, one of five samplers, the VAE frame by frame), to check that a merged, swapped or \
        converted checkpoint still works before it goes to a GPU machine. For the same inputs and seed the \
        result equals EasyAnimate's on CPU to float32 rounding: a visibly wrong video means a wrong checkpoint.

        Models: with no model flags it runs the bundled fixtures/ea-demo set, a small model of the release's \
        structure trained on moving shapes: prompts of its grammar, "a {red|green|blue|yellow|white} \
        {circle|square|triangle} moving {left|right|up|down} on a {black|gray|blue|green} background", give \
        that video at 64x64 (its grammar.json lists them). --models DIR reads a tree made by `ea-weights prepare`; \
        --pixart FOLDER --motion-module FILE name the parts directly. --transformer FILE puts a personalized \
        2D backbone (or a full 3D checkpoint) in place of the diffusers transformer weights; --lora FILE:MULT \
        merges a kohya LoRA in memory, like EasyAnimate's merge_lora. f16, bf16 and int8/fp8 files from \
        `ea-weights convert` load directly.

        Compute: --compute int8 multiplies the transformer's Linear layers in int8 (the weights of an int8 file \
        from `convert --to int8` as they are, other weights quantized at load as convert would; activations \
        quantized per row at each call; AVX-512 VNNI where the processor has it); --t5-compute int8 does the same \
        for T5's (a `convert --to int8` of the PixArt folder keeps those weights file-backed; T5's feed-forward \
        output `wo` stays float32, as convert keeps it). The VAE stays float32. Both are faster and approximate: --compare-f32 runs \
        the same request in float32 afterwards and reports how far the video is from it (max abs difference and PSNR).

        Randomness: one PyTorch-compatible CPU generator seeded with --seed draws the initial latents and the \
        samplers' noise; --latents FILE[:KEY] reads the initial noise from a safetensors file instead.

        Output by --out's extension: .mp4 (H.264), .gif (looping), .safetensors (the float32 tensor `video` \
        [1,3,F,H,W] in [0,1]), or a folder of PNG frames (a path without extension).

        Examples:
          ea-weights generate --prompt "a yellow circle moving right on a blue background" --frames 8 --out out/demo.mp4
          ea-weights generate --models models --prompt "A snowy forest landscape" --frames 16 --steps 30 --out snow.gif
          ea-weights generate --prompt "a red square moving down on a black background" --compute int8 --compare-f32 --out int8.mp4
          ea-weights generate --models models --prompt "A snowy forest landscape" --compute int8 --t5-compute int8 --out fast.mp4
          ea-weights generate --models models --transformer models/Personalized_Model/easyanimate_portrait.safetensors \\
              --lora models/Personalized_Model/easyanimate_portrait_lora.safetensors:0.55 --prompt "A portrait" --out p.mp4
        """
    )

    @OptionGroup var models: ModelOptions

    @Option(name: .customLong("lora"), help: ArgumentHelp("A kohya LoRA to merge in memory, with its multiplier (default 1).", valueName: "file[:mult]"))
    var loras: [String] = []

    @Option(help: "The prompt.")
    var prompt: String

    // The defaults are GenerationRequest's: an option left out is passed on as nil.
    @Option(help: "The negative prompt. (default: predict_t2v.py's \"\(GenerationRequest.Defaults.negativePrompt)\"; '' for none)")
    var negativePrompt: String?

    @Option(help: ArgumentHelp("\(Sampler.names). (default: \(GenerationRequest.Defaults.sampler.rawValue))", valueName: "name"),
            transform: Sampler.init(parsing:))
    var sampler: Sampler?

    @Option(help: "Denoising steps. (default: \(GenerationRequest.Defaults.steps))")
    var steps: Int?

    @Option(help: "Classifier-free guidance scale (1 or less turns guidance off). (default: \(GenerationRequest.Defaults.guidanceScale))")
    var guidance: Float?

    @Option(help: "Seed of the PyTorch-compatible CPU generator. (default: \(GenerationRequest.Defaults.seed))")
    var seed: UInt64?

    @Option(help: ArgumentHelp("Initial latents [1,C,F,H/8,W/8] from a safetensors file (KEY: the tensor, needed when it holds several).", valueName: "file[:key]"))
    var latents: String?

    @Option(help: "Number of frames (default \(GenerationRequest.Defaults.frames), or the --latents' frame count; predict_t2v.py renders 80).")
    var frames: Int?

    @Option(help: "Height in pixels, a multiple of 8 × patch size (default: the transformer's sample size × 8).")
    var height: Int?

    @Option(help: "Width in pixels (default: as height).")
    var width: Int?

    @Option(help: "Frames per second of .mp4 and .gif output. (default: \(GenerationRequest.Defaults.fps))")
    var fps: Int?

    @Option(help: ArgumentHelp("The video: .mp4, .gif, .safetensors, or a folder for PNG frames.", valueName: "path"))
    var out: String

    @Option(help: ArgumentHelp("How the transformer multiplies: f32 (exact) or int8 (faster, approximate). (default: f32)", valueName: "f32|int8"))
    var compute: ComputePrecision = .f32

    @Option(help: ArgumentHelp("How T5 multiplies: f32 (exact) or int8 (faster, approximate). (default: f32)", valueName: "f32|int8"))
    var t5Compute: ComputePrecision = .f32

    @Flag(help: "With --compute int8 or --t5-compute int8: run the same request in float32 too and report the difference of the videos.")
    var compareF32 = false

    @Flag(help: "Print a JSON summary (stages, timings, output) for scripts.")
    var json = false

    func validate() throws {
        if compareF32 && compute == .f32 && t5Compute == .f32 {
            throw ValidationError("--compare-f32 compares a --compute int8 or --t5-compute int8 run with float32; give one of them")
        }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let fps, fps < 1 { throw ValidationError("--fps must be at least 1") }
        _ = try VideoOutput.format(of: out)
    }

    func run() throws {
        let summary = try CommandFailure.exitOnInterruption { try generate() }
        if json {
            print(try CommandOutput.json(summary))
        } else {
            for line in summary.lines { print(line) }
        }
    }

    /// Ctrl-C is the pipeline's to act on: this only installs the handler and passes the flag on.
    private func generate() throws -> GenerationSummary {
        Interruption.install()
        let display = StageDisplay()
        let loadStart = Date()
        let paths = try models.resolve()
        let specs = loras.map { LoRASpec(parsing: $0) }
        let request = GenerationRequest(
            prompt: prompt, negativePrompt: negativePrompt, sampler: sampler, steps: steps, guidanceScale: guidance,
            seed: seed, initialLatents: try latents.map { try Self.readLatents($0) },
            frames: frames, height: height, width: width, fps: fps)
        var summary = GenerationSummary(paths: paths, blasCore: BLAS.coreDescription, compute: compute, t5Compute: t5Compute)
        let video = try generate(paths: paths, loras: specs, request: request, display: display, loadStart: loadStart,
                                 summary: &summary)
        summary.request = .init(prompt: request.prompt, negativePrompt: request.negativePrompt, sampler: request.sampler.rawValue,
                                steps: request.steps, guidance: request.guidanceScale, seed: request.seed, latents: latents)
        if compareF32 {
            // The first pipeline is gone by now: the float32 one loads in its place.
            display.begin("f32 check: loading models")
            let reference = try EasyAnimatePipeline(paths: paths, loras: specs, compute: .f32)
            display.end()
            let f32 = try reference.generate(request, isCancelled: { Interruption.isRequested }) { event in
                switch event {
                case let .stageStarted(stage): display.begin("f32 check: " + stage.rawValue)
                case let .progress(_, done, total): display.update(done: done, total: total)
                case .stageFinished: display.end()
                }
            }
            summary.comparison = .init(reference: ComputePrecision.f32.rawValue, difference: VideoDifference(video, f32))
        }
        // Written last, so a Ctrl-C during the float32 check leaves nothing either.
        let writeStart = Date()
        let format = try VideoOutput.write(video: video, fps: request.fps, to: out)
        summary.stages.append(.init(stage: "write", seconds: Date().timeIntervalSince(writeStart)))
        summary.output = .init(path: out, format: format.rawValue, frames: video.shape[2], height: video.shape[3],
                               width: video.shape[4], fps: request.fps)
        return summary
    }

    /// Loads the pipeline in `compute` and `t5Compute` and runs `request`, recording the stages and buffers in `summary`.
    private func generate(paths: ModelPaths, loras specs: [LoRASpec], request: GenerationRequest, display: StageDisplay,
                          loadStart: Date, summary: inout GenerationSummary) throws -> Tensor {
        display.begin("loading models")
        let pipeline = try EasyAnimatePipeline(paths: paths, loras: specs, compute: compute, textEncoderCompute: t5Compute)
        display.end()
        summary.stages.append(.init(stage: PipelineStage.loading.rawValue, seconds: Date().timeIntervalSince(loadStart)))
        summary.lora = pipeline.loraReport?.lines

        let pool = BufferPool.current
        var afterFirstStep: BufferPool.Statistics?, beforeLastStep: BufferPool.Statistics?, afterDenoising: BufferPool.Statistics?
        let video = try pipeline.generate(request, isCancelled: { Interruption.isRequested }) { event in
            switch event {
            case let .stageStarted(stage): display.begin(stage.rawValue)
            case let .progress(stage, done, total):
                if stage == .denoising && done == 1 { afterFirstStep = pool.statistics }
                if stage == .denoising && done == total - 1 { beforeLastStep = pool.statistics }
                display.update(done: done, total: total)
            case let .stageFinished(stage, seconds):
                if stage == .denoising { afterDenoising = pool.statistics }
                display.end()
                summary.stages.append(.init(stage: stage.rawValue, seconds: seconds))
            }
        }
        let totals = pool.statistics
        summary.buffers = .init(allocated: totals.freshAllocations, allocatedBytes: totals.freshBytes, reused: totals.reuses,
                                allocatedAfterFirstStep: afterFirstStep.flatMap { first in
                                    afterDenoising.map { $0.freshAllocations - first.freshAllocations }
                                },
                                allocatedByLastStep: beforeLastStep.flatMap { before in
                                    afterDenoising.map { $0.freshAllocations - before.freshAllocations }
                                })
        return video
    }

    /// `FILE[:KEY]`: the tensor KEY, or the file's only tensor.
    static func readLatents(_ argument: String) throws -> Tensor {
        var path = argument, key: String?
        if !FileManager.default.fileExists(atPath: argument), let colon = argument.lastIndex(of: ":") {
            path = String(argument[..<colon])
            key = String(argument[argument.index(after: colon)...])
        }
        let file = try SafetensorsFile(path: path)
        guard let name = key ?? (file.keys.count == 1 ? file.keys[0] : nil) else {
            throw RunnerError.invalidInput("\(path): holds \(file.keys.count) tensors (\(file.keys.prefix(6).joined(separator: ", "))); name one as \(path):KEY")
        }
        let view = try file.tensor(name)
        guard view.dtype.isFloatingPoint, view.shape.count == 5, view.shape[0] == 1 else {
            throw RunnerError.invalidInput("\(path): tensor '\(name)' is \(view.dtype.rawValue) \(view.shape); latents must be a float tensor [1, C, F, H/8, W/8]")
        }
        return Tensor(shape: view.shape, storage: view.toFloat32())
    }
}

extension ComputePrecision: ExpressibleByArgument {}

/// Where the model comes from, shared by commands that load a whole pipeline.
struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A models/ tree laid out by `ea-weights prepare`.", valueName: "dir"), completion: .directory)
    var models: String?

    @Option(help: ArgumentHelp("A PixArt diffusers folder (transformer/, vae/, text_encoder/, tokenizer/).", valueName: "folder"), completion: .directory)
    var pixart: String?

    @Option(help: ArgumentHelp("The motion module (e.g. easyanimate_v1_mm.safetensors).", valueName: "file"), completion: .file())
    var motionModule: String?

    @Option(help: ArgumentHelp("A personalized 2D backbone or a full 3D checkpoint replacing the transformer's weights.", valueName: "file"), completion: .file())
    var transformer: String?

    @Option(help: ArgumentHelp("EasyAnimate's yaml config (default: the v1 config).", valueName: "yaml"), completion: .file())
    var config: String?

    func validate() throws {
        if models != nil && pixart != nil { throw ValidationError("give --models or --pixart, not both") }
    }

    func resolve() throws -> ModelPaths {
        var paths: ModelPaths
        if let models {
            paths = try ModelLocator.modelsTree(models, motionModule: motionModule)
            if let pixart { paths.pixart = pixart }
        } else if let pixart {
            paths = ModelPaths(pixart: pixart, motionModule: motionModule)
        } else {
            paths = try ModelLocator.bundledFixture()
            if let motionModule { paths.motionModule = motionModule }
        }
        if let transformer { paths.transformer = transformer }
        if let config { paths.config = config }
        return paths
    }
}

/// What `generate` did, printed at the end (or as JSON).
struct GenerationSummary: Encodable {
    struct Stage: Encodable { let stage: String; let seconds: Double }
    struct Output: Encodable { let path: String; let format: String; let frames: Int; let height: Int; let width: Int; let fps: Int }
    /// Tensor buffers of the run: taken from the system, reused from the pool, taken by denoising steps after the
    /// first (the samplers that keep past model outputs, DPM++ and PNDM, take those while their history fills),
    /// and by the last step (0: the steps run on the buffers of the earlier ones).
    struct Buffers: Encodable {
        let allocated: Int; let allocatedBytes: Int; let reused: Int
        let allocatedAfterFirstStep: Int?; let allocatedByLastStep: Int?
    }
    struct Request: Encodable {
        let prompt: String; let negativePrompt: String; let sampler: String; let steps: Int; let guidance: Float
        let seed: UInt64; let latents: String?
    }

    /// A run against the same request in another precision (`--compare-f32`).
    struct Comparison: Encodable { let reference: String; let difference: VideoDifference }

    let paths: ModelPaths
    let blasCore: String
    let compute: ComputePrecision
    let t5Compute: ComputePrecision
    var stages: [Stage] = []
    var lora: [String]?
    var output: Output?
    var request: Request?
    var buffers: Buffers?
    var comparison: Comparison?

    init(paths: ModelPaths, blasCore: String, compute: ComputePrecision, t5Compute: ComputePrecision) {
        self.paths = paths
        self.blasCore = blasCore
        self.compute = compute
        self.t5Compute = t5Compute
    }

    /// The parts not in float32, e.g. "transformer in int8, T5 in int8".
    var precision: String? {
        let parts = [("transformer", compute), ("T5", t5Compute)].filter { $0.1 != .f32 }.map { "\($0.0) in \($0.1.rawValue)" }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    var lines: [String] {
        var lines: [String] = []
        if let lora { lines += lora }
        let times = stages.map { "\($0.stage) \(String(format: "%.2f", $0.seconds)) s" }.joined(separator: ", ")
        lines.append("time: \(times) (OpenBLAS core: \(blasCore)\(precision.map { ", " + $0 } ?? ""))")
        if let buffers {
            let megabytes = String(format: "%.1f", Double(buffers.allocatedBytes) / 1_048_576)
            lines.append("tensor buffers: \(buffers.allocated) allocated (\(megabytes) MB), \(buffers.reused) reused"
                         + (buffers.allocatedAfterFirstStep.map { ", \($0) allocated by denoising steps after the first" } ?? "")
                         + (buffers.allocatedByLastStep.map { ", \($0) by the last" } ?? ""))
        }
        if let output {
            lines.append("wrote \(output.path): \(output.frames) frames, \(output.width)x\(output.height), \(output.format)"
                         + (output.format == "mp4" || output.format == "gif" ? " at \(output.fps) fps" : ""))
        }
        if let comparison {
            lines.append("\(precision ?? "f32") against \(comparison.reference) (same request and seed): \(comparison.difference.description)")
        }
        return lines
    }

    enum CodingKeys: String, CodingKey { case models, blasCore, compute, t5Compute, stages, lora, output, request, buffers, comparison }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(["pixart": paths.pixart, "motionModule": paths.motionModule, "transformer": paths.transformer,
                      "config": paths.config], forKey: .models)
        try c.encode(blasCore, forKey: .blasCore)
        try c.encode(compute, forKey: .compute)
        try c.encode(t5Compute, forKey: .t5Compute)
        try c.encode(stages, forKey: .stages)
        try c.encodeIfPresent(lora, forKey: .lora)
        try c.encodeIfPresent(output, forKey: .output)
        try c.encodeIfPresent(request, forKey: .request)
        try c.encodeIfPresent(buffers, forKey: .buffers)
        try c.encodeIfPresent(comparison, forKey: .comparison)
    }
}
