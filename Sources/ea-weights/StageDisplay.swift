#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One status line on stderr for staged work with counted steps: `denoising  3/30  1.2 s/step  ETA 0:32`.
/// Silent when stderr is not a terminal.
final class StageDisplay {
    private let enabled = isatty(STDERR_FILENO) == 1
    private var label = ""
    private var start = Date()

    func begin(_ label: String) {
        self.label = label
        start = Date()
        draw(label + " ...")
    }

    func update(done: Int, total: Int) {
        let elapsed = Date().timeIntervalSince(start)
        var line = "\(label)  \(done)/\(total)"
        if done > 0 {
            let each = elapsed / Double(done)
            line += String(format: "  %.2f s each", each)
            if done < total { line += "  ETA \(Self.clock(each * Double(total - done)))" }
        }
        draw(line)
    }

    func end() { draw(nil) }

    private func draw(_ line: String?) {
        guard enabled else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + (line ?? "")).utf8))
    }

    private static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}
