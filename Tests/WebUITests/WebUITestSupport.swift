import Foundation
import Hummingbird
import HummingbirdTesting
import Runner
import TestSupport
import Testing
@testable import WebUI

/// A server on the ea-tiny fixture with its own samples folder, driven through Hummingbird's router test client.
struct TestServer {
    let samples: URL
    let state: ServerState

    /// The ea-tiny set as the bundled set (what `generate` runs without model flags, found the same way).
    static let tinySet = ModelPaths(
        pixart: Fixtures.path("tiny-pixart"), motionModule: Fixtures.path("motion_module.safetensors"),
        config: Fixtures.path("easyanimate_video_motion_module_v1.yaml"))

    init(source: ModelCatalog.Source = .bundled(tinySet), host: String = "127.0.0.1", port: Int = 7860) throws {
        samples = try Fixtures.temporaryDirectory()
        state = try ServerState(ServeOptions(samples: samples.path, host: host, port: port), source: source)
    }

    func remove() {
        state.jobs.shutdown()
        try? FileManager.default.removeItem(at: samples)
    }

    /// Runs `body` with a client of this server, then removes the samples folder.
    func test<R>(_ body: @Sendable (any TestClientProtocol) async throws -> R) async throws -> R {
        defer { remove() }
        return try await WebServer.application(state: state).test(.router, body)
    }
}

extension TestClientProtocol {
    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }

    func post(_ uri: String, json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var all = headers
        all[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: all, body: ByteBuffer(string: json))
    }

    /// Submits a generation and returns its job status (202).
    func submit(_ json: String) async throws -> JobStatus {
        let response = try await post("/api/generate", json: json)
        guard response.status == .accepted else {
            throw TestFailure("POST /api/generate: \(response.status) \(String(buffer: response.body))")
        }
        return try response.decoded(JobStatus.self)
    }

    /// The job's event stream, read to its end (the job finished), as statuses.
    func events(_ id: String) async throws -> [JobStatus] {
        let response = try await get("/api/jobs/\(id)/events")
        guard response.status == .ok else { throw TestFailure("events: \(response.status)") }
        #expect(response.headers[.contentType] == "text/event-stream")
        return try String(buffer: response.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { block in
            let lines = block.split(separator: "\n")
            #expect(lines.first?.hasPrefix("id: ") == true)
            #expect(lines.contains("event: status"))
            guard let data = lines.first(where: { $0.hasPrefix("data: ") }) else { throw TestFailure("no data in \(block)") }
            return try JSONDecoder().decode(JobStatus.self, from: Data(data.dropFirst(6).utf8))
        }
    }

    /// Polls the job until `condition` holds (at most `seconds`).
    func waitFor(_ id: String, seconds: Double = 60, _ condition: (JobStatus) -> Bool) async throws -> JobStatus {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let status = try await get("/api/jobs/\(id)").decoded(JobStatus.self)
            if condition(status) { return status }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        throw TestFailure("job \(id) did not reach the expected state in \(seconds) s")
    }
}

extension TestResponse {
    func decoded<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(buffer: body))
    }

    /// The `error` of a JSON error answer.
    var errorMessage: String? {
        (try? JSONDecoder().decode([String: String].self, from: Data(buffer: body)))?["error"]
    }

    var json: [String: Any] {
        ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any]) ?? [:]
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
