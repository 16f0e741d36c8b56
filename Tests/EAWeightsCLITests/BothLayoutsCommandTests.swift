import Foundation
import Testing
import Safetensors
import TestSupport

/// A diffusers `transformer/` folder holding both `diffusion_pytorch_model.safetensors` and an index with shards (as
/// converting or re-sharding into the same folder leaves it): every command must read the single file, as
/// transformers and the diffusers EasyAnimate v1 pins do, and say so.
@Suite("a transformer folder holding both a single file and an index: every command reads the single file")
struct BothLayoutsCommandTests {
    static let motionModule = Fixtures.path("motion_module.safetensors")
    static let lora = Fixtures.path("lora.safetensors")
    static let index = "diffusion_pytorch_model.safetensors.index.json"

    /// `both`: the fixture's PixArt folder whose transformer/ also holds an index and shards of the personalized
    /// backbone (same keys and shapes, other values, so outputs tell which was read); `single`: the fixture's folder.
    /// `shards`: the names of the shards in `both/transformer`.
    struct Folders {
        let dir: URL
        var shards: [String] = []
        var both: String { dir.appendingPathComponent("both").path }
        var single: String { dir.appendingPathComponent("single").path }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    }

    static func folders() throws -> Folders {
        var folders = Folders(dir: try CLIRunner.temporaryDirectory())
        let fm = FileManager.default
        for target in [folders.both, folders.single] {
            try fm.copyItem(atPath: Fixtures.path("tiny-pixart"), toPath: target)
        }
        let personalized = try SafetensorsFile(path: Fixtures.path("personalized.safetensors"))
        let staging = folders.path("shards")
        let report = try SafetensorsWriter(metadata: ["format": "pt"]).writeSharded(
            try personalized.keys.map { OutputTensor.copy(try personalized.tensor($0)) }, to: staging,
            maxShardBytes: personalized.byteCount / 2 + 1, baseName: "diffusion_pytorch_model")
        #expect(report.shards.count > 1)
        folders.shards = report.shards.map { ($0.path as NSString).lastPathComponent }
        for name in try fm.contentsOfDirectory(atPath: staging) {
            try fm.moveItem(atPath: staging + "/" + name, toPath: folders.both + "/transformer/" + name)
        }
        return folders
    }

    static func run(_ arguments: [String]) throws -> CLIRunner.Result {
        let result = try CLIRunner.run(arguments)
        #expect(result.status == 0, "\(arguments): \(result.stderr)")
        return result
    }

    /// Same files, byte for byte, with the same key sets and shapes in their .safetensors files.
    static func expectSameFolders(_ a: String, _ b: String) throws {
        let fm = FileManager.default
        let files = (fm.subpaths(atPath: a) ?? []).sorted()
        #expect(files == (fm.subpaths(atPath: b) ?? []).sorted())
        for file in files where file.hasSuffix(".safetensors") {
            try expectSameFiles(a + "/" + file, b + "/" + file)
        }
        for file in files { #expect(fm.contentsEqual(atPath: a + "/" + file, andPath: b + "/" + file), "\(file)") }
    }

    static func expectSameFiles(_ a: String, _ b: String) throws {
        let x = try SafetensorsFile(path: a), y = try SafetensorsFile(path: b)
        #expect(x.keys == y.keys, "\(a)")
        #expect(x.keys.map { x.info($0)?.shape } == y.keys.map { y.info($0)?.shape }, "\(a)")
        #expect(FileManager.default.contentsEqual(atPath: a, andPath: b), "\(a)")
    }

    @Test("merge-lora merges the single file and leaves the index and its shards out of the output, saying so")
    func mergeLoRA() throws {
        let f = try Self.folders()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let merged = try Self.run(["merge-lora", f.both, "--lora", "\(Self.lora):0.55", "--out", f.path("merged-both")])
        #expect(merged.stdout.contains("left out \(([Self.index] + f.shards).joined(separator: ", ")) of \(f.both)/transformer: "
                                       + "loaders read diffusion_pytorch_model.safetensors"), "\(merged.stdout)")
        _ = try Self.run(["merge-lora", f.single, "--lora", "\(Self.lora):0.55", "--out", f.path("merged-single")])
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.path("merged-both/transformer")).sorted()
                == ["config.json", "diffusion_pytorch_model.safetensors"])
        try Self.expectSameFolders(f.path("merged-both"), f.path("merged-single"))

        // The transformer folder merged alone: the same file, and no index beside it.
        _ = try Self.run(["merge-lora", f.both + "/transformer", "--lora", "\(Self.lora):0.55", "--out", f.path("t-both")])
        _ = try Self.run(["merge-lora", f.single + "/transformer", "--lora", "\(Self.lora):0.55", "--out", f.path("t-single")])
        try Self.expectSameFolders(f.path("t-both"), f.path("t-single"))
    }

    @Test("convert converts the single file and leaves the index and its shards out")
    func convert() throws {
        let f = try Self.folders()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let both = try Self.run(["convert", f.both, "--to", "bf16", "--out", f.path("bf16-both"), "--json"])
        let notes = try CLIRunner.jsonObject(both.stdout)["notes"] as? [String]
        #expect(notes?.count == 1 && notes?.first?.contains("loaders read diffusion_pytorch_model.safetensors") == true)
        _ = try Self.run(["convert", f.single, "--to", "bf16", "--out", f.path("bf16-single")])
        try Self.expectSameFolders(f.path("bf16-both"), f.path("bf16-single"))
    }

    @Test("swap --base takes the backbone from the single file")
    func swapBase() throws {
        let f = try Self.folders()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        for name in ["both", "single"] {
            _ = try Self.run(["swap", "--base", f.path(name), "--motion-module", Self.motionModule, "--out", f.path("\(name).safetensors")])
        }
        try Self.expectSameFiles(f.path("both.safetensors"), f.path("single.safetensors"))
    }

    @Test("inspect notes on both checkpoints which file loaders read")
    func inspectNote() throws {
        let f = try Self.folders()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let result = try Self.run(["inspect", f.both + "/transformer", "--json"])
        let files = try #require(try CLIRunner.jsonObject(result.stdout)["files"] as? [[String: Any]])
        #expect(Set(files.compactMap { ($0["path"] as? String).map { ($0 as NSString).lastPathComponent } })
                == ["diffusion_pytorch_model.safetensors", Self.index])
        for file in files {
            let notes = file["notes"] as? [String] ?? []
            #expect(notes.contains { $0.contains("holds both diffusion_pytorch_model.safetensors and \(Self.index)")
                                     && $0.contains("loaders read diffusion_pytorch_model.safetensors") }, "\(notes)")
        }
        let text = try Self.run(["inspect", f.single + "/transformer"])
        #expect(!text.stdout.contains("loaders read"))
    }

    @Test("prepare places the folder with a note, and verify reports the folder as ambiguous, naming the file read")
    func prepareAndVerify() throws {
        let f = try Self.folders()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        let models = f.path("models")
        let prepared = try Self.run(["prepare", "--models", models, "--pixart", f.both, "--motion-module", Self.motionModule,
                                     "--lora", Self.lora, "--copy"])
        #expect(prepared.stdout.contains("transformer/ holds both diffusion_pytorch_model.safetensors and \(Self.index)"))
        #expect(prepared.stdout.contains("loaders read diffusion_pytorch_model.safetensors"))

        let verified = try CLIRunner.run(["verify", "--models", models, "--fast", "--json"])
        #expect(verified.status != 0)
        let report = try CLIRunner.jsonObject(verified.stdout)
        let problems = try #require(report["problems"] as? [[String: Any]])
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?["kind"] as? String == "ambiguous")
        #expect(problems.first?["path"] as? String == "Diffusion_Transformer/both/transformer")
        #expect((problems.first?["message"] as? String)?.contains("loaders read diffusion_pytorch_model.safetensors") == true)
        let passed = report["passed"] as? [String] ?? []
        #expect(passed.contains { $0.contains("motion module fits the transformer") })
        #expect(passed.contains { $0.contains("LoRA modules match") })
    }

    @Test("generate reads the single file: the same output as from a folder holding only it")
    func generate() throws {
        let f = try Self.folders()
        defer { try? FileManager.default.removeItem(at: f.dir) }
        for name in ["both", "single"] {
            _ = try Self.run(["generate", "--pixart", f.path(name), "--motion-module", Self.motionModule,
                              "--prompt", "A snowy forest", "--frames", "8", "--steps", "5",
                              "--out", f.path("\(name)-video.safetensors")])
        }
        try Self.expectSameFiles(f.path("both-video.safetensors"), f.path("single-video.safetensors"))
    }
}
