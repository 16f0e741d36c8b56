import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing
@testable import WebUI

@Suite("serve: bad requests get 4xx JSON naming the field, and the server goes on")
struct RequestValidationTests {
    /// Bodies of POST /api/generate and the field their error must name.
    static let badBodies: [(body: String, field: String)] = [
        (#"{"steps": 3}"#, "prompt"),
        (#"{"prompt": ""}"#, "prompt"),
        (#"{"prompt": "   "}"#, "prompt"),
        ("{\"prompt\": \"" + String(repeating: "a", count: 2001) + "\"}", "prompt"),
        (#"{"prompt": 5}"#, "prompt"),
        (#"{"prompt": "x", "negativePrompt": ["a"]}"#, "negativePrompt"),
        (#"{"prompt": "x", "steps": 0}"#, "steps"),
        (#"{"prompt": "x", "steps": 101}"#, "steps"),
        (#"{"prompt": "x", "steps": 2.5}"#, "steps"),
        (#"{"prompt": "x", "steps": "10"}"#, "steps"),
        (#"{"prompt": "x", "steps": true}"#, "steps"),
        (#"{"prompt": "x", "frames": 0}"#, "frames"),
        (#"{"prompt": "x", "frames": 81}"#, "frames"),
        (#"{"prompt": "x", "width": 4096}"#, "width"),
        (#"{"prompt": "x", "height": -8}"#, "height"),
        (#"{"prompt": "x", "width": 36}"#, "width"),
        (#"{"prompt": "x", "guidance": 20.5}"#, "guidance"),
        (#"{"prompt": "x", "guidance": -1}"#, "guidance"),
        (#"{"prompt": "x", "seed": -1}"#, "seed"),
        (#"{"prompt": "x", "seed": 4294967296}"#, "seed"),
        (#"{"prompt": "x", "fps": 0}"#, "fps"),
        (#"{"prompt": "x", "loraWeight": 2.5}"#, "loraWeight"),
        (#"{"prompt": "x", "sampler": "Heun"}"#, "sampler"),
        (#"{"prompt": "x", "transformer": "PixArt-XL-2-512x512"}"#, "transformer"),
        (#"{"prompt": "x", "transformer": "../../fixtures/ea-tiny/tiny-pixart"}"#, "transformer"),
        (#"{"prompt": "x", "motionModule": "/etc/passwd"}"#, "motionModule"),
        (#"{"prompt": "x", "personalized": "lora.safetensors"}"#, "personalized"),
        (#"{"prompt": "x", "lora": "personalized.safetensors"}"#, "lora"),
        (#"{"prompt": "x", "outputPath": "/tmp/x.mp4"}"#, "outputPath"),
        ("not json", "body"),
        ("[1, 2]", "body"),
        ("", "body"),
    ]

    @Test("POST /api/generate refuses each bad body with 400 and the field's name, and submits no job")
    func badGenerateBodies() async throws {
        try await TestServer().test { client in
            for (body, field) in Self.badBodies {
                let response = try await client.post("/api/generate", json: body)
                #expect(response.status == .badRequest, "\(body.prefix(80))")
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                #expect(response.errorMessage?.hasPrefix(field + ":") == true, "\(body.prefix(80)): \(response.errorMessage ?? "no error")")
            }
            let jobs = try await client.get("/api/jobs").decoded([String: [JobStatus]].self)
            #expect(jobs["jobs"]?.isEmpty == true)
            // Still serving.
            #expect(try await client.get("/api/models").status == .ok)
        }
    }

    @Test("a body over 64 KiB is refused with JSON")
    func hugeBody() async throws {
        try await TestServer().test { client in
            let response = try await client.post("/api/generate", json: "{\"prompt\": \"" + String(repeating: "a", count: 70_000) + "\"}")
            #expect(response.status == .contentTooLarge)
            #expect(response.errorMessage != nil)
        }
    }

    @Test("names chosen from the lists are accepted: the personalized model and the LoRA with its weight")
    func validChoices() throws {
        let catalog = try ModelCatalog.scan(.bundled(TestServer.tinySet))
        let settings = try GenerationSettings.parse(Data(#"{"prompt": "x", "personalized": "personalized.safetensors", "lora": "lora.safetensors", "loraWeight": 0.8, "motionModule": null}"#.utf8))
        let (selection, resolved) = try GenerationJob.resolve(settings, catalog: catalog)
        #expect(selection.paths.transformer == Fixtures.path("personalized.safetensors"))
        #expect(selection.paths.motionModule == nil)
        #expect(selection.loras.map(\.multiplier) == [0.8])
        #expect(resolved.motionModule == "" && resolved.lora == "lora.safetensors")
        #expect(resolved.width != nil && resolved.width == resolved.height)
    }

    @Test("unknown runs, jobs and frames are 4xx JSON")
    func unknownThings() async throws {
        try await TestServer().test { client in
            for (uri, status) in [("/api/jobs/nope", HTTPResponse.Status.notFound), ("/api/jobs/nope/events", .notFound),
                                  ("/api/runs/nope", .badRequest), ("/api/runs/20990101-000000-abcd", .notFound),
                                  ("/api/runs/20990101-000000-abcd/frames/0", .notFound), ("/api/nothing", .notFound),
                                  ("/nothing.html", .notFound)] {
                let response = try await client.get(uri)
                #expect(response.status == status, "\(uri)")
                #expect(response.errorMessage?.isEmpty == false, "\(uri)")
            }
        }
    }
}
