#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation

/// Turns Ctrl-C (SIGINT), SIGTERM and SIGHUP into a flag that long operations poll between blocks, so they can
/// stop cleanly and remove their temporary files instead of dying half-way and leaving partial output behind.
/// A second signal ends the process at once, for the impatient.
///
///     Interruption.install()                     // in a command's run(), before the long work
///     if Interruption.isRequested { ... }        // or pass `Interruption.isRequested` as a check
public enum Interruption {
    private static let state = State()

    /// Starts catching the signals (once per process; later calls do nothing).
    public static func install() {
        state.install()
    }

    /// Whether a signal arrived since `install()`.
    public static var isRequested: Bool { state.requested }

    /// The signal that arrived, to exit with 128 + its number like a shell expects.
    public static var signal: Int32? { state.signalNumber }

    private final class State: @unchecked Sendable {
        private let lock = NSLock()
        private var installed = false
        private var received: Int32?
        private var sources: [DispatchSourceSignal] = []

        var requested: Bool {
            lock.lock()
            defer { lock.unlock() }
            return received != nil
        }

        var signalNumber: Int32? {
            lock.lock()
            defer { lock.unlock() }
            return received
        }

        func install() {
            lock.lock()
            defer { lock.unlock() }
            guard !installed else { return }
            installed = true
            let queue = DispatchQueue(label: "ea-weights.interruption")
            for number in [SIGINT, SIGTERM, SIGHUP] {
                // The default action would kill the process before cleanup; the dispatch source sees it instead.
                Glibc.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { [weak self] in self?.receive(number) }
                source.resume()
                sources.append(source)
            }
        }

        private func receive(_ number: Int32) {
            lock.lock()
            let second = received != nil
            if !second { received = number }
            lock.unlock()
            if second { _exit(128 + number) }
        }
    }
}
