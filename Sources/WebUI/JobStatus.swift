import Foundation
import WeightOps

/// Where a job is, as `GET /api/jobs` lists it and `GET /api/jobs/{id}/events` streams it.
struct JobStatus: Codable, Sendable {
    enum Kind: String, Codable, Sendable { case generate, verify }
    enum State: String, Codable, Sendable {
        case queued, running, done, failed, cancelled
        var isFinished: Bool { self == .done || self == .failed || self == .cancelled }
    }

    let id: String
    let kind: Kind
    var state: State
    /// 1 for the next job to run, while queued.
    var position: Int?
    /// The pipeline's stage (`text encoder`, `denoising`, `VAE decode`), `load` or `hashing`.
    var stage: String?
    /// Units of the stage done and in all: denoising steps, decoded frames, or hashed bytes.
    var done: Int64?
    var total: Int64?
    var unit: String?
    /// Seconds per unit so far in this stage, and the seconds its remaining units should take at that pace.
    var secondsPerUnit: Double?
    var etaSeconds: Double?
    var error: String?
    /// The saved run, when a generation is done.
    var run: String?
    /// The full (hashing) check's report, when a verification is done.
    var verify: VerifyReport?

    init(id: String, kind: Kind) {
        self.id = id
        self.kind = kind
        self.state = .queued
    }
}

/// A stage's pace, for `secondsPerUnit` and `etaSeconds`.
struct StageClock {
    private(set) var stage: String?
    private var start = Date()

    mutating func begin(_ stage: String) {
        self.stage = stage
        start = Date()
    }

    /// The status with this stage's progress: `done` of `total` units.
    func progress(_ status: inout JobStatus, done: Int64, total: Int64?, unit: String) {
        status.stage = stage
        status.done = done
        status.total = total
        status.unit = unit
        let elapsed = Date().timeIntervalSince(start)
        if done > 0 {
            let each = elapsed / Double(done)
            status.secondsPerUnit = each
            status.etaSeconds = total.map { max(0, Double($0 - done)) * each }
        } else {
            status.secondsPerUnit = nil
            status.etaSeconds = nil
        }
    }
}
