import Foundation
import Safetensors
@testable import WeightOps

/// Paths into fixtures/ea-tiny, found from this file's location so tests run from any directory.
enum Fixtures {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { break }
        }
        return url.appendingPathComponent("fixtures/ea-tiny")
    }()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static var transformer2D: String { path("tiny-pixart/transformer/diffusion_pytorch_model.safetensors") }
    static var motionModule: String { path("motion_module.safetensors") }
    static var personalized: String { path("personalized.safetensors") }
    static var lora: String { path("lora.safetensors") }
    static var textEncoderFolder: String { path("tiny-pixart/text_encoder") }
    static var pipelineFolder: String { path("tiny-pixart") }
    static func golden(_ name: String) -> String { path("goldens/\(name)") }

    /// A fresh empty directory under the system temp dir, removed by the caller's `defer`.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("weightops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        var m: Float = 0
        for i in a.indices { m = max(m, abs(a[i] - b[i])) }
        return m
    }
}
