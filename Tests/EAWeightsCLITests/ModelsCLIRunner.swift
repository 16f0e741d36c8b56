import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `ea-weights` binary (built with the tests, next to the test bundle) for the extract,
/// prepare, verify and bench tests, capturing its output and exit status.
enum ModelsCLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct BinaryNotFound: Error, CustomStringConvertible {
        var description: String { "ea-weights binary not found next to the test bundle or in .build/debug; run `swift build` first" }
    }

    static func binary() throws -> URL {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            while dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" || dir.lastPathComponent == "Contents" {
                dir.deleteLastPathComponent()
            }
            candidates.append(dir.appendingPathComponent("ea-weights"))
        }
        candidates.append(Fixtures.packageRoot.appendingPathComponent(".build/debug/ea-weights"))
        guard let found = candidates.first(where: { fm.isExecutableFile(atPath: $0.path) }) else { throw BinaryNotFound() }
        return found
    }

    static func start(_ arguments: [String]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        process.currentDirectoryURL = Fixtures.packageRoot
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    static func finish(_ process: Process, _ out: Pipe, _ err: Pipe) -> Result {
        // Both pipes are drained before waiting so a large output cannot stall the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    static func run(_ arguments: [String]) throws -> Result {
        let (process, out, err) = try start(arguments)
        return finish(process, out, err)
    }

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ea-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func json(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }
}
