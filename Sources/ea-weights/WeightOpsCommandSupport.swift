import Foundation
import WeightOps

/// Output helpers shared by the weight-operation commands (merge-lora, swap, extract-motion-module,
/// convert, diff, bench merge).
enum WeightOpsOutput {
    /// Pretty, key-sorted JSON; infinities and NaN (possible in relative differences) as strings.
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func print<T: Encodable>(_ value: T, lines: [String], asJSON: Bool) throws {
        Swift.print(asJSON ? try json(value) : lines.joined(separator: "\n"))
    }
}

/// Progress lines on stderr (only on a terminal) for operations that report (what, done, total) per file:
/// a new line per file, cleared at the end.
final class FileProgress: @unchecked Sendable {
    private var current: TerminalProgress?
    private var label = ""

    var handler: ProgressHandler? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        return { [self] label, done, total in
            if label != self.label || current == nil {
                current?.finish()
                current = TerminalProgress(label: label, total: Int64(total))
                self.label = label
            }
            current?.update(Int64(done))
        }
    }

    func finish() {
        current?.finish()
        current = nil
    }
}
