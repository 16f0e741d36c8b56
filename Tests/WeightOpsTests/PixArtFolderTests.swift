import Foundation
import Safetensors
import Testing
@testable import WeightOps
import TestSupport

@Suite("PixArtFolder.check: the one layout check of extract, prepare, verify and generate")
struct PixArtFolderTests {
    /// A copy of the fixture's PixArt folder; the caller removes `dir`.
    static func copy() throws -> (dir: URL, folder: String) {
        let dir = try Fixtures.temporaryDirectory()
        let folder = dir.appendingPathComponent("pixart").path
        try FileManager.default.copyItem(atPath: Fixtures.pipelineFolder, toPath: folder)
        return (dir, folder)
    }

    /// Writes `source`'s tensors into `folder` as an index over two shards named after diffusers' weights.
    static func writeShards(of source: String, into folder: String) throws {
        let file = try SafetensorsFile(path: source)
        let staging = folder + "/.shards"
        try SafetensorsWriter().writeSharded(try file.keys.map { OutputTensor.copy(try file.tensor($0)) }, to: staging,
                                             maxShardBytes: file.byteCount / 2 + 1, baseName: "diffusion_pytorch_model")
        for name in try FileManager.default.contentsOfDirectory(atPath: staging) {
            try FileManager.default.moveItem(atPath: staging + "/" + name, toPath: folder + "/" + name)
        }
        try FileManager.default.removeItem(atPath: staging)
    }

    @Test("the fixture's folder is complete, with each network's weights resolved by its library's names")
    func fixtureIsComplete() throws {
        let check = PixArtFolder.check(Fixtures.pipelineFolder)
        #expect(check.problems.isEmpty && check.ambiguities.isEmpty && check.filesInMissingFolders.isEmpty)
        #expect(check.weights.keys.sorted() == ["text_encoder", "transformer", "vae"])
        #expect(check.weights["transformer"]?.entry == "diffusion_pytorch_model.safetensors")
        #expect(check.weights["vae"]?.entry == "diffusion_pytorch_model.safetensors")
        #expect(check.weights["text_encoder"]?.entry == "model.safetensors.index.json")
        #expect(try check.weights["text_encoder"]?.open().keys == (try ShardedCheckpoint(folder: Fixtures.textEncoderFolder)).keys)
    }

    @Test("kinds are checked on the file loaders read: shards of another kind beside the single file are only ambiguous")
    func kindOfTheFileRead() throws {
        let (dir, folder) = try Self.copy()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeShards(of: Fixtures.motionModule, into: folder + "/transformer")
        let both = PixArtFolder.check(folder)
        #expect(both.problems.isEmpty, "\(both.problems)")
        #expect(both.ambiguities.map(\.component) == ["transformer"])
        #expect(both.ambiguities.first?.note.contains("loaders read diffusion_pytorch_model.safetensors") == true)
        #expect(try both.weights["transformer"]?.open().keys == (try SafetensorsFile(path: Fixtures.transformer2D)).keys)

        // Without the single file the index is read, and its kind is wrong.
        try FileManager.default.removeItem(atPath: folder + "/transformer/diffusion_pytorch_model.safetensors")
        let indexOnly = PixArtFolder.check(folder)
        #expect(indexOnly.problems == ["transformer/ holds motion-module weights, not pixart-transformer-2d or easyanimate-transformer-3d"])
        #expect(indexOnly.ambiguities.isEmpty)
    }

    @Test("missing pieces: a component folder, the tokenizer's spiece.model, standard weight names")
    func missingPieces() throws {
        let (dir, folder) = try Self.copy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        try fm.removeItem(atPath: folder + "/scheduler")
        try fm.removeItem(atPath: folder + "/tokenizer/spiece.model")
        // diffusers reads only its own names: a VAE under another name is no VAE weights.
        try fm.moveItem(atPath: folder + "/vae/diffusion_pytorch_model.safetensors", toPath: folder + "/vae/vae.safetensors")
        let check = PixArtFolder.check(folder)
        #expect(check.problems == ["scheduler/ is missing", "tokenizer/spiece.model is missing",
                                   "vae/ has no diffusion_pytorch_model.safetensors (or its index)"])
        #expect(check.filesInMissingFolders == ["scheduler/scheduler_config.json"])
        #expect(check.weights.keys.sorted() == ["text_encoder", "transformer"])
    }

    @Test("errors of merge-lora, convert and swap on a broken folder are their module's, never an archive's")
    func errorsAreTheirModules() throws {
        let (dir, folder) = try Self.copy()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.removeItem(atPath: folder + "/transformer/diffusion_pytorch_model.safetensors")
        try SafetensorsWriter().write([.bytes([1], name: "x", dtype: .u8, shape: [1])], to: folder + "/transformer/a.safetensors")
        let out = dir.appendingPathComponent("out").path
        let runs: [() throws -> Void] = [
            { _ = try LoRAMerge.run(LoRAMergeOptions(base: folder, loras: [LoRASpec(path: Fixtures.lora, multiplier: 1)], output: out)) },
            { _ = try Convert.run(ConvertOptions(input: folder, output: out, target: .f16)) },
            { _ = try BackboneSwap.run(.init(backbone: folder, motionModule: Fixtures.motionModule, output: out, fromDiffusersFolder: true)) },
        ]
        for run in runs {
            let error = #expect(throws: (any Error).self) { try run() }
            #expect(!(error is ArchiveError), "\(String(describing: error))")
            #expect(error.map { "\($0)".contains(folder + "/transformer") } == true, "\(String(describing: error))")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
