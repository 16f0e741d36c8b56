import Foundation
import Testing
import Safetensors
@testable import WeightOps
import TestSupport

@Suite("convert")
struct ConvertTests {
    /// The fixture's 3D transformer as one file (2D weights + motion module).
    static func transformer3D(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("transformer3d.safetensors").path
        _ = try BackboneSwap.run(.init(backbone: Fixtures.transformer2D, motionModule: Fixtures.motionModule, output: path))
        return path
    }

    @Test("f16: exact round-to-nearest-even; norms and pos_encoder.pe stay f32")
    func toF16() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.transformer3D(in: dir)
        let out = dir.appendingPathComponent("f16.safetensors").path
        let report = try Convert.run(ConvertOptions(input: input, output: out, target: .f16))
        let source = try SafetensorsFile(path: input), result = try SafetensorsFile(path: out)
        #expect(result.keys == source.keys)
        for key in source.keys {
            let t = try result.tensor(key)
            let isKept = key.hasSuffix("pos_encoder.pe") || key.contains("norm")
            #expect(t.dtype == (isKept ? .f32 : .f16), "\(key)")
            if t.dtype == .f16 {
                let expected = try source.tensor(key).toFloat32().map { Float(Float16($0)) }
                #expect(t.toFloat32() == expected, "\(key)")
            }
        }
        #expect(report.kept.contains { $0.name.hasSuffix("pos_encoder.pe") })
        #expect(report.converted + report.kept.count == source.keys.count)
        #expect(report.bytesOut < report.bytesIn)
    }

    @Test("a sharded BF16 T5 to f16 keeps its shards and leaves wo and the layer norms alone")
    func shardedT5ToF16() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("te").path
        _ = try Convert.run(ConvertOptions(input: Fixtures.textEncoderFolder, output: out, target: .f16))
        let (dict, files) = try WeightFiles.locate(out).open()
        #expect(files.map(\.name) == (try WeightFiles.locate(Fixtures.textEncoderFolder)).weightFileNames)
        for info in dict.allInfos {
            let kept = info.name.hasSuffix(".wo.weight") || info.name.contains("layer_norm")
            #expect(info.dtype == (kept ? .bf16 : .f16), "\(info.name)")
        }
        // --keep-f32 '' narrows everything.
        let all = dir.appendingPathComponent("te-all").path
        var options = ConvertOptions(input: Fixtures.textEncoderFolder, output: all, target: .f16)
        options.keepPattern = ""
        _ = try Convert.run(options)
        #expect(try WeightFiles.locate(all).open().dict.allInfos.allSatisfy { $0.dtype == .f16 })
    }

    @Test("int8 blockwise: ComfyUI layout and metadata, |w - q*scale| <= scale/2, undivisible layers kept and listed")
    func toInt8() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = try Self.transformer3D(in: dir)
        let out = dir.appendingPathComponent("int8.safetensors").path
        var options = ConvertOptions(input: input, output: out, target: .int8)
        options.groupSize = 64
        let report = try Convert.run(options)
        let source = try SafetensorsFile(path: input), result = try SafetensorsFile(path: out)
        let meta = try #require(try QuantizationMetadata(metadata: result.metadata, path: out))
        #expect(meta.formatVersion == "1.0")
        #expect(!meta.layers.isEmpty)
        #expect(meta.layers.count == report.quantized.count)
        for (layer, entry) in meta.layers {
            #expect(entry == .init(format: .int8Blockwise, groupSize: 64))
            let w = try result.tensor(layer + ".weight"), s = try result.tensor(layer + ".weight_scale")
            let original = try source.tensor(layer + ".weight")
            #expect(w.dtype == .i8 && w.shape == original.shape)
            #expect(s.dtype == .f32 && s.shape == [original.shape[0] / 64, original.shape[1] / 64])
            let rows = w.shape[0], cols = w.shape[1]
            let scales = s.toFloat32()
            let back = Quantizer.dequantizeInt8Blockwise(w.copyBytes().map { Int8(bitPattern: $0) }, rows: rows, cols: cols,
                                                         scale: scales, groupSize: 64)
            let x = original.toFloat32()
            for i in x.indices {
                let scale = scales[(i / cols) / 64 * (cols / 64) + (i % cols) / 64]
                #expect(abs(x[i] - back[i]) <= scale / 2 * (1 + 1e-5), "\(layer)[\(i)]")
            }
        }
        // (64, 32) caption projection does not divide into 64x64 blocks: kept in F32 and listed.
        #expect(report.kept.contains { $0.name == "caption_projection.linear_1.weight" && $0.reason.contains("group-size") })
        #expect(try result.tensor("caption_projection.linear_1.weight").dtype == .f32)
        // Non-Linear tensors are untouched.
        #expect(try result.tensor("pos_embed.proj.weight").copyBytes() == source.tensor("pos_embed.proj.weight").copyBytes())
        #expect(report.bytesOut < report.bytesIn)
    }

    @Test("fp8 on the sharded T5: scalar scales, embeddings and wo kept, one metadata entry per shard's layers")
    func t5ToFp8() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("te").path
        let report = try Convert.run(ConvertOptions(input: Fixtures.textEncoderFolder, output: out, target: .fp8))
        let (dict, files) = try WeightFiles.locate(out).open()
        #expect(dict.info("shared.weight")?.dtype == .bf16)
        #expect(dict.info("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")?.dtype == .bf16)
        #expect(dict.info("encoder.block.0.layer.1.DenseReluDense.wo.weight")?.dtype == .bf16)
        #expect(dict.info("encoder.block.0.layer.0.SelfAttention.q.weight")?.dtype == .f8e4m3)
        #expect(dict.info("encoder.block.0.layer.0.SelfAttention.q.weight_scale")?.shape == [])
        var layers = 0
        for (_, file) in files {
            let meta = try QuantizationMetadata(metadata: file.metadata, path: file.path)
            for (layer, entry) in meta?.layers ?? [:] {
                #expect(entry == .init(format: .float8E4M3FN))
                #expect(file.info(layer + ".weight")?.dtype == .f8e4m3)
                layers += 1
            }
        }
        #expect(layers == report.quantized.count && layers > 0)
        // The index lists every quantized layer too.
        let index = try #require(try QuantizationMetadata(metadata: dict.metadata, path: out))
        #expect(index.layers.count == layers)
        #expect(report.quantized.allSatisfy { $0.error.relative < 0.06 })
        #expect(throws: WeightOpsError.self) {
            _ = try Convert.run(ConvertOptions(input: out, output: dir.appendingPathComponent("again").path, target: .int8))
        }
    }

    @Test("a diffusers folder to int8: transformer and T5 quantized, the VAE untouched")
    func diffusersToInt8() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("pipe").path
        var options = ConvertOptions(input: Fixtures.pipelineFolder, output: out, target: .int8)
        options.groupSize = 32
        _ = try Convert.run(options)
        #expect(FileManager.default.contentsEqual(atPath: out + "/vae/diffusion_pytorch_model.safetensors",
                                                  andPath: Fixtures.pipelineFolder + "/vae/diffusion_pytorch_model.safetensors"))
        let transformer = try SafetensorsFile(path: out + "/transformer/diffusion_pytorch_model.safetensors")
        #expect(transformer.info("transformer_blocks.0.attn1.to_q.weight")?.dtype == .i8)
        #expect(try QuantizationMetadata(metadata: transformer.metadata, path: "") != nil)
        #expect(FileManager.default.fileExists(atPath: out + "/text_encoder/model.safetensors.index.json"))
        #expect(throws: WeightOpsError.self) {
            _ = try Convert.run(ConvertOptions(input: Fixtures.pipelineFolder + "/vae", output: dir.appendingPathComponent("v").path, target: .fp8))
        }
    }

    @Test("f16 overflow is an error naming the tensor unless allowed, and is counted")
    func f16Overflow() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        typealias T = SyntheticSafetensors.Tensor
        let input = try SyntheticSafetensors.write([T(name: "big.weight", shape: [3], values: [1, 70000, -1e6]),
                                                    T(name: "tiny.weight", shape: [2], values: [1e-9, 1])],
                                                   to: dir.appendingPathComponent("in.safetensors").path)
        let out = dir.appendingPathComponent("out.safetensors").path
        let error = #expect(throws: WeightOpsError.self) { _ = try Convert.run(ConvertOptions(input: input, output: out, target: .f16)) }
        #expect(error?.description.contains("big.weight") == true)
        #expect(!FileManager.default.fileExists(atPath: out))
        var options = ConvertOptions(input: input, output: out, target: .f16)
        options.allowOverflow = true
        let report = try Convert.run(options)
        #expect(report.lossy.contains(.init(name: "big.weight", overflowed: 2, underflowed: 0)))
        #expect(report.lossy.contains(.init(name: "tiny.weight", overflowed: 0, underflowed: 1)))
    }
}
