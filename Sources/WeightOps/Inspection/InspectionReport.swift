import Foundation
import Safetensors

/// What `ea-weights inspect` found: one entry per checkpoint (a file, or a sharded set as one), plus the
/// diffusers pipelines it walked through. Renders as aligned text for people and as JSON for scripts.
public struct InspectionReport: Sendable, Encodable {
    public var files: [InspectedFile]
    public var pipelines: [InspectedPipeline]

    public init(files: [InspectedFile], pipelines: [InspectedPipeline] = []) {
        self.files = files
        self.pipelines = pipelines
    }

    private enum CodingKeys: String, CodingKey { case files, pipelines }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(files, forKey: .files)
        if !pipelines.isEmpty { try c.encode(pipelines, forKey: .pipelines) }
    }

    /// `{"files": [...], "pipelines": [...]}`, keys sorted so output is stable.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// A diffusers folder (model_index.json) and its components.
public struct InspectedPipeline: Sendable, Codable, Equatable {
    public var path: String
    public var className: String?
    public var components: [Component]

    public struct Component: Sendable, Codable, Equatable {
        public var name: String
        public var library: String?
        public var className: String?
        /// Checkpoints found in the component's folder (empty for tokenizers and schedulers).
        public var weights: [String]
    }

    private enum CodingKeys: String, CodingKey {
        case path, components
        case className = "class"
    }
}

/// One checkpoint as `inspect` reports it.
public struct InspectedFile: Sendable, Encodable {
    /// The file, or for a sharded checkpoint its index (or folder).
    public var path: String
    /// The diffusers component it belongs to, e.g. "transformer", and that component's class.
    public var component: String?
    public var componentClass: String?
    /// For a sharded checkpoint, its shard files.
    public var shards: [Shard]?
    public var tensors: Int
    public var parameters: Int
    /// Bytes of tensor data (the files are this plus their headers).
    public var bytes: Int
    public var dtypes: [String: DTypeUsage]
    public var metadata: [String: String]
    /// The config.json used for values shapes cannot give, if any.
    public var config: String?
    public var summary: ModelSummary
    /// Every tensor (or those matching --filter), with --tensors.
    public var tensorList: [TensorRow]?
    /// SHA-256 of the file, with --hash (for shards, in `shards`).
    public var sha256: String?

    public var kind: ModelKind { summary.kind }

    public struct Shard: Sendable, Codable, Equatable {
        public var path: String
        public var tensors: Int
        public var fileBytes: Int
        public var sha256: String?
    }

    public struct DTypeUsage: Sendable, Codable, Equatable {
        public var tensors: Int
        public var parameters: Int
        public var bytes: Int
    }

    public struct TensorRow: Sendable, Codable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var bytes: Int
    }

    private enum CodingKeys: String, CodingKey {
        case path, component, componentClass, shards, kind, tensors, parameters, bytes, dtypes, metadata, config
        case transformer, motionModule, lora, vae, t5, quantization, notes, tensorList, sha256
    }

    /// The summary's parts sit next to the counts, so scripts read `files[i].transformer.depth`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encodeIfPresent(component, forKey: .component)
        try c.encodeIfPresent(componentClass, forKey: .componentClass)
        try c.encodeIfPresent(shards, forKey: .shards)
        try c.encode(summary.kind, forKey: .kind)
        try c.encode(tensors, forKey: .tensors)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(dtypes, forKey: .dtypes)
        try c.encode(metadata, forKey: .metadata)
        try c.encodeIfPresent(config, forKey: .config)
        try c.encodeIfPresent(summary.transformer, forKey: .transformer)
        try c.encodeIfPresent(summary.motionModule, forKey: .motionModule)
        try c.encodeIfPresent(summary.lora, forKey: .lora)
        try c.encodeIfPresent(summary.vae, forKey: .vae)
        try c.encodeIfPresent(summary.t5, forKey: .t5)
        try c.encodeIfPresent(summary.quantization, forKey: .quantization)
        try c.encode(summary.notes, forKey: .notes)
        try c.encodeIfPresent(tensorList, forKey: .tensorList)
        try c.encodeIfPresent(sha256, forKey: .sha256)
    }
}
