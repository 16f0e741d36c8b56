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

/// "label  42% (1.0 GiB of 2.4 GiB)" on one rewritten stderr line, only when stderr is a terminal.
final class TerminalProgress: @unchecked Sendable {
    private let enabled = isatty(2) != 0
    private var lastUpdate = 0.0
    private var shown = false

    var handler: ProgressHandler? {
        guard enabled else { return nil }
        return { [self] label, done, total in update(label, done, total) }
    }

    private func update(_ label: String, _ done: Int, _ total: Int) {
        let now = Date().timeIntervalSince1970
        guard done >= total || now - lastUpdate >= 0.1 else { return }
        lastUpdate = now
        let percent = total > 0 ? done * 100 / total : 100
        let text = "\r\u{1B}[K\(label)  \(percent)% (\(ByteCount.format(done)) of \(ByteCount.format(total)))"
        FileHandle.standardError.write(Data(text.utf8))
        shown = true
    }

    /// Clears the progress line before the report is printed.
    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        shown = false
    }
}
