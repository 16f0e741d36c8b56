import Foundation
import Hummingbird
import HummingbirdTesting
import Runner
import TestSupport
import Testing
import WeightOps
@testable import WebUI

@Suite("serve: the Models view's API and the verify job", .serialized)
struct ModelsAPITests {
    @Test("with no --models the server runs the set `generate` runs, found by the same locator")
    func bundledSetIsGenerates() throws {
        let samples = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: samples) }
        let state = try ServerState(ServeOptions(samples: samples.path))
        #expect(state.source == .bundled(try ModelLocator.bundledFixture()))
    }

    @Test("GET /api/models: the lists by kind, defaults, bounds, sizes and what inspect says")
    func bundledModels() async throws {
        try await TestServer().test { client in
            let response = try await client.get("/api/models")
            #expect(response.status == .ok)
            let json = response.json
            #expect(Set(json.keys) == ["source", "root", "transformers", "motionModules", "personalized", "loras", "sizes",
                                       "notes", "samplers", "defaults", "bounds", "inspection", "inspectionText", "verifyNote"])
            func names(_ key: String) -> [String] { ((json[key] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String } }
            #expect(names("transformers") == ["tiny-pixart"])
            #expect(names("motionModules") == ["motion_module.safetensors"])
            #expect(names("personalized") == ["personalized.safetensors"])
            #expect(names("loras") == ["lora.safetensors"])
            #expect(((json["loras"] as? [[String: Any]])?.first?.keys).map(Set.init) == ["name", "kind", "bytes"], "no paths go to the client")
            #expect(json["source"] as? String == "bundled")
            #expect((json["samplers"] as? [String]) == ["Euler", "Euler-A", "DPM++", "PNDM", "DDIM"])
            let defaults = try #require(json["defaults"] as? [String: Any])
            #expect(defaults["steps"] as? Int == GenerationRequest.Defaults.steps)
            #expect(defaults["negativePrompt"] as? String == GenerationRequest.Defaults.negativePrompt)
            #expect(defaults["loraWeight"] as? Double == 0.55)
            let size = try #require((json["sizes"] as? [String: [String: Int]])?["tiny-pixart"])
            let rule = try EasyAnimatePipeline.sizeRule(paths: TestServer.tinySet)
            #expect(size == ["defaultSize": rule.defaultSize, "multiple": rule.multiple])
            let text = try #require(json["inspectionText"] as? String)
            #expect(text.contains("kohya-lora") && text.contains("motion-module") && text.contains("rank        4"))
            #expect((json["verifyNote"] as? String)?.contains("prepare") == true)
            // The bundled set has no manifest to verify against.
            let verify = try await client.execute(uri: "/api/verify", method: .post)
            #expect(verify.status == .conflict)
            #expect(verify.errorMessage?.contains("--models") == true)
        }
    }

    @Test("a models/ tree: its lists, verify --fast problems, and the full check as a job with hashing progress")
    func modelsTree() async throws {
        let root = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let models = root.appendingPathComponent("models").path
        var request = PrepareRequest(models: models, toolVersion: "test")
        request.pixart = Fixtures.path("tiny-pixart.tar")
        request.motionModules = [Fixtures.path("motion_module.safetensors")]
        request.personalized = [Fixtures.path("personalized.safetensors")]
        request.loras = [Fixtures.path("lora.safetensors")]
        request.placement = .copy
        request.isCancelled = { false }
        _ = try ModelsPreparation.prepare(request)

        try await TestServer(source: .tree(root: models)).test { client in
            let first = try await client.get("/api/models")
            #expect(first.status == .ok, "\(first.errorMessage ?? "")")
            let answer = try first.decoded(ModelsShape.self)
            #expect(answer.source == "models")
            #expect(answer.transformers.map(\.name) == ["tiny-pixart"])
            #expect(answer.loras.map(\.name) == ["lora.safetensors"])
            #expect(answer.verify?.problems.isEmpty == true)
            #expect(answer.verify?.fast == true)

            let job = try await client.execute(uri: "/api/verify", method: .post).decoded(JobStatus.self)
            #expect(job.kind == .verify)
            let events = try await client.events(job.id)
            let last = try #require(events.last)
            #expect(last.state == .done)
            #expect(last.verify?.ok == true)
            #expect(last.verify?.fast == false)
            #expect((last.verify?.bytesHashed ?? 0) > 0)
            #expect(events.contains { $0.stage == "hashing" && $0.unit == "byte" && ($0.total ?? 0) > 0 })

            // A changed file shows up in verify --fast (its size) the next time the page asks.
            let lora = models + "/Personalized_Model/lora.safetensors"
            let handle = try #require(FileHandle(forWritingAtPath: lora))
            handle.seekToEndOfFile()
            handle.write(Data([0]))
            try handle.close()
            let after = try await client.get("/api/models").decoded(ModelsShape.self)
            #expect(after.verify?.problems.isEmpty == false)
        }
    }

    struct ModelsShape: Decodable {
        struct Choice: Decodable { let name: String; let kind: String; let bytes: Int }
        let source: String
        let transformers: [Choice], motionModules: [Choice], personalized: [Choice], loras: [Choice]
        let verify: VerifyReport?
    }
}
