import Foundation
import NIOConcurrencyHelpers
import Safetensors

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
        var listeners: [UUID: AsyncStream<JobEvent>.Continuation] = [:]
        /// Every status published, numbered from 0 (the newest `logLimit`), for listeners that come late or
        /// reconnect (SSE's Last-Event-ID).
        var log: [JobEvent] = []
    }

    /// A published status and its number in the job's log.
    struct JobEvent: Sendable {
        let number: Int
        let status: JobStatus
    }

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
    private let logLimit = 2000

    /// Adds a job; it starts when the jobs before it are done.
    func submit(kind: JobStatus.Kind, work: @escaping Work) throws -> JobStatus {
        let status: JobStatus = try lock.withLock {
            guard !stopped else { throw APIError(.serviceUnavailable, "the server is shutting down") }
            let id = UUID().uuidString.lowercased()
            entries[id] = Entry(status: JobStatus(id: id, kind: kind), work: work)
            order.append(id)
            waiting.append(id)
            forgetOldJobs()
            renumber()   // publishes the new job's first status, with its position
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

    /// The job's statuses after number `after` (all that are kept when nil), then each new one; ends when the
    /// job is finished.
    func events(_ id: String, after: Int? = nil) throws -> AsyncStream<JobEvent> {
        try lock.withLock {
            guard let entry = entries[id] else { throw APIError.notFound("no job \(id)") }
            let (stream, continuation) = AsyncStream<JobEvent>.makeStream()
            for event in entry.log where event.number > (after ?? -1) { continuation.yield(event) }
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
            // Ctrl-C too: `Interruption` then ends the process within its grace period, removing partial outputs.
            let isCancelled: @Sendable () -> Bool = { [weak self] in
                Interruption.isRequested || (self?.lock.withLock { self?.entries[id]?.cancelRequested ?? true } ?? true)
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
        guard var entry = entries[id] else { return }
        let event = JobEvent(number: (entry.log.last?.number ?? -1) + 1, status: entry.status)
        entry.log.append(event)
        if entry.log.count > logLimit { entry.log.removeFirst(entry.log.count - logLimit) }
        for continuation in entry.listeners.values {
            continuation.yield(event)
            if finished { continuation.finish() }
        }
        if finished { entry.listeners.removeAll() }
        entries[id] = entry
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
