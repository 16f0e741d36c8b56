import Foundation
import Safetensors
import Testing
@testable import WeightOps
import TestSupport

/// A models/ tree prepared from the fixture in a fresh temporary folder.
final class ModelsSandbox {
    let root: String
    var models: String { root + "/models" }

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ea-models-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { AtomicOutput.removeTree(root) }

    static let motionModule = ArchiveFixtures.eaTiny + "/motion_module.safetensors"
    static let personalized = ArchiveFixtures.eaTiny + "/personalized.safetensors"
    static let lora = ArchiveFixtures.eaTiny + "/lora.safetensors"

    func request(
        pixart: String? = ArchiveFixtures.tinyPixArtTar, motionModule: String? = ModelsSandbox.motionModule,
        personalized: [String] = [ModelsSandbox.personalized], loras: [String] = [ModelsSandbox.lora],
        placement: Placement = .link
    ) -> PrepareRequest {
        var request = PrepareRequest(models: models, toolVersion: "9.9.9-test")
        request.pixart = pixart
        request.motionModules = motionModule.map { [$0] } ?? []
        request.personalized = personalized
        request.loras = loras
        request.placement = placement
        request.isCancelled = { false }
        return request
    }

    /// Copies a fixture file into the sandbox (so links and moves do not touch the fixture).
    func own(_ fixture: String, as name: String? = nil) throws -> String {
        let target = root + "/" + (name ?? (fixture as NSString).lastPathComponent)
        try FileManager.default.copyItem(atPath: fixture, toPath: target)
        return target
    }

    /// A copy of a safetensors file with the same header and every data byte zero (another valid file of the
    /// same kind and size).
    static func zeroedCopy(of source: String, to target: String) throws -> String {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source)))
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        for i in (8 + headerLength)..<bytes.count { bytes[i] = 0 }
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    func manifest() throws -> Manifest {
        guard let manifest = try Manifest.read(models: models) else { throw ModelsError.notFound(path: models, what: "manifest") }
        return manifest
    }
}

@Suite("prepare builds the models/ layout and its manifest")
struct PrepareTests {
    @Test("extracts the PixArt archive, links the other files, writes every file into manifest.json")
    func preparesLayout() throws {
        let box = try ModelsSandbox()
        let mm = try box.own(ModelsSandbox.motionModule, as: "easyanimate_v1_mm.safetensors")
        let report = try ModelsPreparation.prepare(box.request(motionModule: mm))
        #expect(report.items.map(\.action) == [.extracted, .linked, .linked, .linked])
        #expect(report.items.map(\.path) == [
            "Diffusion_Transformer/tiny-pixart", "Motion_Module/easyanimate_v1_mm.safetensors",
            "Personalized_Model/personalized.safetensors", "Personalized_Model/lora.safetensors",
        ])
        #expect(report.manifestWritten)

        var a = stat(), b = stat()
        stat(mm, &a)
        stat(box.models + "/Motion_Module/easyanimate_v1_mm.safetensors", &b)
        #expect(a.st_ino == b.st_ino, "hard link on the same filesystem")

        let manifest = try box.manifest()
        #expect(manifest.eaWeightsVersion == "9.9.9-test")
        let fixtureFiles = ArchiveExtractionTests.fixtureFiles()
        #expect(manifest.files.count == fixtureFiles.count + 3)
        for entry in manifest.files {
            let digest = try FileDigest.compute(path: box.models + "/" + entry.path)
            #expect(digest.size == entry.size && digest.sha256 == entry.sha256, "\(entry.path)")
        }
        let kinds = Dictionary(uniqueKeysWithValues: manifest.files.map { ($0.path, $0.kind) })
        #expect(kinds["Motion_Module/easyanimate_v1_mm.safetensors"] == "motion-module")
        #expect(kinds["Personalized_Model/lora.safetensors"] == "kohya-lora")
        #expect(kinds["Personalized_Model/personalized.safetensors"] == "pixart-transformer-2d")
        #expect(kinds["Diffusion_Transformer/tiny-pixart/transformer/diffusion_pytorch_model.safetensors"] == "pixart-transformer-2d")
        #expect(kinds["Diffusion_Transformer/tiny-pixart/vae/diffusion_pytorch_model.safetensors"] == "vae")
        #expect(kinds["Diffusion_Transformer/tiny-pixart/model_index.json"] == "config")
        #expect(kinds["Diffusion_Transformer/tiny-pixart/tokenizer/spiece.model"] == "tokenizer")
        let shards = manifest.files.filter { $0.path.contains("text_encoder/") && $0.path.hasSuffix(".safetensors") }
        #expect(!shards.isEmpty && shards.allSatisfy { $0.kind == "t5-encoder" }, "every shard has its checkpoint's kind")
        #expect(manifest.files.contains { $0.kind == "safetensors-index" })
    }

    @Test("is idempotent: a second run with the same inputs changes nothing and says so", arguments: Placement.allCases)
    func idempotent(_ placement: Placement) throws {
        let box = try ModelsSandbox()
        // Own copies of every input: --move must never take the fixture's files.
        let mm = try box.own(ModelsSandbox.motionModule)
        let lora = try box.own(ModelsSandbox.lora)
        let personalized = try box.own(ModelsSandbox.personalized)
        let request = box.request(motionModule: mm, personalized: [personalized], loras: [lora], placement: placement)
        let first = try ModelsPreparation.prepare(request)
        #expect(first.changed)
        let before = try String(contentsOfFile: box.models + "/manifest.json", encoding: .utf8)
        let second = try ModelsPreparation.prepare(request)
        #expect(!second.changed)
        #expect(second.items.allSatisfy { $0.action == .unchanged })
        #expect(try String(contentsOfFile: box.models + "/manifest.json", encoding: .utf8) == before)
        if placement == .move { #expect(!FileManager.default.fileExists(atPath: mm)) }
    }

    @Test("--copy copies with the hash from the copy pass; --move moves")
    func copyAndMove() throws {
        let box = try ModelsSandbox()
        let mm = try box.own(ModelsSandbox.motionModule)
        let report = try ModelsPreparation.prepare(box.request(pixart: nil, motionModule: mm, personalized: [], loras: [], placement: .copy))
        #expect(report.items.map(\.action) == [.copied])
        var a = stat(), b = stat()
        stat(mm, &a)
        stat(box.models + "/Motion_Module/motion_module.safetensors", &b)
        #expect(a.st_ino != b.st_ino)
        #expect(try FileDigest.compute(path: mm).sha256 == box.manifest().files[0].sha256)

        let lora = try box.own(ModelsSandbox.lora)
        let moved = try ModelsPreparation.prepare(box.request(pixart: nil, motionModule: nil, personalized: [], loras: [lora], placement: .move))
        #expect(moved.items.map(\.action) == [.moved])
        #expect(!FileManager.default.fileExists(atPath: lora))
        #expect(try box.manifest().files.map(\.path) == ["Motion_Module/motion_module.safetensors", "Personalized_Model/lora.safetensors"])
    }

    @Test("places an unpacked PixArt folder by hard links")
    func placesFolder() throws {
        let box = try ModelsSandbox()
        let folder = box.root + "/PixArt-unpacked"
        try FileManager.default.copyItem(atPath: ArchiveFixtures.tinyPixArtFolder, toPath: folder)
        let report = try ModelsPreparation.prepare(box.request(pixart: folder, motionModule: nil, personalized: [], loras: []))
        #expect(report.items.map(\.action) == [.linked])
        #expect(report.items[0].path == "Diffusion_Transformer/PixArt-unpacked")
        #expect(PixArtFolder.problems(at: box.models + "/Diffusion_Transformer/PixArt-unpacked").isEmpty)
        #expect(try box.manifest().files.count == ArchiveExtractionTests.fixtureFiles().count)
    }

    @Test("refuses a file whose kind does not match its option, before placing anything", arguments: [
        ("--motion-module", ModelsSandbox.lora), ("--lora", ModelsSandbox.motionModule), ("--personalized", ModelsSandbox.lora),
    ])
    func wrongKind(_ option: String, _ file: String) throws {
        let box = try ModelsSandbox()
        var request = box.request(personalized: [], loras: [])
        request.motionModules = option == "--motion-module" ? [file] : []
        request.loras = option == "--lora" ? [file] : []
        request.personalized = option == "--personalized" ? [file] : []
        #expect {
            try ModelsPreparation.prepare(request)
        } throws: { error in
            guard case let ModelsError.wrongKind(path, o, _, _) = error else { return false }
            return path == file && o == option && "\(error)".contains("given as \(option)")
        }
        #expect(!FileManager.default.fileExists(atPath: box.models), "nothing was created")
    }

    @Test("refuses a file already in place that differs from the input")
    func conflict() throws {
        let box = try ModelsSandbox()
        let mm = try box.own(ModelsSandbox.motionModule)
        _ = try ModelsPreparation.prepare(box.request(pixart: nil, motionModule: mm, personalized: [], loras: []))
        // Another motion module with the same file name: same header and size, other bytes.
        try FileManager.default.createDirectory(atPath: box.root + "/other", withIntermediateDirectories: true)
        let other = try ModelsSandbox.zeroedCopy(of: ModelsSandbox.motionModule, to: box.root + "/other/motion_module.safetensors")
        #expect {
            try ModelsPreparation.prepare(box.request(pixart: nil, motionModule: other, personalized: [], loras: []))
        } throws: { error in
            guard case let ModelsError.conflict(path, reason) = error else { return false }
            return path.hasSuffix("Motion_Module/motion_module.safetensors") && reason.contains("differs")
        }
    }

    @Test("refuses an empty request and a missing input")
    func badRequests() throws {
        let box = try ModelsSandbox()
        #expect(throws: ModelsError.self) {
            try ModelsPreparation.prepare(box.request(pixart: nil, motionModule: nil, personalized: [], loras: []))
        }
        #expect(throws: ModelsError.notFound(path: box.root + "/nope.safetensors", what: "file (--lora)")) {
            try ModelsPreparation.prepare(box.request(pixart: nil, motionModule: nil, personalized: [], loras: [box.root + "/nope.safetensors"]))
        }
    }

    @Test("a hostile PixArt archive is refused and leaves models/ without a partial folder")
    func hostileArchive() throws {
        let box = try ModelsSandbox()
        var tar = TarBuilder()
        tar.directory("PixArt/")
        tar.symlink("PixArt/evil", to: "../../escape")
        let archive = box.root + "/PixArt.tar"
        try Data(tar.archive).write(to: URL(fileURLWithPath: archive))
        #expect(throws: ArchiveError.self) {
            try ModelsPreparation.prepare(box.request(pixart: archive, motionModule: nil, personalized: [], loras: []))
        }
        let inside = (try? FileManager.default.contentsOfDirectory(atPath: box.models + "/Diffusion_Transformer")) ?? []
        #expect(inside.isEmpty)
    }
}
