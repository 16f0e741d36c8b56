import Foundation
import Hummingbird
import HummingbirdTesting
import Runner
import TestSupport
import Testing
@testable import WebUI

@Suite("serve: generation through the API", .serialized)
struct GenerateAPITests {
    static let small = #"{"prompt": "A snowy forest", "steps": 3, "frames": 4, "seed": 7}"#

    @Test("a whole generation: progress events, the run saved, its video decodes to the frames and size asked for")
    func wholeGeneration() async throws {
        let server = try TestServer()
        let samples = server.samples
        try await server.test { client in
            let job = try await client.submit(Self.small)
            #expect(job.kind == .generate)
            let events = try await client.events(job.id)
            let last = try #require(events.last)
            #expect(last.state == .done, "\(last.error ?? "")")
            #expect(events.first?.state == .queued)
            // A reconnecting EventSource (Last-Event-ID) gets only what it has not seen.
            let replay = try await client.get("/api/jobs/\(job.id)/events", headers: [HTTPFields.Element.Name("Last-Event-ID")!: String(events.count - 2)])
            #expect(String(buffer: replay.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }.count == 1)
            let runID = try #require(last.run)
            // Progress: the pipeline's stages with step i/N, a pace and an ETA while denoising.
            let denoising = events.filter { $0.stage == "denoising" && $0.total == 3 }
            #expect(denoising.compactMap(\.done) .contains(3))
            #expect(denoising.contains { $0.secondsPerUnit != nil && $0.etaSeconds != nil && $0.unit == "step" })
            #expect(events.contains { $0.stage == "VAE decode" && $0.unit == "frame" })

            let runs = try await client.get("/api/runs").decoded(RunStore.Listing.self)
            let run = try #require(runs.runs.first)
            #expect(run.id == runID)
            #expect(run.settings.prompt == "A snowy forest")
            #expect(run.settings.steps == 3 && run.settings.seed == 7 && run.settings.frames == 4)
            #expect(run.settings.transformer == "tiny-pixart" && run.settings.motionModule == "motion_module.safetensors")
            #expect(run.settings.negativePrompt == GenerationRequest.Defaults.negativePrompt)
            #expect(run.stages.map(\.stage) == ["load", "text encoder", "denoising", "VAE decode", "write"])
            #expect(Set(try FileManager.default.contentsOfDirectory(atPath: samples.path))
                    == [run.video, run.rawFrames, runID + ".json"])

            let video = try await client.get("/samples/\(run.video)")
            #expect(video.status == .ok)
            #expect(video.headers[.contentType] == "video/mp4")
            let copy = samples.appendingPathComponent("decoded-copy.mp4")
            try Data(buffer: video.body).write(to: copy)
            let decoded = try LibavVideoReader.read(copy.path)
            #expect(decoded.frames.count == 4)
            #expect(decoded.width == run.width && decoded.height == run.height)
            #expect(run.width == run.settings.width && run.height == run.settings.height)

            let range = try await client.get("/samples/\(run.video)", headers: [.range: "bytes=0-99"])
            #expect(range.status == .partialContent)
            #expect(range.body.readableBytes == 100)

            let frame = try await client.get("/api/runs/\(runID)/frames/3")
            #expect(frame.status == .ok && frame.headers[.contentType] == "image/png")
            #expect(Array(Data(buffer: frame.body).prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        }
    }

    @Test("a second request is queued behind the running one, with its position, and runs after it")
    func queueing() async throws {
        let server = try TestServer()
        try await server.test { client in
            let first = try await client.submit(#"{"prompt": "first", "steps": 12, "frames": 8}"#)
            let second = try await client.submit(Self.small)
            #expect(second.state == .queued)
            #expect(second.position == 1)
            let jobs = try await client.get("/api/jobs").decoded([String: [JobStatus]].self)["jobs"] ?? []
            #expect(jobs.map(\.id) == [second.id, first.id])
            let secondEvents = try await client.events(second.id)
            #expect(secondEvents.first?.state == .queued)
            #expect(secondEvents.last?.state == .done)
            // The second ran only after the first had finished.
            let firstStatus = try await client.get("/api/jobs/\(first.id)").decoded(JobStatus.self)
            #expect(firstStatus.state == .done)
        }
    }

    @Test("cancel: a queued job is dropped at once, a running one stops at its next step, and no run is saved")
    func cancel() async throws {
        let server = try TestServer()
        let samples = server.samples
        try await server.test { client in
            let running = try await client.submit(#"{"prompt": "long", "steps": 100, "frames": 16}"#)
            let queued = try await client.submit(Self.small)
            let dropped = try await client.execute(uri: "/api/jobs/\(queued.id)", method: .delete).decoded(JobStatus.self)
            #expect(dropped.state == .cancelled)
            #expect(try await client.events(queued.id).map(\.state) == [.queued, .cancelled])

            _ = try await client.waitFor(running.id) { $0.stage == "denoising" && ($0.done ?? 0) >= 1 }
            let answer = try await client.execute(uri: "/api/jobs/\(running.id)", method: .delete)
            #expect(answer.status == .ok)
            let last = try await client.events(running.id).last
            #expect(last?.state == .cancelled)
            #expect(last?.error == nil)
            #expect((last?.done ?? 100) < 100)
            #expect(try FileManager.default.contentsOfDirectory(atPath: samples.path).isEmpty)
            #expect(try await client.get("/api/runs").decoded(RunStore.Listing.self).runs.isEmpty)

            let unknown = try await client.execute(uri: "/api/jobs/no-such-job", method: .delete)
            #expect(unknown.status == .notFound)
            #expect(unknown.errorMessage?.contains("no-such-job") == true)
        }
    }

    @Test("compare: a run against itself is identical; against another seed, per-frame max abs, PSNR and a heat map")
    func compare() async throws {
        let server = try TestServer()
        try await server.test { client in
            let a = try await client.events(try await client.submit(Self.small).id).last?.run
            let b = try await client.events(try await client.submit(#"{"prompt": "A snowy forest", "steps": 3, "frames": 4, "seed": 8}"#).id).last?.run
            let (runA, runB) = (try #require(a), try #require(b))

            let same = try await client.get("/api/compare?a=\(runA)&b=\(runA)").decoded(CompareAnswer.self)
            #expect(same.frames.map(\.index) == [0, 1, 2, 3])
            #expect(same.frames.allSatisfy { $0.maxAbs == 0 && $0.psnr == nil })
            #expect(same.scale == 0)

            let other = try await client.get("/api/compare?a=\(runA)&b=\(runB)")
            #expect(other.status == .ok)
            let keys = Set(other.json.keys)
            #expect(keys == ["a", "b", "frames", "width", "height", "scale"])
            let different = try other.decoded(CompareAnswer.self)
            #expect(different.frames.count == 4)
            #expect(different.frames.allSatisfy { $0.maxAbs > 0 && $0.maxAbs <= 1 && ($0.psnr ?? 0) > 0 })
            #expect(different.scale == different.frames.map(\.maxAbs).max())

            let heat = try await client.get("/api/compare/heatmap?a=\(runA)&b=\(runB)&frame=2")
            #expect(heat.status == .ok && heat.headers[.contentType] == "image/png")

            for (uri, field) in [("/api/compare?b=\(runB)", "a"), ("/api/compare?a=\(runA)", "b"),
                                 ("/api/compare?a=\(runA)&b=20990101-000000-ffff", "b"),
                                 ("/api/compare?a=../../etc/passwd&b=\(runB)", "a"),
                                 ("/api/compare/heatmap?a=\(runA)&b=\(runB)&frame=4", "frame"),
                                 ("/api/compare/heatmap?a=\(runA)&b=\(runB)", "frame")] {
                let bad = try await client.get(uri)
                #expect((400..<500).contains(bad.status.code), "\(uri)")
                #expect(bad.errorMessage?.hasPrefix(field + ":") == true, "\(uri): \(bad.errorMessage ?? "")")
            }
        }
    }

    struct CompareAnswer: Decodable {
        struct Frame: Decodable { let index: Int; let maxAbs: Double; let meanAbs: Double; let psnr: Double? }
        let a: String, b: String, frames: [Frame], width: Int, height: Int, scale: Double
    }
}
