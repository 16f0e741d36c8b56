import Foundation
import Runner

/// The form of the Generate view, as `POST /api/generate` takes it and a run's sidecar keeps it: EasyAnimate's
/// web UI controls (its `ui.py`), with `generate`'s defaults (`GenerationRequest.Defaults`). Every number has
/// bounds and every model is a name from `GET /api/models`.
struct GenerationSettings: Codable, Sendable, Equatable {
    /// Names from `GET /api/models`; "" for none, nil (left out) for the list's default: the first transformer and
    /// motion module, no personalized model and no LoRA. A saved run has every name resolved.
    var transformer: String?
    var motionModule: String?
    var personalized: String?
    var lora: String?
    var loraWeight: Double
    var prompt: String
    var negativePrompt: String
    var sampler: String
    var steps: Int
    /// nil: the model's default size (filled in once the model is loaded, so the sidecar has the real size).
    var width: Int?
    var height: Int?
    var frames: Int
    var guidance: Double
    var seed: Int
    var fps: Int

    /// The bounds the API enforces (the page's inputs show the same): generous for a CPU, and where EasyAnimate's
    /// sliders stop (80 frames, 1024 pixels, CFG 20, LoRA weight 2).
    enum Bounds {
        static let promptCharacters = 2000
        static let steps = 1...100
        static let size = 8...1024
        static let frames = 1...80
        static let guidance = 0.0...20.0
        static let seed = 0...4_294_967_295
        static let fps = 1...60
        static let loraWeight = 0.0...2.0
    }

    /// EasyAnimate's LoRA weight slider default.
    static let defaultLoRAWeight = 0.55

    static var defaults: GenerationSettings {
        GenerationSettings(
            transformer: nil, motionModule: nil, personalized: nil, lora: nil, loraWeight: defaultLoRAWeight,
            prompt: "", negativePrompt: GenerationRequest.Defaults.negativePrompt,
            sampler: GenerationRequest.Defaults.sampler.rawValue, steps: GenerationRequest.Defaults.steps,
            width: nil, height: nil, frames: GenerationRequest.Defaults.frames,
            guidance: Double(GenerationRequest.Defaults.guidanceScale), seed: Int(GenerationRequest.Defaults.seed),
            fps: GenerationRequest.Defaults.fps)
    }

    /// The JSON body of a request: each field of the right type and within bounds, unknown fields refused, and
    /// every error naming its field.
    static func parse(_ body: Data) throws -> GenerationSettings {
        guard !body.isEmpty else { throw APIError(.badRequest, "body: send the settings as a JSON object") }
        let fields: [String: JSONField]
        do {
            fields = try JSONDecoder().decode([String: JSONField].self, from: body)
        } catch {
            throw APIError(.badRequest, "body: not a JSON object (\(error.localizedDescription))")
        }
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError.field(unknown, "unknown field; the fields are \(known.sorted().joined(separator: ", "))")
        }
        var s = defaults
        guard let prompt = try fields["prompt"]?.string("prompt") else { throw APIError.field("prompt", "missing") }
        s.prompt = prompt
        if let v = try fields["negativePrompt"]?.string("negativePrompt") { s.negativePrompt = v }
        s.transformer = try fields["transformer"]?.optionalName("transformer")
        s.motionModule = try fields["motionModule"]?.optionalName("motionModule")
        s.personalized = try fields["personalized"]?.optionalName("personalized")
        s.lora = try fields["lora"]?.optionalName("lora")
        if let v = try fields["loraWeight"]?.number("loraWeight") { s.loraWeight = v }
        if let v = try fields["sampler"]?.string("sampler") { s.sampler = v }
        if let v = try fields["steps"]?.integer("steps") { s.steps = v }
        s.width = try fields["width"]?.optionalInteger("width")
        s.height = try fields["height"]?.optionalInteger("height")
        if let v = try fields["frames"]?.integer("frames") { s.frames = v }
        if let v = try fields["guidance"]?.number("guidance") { s.guidance = v }
        if let v = try fields["seed"]?.integer("seed") { s.seed = v }
        if let v = try fields["fps"]?.integer("fps") { s.fps = v }
        try s.checkBounds()
        return s
    }

    func checkBounds() throws {
        func within<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ field: String, _ what: String) throws {
            guard range.contains(value) else {
                throw APIError.field(field, "must be \(what) from \(range.lowerBound) to \(range.upperBound); got \(value)")
            }
        }
        guard !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw APIError.field("prompt", "empty") }
        guard prompt.count <= Bounds.promptCharacters else {
            throw APIError.field("prompt", "\(prompt.count) characters; at most \(Bounds.promptCharacters)")
        }
        guard negativePrompt.count <= Bounds.promptCharacters else {
            throw APIError.field("negativePrompt", "\(negativePrompt.count) characters; at most \(Bounds.promptCharacters)")
        }
        do { _ = try Sampler(parsing: sampler) } catch { throw APIError.field("sampler", "\(error)") }
        try within(steps, Bounds.steps, "steps", "an integer")
        if let width { try within(width, Bounds.size, "width", "a number of pixels") }
        if let height { try within(height, Bounds.size, "height", "a number of pixels") }
        try within(frames, Bounds.frames, "frames", "an integer")
        try within(guidance, Bounds.guidance, "guidance", "a number")
        try within(seed, Bounds.seed, "seed", "an integer")
        try within(fps, Bounds.fps, "fps", "an integer")
        try within(loraWeight, Bounds.loraWeight, "loraWeight", "a number")
    }

    /// The pipeline's request (the size, when nil, is the model's default).
    var request: GenerationRequest {
        GenerationRequest(prompt: prompt, negativePrompt: negativePrompt, sampler: try? Sampler(parsing: sampler),
                          steps: steps, guidanceScale: Float(guidance), seed: UInt64(seed),
                          frames: frames, height: height, width: width, fps: fps)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case transformer, motionModule, personalized, lora, loraWeight, prompt, negativePrompt, sampler, steps, width,
             height, frames, guidance, seed, fps
    }
}

/// One field of a JSON object, kept as it came so that its type is checked with the field's name in the error.
private enum JSONField: Decodable {
    case null, bool(Bool), integer(Int), number(Double), string(String), other

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .integer(v) }
        else if let v = try? c.decode(Double.self) { self = .number(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else { self = .other }
    }

    func string(_ field: String) throws -> String {
        guard case let .string(v) = self else { throw APIError.field(field, "must be a string") }
        return v
    }

    /// A model name; null or "" for none (""), as against a field left out (nil: the list's default).
    func optionalName(_ field: String) throws -> String {
        if case .null = self { return "" }
        return try string(field)
    }

    func integer(_ field: String) throws -> Int {
        switch self {
        case let .integer(v): return v
        case let .number(v) where v.rounded() == v && abs(v) < 1e15: return Int(v)
        default: throw APIError.field(field, "must be an integer")
        }
    }

    func optionalInteger(_ field: String) throws -> Int? {
        if case .null = self { return nil }
        return try integer(field)
    }

    func number(_ field: String) throws -> Double {
        switch self {
        case let .integer(v): return Double(v)
        case let .number(v) where v.isFinite: return v
        default: throw APIError.field(field, "must be a number")
        }
    }
}
