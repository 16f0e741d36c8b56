import Foundation
import Safetensors
import Testing
@testable import WeightOps
import TestSupport

@Suite("Inspection")
struct InspectionTests {
    private func kinds(_ report: InspectionReport) -> [String: ModelKind] {
        Dictionary(report.files.map { ($0.path, $0.kind) }, uniquingKeysWith: { a, _ in a })
    }

    @Test("a diffusers folder reports each component, the sharded text encoder as one checkpoint")
    func diffusersFolder() throws {
        let root = Fixtures.path("tiny-pixart")
        let report = try Inspection.inspect([root])
        let pipeline = try #require(report.pipelines.first)
        #expect(report.pipelines.count == 1)
        #expect(Set(pipeline.components.map(\.name)) == ["transformer", "vae", "text_encoder", "tokenizer", "scheduler"])
        #expect(pipeline.components.first { $0.name == "tokenizer" }?.weights == [])
        let byComponent = Dictionary(report.files.map { ($0.component ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(report.files.count == 3)
        #expect(byComponent["transformer"]?.kind == .pixartTransformer2D)
        #expect(byComponent["vae"]?.kind == .vae)
        let encoder = try #require(byComponent["text_encoder"])
        #expect(encoder.kind == .t5Encoder)
        #expect(encoder.path.hasSuffix(".index.json"))
        let shardFiles = try FileManager.default.contentsOfDirectory(atPath: root + "/text_encoder").filter { $0.hasSuffix(".safetensors") }
        #expect(encoder.shards?.count == shardFiles.count)
        #expect(encoder.shards?.reduce(0) { $0 + $1.tensors } == encoder.tensors)
        #expect(encoder.dtypes.keys.sorted() == ["BF16"])
        #expect(encoder.summary.t5?.headsSource == .shapes)
        // The transformer's heads come from its config.json.
        #expect(byComponent["transformer"]?.summary.transformer?.headsSource == .config)
    }

    @Test("a models/ root laid out like EasyAnimate's README is walked and every file recognised")
    func modelsRoot() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        let models = dir.appendingPathComponent("models")
        for sub in ["Diffusion_Transformer", "Motion_Module", "Personalized_Model"] {
            try fm.createDirectory(at: models.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try fm.createSymbolicLink(atPath: models.appendingPathComponent("Diffusion_Transformer/PixArt-tiny").path,
                                  withDestinationPath: Fixtures.path("tiny-pixart"))
        // Names that say nothing: kinds come from the contents.
        try fm.copyItem(atPath: Fixtures.path("motion_module.safetensors"), toPath: models.appendingPathComponent("Motion_Module/a.safetensors").path)
        try fm.copyItem(atPath: Fixtures.path("personalized.safetensors"), toPath: models.appendingPathComponent("Personalized_Model/b.safetensors").path)
        try fm.copyItem(atPath: Fixtures.path("lora.safetensors"), toPath: models.appendingPathComponent("Personalized_Model/c.safetensors").path)

        let report = try Inspection.inspect([models.path])
        let k = kinds(report)
        #expect(k[models.path + "/Motion_Module/a.safetensors"] == .motionModule)
        #expect(k[models.path + "/Personalized_Model/b.safetensors"] == .pixartTransformer2D)
        #expect(k[models.path + "/Personalized_Model/c.safetensors"] == .kohyaLoRA)
        #expect(report.pipelines.count == 1)
        #expect(Set(report.files.compactMap(\.component)) == ["transformer", "vae", "text_encoder"])
        #expect(report.files.count == 6)
    }

    @Test("a sharded checkpoint opens from its index and from its folder alike")
    func shardedPaths() throws {
        let folder = Fixtures.path("tiny-pixart/text_encoder")
        let fromIndex = try Inspection.inspect([folder + "/model.safetensors.index.json"])
        let fromFolder = try Inspection.inspect([folder])
        #expect(fromIndex.files.count == 1 && fromFolder.files.count == 1)
        #expect(fromIndex.files[0].kind == .t5Encoder)
        #expect(fromIndex.files[0].tensors == fromFolder.files[0].tensors)
        #expect(fromIndex.files[0].parameters == fromFolder.files[0].parameters)
    }

    @Test("counts parameters and bytes per dtype from the header")
    func counts() throws {
        let path = Fixtures.path("lora.safetensors")
        let file = try #require(Inspection.inspect([path]).files.first)
        let dict = try SafetensorsFile(path: path)
        #expect(file.tensors == dict.keys.count)
        #expect(file.parameters == dict.parameterCount)
        #expect(file.bytes == dict.byteCount)
        #expect(file.dtypes.values.reduce(0) { $0 + $1.bytes } == file.bytes)
        #expect(file.metadata == dict.metadata)
        #expect(file.tensorList == nil && file.sha256 == nil)
    }

    @Test("--tensors lists every tensor and --filter a matching subset")
    func listing() throws {
        let path = Fixtures.path("tiny-pixart/transformer/diffusion_pytorch_model.safetensors")
        let dict = try SafetensorsFile(path: path)
        let all = try #require(Inspection.inspect([path], options: .init(listTensors: true)).files.first?.tensorList)
        #expect(all.map(\.name) == dict.keys)
        #expect(all.allSatisfy { $0.shape == dict.info($0.name)?.shape && $0.bytes == dict.info($0.name)?.byteCount })
        let some = try #require(Inspection.inspect([path], options: .init(filter: #"attn1\.to_q"#)).files.first)
        #expect(some.tensorList?.map(\.name) == dict.keys.filter { $0.contains("attn1.to_q") })
        #expect(some.tensors == dict.keys.count)
        let text = try Inspection.inspect([path], options: .init(filter: #"attn1\.to_q"#)).text()
        #expect(text.contains("transformer_blocks.0.attn1.to_q.weight"))
        #expect(!text.contains("attn2.to_q"))
    }

    @Test("an invalid --filter is an error")
    func badFilter() {
        #expect(throws: WeightOpsError.self) {
            try Inspection.inspect([Fixtures.path("lora.safetensors")], options: .init(filter: "(["))
        }
    }

    @Test("SHA-256 matches the standard test vectors")
    func hashing() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty").path
        let abc = dir.appendingPathComponent("abc").path
        let million = dir.appendingPathComponent("million").path
        try Data().write(to: URL(fileURLWithPath: empty))
        try Data("abc".utf8).write(to: URL(fileURLWithPath: abc))
        try Data(repeating: UInt8(ascii: "a"), count: 1_000_000).write(to: URL(fileURLWithPath: million))
        #expect(try FileDigest.sha256(path: empty) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(try FileDigest.sha256(path: abc) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        #expect(try FileDigest.sha256(path: million) == expected)
    }

    @Test("--hash gives the file's SHA-256, and each shard's for a sharded checkpoint")
    func hashOption() throws {
        let path = Fixtures.path("lora.safetensors")
        let file = try #require(Inspection.inspect([path], options: .init(hash: true)).files.first)
        #expect(file.sha256 == (try FileDigest.sha256(path: path)))
        let sharded = try #require(Inspection.inspect([Fixtures.path("tiny-pixart/text_encoder")], options: .init(hash: true)).files.first)
        #expect(sharded.sha256 == nil)
        for shard in sharded.shards ?? [] {
            #expect(shard.sha256 == (try FileDigest.sha256(path: shard.path)))
        }
    }

    @Test("JSON output has the documented fields")
    func json() throws {
        let report = try Inspection.inspect([Fixtures.path("lora.safetensors"), Fixtures.path("motion_module.safetensors")])
        let object = try JSONSerialization.jsonObject(with: Data(try report.json().utf8)) as? [String: Any]
        let files = try #require(object?["files"] as? [[String: Any]])
        #expect(files.count == 2)
        for key in ["path", "kind", "tensors", "parameters", "dtypes", "metadata", "notes"] {
            #expect(files.allSatisfy { $0[key] != nil }, "\(key)")
        }
        #expect(files[0]["kind"] as? String == "kohya-lora")
        #expect((files[0]["lora"] as? [String: Any])?["rank"] != nil)
        #expect(files[1]["kind"] as? String == "motion-module")
        #expect((files[1]["motionModule"] as? [String: Any])?["blocks"] != nil)
    }

    @Test("unreadable inputs are errors naming the path")
    func errors() throws {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.safetensors").path
        let emptyDir = dir.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: emptyDir, withIntermediateDirectories: true)
        let pickle = dir.appendingPathComponent("model.bin").path
        try Data([0x80, 0x02]).write(to: URL(fileURLWithPath: pickle))
        let truncated = dir.appendingPathComponent("truncated.safetensors").path
        let lora = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("lora.safetensors")))
        try lora.prefix(lora.count - 1).write(to: URL(fileURLWithPath: truncated))
        for path in [missing, emptyDir, pickle, truncated] {
            do {
                _ = try Inspection.inspect([path])
                Issue.record("inspecting \(path) should fail")
            } catch {
                #expect("\(error)".contains(path), "\(error)")
                #expect(!"\(error)".contains("\n"))
            }
        }
    }
}
