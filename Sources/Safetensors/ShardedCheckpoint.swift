/// A checkpoint split over several .safetensors files, opened as one state dict: through its
/// `*.safetensors.index.json` (as transformers and diffusers write it), or as all the shard files of a folder.
/// Every shard is mapped and validated on open; the index and the shards must agree exactly (no missing shard,
/// no tensor the index maps to a shard that lacks it, no tensor in two shards, no tensor the index leaves out).
public struct ShardedCheckpoint: StateDict {
    /// The index file, or the folder when opened without one.
    public let path: String
    /// The index, when opened through one.
    public let index: ShardIndex?
    /// The shard files, sorted by name.
    public let shards: [SafetensorsFile]
    public let keys: [String]
    /// The index's `metadata` (values as text, e.g. `total_size`), then the first shard's `__metadata__` for keys
    /// the index does not have.
    public let metadata: [String: String]
    private let location: [String: Int]

    /// Opens the index file `indexPath` and the shards it names (relative to its folder).
    public init(indexPath: String) throws {
        let index = try ShardIndex(path: indexPath)
        let folder = FileSystem.parent(of: indexPath)
        guard !index.weightMap.isEmpty else {
            throw SafetensorsError.invalidIndex(path: indexPath, reason: "'weight_map' is empty")
        }
        var shards: [SafetensorsFile] = []
        for name in index.shardFiles {
            let shardPath = FileSystem.join(folder, name)
            guard FileSystem.kind(shardPath) != .missing else {
                throw SafetensorsError.missingShard(path: indexPath, shard: name)
            }
            shards.append(try SafetensorsFile(path: shardPath))
        }
        var shardNumber: [String: Int] = [:]
        for (i, name) in index.shardFiles.enumerated() { shardNumber[name] = i }

        // Every listed tensor must be in its shard, and every shard tensor must be listed there.
        var location: [String: Int] = [:]
        for name in index.weightMap.keys.sorted() {
            guard let file = index.weightMap[name], let i = shardNumber[file] else { continue }
            guard shards[i].info(name) != nil else {
                throw SafetensorsError.shardLacksTensor(path: indexPath, shard: file, tensor: name)
            }
            location[name] = i
        }
        for (i, shard) in shards.enumerated() {
            for name in shard.keys where location[name] != i {
                if let listed = index.weightMap[name] {
                    // The index puts it elsewhere (and that shard has it too, checked above).
                    throw SafetensorsError.duplicateTensor(path: indexPath, tensor: name,
                                                           firstShard: listed, secondShard: index.shardFiles[i])
                }
                throw SafetensorsError.unlistedTensor(path: indexPath, shard: index.shardFiles[i], tensor: name)
            }
        }
        var metadata: [String: String] = [:]
        for (key, value) in index.metadata { metadata[key] = value.stringValue ?? value.compactText }
        if let first = shards.first {
            for (key, value) in first.metadata where metadata[key] == nil { metadata[key] = value }
        }
        self.init(path: indexPath, index: index, shards: shards, location: location, metadata: metadata)
    }

    /// Opens `files` (paths) as the shards of one checkpoint without an index; `path` names it in messages
    /// (usually their folder). A tensor in two files is an error naming both.
    public init(files: [String], path: String) throws {
        guard !files.isEmpty else {
            throw SafetensorsError.cannotOpen(path: path, reason: "no .safetensors files to open")
        }
        let sorted = files.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let shards = try sorted.map { try SafetensorsFile(path: $0) }
        var location: [String: Int] = [:]
        for (i, shard) in shards.enumerated() {
            for name in shard.keys {
                if let j = location[name] {
                    throw SafetensorsError.duplicateTensor(path: path, tensor: name,
                                                           firstShard: FileSystem.baseName(of: sorted[j]),
                                                           secondShard: FileSystem.baseName(of: sorted[i]))
                }
                location[name] = i
            }
        }
        self.init(path: path, index: nil, shards: shards, location: location, metadata: shards[0].metadata)
    }

    /// Opens a folder's checkpoint as `ComponentWeights` chooses it (a single file as a checkpoint of one shard).
    public init(folder: String) throws {
        let weights = try ComponentWeights(folder: folder)
        switch weights.layout {
        case let .index(name, _): try self.init(indexPath: FileSystem.join(folder, name))
        case .file, .shards: try self.init(files: weights.files.map { FileSystem.join(folder, $0) }, path: folder)
        }
    }

    private init(path: String, index: ShardIndex?, shards: [SafetensorsFile], location: [String: Int],
                 metadata: [String: String]) {
        self.path = path
        self.index = index
        self.shards = shards
        self.location = location
        self.metadata = metadata
        self.keys = location.keys.sorted()
    }

    /// The shard holding `name`.
    public func shard(containing name: String) -> SafetensorsFile? {
        location[name].map { shards[$0] }
    }

    public func info(_ name: String) -> TensorInfo? {
        shard(containing: name)?.info(name)
    }

    public func tensor(_ name: String) throws -> TensorView {
        guard let shard = shard(containing: name) else { throw SafetensorsError.tensorNotFound(path: path, tensor: name) }
        return try shard.tensor(name)
    }
}

/// Opens whatever a user points at as one state dict: a .safetensors file, a `*.safetensors.index.json`, or a
/// model folder, whose weights `ComponentWeights` chooses as diffusers' and transformers' loaders do.
public func openStateDict(path: String) throws -> any StateDict {
    switch FileSystem.kind(path) {
    case .missing:
        throw SafetensorsError.cannotOpen(path: path, reason: "no such file or folder")
    case .other:
        throw SafetensorsError.cannotOpen(path: path, reason: "not a regular file or folder")
    case .file:
        if path.hasSuffix(".json") { return try ShardedCheckpoint(indexPath: path) }
        return try SafetensorsFile(path: path)
    case .directory:
        return try ComponentWeights(folder: path).open()
    }
}
