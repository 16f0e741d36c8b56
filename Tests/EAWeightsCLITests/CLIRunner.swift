import Foundation

/// Runs the built `ea-weights` binary, found next to the test bundle (SwiftPM builds it with the tests) or in
/// .build/debug, and captures its output.
enum CLIRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct NotFound: Error, CustomStringConvertible {
        var description: String { "ea-weights binary not found next to the test bundle or in .build/debug; run `swift build` first" }
    }

    static func binary() throws -> URL {
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

    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        process.currentDirectoryURL = Fixtures.packageRoot
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting so a large output cannot fill a pipe and stall the child.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}
