import Foundation
import Safetensors
import Testing
import TestSupport

/// Runs the built `ea-weights` next to the test bundle (SwiftPM builds it with the tests) or in .build/debug.
private func runTool(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    var candidates: [URL] = []
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("ea-weights"))
    }
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("ea-weights"))
    candidates.append(Fixtures.packageRoot.appendingPathComponent(".build/debug/ea-weights"))
    let binary = try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) },
                              "ea-weights binary not found; run `swift build` first")
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let errData = err.fileHandleForReading.readDataToEndOfFile()   // small outputs: no risk of a full pipe
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

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
            let result = try runTool(["tokenize", "--tokenizer", Self.tokenizer, "--json", "--", prompt])
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
        let json = try runTool(["tokenize", "--tokenizer", Self.tokenizer, "--json", prompt])
        #expect(try JSONParser.parse(Data(json.stdout.utf8))["truncated"] == .bool(true))
        let text = try runTool(["tokenize", "--tokenizer", Self.tokenizer, prompt])
        #expect(text.status == 0)
        #expect(text.stdout.contains("TRUNCATED"))
        #expect(text.stdout.contains("</s>"))
    }

    @Test("a folder that is not a tokenizer fails with one line naming it")
    func badFolder() throws {
        let result = try runTool(["tokenize", "--tokenizer", Fixtures.path("tiny-pixart/vae"), "a cat"])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("spiece.model"))
    }
}
