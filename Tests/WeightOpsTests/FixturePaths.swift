import Foundation

/// The fixture files the weight-operation tests use, plus temp dirs and comparisons.
extension Fixtures {
    static var transformer2D: String { path("tiny-pixart/transformer/diffusion_pytorch_model.safetensors") }
    static var motionModule: String { path("motion_module.safetensors") }
    static var personalized: String { path("personalized.safetensors") }
    static var lora: String { path("lora.safetensors") }
    static var textEncoderFolder: String { path("tiny-pixart/text_encoder") }
    static var pipelineFolder: String { path("tiny-pixart") }

    /// A fresh empty directory under the system temp dir; the caller removes it.
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
