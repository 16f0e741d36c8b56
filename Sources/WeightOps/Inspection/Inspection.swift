import Foundation
import Safetensors

/// Options of `ea-weights inspect`.
public struct InspectOptions: Sendable {
    /// List every tensor (name, dtype, shape, bytes).
    public var listTensors: Bool
    /// Only list tensors whose name matches this regular expression (implies listing).
    public var filter: String?
    /// SHA-256 of each file (reads the files; everything else reads only headers).
    public var hash: Bool

    public init(listTensors: Bool = false, filter: String? = nil, hash: Bool = false) {
        self.listTensors = listTensors
        self.filter = filter
        self.hash = hash
    }
}

/// `ea-weights inspect`: finds the checkpoints under the given paths and describes each from its header.
///
/// A path may be a .safetensors file, a sharded checkpoint (its folder or *.safetensors.index.json), a
/// diffusers folder (model_index.json: each component), or any folder holding those, such as a `models/`
/// root laid out as EasyAnimate's README describes (Diffusion_Transformer/<name>/, Motion_Module/,
/// Personalized_Model/), which is walked. Only headers are read, except with `hash`, LoRA alphas and
/// ComfyUI quantization markers (a few bytes each).
public enum Inspection {
    /// Inspects every checkpoint found under `paths`, in order. The first unreadable path or checkpoint
    /// stops the run with an error naming it, so a report is never silently incomplete.
    public static func inspect(_ paths: [String], options: InspectOptions = InspectOptions()) throws -> InspectionReport {
        let filter = try compile(options.filter)
        var report = InspectionReport(files: [])
        for path in paths {
            var found = Discovery()
            try found.add(path)
            report.pipelines += found.pipelines
            for target in found.targets {
                report.files.append(try inspect(target, options: options, filter: filter))
            }
        }
        return report
    }

    /// Inspects one checkpoint: a .safetensors file or a sharded checkpoint's index/folder.
    public static func inspectCheckpoint(_ path: String, options: InspectOptions = InspectOptions()) throws -> InspectedFile {
        try inspect(Discovery.Target(path: path), options: options, filter: compile(options.filter))
    }

    private static func compile(_ pattern: String?) throws -> Regex<AnyRegexOutput>? {
        guard let pattern else { return nil }
        do {
            return try Regex(pattern)
        } catch {
            throw WeightOpsError.invalidInput(path: "--filter", reason: "'\(pattern)' is not a valid regular expression: \(error)")
        }
    }

    static func inspect(_ target: Discovery.Target, options: InspectOptions, filter: Regex<AnyRegexOutput>?) throws -> InspectedFile {
        let dict = try openCheckpoint(target)
        let (config, configPath, configNote) = neighbouringConfig(of: target.path)
        var summary = try ModelSummary.summarize(dict, config: config)
        if let configNote { summary.notes.append(configNote) }
        if let folderNote = folderNote(of: target) { summary.notes.append(folderNote) }

        var dtypes: [String: InspectedFile.DTypeUsage] = [:]
        var parameters = 0
        var bytes = 0
        var rows: [InspectedFile.TensorRow] = []
        let listing = options.listTensors || filter != nil
        for name in dict.keys {
            guard let info = dict.info(name) else { continue }
            var usage = dtypes[info.dtype.rawValue, default: .init(tensors: 0, parameters: 0, bytes: 0)]
            usage.tensors += 1
            usage.parameters += info.elementCount
            usage.bytes += info.byteCount
            dtypes[info.dtype.rawValue] = usage
            parameters += info.elementCount
            bytes += info.byteCount
            if listing, filter.map({ name.contains($0) }) ?? true {
                rows.append(.init(name: name, dtype: info.dtype.rawValue, shape: info.shape, bytes: info.byteCount))
            }
        }

        var file = InspectedFile(
            path: target.path, component: target.component, componentClass: target.componentClass, shards: nil,
            tensors: dict.keys.count, parameters: parameters, bytes: bytes, dtypes: dtypes, metadata: dict.metadata,
            config: configPath, summary: summary, tensorList: listing ? rows : nil, sha256: nil)
        if let shards = shardFiles(of: dict) {
            file.shards = try shards.map { shard in
                InspectedFile.Shard(path: shard.path, tensors: shard.keys.count, fileBytes: shard.fileSize,
                                    sha256: options.hash ? try FileDigest.sha256(path: shard.path) : nil)
            }
        } else if options.hash {
            // A folder holding one file opens as that file: hash the file.
            file.sha256 = try FileDigest.sha256(path: (dict as? SafetensorsFile)?.path ?? target.path)
        }
        return file
    }

    /// Opens a .safetensors file, a sharded checkpoint from its index, or a set of index-less shards.
    static func openCheckpoint(_ target: Discovery.Target) throws -> any StateDict {
        if let files = target.shardFiles { return try ShardedCheckpoint(files: files, path: target.path) }
        return try openStateDict(path: target.path)
    }

    /// What the checkpoint's folder holds besides the weights loaders read (`ComponentWeights.note`), naming the
    /// file they read; nil for a folder loaders read nothing else from, or no one checkpoint (e.g. `Personalized_Model/`).
    static func folderNote(of target: Discovery.Target) -> String? {
        let folder = target.shardFiles != nil ? target.path : (target.path as NSString).deletingLastPathComponent
        return (try? ComponentWeights(folder: folder.isEmpty ? "." : folder))?.note.map { "its folder \($0)" }
    }

    /// The shard files of a sharded checkpoint, nil for a single file.
    static func shardFiles(of dict: any StateDict) -> [SafetensorsFile]? {
        (dict as? ShardedCheckpoint)?.shards
    }

    /// config.json in the checkpoint's folder (diffusers and transformers keep it next to the weights).
    static func neighbouringConfig(of path: String) -> (JSONValue?, String?, String?) {
        var isDirectory: ObjCBool = false
        let folder = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? path : (path as NSString).deletingLastPathComponent
        let configPath = (folder.isEmpty ? "." : folder) + "/config.json"
        guard let data = SmallFile.contents(atPath: configPath) else { return (nil, nil, nil) }
        do {
            return (try JSONParser.parse(Array(data)), configPath, nil)
        } catch {
            return (nil, nil, "\(configPath) is not valid JSON (\(error)); ignored")
        }
    }
}

/// Finds checkpoints under user-given paths.
struct Discovery {
    struct Target: Equatable {
        /// A .safetensors file or an index; for index-less shards, their folder.
        var path: String
        /// Index-less shards (`<name>-00001-of-00003.safetensors`, ...) opened as one checkpoint.
        var shardFiles: [String]? = nil
        var component: String? = nil
        var componentClass: String? = nil
    }

    private(set) var targets: [Target] = []
    private(set) var pipelines: [InspectedPipeline] = []
    /// Real paths of folders already walked, so symlink loops end.
    private var visited: Set<String> = []
    /// How deep a models/ root is walked (models/Diffusion_Transformer/<name>/<component> is 3).
    static let maxDepth = 5

    mutating func add(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw WeightOpsError.invalidInput(path: path, reason: "no such file or directory")
        }
        if !isDirectory.boolValue {
            let name = (path as NSString).lastPathComponent
            if name == "model_index.json" {
                try addPipeline((path as NSString).deletingLastPathComponent)
            } else if name.hasSuffix(".safetensors.index.json") || name.hasSuffix(".safetensors") {
                targets.append(Target(path: path))
            } else {
                throw WeightOpsError.invalidInput(path: path, reason: Self.unsupportedFileReason(name))
            }
            return
        }
        let before = targets.count
        try walk(path, depth: 0)
        if targets.count == before {
            throw WeightOpsError.invalidInput(path: path, reason: "no .safetensors checkpoint, *.safetensors.index.json or model_index.json found here or in its subfolders")
        }
    }

    private static func unsupportedFileReason(_ name: String) -> String {
        let pickles = [".bin", ".pt", ".pth", ".ckpt", ".pkl"]
        if pickles.contains(where: name.hasSuffix) {
            return "a PyTorch pickle checkpoint; ea-weights reads only .safetensors (pickles can run code when loaded)"
        }
        return "not a .safetensors file, a *.safetensors.index.json or a model_index.json"
    }

    private mutating func walk(_ folder: String, depth: Int) throws {
        let real = (folder as NSString).resolvingSymlinksInPath
        guard depth <= Self.maxDepth, visited.insert(real).inserted else { return }
        let join = { (name: String) in folder.hasSuffix("/") ? folder + name : folder + "/" + name }
        if FileManager.default.fileExists(atPath: join("model_index.json")) {
            try addPipeline(folder)
            return
        }
        targets += try Self.checkpoints(in: folder)
        for name in try Self.entries(folder) where !name.hasPrefix(".") {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: join(name), isDirectory: &isDirectory), isDirectory.boolValue {
                try walk(join(name), depth: depth + 1)
            }
        }
    }

    /// The checkpoints directly in `folder`: each index (one sharded checkpoint), then each .safetensors file
    /// no index covers.
    static func checkpoints(in folder: String) throws -> [Target] {
        let names = try entries(folder)
        let join = { (name: String) in folder.hasSuffix("/") ? folder + name : folder + "/" + name }
        let indexes = names.filter { $0.hasSuffix(".safetensors.index.json") }
        var covered: Set<String> = []
        for index in indexes {
            covered.formUnion(shardNames(inIndex: join(index)))
        }
        let loose = names.filter { $0.hasSuffix(".safetensors") && !covered.contains($0) }
        // Complete sets of transformers-named shards without an index are one checkpoint each.
        var sets: [String: [String]] = [:]
        for name in loose {
            if let set = shardSetName(name) { sets[set, default: []].append(name) }
        }
        var targets = indexes.map { Target(path: join($0)) }
        var grouped: Set<String> = []
        for (set, members) in sets.sorted(by: { $0.key < $1.key }) where members.count == shardCount(members[0]) {
            let label = sets.count == 1 && loose.count == members.count ? folder : join(set)
            targets.append(Target(path: label, shardFiles: members.map(join)))
            grouped.formUnion(members)
        }
        targets += loose.filter { !grouped.contains($0) }.map { Target(path: join($0)) }
        return targets
    }

    /// "model-00002-of-00003.safetensors" → "model-*-of-00003.safetensors".
    static func shardSetName(_ name: String) -> String? {
        let stem = name.dropLast(".safetensors".count)
        let parts = stem.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[parts.count - 2] == "of",
              let index = Int(parts[parts.count - 3]), let count = Int(parts[parts.count - 1]),
              index >= 1, index <= count else { return nil }
        return parts.dropLast(3).joined(separator: "-") + "-*-of-" + parts[parts.count - 1] + ".safetensors"
    }

    private static func shardCount(_ name: String) -> Int {
        let stem = name.dropLast(".safetensors".count)
        return stem.split(separator: "-").last.flatMap { Int($0) } ?? 0
    }

    /// The files an index's weight_map points at (empty if it cannot be read: opening it reports why).
    private static func shardNames(inIndex path: String) -> Set<String> {
        guard let data = SmallFile.contents(atPath: path),
              let json = try? JSONParser.parse(Array(data)),
              let map = json["weight_map"]?.objectValue else { return [] }
        return Set(map.compactMap { $0.1.stringValue })
    }

    private static func entries(_ folder: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        } catch {
            throw WeightOpsError.invalidInput(path: folder, reason: "cannot list folder: \(error.localizedDescription)")
        }
    }

    /// A diffusers folder: every component named in model_index.json, with the checkpoints in its subfolder.
    private mutating func addPipeline(_ folder: String) throws {
        let folder = folder.isEmpty ? "." : folder
        let indexPath = folder + "/model_index.json"
        guard let data = SmallFile.contents(atPath: indexPath) else {
            throw WeightOpsError.invalidInput(path: indexPath, reason: "cannot read")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(Array(data))
        } catch {
            throw WeightOpsError.invalidInput(path: indexPath, reason: "not valid JSON: \(error)")
        }
        guard let members = json.objectValue else {
            throw WeightOpsError.invalidInput(path: indexPath, reason: "not a JSON object")
        }
        var pipeline = InspectedPipeline(path: folder, className: json["_class_name"]?.stringValue, components: [])
        for (name, value) in members where !name.hasPrefix("_") {
            // Components are ["library", "Class"]; other members are pipeline settings.
            guard let pair = value.arrayValue, pair.count == 2 else { continue }
            let library = pair[0].stringValue
            let className = pair[1].stringValue
            guard library != nil || className != nil else { continue }
            let componentFolder = folder + "/" + name
            var isDirectory: ObjCBool = false
            var found: [Target] = []
            if FileManager.default.fileExists(atPath: componentFolder, isDirectory: &isDirectory), isDirectory.boolValue {
                found = try Self.checkpoints(in: componentFolder).map {
                    Target(path: $0.path, component: name, componentClass: className)
                }
            }
            targets += found
            pipeline.components.append(.init(name: name, library: library, className: className, weights: found.map(\.path)))
        }
        pipelines.append(pipeline)
        visited.insert((folder as NSString).resolvingSymlinksInPath)
    }
}
