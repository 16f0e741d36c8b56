import Foundation
import Safetensors
import Testing
import TestSupport

/// `ea-weights generate` against the goldens of EasyAnimate's own pipeline (fixtures/ea-tiny/README.md):
/// full text-to-video runs from `init_latents`, video max abs diff ≤ 1e-4 (DDIM ≤ 5e-4, its first step is
/// ill-conditioned), the generator for Euler A's noise seeded 44.
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

    func generate(sampler: String, golden: String, extra: [String] = []) throws -> (video: TensorView, result: CLIRunner.Result, folder: URL) {
        let settings = try Settings()
        let folder = try CLIRunner.temporaryDirectory()
        let out = folder.appendingPathComponent("video.safetensors").path
        let result = try CLIRunner.run([
            "generate", "--prompt", settings.prompt, "--negative-prompt", settings.negativePrompt,
            "--sampler", sampler, "--steps", String(settings.steps), "--guidance", String(settings.guidance),
            "--seed", Self.pipelineSeed, "--latents", Fixtures.golden(golden) + ":init_latents", "--out", out,
        ] + extra)
        #expect(result.status == 0, "\(result.stderr)")
        return (try SafetensorsFile(path: out).tensor("video"), result, folder)
    }

    static func maxAbsDifference(_ a: TensorView, _ b: TensorView) -> Float {
        zip(a.toFloat32(), b.toFloat32()).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    @Test("every sampler reproduces EasyAnimate's video from the same initial latents",
          arguments: [("Euler", "Euler", Float(1e-4)), ("Euler-A", "Euler_A", 1e-4), ("DPM++", "DPMpp", 1e-4),
                      ("PNDM", "PNDM", 1e-4), ("DDIM", "DDIM", 5e-4)])
    func samplerMatchesGolden(sampler: String, key: String, tolerance: Float) throws {
        let (video, _, folder) = try generate(sampler: sampler, golden: "pipeline.safetensors")
        defer { try? FileManager.default.removeItem(at: folder) }
        let golden = try SafetensorsFile(path: Fixtures.golden("pipeline.safetensors")).tensor(key)
        #expect(video.shape == golden.shape)
        #expect(Self.maxAbsDifference(video, golden) <= tolerance)
    }

    @Test("a LoRA merged in memory reproduces the LoRA run (DPM++)")
    func loraRunMatchesGolden() throws {
        let settings = try Settings()
        let (video, result, folder) = try generate(
            sampler: "DPM++", golden: "pipeline_lora_dpmpp.safetensors",
            extra: ["--lora", Fixtures.path("lora.safetensors") + ":\(settings.loraMultiplier)"])
        defer { try? FileManager.default.removeItem(at: folder) }
        let golden = try SafetensorsFile(path: Fixtures.golden("pipeline_lora_dpmpp.safetensors")).tensor("video")
        #expect(Self.maxAbsDifference(video, golden) <= 1e-4)
        #expect(result.stdout.contains("applied"))
    }

    @Test("a personalized backbone under the motion module reproduces the personalized run (Euler)")
    func personalizedRunMatchesGolden() throws {
        let (video, _, folder) = try generate(
            sampler: "Euler", golden: "pipeline_personalized_euler.safetensors",
            extra: ["--transformer", Fixtures.path("personalized.safetensors")])
        defer { try? FileManager.default.removeItem(at: folder) }
        let golden = try SafetensorsFile(path: Fixtures.golden("pipeline_personalized_euler.safetensors")).tensor("video")
        #expect(Self.maxAbsDifference(video, golden) <= 1e-4)
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
    }

    @Test("a size that does not divide by 8 × patch size × grid cell is refused before any work")
    func badSizeIsRefused() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("x.mp4").path
        let result = try CLIRunner.run(["generate", "--prompt", "x", "--height", "60", "--out", out])
        #expect(result.status != 0)
        #expect(result.stderr.contains("multiples of 32"))
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a motion module that is not one is named in the error")
    func wrongMotionModuleIsRefused() throws {
        let folder = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("x.gif").path
        let result = try CLIRunner.run(["generate", "--prompt", "x", "--steps", "1",
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
          arguments: [("bf16", Float(0.002)), ("int8", 0.01), ("fp8", 0.03)])
    func convertedCheckpointsGenerate(dtype: String, meanTolerance: Float) throws {
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
        let golden = try SafetensorsFile(path: Fixtures.golden("pipeline.safetensors")).tensor("Euler").toFloat32()
        let values = video.toFloat32()
        let mean = zip(values, golden).reduce(Float(0)) { $0 + abs($1.0 - $1.1) } / Float(values.count)
        #expect(mean <= meanTolerance)
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
        let golden = try SafetensorsFile(path: Fixtures.golden("pipeline.safetensors")).tensor("Euler")
        #expect(Self.maxAbsDifference(video, golden) <= 1e-4)
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
