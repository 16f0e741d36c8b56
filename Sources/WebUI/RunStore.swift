import Foundation
import Runner
import Safetensors

/// The samples folder: each run as `<id>.mp4`, `<id>.safetensors` (its exact frames) and `<id>.json` (its
/// sidecar), each written atomically; the sidecar is written last, so a run is in the history only when complete.
struct RunStore: Sendable {
    let folder: String

    init(folder: String) throws {
        try AtomicOutput.createFolder(folder)
        // Symlinks in the path to the folder itself are the user's; files inside must stay inside its real path.
        self.folder = URL(fileURLWithPath: folder).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// A new run id: the UTC time (so names sort by age) and a random suffix.
    static func newID(now: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: now) + "-" + String(format: "%04x", UInt16.random(in: 0...UInt16.max))
    }

    /// Run ids as `newID` makes them: nothing else names a run.
    static func isRunID(_ id: String) -> Bool {
        id.wholeMatch(of: #/[0-9]{8}-[0-9]{6}-[0-9a-f]{4}/#) != nil
    }

    /// Writes run `id`'s exact frames and video, then the sidecar `record` makes from their file names and the
    /// seconds the writing took; on any failure removes what it wrote.
    func save(video: Tensor, fps: Int, id: String,
              record: (_ video: String, _ rawFrames: String, _ writeSeconds: Double) -> RunRecord) throws {
        let (videoFile, framesFile) = (id + ".mp4", id + ".safetensors")
        let written = [path(framesFile), path(videoFile)]
        let start = Date()
        do {
            try VideoOutput.write(video: video, fps: fps, to: written[0])
            try VideoOutput.write(video: video, fps: fps, to: written[1])
            let sidecar = record(videoFile, framesFile, Date().timeIntervalSince(start))
            try AtomicOutput.writeFile(Array(try JSONResponse.data(sidecar)), to: path(Self.sidecar(id)))
        } catch {
            for file in written { try? FileManager.default.removeItem(atPath: file) }
            throw error
        }
    }

    struct Listing: Codable {
        /// Newest first.
        let runs: [RunRecord]
        /// Sidecar-like files that could not be read, with the reason.
        let unreadable: [String]
    }

    func list() -> Listing {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
            $0.hasSuffix(".json") && Self.isRunID(String($0.dropLast(5)))
        }
        var runs: [RunRecord] = [], unreadable: [String] = []
        for name in names {
            do { runs.append(try read(String(name.dropLast(5)))) } catch { unreadable.append("\(name): \(error)") }
        }
        return Listing(runs: runs.sorted { ($0.created, $0.id) > ($1.created, $1.id) }, unreadable: unreadable.sorted())
    }

    /// The sidecar of run `id`; `field` names the request field in errors.
    func record(_ id: String, field: String) throws -> RunRecord {
        guard Self.isRunID(id) else { throw APIError.field(field, "'\(PrintableText.quote(id))' is not a run id") }
        guard FileManager.default.fileExists(atPath: path(Self.sidecar(id))) else {
            throw APIError(.notFound, "\(field): no run \(id) in the samples folder")
        }
        do { return try read(id) } catch { throw APIError(.unprocessableContent, "\(field): run \(id): \(error)") }
    }

    /// The run's exact frames, [1, 3, F, H, W].
    func rawFrames(of record: RunRecord, field: String) throws -> Tensor {
        let file = path(record.rawFrames)
        do {
            let view = try SafetensorsFile(path: file).tensor("video")
            guard view.shape.count == 5, view.shape[0] == 1, view.shape[1] == 3 else {
                throw RunnerError.invalidInput("\(file): tensor 'video' is \(view.shape), not [1, 3, F, H, W]")
            }
            return Tensor(shape: view.shape, storage: view.toFloat32())
        } catch {
            throw APIError(.unprocessableContent, "\(field): run \(record.id) has no readable frames: \(error)")
        }
    }

    func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

    static func sidecar(_ id: String) -> String { id + ".json" }

    private func read(_ id: String) throws -> RunRecord {
        try JSONDecoder().decode(RunRecord.self, from: Data(try SmallFile.read(path(Self.sidecar(id)), maxBytes: 1 << 20)))
    }
}
