import Foundation

/// Locates the bundled reference data from this source file's path, so tests run from any working directory.
enum Fixtures {
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    static let eaTiny = packageRoot.appendingPathComponent("fixtures/ea-tiny")
    static let goldens = eaTiny.appendingPathComponent("goldens")

    static func path(_ relative: String) -> String { eaTiny.appendingPathComponent(relative).path }
    static func golden(_ name: String) -> String { goldens.appendingPathComponent(name).path }
}
