import Dispatch
import Foundation

/// SHA-256s of files computed on another thread while the caller works: a merge hashes its inputs for the
/// provenance metadata while it writes the output, instead of reading gigabytes before starting.
final class BackgroundDigests: @unchecked Sendable {
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var cancelled = false
    private var result: Result<[String], Error> = .success([])

    /// Starts hashing `paths`, one after the other.
    init(paths: [String]) {
        group.enter()
        DispatchQueue.global(qos: .utility).async { [self] in
            let outcome = Result { try paths.map { try FileDigest.compute(path: $0, isCancelled: isCancelled).sha256 } }
            lock.withLock { result = outcome }
            group.leave()
        }
    }

    /// The hashes in the order of the paths, once all are computed; rethrows a read error.
    func wait() throws -> [String] {
        group.wait()
        return try lock.withLock { try result.get() }
    }

    /// Stops the hashing at its next block (the caller gave up, e.g. the merge failed).
    func cancel() {
        lock.withLock { cancelled = true }
    }

    private func isCancelled() -> Bool {
        lock.withLock { cancelled }
    }
}
