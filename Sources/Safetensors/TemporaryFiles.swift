#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The temporary files being written right now, so that an interrupt (Ctrl-C, kill) can remove them before the
/// process dies: a fixed table of C strings a signal handler can walk without allocating or locking.
enum TemporaryFiles {
    static let capacity = 256
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        p.initialize(repeating: nil, count: capacity)
        return p
    }()
    nonisolated(unsafe) private static let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    nonisolated(unsafe) private static var handlerInstalled = false

    private static func withLock<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Remembers `path`; returns its slot, or nil when the table is full (the file is then only removed on
    /// errors and cancellation, not on interrupts).
    static func register(_ path: String) -> Int? {
        let copy = strdup(path)
        return withLock {
            for i in 0..<capacity where slots[i] == nil {
                slots[i] = copy
                return i
            }
            free(copy)
            return nil
        }
    }

    static func unregister(_ slot: Int) {
        let old: UnsafeMutablePointer<CChar>? = withLock {
            let p = slots[slot]
            slots[slot] = nil
            return p
        }
        free(old)
    }

    /// Installs handlers for SIGINT, SIGTERM and SIGHUP that unlink every registered temporary file and then let
    /// the signal terminate the process as it would have. Call once, early, from a command-line tool.
    static func removeOnInterrupt() {
        let install = withLock { () -> Bool in
            defer { handlerInstalled = true }
            return !handlerInstalled
        }
        guard install else { return }
        _ = slots   // initialize before any signal can arrive
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { received in
                for i in 0..<TemporaryFiles.capacity {
                    if let p = TemporaryFiles.slots[i] { unlink(p) }
                }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }
}
