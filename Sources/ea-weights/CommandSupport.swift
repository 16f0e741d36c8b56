import ArgumentParser
import Foundation
import Safetensors
import WeightOps

/// JSON for `--json`: sorted keys, pretty printed, slashes unescaped.
enum CommandOutput {
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// A command interrupted by Ctrl-C (after cleaning up) exits like a shell expects: 128 + the signal number.
enum CommandFailure {
    static func exitOnInterruption<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            if let signal = Interruption.signal {
                FileHandle.standardError.write(Data("ea-weights: \(PrintableText.line(String(describing: error)))\n".utf8))
                throw ExitCode(128 + signal)
            }
            throw error
        }
    }
}
