import Foundation

/// Runs the built `ea-weights` binary (next to the test bundle, where SwiftPM builds it with the tests, or in
/// .build/debug) from the package root and captures its output.
public enum CLIRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    struct NotFound: Error, CustomStringConvertible {
        var description: String { "ea-weights binary not found next to the test bundle or in .build/debug; run `swift build` first" }
    }

    struct NotJSON: Error, CustomStringConvertible {
        let text: String
        var description: String { "output is not a JSON object: \(text.prefix(200))" }
    }

    public static func binary() throws -> URL {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            // On macOS the bundle is a directory (…/ea-weightsPackageTests.xctest/Contents/MacOS).
            while dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" || dir.lastPathComponent == "Contents" {
                dir.deleteLastPathComponent()
            }
            candidates.append(dir.appendingPathComponent("ea-weights"))
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("ea-weights"))
        candidates.append(Fixtures.packageRoot.appendingPathComponent(".build/debug/ea-weights"))
        guard let found = candidates.first(where: { fm.isExecutableFile(atPath: $0.path) }) else { throw NotFound() }
        return found
    }

    /// Runs to completion.
    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let (process, out, err) = try start(arguments, environment: environment)
        return finish(process, out, err)
    }

    /// Starts in the background (e.g. to interrupt it); `finish` collects the result.
    /// `environment` is added to (or overrides) this process's environment.
    public static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.currentDirectoryURL = Fixtures.packageRoot
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    public static func finish(_ process: Process, _ out: Pipe, _ err: Pipe) -> Result {
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

    public static func temporaryDirectory() throws -> URL { try Fixtures.temporaryDirectory() }

    public static func jsonObject(_ text: String) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw NotJSON(text: text)
        }
        return object
    }
}

extension CLIRunner {
    /// The output as a JSON object, or nil when it is not one.
    public static func jsonObjectIfAny(_ text: String) -> [String: Any]? { try? jsonObject(text) }
}
