import Bench
import Foundation
import Safetensors
import Testing
import TestSupport

@Suite("bench stages of the runner")
struct BenchStageCommandTests {
    @Test("bench t5 writes a sharded BF16 encoder once, times the encode and reports the stage's fields as JSON")
    func benchT5() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let arguments = ["bench", "t5", "--layers", "2", "--width", "128", "--ff", "256", "--tokens", "16", "--dir", dir, "--json"]
        let first = try CLIRunner.run(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        let object = try CLIRunner.jsonObject(first.stdout)
        #expect(object["stage"] as? String == "t5")
        for key in ["seconds", "gflops", "peak_fraction", "peak_anon_mb"] {
            #expect(object[key] as? Double ?? 0 > 0, "\(key)")
        }
        #expect((object["blas_core"] as? String)?.isEmpty == false)
        #expect(object["layers"] as? Int == 2 && object["batch"] as? Int == 2 && object["tokens"] as? Int == 16)
        let folder = (dir as NSString).appendingPathComponent("ea-weights-bench-t5-2x128x256")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(files == ["config.json", "model.safetensors"])
        let written = try FileManager.default.attributesOfItem(atPath: (folder as NSString).appendingPathComponent("model.safetensors"))
        // A second run reuses the encoder it finds.
        let second = try CLIRunner.run(arguments)
        #expect(second.status == 0, "\(second.stderr)")
        let again = try FileManager.default.attributesOfItem(atPath: (folder as NSString).appendingPathComponent("model.safetensors"))
        #expect(written[.modificationDate] as? Date == again[.modificationDate] as? Date)
    }

    @Test("bench t5 refuses sizes it cannot build, in one line")
    func benchT5RefusesBadSizes() throws {
        let result = try CLIRunner.run(["bench", "t5", "--width", "100"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("multiple of 64"))
    }

    @Test("bench vae writes an AutoencoderKL once, times the decode and reports the stage's fields as JSON")
    func benchVAE() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLIRunner.run(["bench", "vae", "--channels", "32,64", "--height", "32", "--width", "32", "--frames", "2",
                                        "--dir", dir, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try CLIRunner.jsonObject(result.stdout)
        #expect(object["stage"] as? String == "vae")
        for key in ["seconds", "gflops", "peak_fraction", "peak_anon_mb"] {
            #expect(object[key] as? Double ?? 0 > 0, "\(key)")
        }
        #expect(object["frames"] as? Int == 2 && object["height"] as? Int == 32)
        let folder = (dir as NSString).appendingPathComponent("ea-weights-bench-vae-32-64")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
                == ["config.json", "diffusion_pytorch_model.safetensors"])
    }

    @Test("bench vae refuses frame sizes the VAE cannot decode, in one line")
    func benchVAERefusesBadSizes() throws {
        let result = try CLIRunner.run(["bench", "vae", "--height", "20"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("multiples of 8"))
    }

    @Test("bench transformer writes the release's transformer folder, motion module and yaml once, times one CFG step as JSON")
    func benchTransformer() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let arguments = ["bench", "transformer", "--blocks", "2", "--channels", "64", "--heads", "4", "--frames", "3",
                         "--height", "64", "--width", "32", "--dir", dir, "--json"]
        let first = try CLIRunner.run(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        let object = try CLIRunner.jsonObject(first.stdout)
        #expect(object["stage"] as? String == "transformer")
        for key in ["seconds", "gflops", "peak_fraction", "peak_anon_mb"] {
            #expect(object[key] as? Double ?? 0 > 0, "\(key)")
        }
        #expect(object["blocks"] as? Int == 2 && object["frames"] as? Int == 3 && object["height"] as? Int == 64)
        let folder = (dir as NSString).appendingPathComponent("ea-weights-bench-transformer-2x64x4")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
                == ["bench-config.json", "easyanimate_video_motion_module_v1.yaml", "motion_module.safetensors", "transformer"])
        let motion = (folder as NSString).appendingPathComponent("motion_module.safetensors")
        let written = try FileManager.default.attributesOfItem(atPath: motion)
        let second = try CLIRunner.run(arguments)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(written[.modificationDate] as? Date
                == (try FileManager.default.attributesOfItem(atPath: motion))[.modificationDate] as? Date)
    }

    @Test("bench transformer's motion module has the release's key names and shapes (those of ea-tiny's, at its size)")
    func benchMotionModuleMatchesTheRelease() throws {
        let release = try SafetensorsFile(path: Fixtures.path("motion_module.safetensors"))
        var config = TransformerBenchmark.Config()
        config.blocks = 2
        config.width = 64
        let synthesized = TransformerBenchmark.motionModuleShapes(config)
        #expect(synthesized.map(\.name) == release.keys.sorted())
        #expect(synthesized.map(\.shape) == release.keys.sorted().map { release.info($0)?.shape ?? [] })
    }

    @Test("bench transformer refuses sizes the model cannot take, in one line")
    func benchTransformerRefusesBadSizes() throws {
        let result = try CLIRunner.run(["bench", "transformer", "--height", "48"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("multiples of 32"))
    }

    @Test("a bench stage refuses a --dir it cannot create, naming it, in one line")
    func benchStageRefusesAnUnusableFolder() throws {
        let dir = try CLIRunner.temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = (dir as NSString).appendingPathComponent("a-file")
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        for stage in ["transformer", "t5", "vae"] {
            let result = try CLIRunner.run(["bench", stage, "--dir", file])
            #expect(result.status != 0, "\(stage)")
            #expect(result.stderr.contains("\(file)/ea-weights-bench-\(stage)") && result.stderr.contains("Not a directory"), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        }
    }
}
