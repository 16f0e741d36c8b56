import Foundation
import NIOConcurrencyHelpers

/// One job at a time (the CPU is the limit), in the order they were asked for. Jobs run on their own thread, off
/// the server's event loops; each change of a job's status is sent to whoever listens to it.
final class JobQueue: @unchecked Sendable {
    /// What a job does, from its status when it starts: `report` publishes a new status, `isCancelled` is polled by
    /// the work. It returns the final status (its state is set here).
    typealias Work = @Sendable (_ initial: JobStatus, _ report: @escaping @Sendable (JobStatus) -> Void,
                                _ isCancelled: @escaping @Sendable () -> Bool) throws -> JobStatus

    private struct Entry {
        var status: JobStatus
        let work: Work
        var cancelRequested = false
        var listeners: [UUID: AsyncStream<JobStatus>.Continuation] = [:]
        /// Every status published so far (at most `historyLimit`, the newest), so that a listener who connects
        /// late, a page reloaded mid-run or a slow client, still sees the progress it missed.
        var history: [JobStatus] = []
    }

    private static let historyLimit = 256

    private let lock = NIOLock()
    private var entries: [String: Entry] = [:]
    /// Ids in the order they were submitted (finished ones too, for `GET /api/jobs`).
    private var order: [String] = []
    private var waiting: [String] = []
    private var running: String?
    private var stopped = false
    private let worker = DispatchQueue(label: "ea-weights.serve.jobs", qos: .userInitiated)
    /// Finished jobs kept for listing.
    private let keepFinished = 50

    /// Adds a job; it starts when the jobs before it are done.
    func submit(kind: JobStatus.Kind, work: @escaping Work) throws -> JobStatus {
        let status: JobStatus = try lock.withLock {
            guard !stopped else { throw APIError(.serviceUnavailable, "the server is shutting down") }
            let id = UUID().uuidString.lowercased()
            entries[id] = Entry(status: JobStatus(id: id, kind: kind), work: work)
            order.append(id)
            waiting.append(id)
            forgetOldJobs()
            renumber()
            return entries[id]!.status
        }
        startNext()
        return lock.withLock { entries[status.id]?.status ?? status }
    }

    func status(_ id: String) -> JobStatus? { lock.withLock { entries[id]?.status } }

    /// Newest first.
    func all() -> [JobStatus] { lock.withLock { order.reversed().compactMap { entries[$0]?.status } } }

    /// A queued job is dropped at once; a running one stops at its next check (between denoising steps, decoded
    /// frames or hashed blocks). Finished jobs are left as they are.
    func cancel(_ id: String) throws -> JobStatus {
        try lock.withLock {
            guard var entry = entries[id] else { throw APIError.notFound("no job \(id)") }
            if entry.status.state == .queued {
                waiting.removeAll { $0 == id }
                entry.status.state = .cancelled
                entry.status.position = nil
                entries[id] = entry
                publish(id, finished: true)
                renumber()
            } else if entry.status.state == .running {
                entries[id]?.cancelRequested = true
            }
            return entries[id]!.status
        }
    }

    /// The job's statuses so far, the current one last, then each new one; ends when the job is finished.
    func events(_ id: String) throws -> AsyncStream<JobStatus> {
        try lock.withLock {
            guard let entry = entries[id] else { throw APIError.notFound("no job \(id)") }
            let (stream, continuation) = AsyncStream<JobStatus>.makeStream(
                bufferingPolicy: .bufferingNewest(2 * Self.historyLimit))
            // The current status last (it may repeat the last one published: harmless, and never stale).
            for status in entry.history { continuation.yield(status) }
            continuation.yield(entry.status)
            if entry.status.state.isFinished {
                continuation.finish()
            } else {
                let key = UUID()
                entries[id]?.listeners[key] = continuation
                // Called synchronously by `finish()`, which `publish` calls with the lock held: hence later.
                continuation.onTermination = { [weak self] _ in
                    DispatchQueue.global().async { [weak self] in
                        guard let self else { return }
                        self.lock.withLock { _ = self.entries[id]?.listeners.removeValue(forKey: key) }
                    }
                }
            }
            return stream
        }
    }

    /// Cancels every job and ends every stream (the server is stopping); returns when the running job has stopped.
    func shutdown() {
        let runningJob: Bool = lock.withLock {
            stopped = true
            for id in waiting {
                entries[id]?.status.state = .cancelled
                entries[id]?.status.position = nil
                publish(id, finished: true)
            }
            waiting.removeAll()
            if let running { entries[running]?.cancelRequested = true }
            return running != nil
        }
        if runningJob { worker.sync {} }
    }

    private func startNext() {
        let next: (String, Work)? = lock.withLock {
            guard running == nil, !stopped, !waiting.isEmpty else { return nil }
            let id = waiting.removeFirst()
            running = id
            entries[id]?.status.state = .running
            entries[id]?.status.position = nil
            publish(id, finished: false)
            renumber()
            return entries[id].map { (id, $0.work) }
        }
        guard let (id, work) = next else { return }
        worker.async { [self] in
            let report: @Sendable (JobStatus) -> Void = { [weak self] status in
                guard let self else { return }
                self.lock.withLock {
                    guard self.entries[id]?.status.state == .running else { return }
                    self.entries[id]?.status = status
                    self.publish(id, finished: false)
                }
            }
            let isCancelled: @Sendable () -> Bool = { [weak self] in
                self?.lock.withLock { self?.entries[id]?.cancelRequested ?? true } ?? true
            }
            var final: JobStatus
            let initial = lock.withLock { entries[id]!.status }
            do {
                final = try work(initial, report, isCancelled)
                final.state = .done
            } catch {
                final = lock.withLock { entries[id]?.status } ?? initial
                final.state = isCancelled() ? .cancelled : .failed
                final.error = final.state == .cancelled ? nil : "\(error)"
            }
            lock.withLock {
                entries[id]?.status = final
                publish(id, finished: true)
                running = nil
            }
            startNext()
        }
    }

    /// Sends the job's status to its listeners (and ends their streams when it is finished). Called with the lock held.
    private func publish(_ id: String, finished: Bool) {
        guard let entry = entries[id] else { return }
        entries[id]?.history.append(entry.status)
        if entry.history.count >= Self.historyLimit { entries[id]?.history.removeFirst() }
        for continuation in entry.listeners.values {
            continuation.yield(entry.status)
            if finished { continuation.finish() }
        }
        if finished { entries[id]?.listeners.removeAll() }
    }

    /// Queue positions after a change, sent to the queued jobs' listeners. Called with the lock held.
    private func renumber() {
        for (index, id) in waiting.enumerated() where entries[id]?.status.position != index + 1 {
            entries[id]?.status.position = index + 1
            publish(id, finished: false)
        }
    }

    /// Drops the oldest finished jobs beyond `keepFinished`. Called with the lock held.
    private func forgetOldJobs() {
        let finished = order.filter { entries[$0]?.status.state.isFinished == true }
        for id in finished.dropLast(keepFinished) {
            entries.removeValue(forKey: id)
            order.removeAll { $0 == id }
        }
    }
}
