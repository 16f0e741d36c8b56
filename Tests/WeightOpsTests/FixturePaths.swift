import Foundation
import TestSupport

/// The fixture files the weight-operation tests use, plus temp dirs and comparisons.
extension Fixtures {
    static var transformer2D: String { path("tiny-pixart/transformer/diffusion_pytorch_model.safetensors") }
    static var motionModule: String { path("motion_module.safetensors") }
    static var personalized: String { path("personalized.safetensors") }
    static var lora: String { path("lora.safetensors") }
    static var textEncoderFolder: String { path("tiny-pixart/text_encoder") }
    static var pipelineFolder: String { path("tiny-pixart") }
}
