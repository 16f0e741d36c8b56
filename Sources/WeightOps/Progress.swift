#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A one-line progress display on stderr for long byte-counting work (extracting, copying, hashing, merging):
/// `label  1.2 GB / 11.4 GB  820 MB/s  ETA 0:12`. Silent when stderr is not a terminal, so piped or scripted runs
/// stay clean. Updates are cheap to call per block: the line is redrawn at most ten times a second.
///
///     let progress = TerminalProgress(label: "extracting", total: archiveSize)
///     progress.update(bytesDone)   // as often as you like
///     progress.finish()            // clears the line
public final class TerminalProgress: @unchecked Sendable {
    /// A reporter that never prints, for library callers and tests.
    public static var silent: TerminalProgress { TerminalProgress(label: "", total: nil, enabled: false) }

    public let label: String
    public let isEnabled: Bool
    /// Told the work done and the total (bytes) instead of drawing, at most ten times a second: for a progress
    /// display elsewhere (the web UI's verify job).
    private let observer: (@Sendable (_ completed: Int64, _ total: Int64?) -> Void)?
    private let lock = NSLock()
    private var total: Int64?
    private var completed: Int64 = 0
    private let start: Double
    private var lastDraw: Double = 0
    private var drawn = false

    /// `total` in bytes when known (for the percentage and ETA). `enabled` defaults to "stderr is a terminal".
    public init(label: String, total: Int64?, enabled: Bool? = nil) {
        self.label = label
        self.total = total
        self.isEnabled = enabled ?? (isatty(STDERR_FILENO) == 1)
        self.observer = nil
        self.start = Self.now()
    }

    /// A reporter that hands its updates to `observer` and never prints.
    public init(label: String, total: Int64?, observer: @escaping @Sendable (_ completed: Int64, _ total: Int64?) -> Void) {
        self.label = label
        self.total = total
        self.isEnabled = true
        self.observer = observer
        self.start = Self.now()
    }

    /// Sets the work done so far, in bytes.
    public func update(_ completedBytes: Int64) {
        guard isEnabled else { return }
        lock.lock()
        defer { lock.unlock() }
        completed = completedBytes
        let now = Self.now()
        guard now - lastDraw >= 0.1 else { return }
        lastDraw = now
        if let observer { observer(completed, total) } else { draw(now: now) }
    }

    /// Adds `bytes` to the work done.
    public func advance(by bytes: Int64) {
        guard isEnabled else { return }
        lock.lock()
        let value = completed + bytes
        lock.unlock()
        update(value)
    }

    /// Changes the label's total (for work whose size becomes known late).
    public func setTotal(_ newTotal: Int64?) {
        lock.lock()
        total = newTotal
        lock.unlock()
    }

    /// Erases the progress line so the next output starts on a clean line.
    public func finish() {
        guard isEnabled else { return }
        lock.lock()
        defer { lock.unlock() }
        if let observer {
            observer(completed, total)
            return
        }
        if drawn { Self.write("\r\u{1B}[K") }
        drawn = false
    }

    private func draw(now: Double) {
        let elapsed = max(now - start, 1e-6)
        let rate = Double(completed) / elapsed
        var line = "\(label)  \(Self.bytes(completed))"
        if let total, total > 0 {
            let percent = min(100, Int(Double(completed) * 100 / Double(total)))
            line += " / \(Self.bytes(total)) (\(percent)%)"
        }
        line += "  \(Self.bytes(Int64(rate)))/s"
        if let total, total > completed, rate > 0, elapsed > 1 {
            line += "  ETA \(Self.duration(Double(total - completed) / rate))"
        }
        Self.write("\r\u{1B}[K" + line)
        drawn = true
    }

    /// `1.2 GB`, `820 MB`, `12 kB`, `512 B` (decimal units, like `ls -h --si` and download tools).
    public static func bytes(_ count: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(count)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        if unit == 0 { return "\(count) B" }
        return value < 10 ? String(format: "%.1f", value) + " " + units[unit] : "\(Int(value.rounded())) \(units[unit])"
    }

    /// `0:42`, `12:05`, `1:02:03`.
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60)
        let mmss = String(format: "%02d:%02d", m, sec)
        return h > 0 ? "\(h):\(mmss)" : String(format: "%d:%02d", m, sec)
    }

    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private static func write(_ text: String) {
        fputs(text, stderr)
    }
}
