import Foundation
import Safetensors
import Testing
import TestSupport

/// `ea-weights generate` against the goldens of EasyAnimate's own pipeline (fixtures/ea-tiny/README.md):
/// full text-to-video runs from `init_latents`, video max abs diff ≤ `Tolerances.video` (DDIM ≤
/// `Tolerances.ddimVideo`, its first step is ill-conditioned), the generator for Euler A's noise seeded 44.
@Suite("generate command", .serialized)
struct GenerateCommandTests {
    /// The golden runs' settings (goldens/settings.json), read rather than copied.
    struct Settings {
        let prompt: String
        let negativePrompt: String
        let steps: Int
        let guidance: Double
        let loraMultiplier: Double

        init() throws {
            let data = try Data(contentsOf: Fixtures.goldens.appendingPathComponent("settings.json"))
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            prompt = try #require(json["prompt"] as? String)
            negativePrompt = try #require(json["negative_prompt"] as? String)
            steps = try #require(json["steps"] as? Int)
            guidance = try #require(json["guidance_scale"] as? Double)
            loraMultiplier = try #require(json["lora_multiplier"] as? Double)
        }
    }

    static let pipelineSeed = "44"

    /// Runs `generate` from the golden's initial latents on ea-tiny (unless `extra` names other models); the output
    /// file must hold exactly the `video` tensor.
    func generate(sampler: String, golden: String, extra: [String] = []) throws -> (video: TensorView, result: CLIRunner.Result, folder: URL) {
        let settings = try Settings()
        let folder = try CLIRunner.temporaryDirectory()
        let out = folder.appendingPathComponent("video.safetensors").path
        let models = extra.contains("--pixart") || extra.contains("--models") ? [] : Fixtures.eaTinyModel
        let result = try CLIRunner.run([
            "generate", "--prompt", settings.prompt, "--negative-prompt", settings.negativePrompt,
            "--sampler", sampler, "--steps", String(settings.steps), "--guidance", String(settings.guidance),
            "--seed", Self.pipelineSeed, "--latents", Fixtures.golden(golden) + ":init_latents", "--out", out,
        ] + models + extra)
        #expect(result.status == 0, "\(result.stderr)")
        let file = try SafetensorsFile(path: out)
        #expect(file.keys == ["video"])
        return (try file.tensor("video"), result, folder)
    }

    /// The video against the golden tensor `key` of `file`: the same shape, then every value within `tolerance`.
    static func expectMatches(_ video: TensorView, golden file: String, key: String = "video", tolerance: Float) throws {
        let golden = try SafetensorsFile(path: Fixtures.golden(file)).tensor(key)
        try #require(video.shape == golden.shape)
        let diff = GoldenComparison.maxAbsDifference(video.toFloat32(), golden.toFloat32())
        #expect(diff <= tolerance, "\(file):\(key): max abs diff \(diff)")
    }

    static let samplerGoldens = [("Euler", "Euler", Tolerances.video), ("Euler-A", "Euler_A", Tolerances.video),
                                 ("DPM++", "DPMpp", Tolerances.video), ("PNDM", "PNDM", Tolerances.video),
                                 ("DDIM", "DDIM", Tolerances.ddimVideo)]

    @Test("every sampler reproduces EasyAnimate's video from the same initial latents", arguments: samplerGoldens)
    func samplerMatchesGolden(sampler: String, key: String, tolerance: Float) throws {
        let (video, _, folder) = try generate(sampler: sampler, golden: "pipeline.safetensors")
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.expectMatches(video, golden: "pipeline.safetensors", key: key, tolerance: tolerance)
    }

    @Test("the pipeline golden holds one video per sampler tested, and the initial latents")
    func pipelineGoldenIsCovered() throws {
        let golden = try SafetensorsFile(path: Fixtures.golden("pipeline.safetensors"))
        #expect(Set(golden.keys) == Set(Self.samplerGoldens.map(\.1) + ["init_latents"]))
        for name in ["pipeline_lora_dpmpp.safetensors", "pipeline_personalized_euler.safetensors"] {
            #expect(Set(try SafetensorsFile(path: Fixtures.golden(name)).keys) == ["init_latents", "video"], "\(name)")
        }
    }

    @Test("a LoRA merged in memory reproduces the LoRA run (DPM++)")
    func loraRunMatchesGolden() throws {
        let settings = try Settings()
        let (video, result, folder) = try generate(
            sampler: "DPM++", golden: "pipeline_lora_dpmpp.safetensors",
            extra: ["--lora", Fixtures.path("lora.safetensors") + ":\(settings.loraMultiplier)"])
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.expectMatches(video, golden: "pipeline_lora_dpmpp.safetensors", tolerance: Tolerances.video)
        #expect(result.stdout.contains("applied"))
    }

    @Test("a personalized backbone under the motion module reproduces the personalized run (Euler)")
    func personalizedRunMatchesGolden() throws {
        let (video, _, folder) = try generate(
            sampler: "Euler", golden: "pipeline_personalized_euler.safetensors",
            extra: ["--transformer", Fixtures.path("personalized.safetensors")])
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.expectMatches(video, golden: "pipeline_personalized_euler.safetensors", tolerance: Tolerances.video)
    }

    @Test("--json reports the stages, the output and the OpenBLAS core")
    func jsonSummary() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("clip.gif").path
        let result = try CLIRunner.run(["generate", "--prompt", "a red fox", "--steps", "2", "--frames", "2",
                                        "--height", "64", "--width", "32", "--fps", "8", "--json", "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try CLIRunner.jsonObject(result.stdout)
        let output = try #require(json["output"] as? [String: Any])
        #expect(output["frames"] as? Int == 2)
        #expect(output["width"] as? Int == 32 && output["height"] as? Int == 64)
        #expect(output["format"] as? String == "gif")
        let stages = try #require(json["stages"] as? [[String: Any]]).compactMap { $0["stage"] as? String }
        #expect(stages.contains("denoising") && stages.contains("VAE decode"))
        #expect((json["blasCore"] as? String).map { !$0.isEmpty } == true)
        #expect(FileManager.default.fileExists(atPath: out))
        // The options left out are the request's defaults.
        let request = try #require(json["request"] as? [String: Any])
        #expect(request["sampler"] as? String == "DPM++" && request["steps"] as? Int == 2)
        #expect(request["guidance"] as? Double == 6 && request["seed"] as? Int == 43 && (request["negativePrompt"] as? String)?.hasPrefix("Strange motion trajectory, a poor composition") == true)
        #expect(output["fps"] as? Int == 8)
    }

    @Test("on an AVX-512 CPU the SkylakeX kernels run even when OPENBLAS_CORETYPE names a family without AVX-512")
    func avx512KernelsReplaceHaswell() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLIRunner.run(["generate", "--prompt", "a red circle", "--steps", "1", "--frames", "1", "--json",
                                        "--out", folder.appendingPathComponent("clip.gif").path],
                                       environment: ["OPENBLAS_CORETYPE": "Haswell"])
        #expect(result.status == 0, "\(result.stderr)")
        let core = try #require(try CLIRunner.jsonObject(result.stdout)["blasCore"] as? String)
        let cpuInfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let avx512 = cpuInfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").contains("avx512f") ?? false
        #expect(avx512 ? core == "SkylakeX" : core != "SkylakeX", "\(core)")
    }

    /// Each model in int8 against the float32 video of the same request on ea-tiny (random weights, 5 DPM++
    /// steps, 4 frames of 64²), with the smallest PSNR the tests accept and the one measured.
    struct Int8Case: CustomStringConvertible, Sendable {
        let option: String, minimumPSNR: Double, measured: String
        var description: String { option }
    }

    static let int8Cases = [
        Int8Case(option: "--compute", minimumPSNR: 38, measured: "41.7 dB, max abs 0.058"),
        Int8Case(option: "--t5-compute", minimumPSNR: 45, measured: "50.3 dB, max abs 0.020"),
    ]

    @Test("--compute int8 / --t5-compute int8 with --compare-f32 report the video's distance from the float32 one, within the stated PSNR",
          arguments: int8Cases)
    func int8AgainstFloat32(_ c: Int8Case) throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("int8.safetensors").path
        let result = try CLIRunner.run(["generate", "--prompt", "a red fox", "--steps", "5", "--frames", "4",
                                        "--height", "64", "--width", "64", c.option, "int8", "--compare-f32",
                                        "--json", "--out", out] + Fixtures.eaTinyModel)
        #expect(result.status == 0, "\(result.stderr)")
        let json = try CLIRunner.jsonObject(result.stdout)
        #expect(json["compute"] as? String == (c.option == "--compute" ? "int8" : "f32"))
        #expect(json["t5Compute"] as? String == (c.option == "--t5-compute" ? "int8" : "f32"))
        let comparison = try #require(json["comparison"] as? [String: Any])
        #expect(comparison["reference"] as? String == "f32")
        let difference = try #require(comparison["difference"] as? [String: Any])
        let psnr = try #require(difference["psnr"] as? Double), maxAbs = try #require(difference["maxAbs"] as? Double)
        #expect(psnr >= c.minimumPSNR && maxAbs > 0 && maxAbs < 0.25, "PSNR \(psnr) dB, max abs \(maxAbs); measured \(c.measured)")
        #expect(FileManager.default.fileExists(atPath: out))
    }

    @Test("--compare-f32 of a float32 run is refused before any work")
    func compareNeedsInt8() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLIRunner.run(["generate", "--prompt", "x", "--compare-f32",
                                        "--out", folder.appendingPathComponent("x.mp4").path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--compare-f32 compares a --compute int8 or --t5-compute int8 run with float32; give one of them"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test("an unknown sampler is refused before any work, listing the names --help shows")
    func unknownSamplerIsRefused() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try CLIRunner.run(["generate", "--prompt", "x", "--sampler", "LMS",
                                        "--out", folder.appendingPathComponent("x.mp4").path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("unknown sampler 'LMS'; use one of Euler, Euler-A, DPM++, PNDM or DDIM"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
        let help = try CLIRunner.run(["help", "generate"])
        let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(text.contains("--sampler <name> Euler, Euler-A, DPM++, PNDM or DDIM. (default: DPM++)"))
        #expect(text.contains("Denoising steps. (default: 30)") && text.contains("(default: 43)"))
    }

    @Test("a size that does not divide by 8 × patch size × grid cell is refused before any work")
    func badSizeIsRefused() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("x.mp4").path
        let result = try CLIRunner.run(["generate", "--prompt", "x", "--height", "60", "--out", out] + Fixtures.eaTinyModel)
        #expect(result.status != 0)
        #expect(result.stderr.contains("multiples of 32"))
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a motion module that is not one is named in the error")
    func wrongMotionModuleIsRefused() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("x.gif").path
        let result = try CLIRunner.run(["generate", "--prompt", "x", "--steps", "1", "--pixart", Fixtures.path("tiny-pixart"),
                                        "--motion-module", Fixtures.path("lora.safetensors"), "--out", out])
        #expect(result.status != 0)
        #expect(result.stderr.contains("lora.safetensors"))
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a diffusers folder missing a component is named in the error")
    func missingComponentIsRefused() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pixart = folder.appendingPathComponent("pixart")
        try FileManager.default.copyItem(at: Fixtures.eaTiny.appendingPathComponent("tiny-pixart"), to: pixart)
        try FileManager.default.removeItem(at: pixart.appendingPathComponent("vae"))
        let result = try CLIRunner.run(["generate", "--pixart", pixart.path, "--motion-module", Fixtures.path("motion_module.safetensors"),
                                        "--prompt", "x", "--out", folder.appendingPathComponent("x.mp4").path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("vae/config.json"))
    }

    @Test("converted checkpoints (bf16, int8, fp8) load directly and still give the video, within their precision",
          arguments: ["bf16", "int8", "fp8"])
    func convertedCheckpointsGenerate(dtype: String) throws {
        let meanTolerance = try #require(Tolerances.convertedVideoMean[dtype])
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let converted = folder.appendingPathComponent("pixart").path
        var arguments = ["convert", Fixtures.path("tiny-pixart"), "--to", dtype, "--out", converted]
        if dtype == "int8" { arguments += ["--group-size", "16"] }
        let conversion = try CLIRunner.run(arguments)
        #expect(conversion.status == 0, "\(conversion.stderr)")
        let (video, _, outFolder) = try generate(sampler: "Euler", golden: "pipeline.safetensors", extra: [
            "--pixart", converted, "--motion-module", Fixtures.path("motion_module.safetensors"),
            "--config", Fixtures.path("easyanimate_video_motion_module_v1.yaml")])
        defer { try? FileManager.default.removeItem(at: outFolder) }
        let golden = try SafetensorsFile(path: Fixtures.golden("pipeline.safetensors")).tensor("Euler")
        try #require(video.shape == golden.shape)
        let values = video.toFloat32(), expected = golden.toFloat32()
        let mean = zip(values, expected).reduce(Float(0)) { $0 + abs($1.0 - $1.1) } / Float(values.count)
        #expect(mean <= meanTolerance, "\(dtype): mean abs diff \(mean)")
    }

    @Test("a models/ tree made by prepare is read from its standard places with the built-in v1 config")
    func modelsTreeFromPrepare() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let models = folder.appendingPathComponent("models").path
        let prepared = try CLIRunner.run(["prepare", "--models", models, "--pixart", Fixtures.path("tiny-pixart.tar"),
                                          "--motion-module", Fixtures.path("motion_module.safetensors")])
        #expect(prepared.status == 0, "\(prepared.stderr)")
        let (video, _, outFolder) = try generate(sampler: "Euler", golden: "pipeline.safetensors", extra: ["--models", models])
        defer { try? FileManager.default.removeItem(at: outFolder) }
        try Self.expectMatches(video, golden: "pipeline.safetensors", key: "Euler", tolerance: Tolerances.video)
    }

    @Test("with no model flags generate runs fixtures/ea-demo at 64x64; prepare, verify and generate --models on it give the same video")
    func demoSetByDefaultAndThroughModelsTree() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let demo = Fixtures.packageRoot.appendingPathComponent("fixtures/ea-demo").path
        let models = folder.appendingPathComponent("models").path
        let prepared = try CLIRunner.run(["prepare", "--models", models, "--pixart", demo + "/demo-pixart",
                                          "--motion-module", demo + "/motion_module.safetensors",
                                          "--personalized", demo + "/outline_personalized.safetensors",
                                          "--lora", demo + "/outline_lora.safetensors"])
        #expect(prepared.status == 0, "\(prepared.stderr)")
        let verified = try CLIRunner.run(["verify", "--models", models, "--json"])
        #expect(verified.status == 0, "\(verified.stdout)")
        #expect(try CLIRunner.jsonObject(verified.stdout)["ok"] as? Bool == true)

        let request = ["--prompt", "a red circle moving left on a black background", "--steps", "3", "--frames", "2"]
        let byDefault = folder.appendingPathComponent("default.safetensors").path
        let run = try CLIRunner.run(["generate"] + request + ["--json", "--out", byDefault])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try CLIRunner.jsonObject(run.stdout)
        let paths = try #require(json["models"] as? [String: Any])
        #expect((paths["pixart"] as? String)?.hasSuffix("fixtures/ea-demo/demo-pixart") == true)
        let output = try #require(json["output"] as? [String: Any])
        #expect(output["width"] as? Int == 64 && output["height"] as? Int == 64)

        let fromTree = folder.appendingPathComponent("tree.safetensors").path
        // A models/ tree holds no config: as with EasyAnimate's predict_t2v.py, the set's yaml is named (it
        // differs from the v1 release's in prediction_type, v_prediction); the same numbers.
        let config = demo + "/easyanimate_video_motion_module_v1.yaml"
        let treeRun = try CLIRunner.run(["generate", "--models", models, "--config", config] + request + ["--out", fromTree])
        #expect(treeRun.status == 0, "\(treeRun.stderr)")
        let a = try SafetensorsFile(path: byDefault).tensor("video"), b = try SafetensorsFile(path: fromTree).tensor("video")
        try #require(a.shape == [1, 3, 2, 64, 64] && b.shape == a.shape)
        #expect(a.toFloat32() == b.toFloat32())
    }

    @Test("Ctrl-C stops generation between steps, exits 130 and writes nothing")
    func interruptionWritesNothing() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("video.mp4").path
        let (process, stdout, stderr) = try CLIRunner.start(["generate", "--prompt", "x", "--steps", "100000", "--out", out])
        Thread.sleep(forTimeInterval: 3)
        process.interrupt()
        let result = CLIRunner.finish(process, stdout, stderr)
        #expect(result.status == 130, "\(result.stderr)")
        #expect(result.stderr.contains("interrupted"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }
}
