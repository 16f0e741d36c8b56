import Safetensors

/// Several state dicts seen as one, e.g. a 2D backbone plus a motion module as the 3D transformer's
/// state dict. Keys must not repeat: which copy wins would be a silent choice.
public struct StateDictUnion: StateDict {
    public let parts: [any StateDict]
    public let path: String
    public let keys: [String]
    private let owner: [String: Int]

    public init(_ parts: [any StateDict]) throws {
        var owner: [String: Int] = [:]
        for (i, part) in parts.enumerated() {
            for key in part.keys {
                if let j = owner[key] {
                    throw WeightOpsError.incompatible(
                        path: part.path, reason: "tensor '\(key)' is also in \(parts[j].path); cannot tell which to keep")
                }
                owner[key] = i
            }
        }
        self.parts = parts
        self.owner = owner
        self.keys = owner.keys.sorted()
        self.path = parts.map(\.path).joined(separator: " + ")
    }

    /// The first part's metadata, then the others' for keys it lacks.
    public var metadata: [String: String] {
        var merged: [String: String] = [:]
        for part in parts.reversed() { merged.merge(part.metadata) { _, new in new } }
        return merged
    }

    public func info(_ name: String) -> TensorInfo? {
        owner[name].flatMap { parts[$0].info(name) }
    }

    public func tensor(_ name: String) throws -> TensorView {
        guard let i = owner[name] else { throw SafetensorsError.tensorNotFound(path: path, tensor: name) }
        return try parts[i].tensor(name)
    }

    /// The part a key comes from.
    public func part(of name: String) -> (any StateDict)? { owner[name].map { parts[$0] } }
}
