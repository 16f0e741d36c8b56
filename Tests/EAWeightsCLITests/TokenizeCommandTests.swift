import Foundation
import Safetensors
import Testing
import TestSupport

@Suite("tokenize command")
struct TokenizeCommandTests {
    static let tokenizer = Fixtures.path("tiny-pixart/tokenizer")

    @Test("--json prints the pipeline's 120 input_ids and attention_mask, the pieces and the truncation flag")
    func json() throws {
        // The first golden prompts (goldens/tokenizer.json), compared id for id.
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.golden("tokenizer.json")))
        let goldens = try #require(try JSONParser.parse(data).arrayValue)
        for golden in goldens.prefix(4) {
            let prompt = try #require(golden["prompt"]?.stringValue)
            let result = try CLIRunner.run(["tokenize", "--tokenizer", Self.tokenizer, "--json", "--", prompt])
            #expect(result.status == 0, "\(result.stderr)")
            let object = try JSONParser.parse(Data(result.stdout.utf8))
            #expect(object["input_ids"] == golden["input_ids"])
            #expect(object["attention_mask"] == golden["attention_mask"])
            let pieces = try #require(object["pieces"]?.arrayValue)
            let ones = try #require(golden["attention_mask"]?.arrayValue).filter { $0 == .integer(1) }.count
            #expect(pieces.count == ones)
            #expect(pieces.last == .string("</s>"))
            #expect(object["truncated"] == .bool(false))
        }
    }

    @Test("an over-long prompt is reported as truncated, in text and JSON")
    func truncated() throws {
        let prompt = String(repeating: "sunset over the sea. ", count: 30)
        let json = try CLIRunner.run(["tokenize", "--tokenizer", Self.tokenizer, "--json", prompt])
        #expect(try JSONParser.parse(Data(json.stdout.utf8))["truncated"] == .bool(true))
        let text = try CLIRunner.run(["tokenize", "--tokenizer", Self.tokenizer, prompt])
        #expect(text.status == 0)
        #expect(text.stdout.contains("TRUNCATED"))
        #expect(text.stdout.contains("</s>"))
    }

    @Test("a folder that is not a tokenizer fails with one line naming it")
    func badFolder() throws {
        let result = try CLIRunner.run(["tokenize", "--tokenizer", Fixtures.path("tiny-pixart/vae"), "a cat"])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("spiece.model"))
    }
}
