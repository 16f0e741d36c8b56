import Foundation
import Testing
import Safetensors
@testable import WeightOps
import TestSupport

@Suite("LoRA files")
struct LoRAFileTests {
    typealias T = SyntheticSafetensors.Tensor

    static func write(_ tensors: [T]) throws -> (URL, String) {
        let dir = try SyntheticSafetensors.temporaryDirectory()
        let path = try SyntheticSafetensors.write(tensors, to: dir.appendingPathComponent("lora.safetensors").path)
        return (dir, path)
    }

    static func expectMalformed(_ tensors: [T], mentioning text: String) throws {
        let (dir, path) = try write(tensors)
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = #expect(throws: WeightOpsError.self) { _ = try LoRAFile(path: path) }
        #expect(error?.description.contains(text) == true, "\(error?.description ?? "no error")")
    }

    @Test("reads the fixture: every module has rank 4, alpha 2 and a known target")
    func readsFixture() throws {
        let lora = try LoRAFile(path: Fixtures.lora)
        #expect(!lora.modules.isEmpty)
        #expect(lora.modules.allSatisfy { $0.rank == 4 && $0.alpha == 2 && $0.alphaScale == 0.5 })
        #expect(lora.modules(for: .transformer).count + lora.modules(for: .textEncoder).count == lora.modules.count)
    }

    @Test("a module without lora_up is an error naming it")
    func missingUp() throws {
        try Self.expectMalformed([T(name: "lora_unet__proj_out.lora_down.weight", shape: [4, 8])], mentioning: "no lora_up")
    }

    @Test("a module without lora_down is an error naming it")
    func missingDown() throws {
        try Self.expectMalformed([T(name: "lora_unet__proj_out.lora_up.weight", shape: [8, 4])], mentioning: "no lora_down")
    }

    @Test("ranks that disagree between down and up are an error")
    func rankMismatch() throws {
        try Self.expectMalformed([T(name: "lora_unet__proj_out.lora_down.weight", shape: [4, 8]),
                                  T(name: "lora_unet__proj_out.lora_up.weight", shape: [8, 2])], mentioning: "rank 4")
    }

    @Test("unknown elements (LoCon/DoRA) and PEFT names are refused")
    func unsupportedFormats() throws {
        try Self.expectMalformed([T(name: "lora_unet__proj_out.lora_down.weight", shape: [4, 8]),
                                  T(name: "lora_unet__proj_out.lora_up.weight", shape: [8, 4]),
                                  T(name: "lora_unet__proj_out.dora_scale", shape: [8])], mentioning: "dora_scale")
        try Self.expectMalformed([T(name: "transformer.proj_out.lora_A.weight", shape: [4, 8])], mentioning: "PEFT")
        try Self.expectMalformed([T(name: "unet_proj_out.lora_down.weight", shape: [4, 8]),
                                  T(name: "unet_proj_out.lora_up.weight", shape: [8, 4])], mentioning: "prefix")
    }

    @Test("3x3 conv LoRAs are refused, 1x1 conv LoRAs are read")
    func convShapes() throws {
        try Self.expectMalformed([T(name: "lora_unet__conv.lora_down.weight", shape: [4, 8, 3, 3]),
                                  T(name: "lora_unet__conv.lora_up.weight", shape: [8, 4, 1, 1])], mentioning: "1x1")
        let (dir, path) = try Self.write([T(name: "lora_unet__conv.lora_down.weight", shape: [4, 8, 1, 1]),
                                          T(name: "lora_unet__conv.lora_up.weight", shape: [6, 4, 1, 1])])
        defer { try? FileManager.default.removeItem(at: dir) }
        let module = try #require(try LoRAFile(path: path).modules.first)
        #expect(module.updateShape == [6, 8, 1, 1])
        #expect(module.alpha == nil && module.alphaScale == 1)
    }
}
