import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

@Suite("T5Encoder")
struct T5EncoderTests {
    static let directory = Fixtures.path("tiny-pixart/text_encoder")

    /// `goldens/text_encoder.safetensors`: transformers 4.37.2 `T5EncoderModel(input_ids, attention_mask)[0]` in
    /// float32 on CPU for the pipeline's prompt and negative prompt. Tolerance (fixture README): module outputs.
    @Test("last_hidden_state matches transformers' T5EncoderModel within 1e-4")
    func matchesGolden() throws {
        let (ids, mask) = try Self.goldenInputs()
        let encoder = try T5Encoder.load(directory: Self.directory)
        let out = try encoder(ids: ids, mask: mask)
        let expected = try SafetensorsFile(path: Fixtures.golden("text_encoder.safetensors")).tensor("last_hidden_state")
        try #require(out.shape == expected.shape)
        let diff = out.maxAbsDifference(Tensor(shape: expected.shape, storage: expected.toFloat32()))
        #expect(diff <= Tolerances.moduleOutput, "max abs diff \(diff)")
    }

    /// int8 products (weights quantized at load in 128×128 blocks or finer, activations per row and group)
    /// move the hidden states by about int8's rounding: measured 2.1 % relative (Frobenius) on the fixture's random weights.
    @Test("with compute .int8 the hidden states stay within 3 % (relative) of the float32 golden, and differ from float32")
    func int8ProductsStayNearTheGolden() throws {
        let (ids, mask) = try Self.goldenInputs()
        let out = try T5Encoder.load(directory: Self.directory, compute: .int8)(ids: ids, mask: mask)
        let f32 = try T5Encoder.load(directory: Self.directory)(ids: ids, mask: mask)
        let expected = try SafetensorsFile(path: Fixtures.golden("text_encoder.safetensors")).tensor("last_hidden_state").toFloat32()
        try #require(out.shape == f32.shape && out.count == expected.count)
        let (error, norm) = out.withUnsafeBufferPointer { o in
            zip(o, expected).reduce((0.0, 0.0)) { sum, pair in
                (sum.0 + Double(pair.0 - pair.1) * Double(pair.0 - pair.1), sum.1 + Double(pair.1) * Double(pair.1))
            }
        }
        #expect((error / norm).squareRoot() < 0.03, "relative error \((error / norm).squareRoot())")
        #expect(out.maxAbsDifference(f32) > 0)
    }

    /// The golden's `input_ids` and `attention_mask` as the encoder takes them: B rows of L.
    static func goldenInputs() throws -> (ids: [[Int32]], mask: [[Int32]]) {
        let golden = try SafetensorsFile(path: Fixtures.golden("text_encoder.safetensors"))
        let idsView = try golden.tensor("input_ids")
        let maskView = try golden.tensor("attention_mask")
        let batch = idsView.shape[0], length = idsView.shape[1]
        let rows = { (values: [Float]) in (0..<batch).map { b in values[(b * length)..<((b + 1) * length)].map { Int32($0) } } }
        return (rows(idsView.toFloat32()), rows(maskView.toFloat32()))
    }

    @Test("the tokenizer's encodings feed the encoder directly")
    func tokenizerToEncoder() throws {
        let tokenizer = try T5Tokenizer(directory: Fixtures.path("tiny-pixart/tokenizer"))
        let encoder = try T5Encoder.load(directory: Self.directory)
        let out = try encoder([try tokenizer.encode("a cat"), try tokenizer.encode("")])
        #expect(out.shape == [2, 120, encoder.config.dModel])
        #expect(out.storage.allSatisfy { $0.isFinite })
    }

    @Test("sizes come from config.json")
    func config() throws {
        let config = try T5Config(path: Self.directory)
        #expect(config.isGatedActivation && config.activation == .geluNew)
        #expect(config.innerDim == config.numHeads * config.dKV)
        let relu = try T5Config(json: .object([("feed_forward_proj", .string("relu"))]), path: "config.json")
        #expect(!relu.isGatedActivation && relu.activation == .relu)
        #expect(throws: RunnerError.self) {
            try T5Config(json: .object([("feed_forward_proj", .string("gated-gelu-x"))]), path: "config.json")
        }
    }

    @Test("relative position buckets: exact near, logarithmic far, direction in the upper half")
    func buckets() {
        func bucket(_ d: Int) -> Int {
            T5RelativePositionBias.bucket(relativePosition: d, bidirectional: true, numBuckets: 32, maxDistance: 128)
        }
        #expect((0..<8).map { bucket(-$0) } == Array(0..<8))
        #expect((1..<8).map { bucket($0) } == (1..<8).map { 16 + $0 })
        // The logarithmic boundaries fall exactly on 16, 32, 64 (float32 arithmetic must not round them down).
        #expect([15, 16, 31, 32, 63, 64, 127, 128, 1000].map { bucket(-$0) } == [9, 10, 11, 12, 13, 14, 15, 15, 15])
    }

    @Test("an embedding stored under both tied names, or only as encoder.embed_tokens, loads and encodes the same")
    func tiedEmbedding() throws {
        let base = try T5Encoder.weightStore(directory: Self.directory)
        let shared = try base.parameter("shared.weight").tensor()
        let config = try T5Config(path: Self.directory)
        let (ids, mask) = try Self.goldenInputs()
        let reference = try T5Encoder.load(directory: Self.directory).callAsFunction(ids: ids, mask: mask)

        let tied = WeightStore(name: "tied", layers: [try openStateDict(path: Self.directory)],
                               replacements: ["encoder.embed_tokens.weight": shared])
        let both = try T5Encoder.load(tied, config: config)
        #expect(both.embedding.weight.key == "shared.weight")
        #expect(tied.unusedKeys().isEmpty)
        #expect(try both(ids: ids, mask: mask).storage == reference.storage)

        let renamed = WeightStore(name: "renamed", layers: [], replacements: try Dictionary(uniqueKeysWithValues:
            base.allKeys.map { key in (key == "shared.weight" ? "encoder.embed_tokens.weight" : key, try base.parameter(key).tensor()) }))
        let embedTokens = try T5Encoder.load(renamed, config: config)
        #expect(embedTokens.embedding.weight.key == "encoder.embed_tokens.weight")
        #expect(try embedTokens(ids: ids, mask: mask).storage == reference.storage)
    }

    @Test("a missing layer weight is an error naming the key")
    func missingWeight() throws {
        let base = try T5Encoder.weightStore(directory: Self.directory)
        var tensors: [String: Tensor] = [:]
        for key in base.allKeys where key != "encoder.final_layer_norm.weight" { tensors[key] = try base.parameter(key).tensor() }
        let store = WeightStore(name: "partial", layers: [], replacements: tensors)
        #expect {
            try T5Encoder.load(store, config: try T5Config(path: Self.directory))
        } throws: { error in
            "\(error)".contains("encoder.final_layer_norm.weight")
        }
    }
}
