import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

private func goldenTensor(_ file: SafetensorsFile, _ key: String) throws -> Tensor {
    let view = try file.tensor(key)
    return Tensor(shape: view.shape, storage: view.toFloat32())
}

@Suite("VAE decoder")
struct VAEDecoderTests {
    static let folder = Fixtures.path("tiny-pixart/vae")

    @Test("decode matches diffusers' vae.decode(latents / scaling_factor) within 1e-4")
    func decodeMatchesGolden() throws {
        let vae = try VAEDecoder.load(folder: Self.folder)
        let golden = try SafetensorsFile(path: Fixtures.golden("vae_decode.safetensors"))
        var latents = try goldenTensor(golden, "latents")
        let expected = try goldenTensor(golden, "sample")
        // The golden is `vae.decode(latents / 0.18215).sample`; the config carries that scaling factor.
        let divisor = Float(vae.config.scalingFactor)
        Kernels.map(&latents) { $0 / divisor }
        let sample = try vae.decode(latents)
        try #require(sample.shape == expected.shape)
        #expect(sample.maxAbsDifference(expected) <= Tolerances.moduleOutput)
    }

    @Test("decodeVideo decodes each frame and maps to [0, 1] like EasyAnimate's decode_latents")
    func decodeVideoMatchesPerFrameGolden() throws {
        let vae = try VAEDecoder.load(folder: Self.folder)
        let golden = try SafetensorsFile(path: Fixtures.golden("vae_decode.safetensors"))
        let latents = try goldenTensor(golden, "latents")   // [2, C, h, w]: used as 2 frames of one video
        let expected = try goldenTensor(golden, "sample")   // [2, 3, H, W]
        let (c, h, w) = (latents.shape[1], latents.shape[2], latents.shape[3])
        let video = Kernels.permute(latents, [1, 0, 2, 3]).reshaped([1, c, 2, h, w])
        var frames: [Int] = []
        let decoded = try vae.decodeVideo(video) { done, total in
            #expect(total == 2)
            frames.append(done)
        }
        #expect(frames == [1, 2])
        let (oc, oh, ow) = (expected.shape[1], expected.shape[2], expected.shape[3])
        try #require(decoded.shape == [1, oc, 2, oh, ow])
        var reference = Kernels.permute(expected, [1, 0, 2, 3]).reshaped([1, oc, 2, oh, ow])
        Kernels.map(&reference) { min(max($0 / 2 + 0.5, 0), 1) }
        #expect(decoded.maxAbsDifference(reference) <= Tolerances.moduleOutput)
        #expect(decoded.storage.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test("reads the decoder layout from config.json")
    func readsConfig() throws {
        let config = try VAEConfig(contentsOf: Self.folder + "/config.json")
        let vae = try VAEDecoder.load(folder: Self.folder)
        #expect(vae.config == config)
        #expect(vae.upBlocks.count == config.blockOutChannels.count)
        #expect(vae.upBlocks.allSatisfy { $0.resnets.count == config.layersPerBlock + 1 })
        #expect(vae.upBlocks.dropLast().allSatisfy { $0.upsampleConv != nil } && vae.upBlocks.last?.upsampleConv == nil)
        #expect(config.spatialScale == 1 << (config.blockOutChannels.count - 1))
    }

    @Test("leaves the encoder's weights unloaded and reports them")
    func reportsEncoderKeys() throws {
        let vae = try VAEDecoder.load(folder: Self.folder)
        #expect(!vae.ignoredEncoderKeys.isEmpty)
        #expect(vae.ignoredEncoderKeys.allSatisfy(VAEDecoder.isEncoderKey))
        #expect(vae.ignoredEncoderKeys.contains("quant_conv.weight"))
    }

    @Test("a decoder weight the model does not use is an error, not ignored")
    func rejectsUnexpectedDecoderKey() throws {
        let file = try SafetensorsFile(path: Self.folder + "/diffusion_pytorch_model.safetensors")
        let store = WeightStore(name: file.path, layers: [file],
                                replacements: ["decoder.up_blocks.9.resnets.0.conv1.weight": Tensor(zeros: [1])])
        let config = try VAEConfig(contentsOf: Self.folder + "/config.json")
        #expect {
            _ = try VAEDecoder.load(store, config: config)
        } throws: { error in
            guard case let RunnerError.unexpectedWeights(_, keys)? = error as? RunnerError else { return false }
            return keys == ["decoder.up_blocks.9.resnets.0.conv1.weight"]
        }
    }

    @Test("a config that does not fit the weights names the missing key")
    func rejectsMismatchedConfig() throws {
        var config = try VAEConfig(contentsOf: Self.folder + "/config.json")
        config.layersPerBlock += 1
        let store = WeightStore(try SafetensorsFile(path: Self.folder + "/diffusion_pytorch_model.safetensors"))
        #expect {
            _ = try VAEDecoder.load(store, config: config)
        } throws: { error in
            guard case let RunnerError.missingWeight(key, _) = error else { return false }
            return key.hasPrefix("decoder.up_blocks.0.resnets.")
        }
    }

    @Test("rejects latents with the wrong channel count")
    func rejectsWrongLatents() throws {
        let vae = try VAEDecoder.load(folder: Self.folder)
        #expect(throws: RunnerError.self) { try vae.decode(Tensor(zeros: [1, vae.config.latentChannels + 1, 4, 4])) }
        #expect(throws: RunnerError.self) { try vae.decodeVideo(Tensor(zeros: [1, vae.config.latentChannels, 4, 4])) }
    }

    @Test("rejects a config with an unsupported up block or activation")
    func rejectsUnsupportedConfig() throws {
        let json = try JSONParser.parse(Array(#"{"block_out_channels":[32,64],"up_block_types":["UpDecoderBlock2D","CrossAttnUpBlock2D"]}"#.utf8))
        #expect(throws: RunnerError.self) { try VAEConfig(json: json, path: "config.json") }
        let act = try JSONParser.parse(Array(#"{"block_out_channels":[32],"act_fn":"relu"}"#.utf8))
        #expect(throws: RunnerError.self) { try VAEConfig(json: act, path: "config.json") }
    }
}
