import Foundation
import Testing
import Safetensors
@testable import WeightOps
import TestSupport

@Suite("Backbone swap and motion-module extraction")
struct BackboneSwapTests {
    @Test("the personalized backbone under the motion module equals EasyAnimate's 3D state dict exactly")
    func swapMatchesGoldenExactly() throws {
        let swap = try BackboneSwap(backbone: SafetensorsFile(path: Fixtures.personalized),
                                    motionModule: SafetensorsFile(path: Fixtures.motionModule))
        let golden = try SafetensorsFile(path: Fixtures.golden("personalized_transformer3d.safetensors"))
        for key in golden.keys {
            let expected = try golden.tensor(key)
            let actual = try swap.result.tensor(key)
            #expect(actual.shape == expected.shape, "\(key)")
            #expect(actual.dtype == expected.dtype, "\(key)")
            #expect(actual.copyBytes() == expected.copyBytes(), "\(key) differs")
        }
        // The golden leaves out the sinusoidal pos_encoder.pe buffers; the result keeps them.
        let extra = Set(swap.result.keys).subtracting(golden.keys)
        #expect(!extra.isEmpty && extra.allSatisfy(GoldenComparison.isLeftOutOfGoldens))
        #expect(swap.report.blocks == 2)
        #expect(swap.report.width != nil)
    }

    @Test("refuses a backbone that already holds temporal keys")
    func refusesTemporalBackbone() throws {
        let threeD = try StateDictUnion([SafetensorsFile(path: Fixtures.personalized), SafetensorsFile(path: Fixtures.motionModule)])
        #expect(throws: WeightOpsError.self) {
            _ = try BackboneSwap(backbone: threeD, motionModule: SafetensorsFile(path: Fixtures.motionModule))
        }
    }

    @Test("refuses a 'motion module' with spatial keys and one for other blocks")
    func refusesWrongMotionModule() throws {
        let backbone = try SafetensorsFile(path: Fixtures.personalized)
        #expect(throws: WeightOpsError.self) {
            _ = try BackboneSwap(backbone: backbone, motionModule: SafetensorsFile(path: Fixtures.transformer2D))
        }
        let oneBlock = try SubsetStateDict(SafetensorsFile(path: Fixtures.motionModule)) { $0.hasPrefix("transformer_blocks.0.") }
        let error = #expect(throws: WeightOpsError.self) { _ = try BackboneSwap(backbone: backbone, motionModule: oneBlock) }
        #expect(error?.description.contains("different model sizes") == true)
    }

    @Test("extraction keeps exactly the temporal tensors")
    func extractionKeepsTemporalKeys() throws {
        let threeD = try StateDictUnion([SafetensorsFile(path: Fixtures.personalized), SafetensorsFile(path: Fixtures.motionModule)])
        let extraction = try MotionModuleExtraction(threeD)
        let motion = try SafetensorsFile(path: Fixtures.motionModule)
        #expect(extraction.keys == motion.keys)
        #expect(extraction.report.keptTensors == motion.keys.count)
        #expect(extraction.report.droppedTensors == threeD.keys.count - motion.keys.count)
        #expect(throws: WeightOpsError.self) { _ = try MotionModuleExtraction(SafetensorsFile(path: Fixtures.personalized)) }
    }
}

/// The tensors of a state dict whose names pass a filter (to build mismatching inputs in tests).
struct SubsetStateDict: StateDict {
    let base: any StateDict
    let keys: [String]
    var path: String { base.path }
    var metadata: [String: String] { base.metadata }

    init(_ base: any StateDict, _ include: (String) -> Bool) {
        self.base = base
        self.keys = base.keys.filter(include)
    }

    func info(_ name: String) -> TensorInfo? { keys.contains(name) ? base.info(name) : nil }
    func tensor(_ name: String) throws -> TensorView {
        guard keys.contains(name) else { throw SafetensorsError.tensorNotFound(path: path, tensor: name) }
        return try base.tensor(name)
    }
}

@Suite("swap and extract on disk")
struct SwapExtractOperationTests {
    @Test("swap then extract gives back the motion module file byte for byte")
    func roundTrip() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let swapped = dir.appendingPathComponent("3d.safetensors").path
        let report = try BackboneSwap.run(.init(backbone: Fixtures.personalized, motionModule: Fixtures.motionModule, output: swapped))
        #expect(report.blocks == 2)
        let golden = try SafetensorsFile(path: Fixtures.golden("personalized_transformer3d.safetensors"))
        let result = try SafetensorsFile(path: swapped)
        // Exact: the golden's keys (it leaves out the pos_encoder.pe buffers), shapes and bytes.
        #expect(Set(result.keys.filter { !GoldenComparison.isLeftOutOfGoldens($0) }) == Set(golden.keys))
        for key in golden.keys {
            #expect(result.info(key)?.shape == golden.info(key)?.shape, "\(key)")
            #expect(try result.tensor(key).copyBytes() == golden.tensor(key).copyBytes(), "\(key)")
        }
        // The inputs' hashes, computed while the output was written, complete its header.
        let provenance = try #require(result.metadata[LoRAMerge.provenanceKey])
        #expect(provenance.contains(try FileDigest.sha256(path: Fixtures.personalized)))
        #expect(provenance.contains(try FileDigest.sha256(path: Fixtures.motionModule)))
        let extracted = dir.appendingPathComponent("mm.safetensors").path
        _ = try MotionModuleExtraction.run(source: swapped, output: extracted)
        let a = try SafetensorsFile(path: extracted), b = try SafetensorsFile(path: Fixtures.motionModule)
        #expect(a.keys == b.keys)
        for key in b.keys { #expect(try a.tensor(key).copyBytes() == b.tensor(key).copyBytes(), "\(key)") }
        // Written without metadata like extra_motion_module.py's save_file: the very same file.
        #expect(FileManager.default.contentsEqual(atPath: extracted, andPath: Fixtures.motionModule))
    }

    @Test("--base takes the diffusers folder's transformer")
    func fromDiffusersFolder() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("3d.safetensors").path
        _ = try BackboneSwap.run(.init(backbone: Fixtures.pipelineFolder, motionModule: Fixtures.motionModule, output: out,
                                       fromDiffusersFolder: true))
        let result = try SafetensorsFile(path: out)
        let base = try SafetensorsFile(path: Fixtures.transformer2D)
        for key in base.keys { #expect(try result.tensor(key).copyBytes() == base.tensor(key).copyBytes()) }
    }
}
