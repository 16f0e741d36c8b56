import Foundation
import NIOConcurrencyHelpers
import Runner

/// What the routes share: where models and runs are, the job queue, the loaded pipeline, recently read frames.
final class ServerState: Sendable {
    let options: ServeOptions
    let source: ModelCatalog.Source
    let store: RunStore
    let jobs = JobQueue()
    let pipelines = PipelineCache()
    let frames = RawFrameCache()
    let page: [String: (bytes: [UInt8], type: String)]

    /// `source` replaces what `options` name (tests serve a fixture of their choice).
    init(_ options: ServeOptions, source: ModelCatalog.Source? = nil) throws {
        self.options = options
        // No --models: the set `generate` runs without model flags, found the same way.
        self.source = try source ?? options.models.map { .tree(root: $0) } ?? .bundled(ModelLocator.bundledFixture())
        store = try RunStore(folder: options.samples)
        page = try FileServing.pageFiles()
    }

    var sourceDescription: String {
        switch source {
        case let .tree(root): return root
        case let .bundled(paths): return "the bundled set \((paths.pixart as NSString).deletingLastPathComponent)"
        }
    }

    func catalog() throws -> ModelCatalog {
        do { return try ModelCatalog.scan(source) } catch let error as APIError { throw error } catch {
            throw APIError(.internalServerError, "reading the models: \(error)")
        }
    }
}

/// The exact frames of the last few runs Compare looked at (one comparison asks for every frame of two runs).
final class RawFrameCache: Sendable {
    private let cached = NIOLockedValueBox<[(id: String, video: Tensor)]>([])
    private let capacity = 4

    func video(_ record: RunRecord, store: RunStore, field: String) throws -> Tensor {
        if let hit = cached.withLockedValue({ $0.first { $0.id == record.id }?.video }) { return hit }
        let video = try store.rawFrames(of: record, field: field)
        cached.withLockedValue { list in
            list.removeAll { $0.id == record.id }
            list.insert((record.id, video), at: 0)
            if list.count > capacity { list.removeLast() }
        }
        return video
    }
}
