#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation

/// Turns Ctrl-C (SIGINT), SIGTERM and SIGHUP into a flag that long operations poll between blocks, so they can
/// stop cleanly and remove their temporary files instead of dying half-way and leaving partial output behind.
/// Work that does not reach a check within `gracePeriod` (a library call that blocks), and a second signal, end
/// the process at once, after removing every temporary output still registered: nothing is left behind either way.
///
///     Interruption.install()                     // in a command's run(), before the long work
///     if Interruption.isRequested { ... }        // or pass `Interruption.isRequested` as a check
public enum Interruption {
    private static let state = State()

    /// How long a requested stop may take before the process ends on its own.
    public static let gracePeriod: Double = 0.8

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
        private let queue = DispatchQueue(label: "ea-weights.interruption")

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
            for number in [SIGINT, SIGTERM, SIGHUP] {
                // The default action would kill the process before cleanup; the dispatch source sees it instead.
                Glibc.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { [weak self] in self?.receive(number) }
                source.resume()
                sources.append(source)
            }
        }

        /// Removes the registered temporary outputs and exits as the signal would have, as a shell expects.
        private static func end(_ number: Int32) -> Never {
            TemporaryFiles.removeAll()
            let message = "ea-weights: interrupted; nothing was left behind\n"
            _ = message.withCString { Glibc.write(2, $0, strlen($0)) }
            _exit(128 + number)
        }

        private func receive(_ number: Int32) {
            lock.lock()
            let second = received != nil
            if !second { received = number }
            lock.unlock()
            if second { Self.end(number) }
            queue.asyncAfter(deadline: .now() + Interruption.gracePeriod) { Self.end(number) }
        }
    }
}
