#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The temporary files and folders of `AtomicOutput` being written right now, so that an interrupt that cannot
/// wait for the work to stop (a second Ctrl-C, a stage that does not return) removes them before the process ends.
enum TemporaryFiles {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var paths: [Int: String] = [:]
    nonisolated(unsafe) private static var nextSlot = 0

    /// Remembers `path`; returns its slot for `unregister`.
    static func register(_ path: String) -> Int? {
        lock.withLock {
            defer { nextSlot += 1 }
            paths[nextSlot] = path
            return nextSlot
        }
    }

    static func unregister(_ slot: Int?) {
        guard let slot else { return }
        lock.withLock { _ = paths.removeValue(forKey: slot) }
    }

    /// The paths registered now.
    static var registered: Set<String> { lock.withLock { Set(paths.values) } }

    /// Removes every registered file and folder (the process is about to end).
    static func removeAll() {
        let all = lock.withLock { () -> [String] in
            defer { paths.removeAll() }
            return Array(paths.values)
        }
        for path in all { FileSystem.removeTree(path) }
    }
}
