import Foundation
import Hummingbird
import Runner
import Safetensors
import WeightOps

/// The JSON API (README, "serve"): models, jobs and their events, runs, comparisons; and the files.
enum APIRoutes {
    static func add<Context: RequestContext>(to router: Router<Context>, state: ServerState) {
        router.get("/api/models") { _, _ in try JSONResponse.response(try models(state)) }

        router.post("/api/generate") { request, _ in
            var request = request
            let body = try await request.collectBody(upTo: 64 << 10)
            let settings = try GenerationSettings.parse(Data(buffer: body))
            let (selection, resolved) = try GenerationJob.resolve(settings, catalog: try state.catalog())
            let status = try state.jobs.submit(kind: .generate) { initial, report, isCancelled in
                try GenerationJob.run(resolved, selection: selection, status: initial, store: state.store,
                                             pipelines: state.pipelines, report: report, isCancelled: isCancelled)
            }
            return try JSONResponse.response(status, status: .accepted)
        }

        router.post("/api/verify") { _, _ in
            guard case let .tree(root) = state.source else {
                throw APIError(.conflict, "verify checks a models/ tree against the manifest `ea-weights prepare` wrote; this server runs the bundled set (start it with --models DIR)")
            }
            let status = try state.jobs.submit(kind: .verify) { initial, report, isCancelled in
                try verification(root: root, initial: initial, report: report, isCancelled: isCancelled)
            }
            return try JSONResponse.response(status, status: .accepted)
        }

        router.get("/api/jobs") { _, _ in try JSONResponse.response(["jobs": state.jobs.all()]) }

        router.get("/api/jobs/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let status = state.jobs.status(id) else { throw APIError.notFound("no job \(id)") }
            return try JSONResponse.response(status)
        }

        router.get("/api/jobs/:id/events") { request, context in
            // A reconnecting EventSource sends the last number it saw; a new listener gets the whole log.
            let lastSeen = request.headers.first(where: { $0.name.canonicalName == "last-event-id" })?.value
            let after = try lastSeen.map { text in
                guard let n = Int(text) else { throw APIError.field("Last-Event-ID", "must be an event number") }
                return n
            }
            let stream = try state.jobs.events(try context.parameters.require("id"), after: after)
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                            body: ResponseBody { writer in
                                for await event in stream {
                                    let json = String(decoding: try JSONResponse.data(event.status), as: UTF8.self)
                                    try await writer.write(ByteBuffer(string: "id: \(event.number)\nevent: status\ndata: \(json)\n\n"))
                                }
                                try await writer.finish(nil)
                            })
        }

        router.delete("/api/jobs/:id") { _, context in
            try JSONResponse.response(try state.jobs.cancel(try context.parameters.require("id")))
        }

        router.get("/api/runs") { _, _ in try JSONResponse.response(state.store.list()) }

        router.get("/api/runs/:id") { _, context in
            try JSONResponse.response(try state.store.record(try context.parameters.require("id"), field: "id"))
        }

        router.get("/api/runs/:id/frames/:index") { _, context in
            let record = try state.store.record(try context.parameters.require("id"), field: "id")
            let index = try frameIndex(context.parameters.get("index"), of: record, field: "index")
            let video = try state.frames.video(record, store: state.store, field: "id")
            let rgb = try RGBVideo(video: video).frames[index]
            return try png(rgb, width: record.width, height: record.height)
        }

        router.get("/api/compare") { request, _ in
            let (a, b, videoA, videoB) = try comparedRuns(request, state: state)
            return try JSONResponse.response(FrameComparison(a: a.id, b: b.id, videoA: videoA, videoB: videoB))
        }

        router.get("/api/compare/heatmap") { request, _ in
            let (a, b, videoA, videoB) = try comparedRuns(request, state: state)
            let index = try frameIndex(request.uri.queryParameters["frame"].map(String.init), of: a, field: "frame")
            let scale = FrameComparison(a: a.id, b: b.id, videoA: videoA, videoB: videoB).scale
            return try png(FrameComparison.heatMap(videoA, videoB, frame: index, scale: scale), width: a.width, height: a.height)
        }

        router.get("/samples/:name") { request, _ in
            // The raw path, not the router's parameter: what was sent is checked, percent-encoding included.
            let raw = request.uri.path.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
            let name = try FileServing.checkedName(raw)
            let file = try FileServing.containedFile(name, in: state.store.folder)
            return try FileServing.response(file: file, range: request.headers[.range])
        }
    }

    // MARK: the answers

    struct ModelsAnswer: Encodable {
        struct SizeRule: Encodable { let defaultSize: Int; let multiple: Int }
        let source: String
        let root: String
        let transformers: [ModelCatalog.Choice]
        let motionModules: [ModelCatalog.Choice]
        let personalized: [ModelCatalog.Choice]
        let loras: [ModelCatalog.Choice]
        /// Per transformer, with the default motion module: its default video size and the multiple sizes must be.
        let sizes: [String: SizeRule]
        let notes: [String]
        let samplers: [String]
        let defaults: GenerationSettings
        let bounds: [String: [Double]]
        let inspection: InspectionReport
        let inspectionText: String
        /// `verify --fast` of a models tree; nil for the bundled set, with the reason in `verifyNote`.
        let verify: VerifyReport?
        let verifyNote: String?
    }

    static func models(_ state: ServerState) throws -> ModelsAnswer {
        let catalog = try state.catalog()
        var root: String
        var verify: VerifyReport?
        var note: String?
        switch catalog.source {
        case let .tree(path):
            root = path
            var options = VerifyOptions(models: path)
            options.fast = true
            options.isCancelled = { false }
            verify = try ModelsVerification.verify(options)
        case let .bundled(paths):
            root = (paths.pixart as NSString).deletingLastPathComponent
            note = "the bundled model set has no manifest: verify checks a models/ tree laid out by `ea-weights prepare` (serve --models DIR)"
        }
        // Each choice on its own, so one unreadable checkpoint is a note, not a failed page.
        var report = InspectionReport(files: [])
        var notes = catalog.notes
        for choice in catalog.transformers + catalog.motionModules + catalog.personalized + catalog.loras {
            do {
                let one = try Inspection.inspect([choice.path])
                report.files += one.files
                report.pipelines += one.pipelines
            } catch {
                notes.append("\(choice.name): \(error)")
            }
        }
        var sizes: [String: ModelsAnswer.SizeRule] = [:]
        for choice in catalog.transformers {
            let paths = ModelPaths(pixart: choice.path, motionModule: catalog.motionModules.first?.path, config: catalog.config)
            if let rule = try? EasyAnimatePipeline.sizeRule(paths: paths) {
                sizes[choice.name] = .init(defaultSize: rule.defaultSize, multiple: rule.multiple)
            }
        }
        typealias B = GenerationSettings.Bounds
        let bounds: [String: [Double]] = [
            "steps": [Double(B.steps.lowerBound), Double(B.steps.upperBound)],
            "width": [Double(B.size.lowerBound), Double(B.size.upperBound)],
            "height": [Double(B.size.lowerBound), Double(B.size.upperBound)],
            "frames": [Double(B.frames.lowerBound), Double(B.frames.upperBound)],
            "guidance": [B.guidance.lowerBound, B.guidance.upperBound],
            "seed": [Double(B.seed.lowerBound), Double(B.seed.upperBound)],
            "fps": [Double(B.fps.lowerBound), Double(B.fps.upperBound)],
            "loraWeight": [B.loraWeight.lowerBound, B.loraWeight.upperBound],
            "promptCharacters": [0, Double(B.promptCharacters)],
        ]
        return ModelsAnswer(
            source: catalog.source == .tree(root: root) ? "models" : "bundled", root: root,
            transformers: catalog.transformers, motionModules: catalog.motionModules, personalized: catalog.personalized,
            loras: catalog.loras, sizes: sizes, notes: notes, samplers: Sampler.allCases.map(\.rawValue),
            defaults: GenerationSettings.defaults, bounds: bounds, inspection: report, inspectionText: report.text(),
            verify: verify, verifyNote: note)
    }

    /// The full check of `verify` (SHA-256 of every file) with its hashing progress.
    static func verification(root: String, initial: JobStatus, report: @escaping @Sendable (JobStatus) -> Void,
                             isCancelled: @escaping @Sendable () -> Bool) throws -> JobStatus {
        var options = VerifyOptions(models: root)
        options.isCancelled = isCancelled
        var clock = StageClock()
        clock.begin("hashing")
        let hashing = clock
        options.progress = TerminalProgress(label: "hashing", total: nil) { done, total in
            var status = initial
            hashing.progress(&status, done: done, total: total, unit: "byte")
            report(status)
        }
        var status = initial
        status.verify = try ModelsVerification.verify(options)
        status.stage = nil
        return status
    }

    // MARK: helpers

    /// Runs `a` and `b` of the query, with their exact frames, which must have the same frame count and size.
    static func comparedRuns(_ request: Request, state: ServerState) throws -> (RunRecord, RunRecord, Tensor, Tensor) {
        let query = request.uri.queryParameters
        guard let a = query["a"].map(String.init), !a.isEmpty else { throw APIError.field("a", "missing (a run id)") }
        guard let b = query["b"].map(String.init), !b.isEmpty else { throw APIError.field("b", "missing (a run id)") }
        let recordA = try state.store.record(a, field: "a"), recordB = try state.store.record(b, field: "b")
        let videoA = try state.frames.video(recordA, store: state.store, field: "a")
        let videoB = try state.frames.video(recordB, store: state.store, field: "b")
        guard videoA.shape == videoB.shape else {
            throw APIError.field("b", "run \(b) is \(recordB.frames) frames of \(recordB.width)x\(recordB.height), run \(a) \(recordA.frames) of \(recordA.width)x\(recordA.height): only runs of the same size compare")
        }
        return (recordA, recordB, videoA, videoB)
    }

    static func frameIndex(_ text: String?, of record: RunRecord, field: String) throws -> Int {
        guard let text else { throw APIError.field(field, "missing (a frame index)") }
        guard let index = Int(text), (0..<record.frames).contains(index) else {
            throw APIError.field(field, "must be a frame index from 0 to \(record.frames - 1); got '\(PrintableText.quote(text))'")
        }
        return index
    }

    static func png(_ rgb: [UInt8], width: Int, height: Int) throws -> Response {
        Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "no-cache"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: try PNGWriter.encode(rgb, width: width, height: height))))
    }
}
