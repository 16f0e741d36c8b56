import Foundation

/// Locates the bundled reference data from this source file's path, so tests run from any working directory.
public enum Fixtures {
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }()

    public static let eaTiny = packageRoot.appendingPathComponent("fixtures/ea-tiny")
    public static let goldens = eaTiny.appendingPathComponent("goldens")

    public static func path(_ relative: String) -> String { eaTiny.appendingPathComponent(relative).path }

    /// `generate`'s model flags for fixtures/ea-tiny, which the exactness tests name (the default is fixtures/ea-demo).
    public static let eaTinyModel = ["--pixart", path("tiny-pixart"), "--motion-module", path("motion_module.safetensors"),
                                     "--config", path("easyanimate_video_motion_module_v1.yaml")]
    public static func golden(_ name: String) -> String { goldens.appendingPathComponent(name).path }

    /// A fresh empty folder under the system temporary folder; the caller removes it.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ea-weights-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
