import Foundation
import Testing
import Safetensors
import TestSupport

@Suite("LoRA tool commands", .serialized)
struct LoRAToolsCommandTests {
    static let lora = Fixtures.path("lora.safetensors")
    static let transformer2D = Fixtures.path("tiny-pixart/transformer/diffusion_pytorch_model.safetensors")
    static let personalized = Fixtures.path("personalized.safetensors")

    static func maxAbsDifference(_ a: TensorView, _ b: TensorView) -> Float {
        zip(a.toFloat32(), b.toFloat32()).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    @Test("generate --lora with an extracted LoRA equals generate --transformer TUNED within 1e-4 (exactly low-rank change)")
    func generateWithExtractedLoRA() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tuned = dir.appendingPathComponent("tuned.safetensors").path
        let merge = try CLIRunner.run(["merge-lora", Self.transformer2D, "--lora", Self.lora, "--dtype", "f32", "--out", tuned])
        #expect(merge.status == 0, "\(merge.stderr)")
        let extracted = dir.appendingPathComponent("extracted.safetensors").path
        let extract = try CLIRunner.run(["extract-lora", Self.transformer2D, tuned, "--rank", "4", "--clamp-quantile", "1",
                                         "--min-diff", "0", "--out", extracted, "--json"])
        #expect(extract.status == 0, "\(extract.stderr)")
        let report = try CLIRunner.jsonObject(extract.stdout)
        #expect((report["layers"] as? [[String: Any]])?.count == 26)

        func video(_ extra: [String], _ name: String) throws -> TensorView {
            let out = dir.appendingPathComponent(name).path
            let run = try CLIRunner.run(["generate", "--prompt", "a red fox", "--negative-prompt", "blurry", "--sampler", "Euler",
                                         "--steps", "3", "--seed", "7",
                                         "--latents", Fixtures.golden("pipeline.safetensors") + ":init_latents", "--out", out]
                                        + Fixtures.eaTinyModel + extra)
            #expect(run.status == 0, "\(run.stderr)")
            return try SafetensorsFile(path: out).tensor("video")
        }
        let withTuned = try video(["--transformer", tuned], "tuned.safetensors.video.safetensors")
        let withLoRA = try video(["--lora", extracted], "lora.video.safetensors")
        #expect(Self.maxAbsDifference(withTuned, withLoRA) <= 1e-4)
    }

    @Test("extract, resize and combine on the command line: reports, --dry-run writes nothing, --json")
    func commandsRun() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("p.safetensors").path
        let dry = try CLIRunner.run(["extract-lora", Self.transformer2D, Self.personalized, "--rank", "4", "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("dry run: nothing written"))
        #expect(dry.stdout.contains("pos_embed.proj.weight"))   // the 2x2 patch embedding: changed, not carried
        #expect(!FileManager.default.fileExists(atPath: out))
        let run = try CLIRunner.run(["extract-lora", Self.transformer2D, Self.personalized, "--rank", "4", "--dtype", "f16", "--out", out])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("kept"))
        let inspect = try CLIRunner.run(["inspect", out])
        #expect(inspect.stdout.contains("kohya-lora"))
        let resized = dir.appendingPathComponent("r.safetensors").path
        let resize = try CLIRunner.run(["resize-lora", out, "--dynamic", "sv_fro", "--param", "0.7", "--out", resized, "--json"])
        #expect(resize.status == 0, "\(resize.stderr)")
        #expect(try CLIRunner.jsonObject(resize.stdout)["dynamic"] as? String == "sv_fro")
        let combined = dir.appendingPathComponent("c.safetensors").path
        let combine = try CLIRunner.run(["combine-lora", out + ":0.5", Self.lora + ":-1", "--rank", "3", "--out", combined])
        #expect(combine.status == 0, "\(combine.stderr)")
        #expect(combine.stdout.contains("40 module(s)"))
        for command in ["extract-lora", "resize-lora", "combine-lora"] {
            let help = try CLIRunner.run(["help", command])
            #expect(help.stdout.contains("Examples:"), "\(command)")
        }
    }

    @Test("bad inputs give a one-line error naming the file, a non-zero status and no output")
    func badInputs() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.safetensors").path
        let cases: [([String], String)] = [
            (["extract-lora", Self.lora, Self.personalized, "--rank", "4", "--out", out], Self.lora),
            (["extract-lora", Self.transformer2D, Fixtures.path("tiny-pixart/text_encoder"), "--rank", "4", "--out", out], "text_encoder"),
            (["extract-lora", Self.transformer2D, Fixtures.path("motion_module.safetensors"), "--rank", "4", "--out", out], "motion_module"),
            (["extract-lora", Self.transformer2D, Self.personalized, "--rank", "9999", "--out", out], Self.personalized),
            (["resize-lora", Self.personalized, "--rank", "2", "--out", out], Self.personalized),
            (["combine-lora", Self.lora, Self.transformer2D, "--rank", "2", "--out", out], Self.transformer2D),
            (["resize-lora", Self.lora, "--rank", "9999", "--out", out], Self.lora),
            (["combine-lora", Self.lora, try Self.loraWithOtherShape(in: dir), "--rank", "2", "--out", out], "other-shape.safetensors"),
        ]
        for (arguments, fragment) in cases {
            let result = try CLIRunner.run(arguments)
            #expect(result.status != 0, "\(arguments)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(arguments)")
        }
    }

    /// A LoRA with the fixture LoRA's first module name but a change of another shape (3 → 5 instead of the
    /// module's own), which combine-lora must refuse.
    static func loraWithOtherShape(in dir: URL) throws -> String {
        let first = try #require(try SafetensorsFile(path: lora).keys.sorted().first { $0.hasSuffix(".lora_down.weight") })
        let module = String(first.dropLast(".lora_down.weight".count))
        let path = dir.appendingPathComponent("other-shape.safetensors").path
        _ = try SafetensorsWriter(metadata: ["ss_network_dim": "2"]).write([
            .floats([2], name: module + ".alpha", dtype: .f32, shape: []),
            .floats([Float](repeating: 0.1, count: 6), name: module + ".lora_down.weight", dtype: .f32, shape: [2, 3]),
            .floats([Float](repeating: 0.1, count: 10), name: module + ".lora_up.weight", dtype: .f32, shape: [5, 2]),
        ], to: path)
        return path
    }
}
