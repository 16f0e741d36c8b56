import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

@Suite("T5Encoder")
struct T5EncoderTests {
    static let directory = Fixtures.path("tiny-pixart/text_encoder")

    /// `goldens/text_encoder.safetensors`: transformers 4.37.2 `T5EncoderModel(input_ids, attention_mask)[0]` in
    /// float32 on CPU for the pipeline's prompt and negative prompt. Tolerance (fixture README): max abs ≤ 1e-4.
    @Test("last_hidden_state matches transformers' T5EncoderModel within 1e-4")
    func matchesGolden() throws {
        let golden = try SafetensorsFile(path: Fixtures.golden("text_encoder.safetensors"))
        let idsView = try golden.tensor("input_ids")
        let maskView = try golden.tensor("attention_mask")
        let batch = idsView.shape[0], length = idsView.shape[1]
        let rows = { (values: [Float]) in (0..<batch).map { b in values[(b * length)..<((b + 1) * length)].map { Int32($0) } } }
        let encoder = try T5Encoder(directory: Self.directory)
        let out = try encoder(ids: rows(idsView.toFloat32()), mask: rows(maskView.toFloat32()))
        let expected = try golden.tensor("last_hidden_state")
        #expect(out.shape == expected.shape)
        let diff = out.maxAbsDifference(Tensor(shape: expected.shape, storage: expected.toFloat32()))
        #expect(diff <= 1e-4, "max abs diff \(diff)")
    }

    @Test("the tokenizer's encodings feed the encoder directly")
    func tokenizerToEncoder() throws {
        let tokenizer = try T5Tokenizer(directory: Fixtures.path("tiny-pixart/tokenizer"))
        let encoder = try T5Encoder(directory: Self.directory)
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

    @Test("an embedding stored under both tied names is bound once and not reported as unexpected")
    func tiedEmbedding() throws {
        let base = try T5Encoder.weightStore(directory: Self.directory)
        let shared = try base.parameter("shared.weight").tensor()
        let store = WeightStore(name: "tied", layers: [try openStateDict(path: Self.directory)],
                                replacements: ["encoder.embed_tokens.weight": shared])
        let config = try T5Config(path: Self.directory)
        _ = try T5Encoder(store: store, config: config)
        try store.requireAllConsumed()
        // Only the encoder's name present works too.
        let renamed = WeightStore(name: "renamed", layers: [], replacements: try Dictionary(uniqueKeysWithValues:
            base.allKeys.map { key in (key == "shared.weight" ? "encoder.embed_tokens.weight" : key, try base.parameter(key).tensor()) }))
        _ = try T5Encoder(store: renamed, config: config)
        try renamed.requireAllConsumed()
    }

    @Test("a missing layer weight is an error naming the key")
    func missingWeight() throws {
        let base = try T5Encoder.weightStore(directory: Self.directory)
        var tensors: [String: Tensor] = [:]
        for key in base.allKeys where key != "encoder.final_layer_norm.weight" { tensors[key] = try base.parameter(key).tensor() }
        let store = WeightStore(name: "partial", layers: [], replacements: tensors)
        #expect {
            try T5Encoder(store: store, config: try T5Config(path: Self.directory))
        } throws: { error in
            "\(error)".contains("encoder.final_layer_norm.weight")
        }
    }
}
