import Foundation
import Safetensors
import Testing
@testable import WeightOps
import TestSupport

@Suite("verify checks a models/ tree against its manifest and layout")
struct VerifyTests {
    /// A complete tree from copies of the fixture (copies, so tampering never reaches the fixture's files).
    static func prepared() throws -> ModelsSandbox {
        let box = try ModelsSandbox()
        _ = try ModelsPreparation.prepare(box.request(placement: .copy))
        return box
    }

    static func verify(_ box: ModelsSandbox, fast: Bool = false) throws -> VerifyReport {
        var options = VerifyOptions(models: box.models)
        options.fast = fast
        options.isCancelled = { false }
        return try ModelsVerification.verify(options)
    }

    static func kinds(_ report: VerifyReport, _ path: String) -> [VerifyReport.ProblemKind] {
        report.problems.filter { $0.path == path }.map(\.kind)
    }

    /// Writes the tensors of `source` whose names pass `keep`, with shapes changed by `reshape`, as zeros.
    static func derived(
        from source: String, to target: String, keep: (String) -> Bool = { _ in true },
        reshape: (String, [Int]) -> [Int] = { $1 }
    ) throws -> String {
        let file = try SafetensorsFile(path: source)
        let tensors = file.tensorsInFileOrder.filter { keep($0.name) }.map {
            SyntheticSafetensors.Tensor(name: $0.name, dtype: $0.dtype, shape: reshape($0.name, $0.shape))
        }
        return try SyntheticSafetensors.write(tensors, to: target)
    }

    static func flipLastByte(_ path: String) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        let end = try handle.seekToEnd()
        try handle.seek(toOffset: end - 1)
        let byte = handle.readData(ofLength: 1)[0]
        try handle.seek(toOffset: end - 1)
        handle.write(Data([byte ^ 0xFF]))
        try handle.close()
    }

    @Test("a freshly prepared tree is all well, with and without --fast")
    func allWell() throws {
        let box = try Self.prepared()
        for fast in [false, true] {
            let report = try Self.verify(box, fast: fast)
            #expect(report.ok, "\(report.problems)")
            #expect(report.problems.isEmpty)
            #expect(report.filesChecked == (try box.manifest()).files.count)
            #expect(report.bytesHashed == (fast ? 0 : (try box.manifest()).files.reduce(0) { $0 + $1.size }))
            #expect(report.passed.contains { $0.contains("motion module fits the transformer") })
            #expect(report.passed.contains { $0.contains("LoRA modules match") })
            #expect(report.text().hasSuffix("all well\n"))
        }
    }

    @Test("a changed byte is found by hashing, not by --fast")
    func changedContent() throws {
        let box = try Self.prepared()
        let vae = "Diffusion_Transformer/tiny-pixart/vae/diffusion_pytorch_model.safetensors"
        try Self.flipLastByte(box.models + "/" + vae)
        #expect(Self.kinds(try Self.verify(box), vae) == [.changed])
        #expect(try Self.verify(box, fast: true).ok)
    }

    @Test("missing, extra, truncated (changed + invalid) files and leftovers are reported")
    func missingExtraInvalid() throws {
        let box = try Self.prepared()
        try FileManager.default.removeItem(atPath: box.models + "/Personalized_Model/personalized.safetensors")
        try "notes".write(toFile: box.models + "/Personalized_Model/notes.txt", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(
            atPath: box.models + "/Diffusion_Transformer/\(AtomicOutput.temporaryPrefix)1-abcdef/x", withIntermediateDirectories: true)
        let lora = box.models + "/Personalized_Model/lora.safetensors"
        try FileHandle(forWritingTo: URL(fileURLWithPath: lora)).truncate(atOffset: 100)
        let report = try Self.verify(box, fast: true)
        #expect(!report.ok)
        #expect(Self.kinds(report, "Personalized_Model/personalized.safetensors") == [.missing])
        #expect(Self.kinds(report, "Personalized_Model/notes.txt") == [.extra])
        #expect(Self.kinds(report, "Diffusion_Transformer/\(AtomicOutput.temporaryPrefix)1-abcdef") == [.extra])
        #expect(Self.kinds(report, "Personalized_Model/lora.safetensors") == [.changed, .invalid])
        #expect(report.text().contains("problems found"))
    }

    @Test("a file of the wrong kind for its folder is reported")
    func wrongKind() throws {
        let box = try Self.prepared()
        try FileManager.default.copyItem(atPath: ModelsSandbox.lora, toPath: box.models + "/Motion_Module/lora.safetensors")
        try FileManager.default.copyItem(atPath: ModelsSandbox.motionModule, toPath: box.models + "/Personalized_Model/mm.safetensors")
        let report = try Self.verify(box, fast: true)
        #expect(Self.kinds(report, "Motion_Module/lora.safetensors") == [.extra, .wrongKind])
        #expect(Self.kinds(report, "Personalized_Model/mm.safetensors") == [.extra, .wrongKind])
    }

    @Test("a motion module with too few blocks or the wrong width does not fit the transformer")
    func motionModuleFit() throws {
        let box = try ModelsSandbox()
        // Only the first transformer block's motion module.
        let short = try Self.derived(from: ModelsSandbox.motionModule, to: box.root + "/short_mm.safetensors") {
            $0.hasPrefix("transformer_blocks.0.")
        }
        // Every proj_in/proj_out reads a wider input than the transformer has.
        let wide = try Self.derived(from: ModelsSandbox.motionModule, to: box.root + "/wide_mm.safetensors", reshape: { name, shape in
            if name.hasSuffix("proj_in.weight") { return [shape[0], shape[1] * 2] }
            return shape
        })
        _ = try ModelsPreparation.prepare(box.request(motionModule: short, personalized: [], loras: [], placement: .copy))
        _ = try ModelsPreparation.prepare(box.request(pixart: nil, motionModule: wide, personalized: [], loras: [], placement: .copy))
        let report = try Self.verify(box, fast: true)
        let shortProblems = report.problems.filter { $0.path == "Motion_Module/short_mm.safetensors" }
        #expect(shortProblems.map(\.kind) == [.incompatible])
        #expect(shortProblems.first?.message.contains("blocks") == true)
        let wideProblems = report.problems.filter { $0.path == "Motion_Module/wide_mm.safetensors" }
        #expect(wideProblems.map(\.kind) == [.incompatible])
        #expect(wideProblems.first?.message.contains("channels") == true)
    }

    @Test("a LoRA whose modules match no weight, or do not fit their weight, is reported")
    func loraMismatch() throws {
        let box = try ModelsSandbox()
        let lora = box.root + "/other_lora.safetensors"
        try SyntheticSafetensors.write([
            .init(name: "lora_unet__transformer_blocks_0_attn1_to_q.alpha", shape: []),
            .init(name: "lora_unet__transformer_blocks_0_attn1_to_q.lora_down.weight", shape: [4, 64]),
            .init(name: "lora_unet__transformer_blocks_0_attn1_to_q.lora_up.weight", shape: [64, 4]),
            .init(name: "lora_unet__transformer_blocks_77_attn1_to_q.alpha", shape: []),
            .init(name: "lora_unet__transformer_blocks_77_attn1_to_q.lora_down.weight", shape: [4, 64]),
            .init(name: "lora_unet__transformer_blocks_77_attn1_to_q.lora_up.weight", shape: [64, 4]),
            .init(name: "lora_te_encoder_block_0_layer_0_SelfAttention_q.alpha", shape: []),
            .init(name: "lora_te_encoder_block_0_layer_0_SelfAttention_q.lora_down.weight", shape: [4, 999]),
            .init(name: "lora_te_encoder_block_0_layer_0_SelfAttention_q.lora_up.weight", shape: [999, 4]),
        ], to: lora)
        _ = try ModelsPreparation.prepare(box.request(personalized: [], loras: [lora], placement: .copy))
        let report = try Self.verify(box, fast: true)
        let problems = report.problems.filter { $0.path == "Personalized_Model/other_lora.safetensors" }
        #expect(problems.map(\.kind) == [.loraMismatch, .loraMismatch], "\(problems)")
        #expect(problems.contains { $0.message.contains("1 of 2 transformer modules match no weight") && $0.message.contains("blocks_77") })
        #expect(problems.contains { $0.message.contains("text encoder modules do not fit") })
        #expect(!report.passed.contains { $0.contains("other_lora") })
    }

    @Test("a missing manifest and a missing PixArt folder are problems")
    func missingManifestAndLayout() throws {
        let box = try ModelsSandbox()
        try FileManager.default.createDirectory(atPath: box.models, withIntermediateDirectories: true)
        let report = try Self.verify(box)
        #expect(Self.kinds(report, "manifest.json") == [.manifest])
        #expect(Self.kinds(report, "Diffusion_Transformer/") == [.layout])
        #expect(Self.kinds(report, "Motion_Module/") == [.layout])
        #expect(throws: ModelsError.self) { try ModelsVerification.verify(VerifyOptions(models: box.root + "/absent")) }
    }

    @Test("the JSON report carries ok, counts and every problem")
    func jsonReport() throws {
        let box = try Self.prepared()
        try FileManager.default.removeItem(atPath: box.models + "/Motion_Module/motion_module.safetensors")
        let report = try Self.verify(box, fast: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try JSONSerialization.jsonObject(with: encoder.encode(report)) as? [String: Any]
        #expect(json?["ok"] as? Bool == false)
        let problems = json?["problems"] as? [[String: Any]] ?? []
        #expect(problems.contains { $0["kind"] as? String == "missing" && $0["path"] as? String == "Motion_Module/motion_module.safetensors" })
        #expect(problems.contains { $0["kind"] as? String == "layout" })
        let decoded = try JSONDecoder().decode(VerifyReport.self, from: encoder.encode(report))
        #expect(decoded.problems == report.problems)
    }
}
