import Foundation

/// A run's JSON sidecar (`<id>.json` beside `<id>.mp4` in the samples folder): the settings it ran with, so the
/// page can refill its form, and what it took.
struct RunRecord: Codable, Sendable, Equatable {
    struct Stage: Codable, Sendable, Equatable { let stage: String; let seconds: Double }

    let id: String
    /// ISO 8601, UTC.
    let created: String
    let settings: GenerationSettings
    /// File names in the samples folder: the H.264 video the page plays, and the float32 frames
    /// (`video` [1, 3, F, H, W] in [0, 1]) that Compare reads, so two runs are compared exactly, not through a codec.
    let video: String
    let rawFrames: String
    let frames: Int
    let width: Int
    let height: Int
    let fps: Int
    let stages: [Stage]
    let seconds: Double
    let secondsPerStep: Double?
    let blasCore: String
    /// What the in-memory LoRA merge did, when a LoRA was chosen.
    let lora: [String]?
}
