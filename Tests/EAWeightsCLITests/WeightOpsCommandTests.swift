import Foundation
import Testing
import Safetensors
import TestSupport

@Suite("weight-operation commands")
struct WeightOpsCommandTests {
    static let lora = Fixtures.path("lora.safetensors")
    static let transformer2D = Fixtures.path("tiny-pixart/transformer/diffusion_pytorch_model.safetensors")
    static let motionModule = Fixtures.path("motion_module.safetensors")
    static let personalized = Fixtures.path("personalized.safetensors")

    @Test("swap, merge-lora --dtype f32 at 0.55, diff against the golden, unmerge back to the base")
    func mergeRoundTrip() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let threeD = dir.appendingPathComponent("3d.safetensors").path
        let swap = try CLIRunner.run(["swap", "--backbone", Self.transformer2D, "--motion-module", Self.motionModule, "--out", threeD])
        #expect(swap.status == 0, "\(swap.stderr)")
        let merged = dir.appendingPathComponent("merged.safetensors").path
        let merge = try CLIRunner.run(["merge-lora", threeD, "--lora", "\(Self.lora):0.55", "--out", merged, "--dtype", "f32", "--json"])
        #expect(merge.status == 0, "\(merge.stderr)")
        let report = try CLIRunner.jsonObject(merge.stdout)["report"] as? [String: Any]
        #expect(report?["applied"] as? Int == 26)
        #expect(report?["total"] as? Int == 40)

        let diff = try CLIRunner.run(["diff", merged, Fixtures.golden("merged_lora_transformer3d.safetensors"), "--json"])
        #expect(diff.status == 0, "\(diff.stderr)")
        let d = try CLIRunner.jsonObject(diff.stdout)
        for change in try #require(d["changed"] as? [[String: Any]]) {
            #expect((change["max_abs"] as? Double ?? 1) <= Double(Tolerances.stateDict), "\(change["name"] ?? "")")
        }
        // The same keys and shapes as the golden, which leaves out the pos_encoder.pe buffers the merge keeps.
        #expect((d["only_in_b"] as? [String])?.isEmpty == true)
        let onlyInMerged = try #require(d["only_in_a"] as? [String])
        #expect(!onlyInMerged.isEmpty && onlyInMerged.allSatisfy(GoldenComparison.isLeftOutOfGoldens))
        #expect((d["shape_changes"] as? [Any])?.isEmpty == true)
        #expect((d["incomparable"] as? [Any])?.isEmpty == true)

        let restored = dir.appendingPathComponent("restored.safetensors").path
        let unmerge = try CLIRunner.run(["merge-lora", merged, "--unmerge", "\(Self.lora):0.55", "--out", restored])
        #expect(unmerge.status == 0, "\(unmerge.stderr)")
        #expect(unmerge.stdout.contains("applied 26/40 LoRA modules"))
        let problems = try GoldenComparison.stateDictProblems(SafetensorsFile(path: restored), golden: SafetensorsFile(path: threeD),
                                                              tolerance: Tolerances.stateDict)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
    }

    @Test("extract-motion-module after swap gives back the motion module byte for byte")
    func extractRoundTrip() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let threeD = dir.appendingPathComponent("3d.safetensors").path
        #expect(try CLIRunner.run(["swap", "--backbone", Self.personalized, "--motion-module", Self.motionModule, "--out", threeD]).status == 0)
        let mm = dir.appendingPathComponent("mm.safetensors").path
        let extract = try CLIRunner.run(["extract-motion-module", threeD, "--out", mm])
        #expect(extract.status == 0, "\(extract.stderr)")
        #expect(extract.stdout.contains("kept 56 temporal tensor(s)"))
        let a = try SafetensorsFile(path: mm), b = try SafetensorsFile(path: Self.motionModule)
        #expect(a.keys == b.keys)
        for key in a.keys { #expect(try a.tensor(key).copyBytes() == b.tensor(key).copyBytes()) }
        #expect(FileManager.default.contentsEqual(atPath: mm, andPath: Self.motionModule))
    }

    @Test("errors are one line on stderr naming the file, with a non-zero status and no output")
    func errorsAreOneLine() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.safetensors").path
        let wrongBase = try CLIRunner.run(["merge-lora", Self.motionModule, "--lora", Self.lora, "--out", out])
        #expect(wrongBase.status != 0)
        #expect(wrongBase.stderr.contains("lora.safetensors") && wrongBase.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: out))
        let swapped = try CLIRunner.run(["swap", "--backbone", Self.transformer2D, "--motion-module", Self.transformer2D, "--out", out])
        #expect(swapped.status != 0 && swapped.stderr.contains("non-temporal"))
        let missing = try CLIRunner.run(["convert", dir.appendingPathComponent("nope.safetensors").path, "--to", "f16", "--out", out])
        #expect(missing.status != 0 && missing.stderr.contains("does not exist"))
        let noOut = try CLIRunner.run(["merge-lora", Self.transformer2D, "--lora", Self.lora])
        #expect(noOut.status != 0 && noOut.stderr.contains("--out"))
    }

    @Test("merge-lora --strict fails on unmatched modules; --dry-run writes nothing")
    func strictAndDryRun() throws {
        // The 2D transformer alone lacks nothing the fixture LoRA names, but the T5 folder lacks the transformer part:
        // that is another model, not an unmatched module, so strict still passes there.
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dry = try CLIRunner.run(["merge-lora", Fixtures.path("tiny-pixart/text_encoder"), "--lora", Self.lora, "--dry-run", "--strict"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("applied 14/40") && dry.stdout.contains("dry run"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test("convert --to int8 writes ComfyUI metadata; diff reports the dequantized error")
    func convertAndDiff() throws {
        let dir = try CLIRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("int8.safetensors").path
        let convert = try CLIRunner.run(["convert", Self.transformer2D, "--to", "int8", "--group-size", "32", "--out", out, "--json"])
        #expect(convert.status == 0, "\(convert.stderr)")
        let report = try CLIRunner.jsonObject(convert.stdout)
        #expect((report["quantized"] as? [Any])?.isEmpty == false)
        let file = try SafetensorsFile(path: out)
        #expect(file.metadata["_quantization_metadata"]?.contains("\"int8_blockwise\"") == true)
        let diff = try CLIRunner.run(["diff", Self.transformer2D, out])
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(diff.stdout.contains("dequantized before comparing"))
        #expect(!diff.stdout.contains("only in B"))
    }

    @Test("bench merge merges a synthetic transformer, reports time and memory, and compares with Python when asked")
    func benchMerge() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLIRunner.run(["bench", "merge", "--blocks", "1", "--width", "64", "--rank", "4", "--python",
                                        "--dir", dir, "--json"])
        // A checkpoint this small is below the process's own baseline memory: the limit check may fail (exit 1).
        #expect(result.status == 0 || result.status == 1, "\(result.stderr)")
        let object = try CLIRunner.jsonObject(result.stdout)
        #expect(object["merge_seconds"] as? Double ?? 0 > 0)
        #expect(object["merge_peak_rss_bytes"] as? Int ?? 0 > 0)
        let report = try #require(object["report"] as? [String: Any])
        #expect(report["applied"] as? Int ?? 0 > 0 && report["applied"] as? Int == report["total"] as? Int)
        // Where python3 has safetensors and torch or numpy it ran; elsewhere the reason is given.
        let python = try #require(object["python"] as? [String: Any])
        #expect(python["skipped"] is String || python["speedup"] as? Double ?? 0 > 0, "\(python)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir)) == [], "the synthetic files are removed")
    }

    @Test("help teaches: abstract, discussion and an example for each command")
    func helpHasExamples() throws {
        for command in ["merge-lora", "swap", "extract-motion-module", "convert", "diff"] {
            let help = try CLIRunner.run([command, "--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("ea-weights \(command)"), "\(command)")
        }
        #expect(try CLIRunner.run(["bench", "merge", "--help"]).stdout.contains("quarter"))
    }
}
