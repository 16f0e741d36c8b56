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

    /// Opens a folder: through its index when it has exactly one `*.safetensors.index.json`, otherwise as all
    /// its `.safetensors` files (hidden files ignored).
    public init(folder: String) throws {
        let names = try FileSystem.list(folder).filter { !$0.hasPrefix(".") }
        let indexes = names.filter { $0.hasSuffix(".safetensors.index.json") }
        if indexes.count == 1 {
            try self.init(indexPath: FileSystem.join(folder, indexes[0]))
            return
        }
        guard indexes.isEmpty else {
            throw SafetensorsError.cannotOpen(path: folder, reason: "it holds several index files (\(indexes.joined(separator: ", "))); open one of them")
        }
        let files = names.filter { $0.hasSuffix(".safetensors") }.map { FileSystem.join(folder, $0) }
            .filter { FileSystem.kind($0) == .file }
        try self.init(files: files, path: folder)
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
/// folder holding one checkpoint (an index with its shards, a single .safetensors file, or shards named
/// `<name>-00001-of-0000N.safetensors` without an index). Like transformers' and diffusers' loaders, a folder with
/// both `<name>.safetensors` and `<name>.safetensors.index.json` opens the single file.
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
        let names = try FileSystem.list(path).filter { !$0.hasPrefix(".") }
        let files = names.filter { $0.hasSuffix(".safetensors") && FileSystem.kind(FileSystem.join(path, $0)) == .file }
        let indexes = names.filter { $0.hasSuffix(".safetensors.index.json") }
        if indexes.count == 1 {
            let single = String(indexes[0].dropLast(".index.json".count))
            if files.contains(single) { return try SafetensorsFile(path: FileSystem.join(path, single)) }
            return try ShardedCheckpoint(indexPath: FileSystem.join(path, indexes[0]))
        }
        guard indexes.isEmpty else {
            throw SafetensorsError.cannotOpen(
                path: path, reason: "it holds several index files (\(indexes.joined(separator: ", "))); open one of them")
        }
        if files.count == 1 { return try SafetensorsFile(path: FileSystem.join(path, files[0])) }
        guard !files.isEmpty else {
            throw SafetensorsError.cannotOpen(path: path, reason: "it holds no .safetensors file")
        }
        // Without an index, accept only one complete set of transformers-named shards.
        let parsed = files.map { ShardPlan.parseShardName($0) }
        if let first = parsed[0], parsed.allSatisfy({ $0?.base == first.base && $0?.count == first.count }) {
            let expected = ShardPlan.shardNames(baseName: first.base, count: first.count)
            for name in expected where !files.contains(name) {
                throw SafetensorsError.missingShard(path: path, shard: name)
            }
            if files.count == expected.count {
                return try ShardedCheckpoint(files: files.map { FileSystem.join(path, $0) }, path: path)
            }
        }
        throw SafetensorsError.cannotOpen(
            path: path, reason: "it holds \(files.count) .safetensors files and no index; open one of them or the index")
    }
}
