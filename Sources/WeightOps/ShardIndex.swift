import Foundation
import Safetensors

/// A `*.safetensors.index.json` and its shards as one state dict, validated on open: the index is a JSON object
/// whose `weight_map` maps tensor names to shard file names in the same folder, every shard is a valid
/// safetensors file and holds the tensors mapped to it.
struct ShardIndex: StateDict {
    let path: String
    let keys: [String]
    let metadata: [String: String]
    private let shards: [String: SafetensorsFile]
    private let shardOf: [String: String]

    static func open(_ path: String) throws -> ShardIndex {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SafetensorsError.cannotOpen(path: path, reason: "cannot read the index")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(data)
        } catch {
            throw SafetensorsError.invalidIndex(path: path, reason: "not valid JSON: \(error)")
        }
        guard let map = json["weight_map"]?.objectValue else {
            throw SafetensorsError.invalidIndex(path: path, reason: "no \"weight_map\" object")
        }
        let folder = (path as NSString).deletingLastPathComponent
        var shards: [String: SafetensorsFile] = [:]
        var shardOf: [String: String] = [:]
        for (tensor, value) in map {
            guard let shard = value.stringValue else {
                throw SafetensorsError.invalidIndex(path: path, reason: "'\(tensor)' maps to a non-string")
            }
            // A shard is a file beside the index: never a path that could lead elsewhere.
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw SafetensorsError.invalidIndex(path: path, reason: "shard name '\(shard)' is not a file name")
            }
            if shardOf[tensor] != nil { throw SafetensorsError.invalidIndex(path: path, reason: "'\(tensor)' is listed twice") }
            if shards[shard] == nil {
                let shardPath = folder + "/" + shard
                guard FileManager.default.fileExists(atPath: shardPath) else {
                    throw SafetensorsError.missingShard(path: path, shard: shard)
                }
                shards[shard] = try SafetensorsFile(path: shardPath)
            }
            guard shards[shard]?.info(tensor) != nil else {
                throw SafetensorsError.shardLacksTensor(path: path, shard: shard, tensor: tensor)
            }
            shardOf[tensor] = shard
        }
        var metadata: [String: String] = [:]
        if let first = shardOf.values.sorted().first, let file = shards[first] { metadata = file.metadata }
        for (key, value) in json["metadata"]?.objectValue ?? [] {
            if let text = value.stringValue { metadata[key] = text } else if let n = value.intValue { metadata[key] = String(n) }
        }
        return ShardIndex(path: path, keys: shardOf.keys.sorted(), metadata: metadata, shards: shards, shardOf: shardOf)
    }

    /// The shard file names, sorted.
    var shardNames: [String] { shards.keys.sorted() }

    func info(_ name: String) -> TensorInfo? {
        shardOf[name].flatMap { shards[$0]?.info(name) }
    }

    func tensor(_ name: String) throws -> TensorView {
        guard let shard = shardOf[name], let file = shards[shard] else {
            throw SafetensorsError.tensorNotFound(path: path, tensor: name)
        }
        return try file.tensor(name)
    }
}
