import Foundation
import Safetensors
import Testing
@testable import Runner
import TestSupport

/// `goldens/tokenizer.json`: prompts → input_ids and attention_mask from transformers 4.37.2's T5Tokenizer after
/// the pipeline's `text.lower().strip()` (`tokenizer(text, padding="max_length", max_length=120,
/// truncation=True, add_special_tokens=True)`). Tolerance (fixture README): identical.
private struct TokenizerGolden {
    var prompt: String
    var inputIDs: [Int32]
    var attentionMask: [Int32]

    static func load() throws -> [TokenizerGolden] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.golden("tokenizer.json")))
        guard let entries = try JSONParser.parse(data).arrayValue else { return [] }
        return entries.compactMap { entry in
            guard let prompt = entry["prompt"]?.stringValue,
                  let ids = entry["input_ids"]?.arrayValue?.compactMap({ $0.intValue.map { Int32($0) } }),
                  let mask = entry["attention_mask"]?.arrayValue?.compactMap({ $0.intValue.map { Int32($0) } })
            else { return nil }
            return TokenizerGolden(prompt: prompt, inputIDs: ids, attentionMask: mask)
        }
    }
}

@Suite("T5Tokenizer")
struct TokenizerTests {
    static let directory = Fixtures.path("tiny-pixart/tokenizer")

    @Test("every golden prompt gives identical input_ids and attention_mask")
    func matchesGoldens() throws {
        let goldens = try TokenizerGolden.load()
        #expect(goldens.count >= 8)
        let tokenizer = try T5Tokenizer(directory: Self.directory)
        for golden in goldens {
            let encoding = try tokenizer.encode(golden.prompt, maxLength: golden.inputIDs.count)
            #expect(encoding.ids == golden.inputIDs, "input_ids of \(golden.prompt.debugDescription)")
            #expect(encoding.mask == golden.attentionMask, "attention_mask of \(golden.prompt.debugDescription)")
            #expect(encoding.pieces.count == golden.attentionMask.filter { $0 == 1 }.count)
        }
    }

    @Test("the golden set covers the empty, over-long and unknown-character cases")
    func goldenCoverage() throws {
        let goldens = try TokenizerGolden.load()
        let tokenizer = try T5Tokenizer(directory: Self.directory)
        let encodings = try goldens.map { try tokenizer.encode($0.prompt, maxLength: $0.inputIDs.count) }
        #expect(encodings.contains { $0.pieces.count == 1 })                           // "" → only </s>
        #expect(encodings.contains { $0.truncated && $0.dropped.count > 0 })
        #expect(encodings.contains { $0.ids.contains(Int32(tokenizer.unknownID)) })
    }

    @Test("over-long prompts keep maxLength - 1 tokens and end with </s>")
    func truncation() throws {
        let tokenizer = try T5Tokenizer(directory: Self.directory)
        let encoding = try tokenizer.encode(String(repeating: "sunset over the sea. ", count: 30))
        #expect(encoding.truncated)
        #expect(encoding.ids.count == 120 && encoding.mask.allSatisfy { $0 == 1 })
        #expect(encoding.ids.last == Int32(tokenizer.eosID))
        #expect(encoding.tokenCount == encoding.pieces.count + encoding.dropped.count)
        let fits = try tokenizer.encode("sunset over the sea.")
        #expect(!fits.truncated && fits.dropped.isEmpty)
        #expect(fits.tokenCount == fits.pieces.count)
    }

    @Test("a prompt ending in a typed </s> exactly at the limit is not truncated; one token more is")
    func typedEOSAtTheLimit() throws {
        let tokenizer = try T5Tokenizer(directory: Self.directory)
        let prompt = String(repeating: "sunset ", count: 10) + "</s>"
        let length = try tokenizer.tokenize(T5Tokenizer.preprocess(prompt)).count   // the typed </s> included
        let exact = try tokenizer.encode(prompt, maxLength: length)
        #expect(exact.tokenCount == length)
        #expect(!exact.truncated && exact.dropped.isEmpty, "every id of the prompt reaches the model")
        #expect(exact.ids.last == Int32(tokenizer.eosID) && exact.mask.allSatisfy { $0 == 1 })
        let cut = try tokenizer.encode(prompt, maxLength: length - 1)
        #expect(cut.truncated && !cut.dropped.isEmpty)
        #expect(cut.ids.count == length - 1 && cut.ids.last == Int32(tokenizer.eosID))
    }

    @Test("special tokens typed in the prompt keep their ids; </s> is not doubled at the end")
    func specialTokensInText() throws {
        let tokenizer = try T5Tokenizer(directory: Self.directory)
        let plain = try tokenizer.encode("a cat")
        let ended = try tokenizer.encode("a cat</s>")
        #expect(ended.ids == plain.ids)   // `_add_eos_if_not_present`
        let sentinel = try tokenizer.encode("a <extra_id_0> cat")
        let sentinelID = Int32(tokenizer.id(of: "<extra_id_0>"))
        #expect(sentinel.ids.contains(sentinelID))
        // The fixture's added_tokens_decoder strips spaces around extra ids (lstrip/rstrip): no "▁" piece beside it.
        let at = try #require(sentinel.pieces.firstIndex(of: "<extra_id_0>"))
        #expect(sentinel.pieces[at + 1] != "\u{2581}")
        // Longest match: <extra_id_10> is not <extra_id_1> followed by "0>".
        let ten = try tokenizer.encode("<extra_id_10>")
        #expect(ten.ids.first == Int32(tokenizer.id(of: "<extra_id_10>")))
    }

    @Test("extra ids count down from the end of the vocabulary as added_tokens.json lists them")
    func extraIDs() throws {
        let tokenizer = try T5Tokenizer(directory: Self.directory)
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.directory + "/added_tokens.json"))
        let added = try #require(try JSONParser.parse(data).objectValue)
        #expect(added.count == 100)
        for (token, id) in added {
            #expect(tokenizer.id(of: token) == Int(try #require(id.intValue)))
        }
        #expect(tokenizer.eosID == 1 && tokenizer.padID == 0 && tokenizer.unknownID == 2)
    }

    @Test("preprocessing is Python's lower().strip(), final sigma and Unicode spaces included")
    func preprocessing() {
        #expect(T5Tokenizer.preprocess("  Hello   World  ") == "hello   world")
        #expect(T5Tokenizer.preprocess("\u{3000}\u{A0}ΟΔΟΣ ΣΑΣ\t\n") == "οδος σας")
        #expect(T5Tokenizer.preprocess("İ") == "i\u{307}")
        #expect(T5Tokenizer.preprocess("\u{200B}x\u{200B}") == "\u{200B}x\u{200B}")   // not whitespace in Python
    }

    @Test("legacy: false (transformers PR #24565) adds no \"▁\" after a special token; legacy does")
    func nonLegacy() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("t5-nonlegacy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["spiece.model", "added_tokens.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(atPath: Self.directory + "/" + name, toPath: folder.appendingPathComponent(name).path)
        }
        let config = try String(contentsOfFile: Self.directory + "/tokenizer_config.json", encoding: .utf8)
        #expect(config.contains("\"legacy\": true"))
        try config.replacingOccurrences(of: "\"legacy\": true", with: "\"legacy\": false")
            .write(to: folder.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)

        let legacy = try T5Tokenizer(directory: Self.directory)
        let modern = try T5Tokenizer(directory: folder.path)
        #expect(legacy.legacy && !modern.legacy)
        let before = try legacy.tokenize("<extra_id_0>. hi")
        let after = try modern.tokenize("<extra_id_0>. hi")
        #expect(before.first == "<extra_id_0>" && after.first == "<extra_id_0>")
        #expect(before[1].hasPrefix("\u{2581}"))
        #expect(!after[1].hasPrefix("\u{2581}"))
        // Plain text tokenizes the same either way.
        #expect(try legacy.tokenize("a snowy forest") == modern.tokenize("a snowy forest"))
    }

    @Test("a folder without spiece.model is a clear error")
    func missingModel() {
        #expect(throws: RunnerError.self) { try T5Tokenizer(directory: Fixtures.path("tiny-pixart/vae")) }
    }
}
