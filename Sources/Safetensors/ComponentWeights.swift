/// Which weights a model folder loads (a diffusers component such as `transformer/` or `vae/`, a transformers
/// model such as `text_encoder/`, or any folder holding one checkpoint), chosen as the loaders choose:
///
/// - the standard names, diffusers' first: `diffusion_pytorch_model.safetensors`, then its index
///   `diffusion_pytorch_model.safetensors.index.json`; then transformers' `model.safetensors`, then
///   `model.safetensors.index.json`. The single file comes before the index, as transformers'
///   `PreTrainedModel.from_pretrained` takes it, and as diffusers did up to 0.28 (EasyAnimate v1 pins 0.27, which
///   reads only the single file); diffusers 0.29 and later take the index first, which is why a folder holding
///   both is reported (`shadowed`, `note`) and never written by ea-weights.
/// - a variant only when asked for: `variant: "fp16"` reads `diffusion_pytorch_model.fp16.safetensors`, or the
///   index `diffusion_pytorch_model.safetensors.index.fp16.json` (or diffusers' older
///   `diffusion_pytorch_model.fp16.safetensors.index.json`), and nothing else, as `_add_variant` names them.
///   Without a variant, variant files are never read (diffusers and transformers read them only when asked).
/// - in a folder without a standard name (and no `library`): its one `*.safetensors.index.json` (the single file of
///   the same name before it), its one `.safetensors` file, or one complete set of index-less
///   `<name>-NNNNN-of-MMMMM.safetensors` shards.
///
/// What else the folder holds in weights is kept in `ignored`, so callers can warn and leave it out of outputs.
public struct ComponentWeights: Sendable, Equatable {
    /// The library whose loader reads the folder, which fixes the standard name.
    public enum Library: String, Sendable, CaseIterable {
        case diffusers, transformers

        /// `SAFETENSORS_WEIGHTS_NAME` / `SAFE_WEIGHTS_NAME` without `.safetensors`.
        public var baseName: String {
            switch self {
            case .diffusers: return "diffusion_pytorch_model"
            case .transformers: return "model"
            }
        }
    }

    public enum Layout: Sendable, Equatable {
        /// One .safetensors file.
        case file(String)
        /// An index file and the shards it names (sorted).
        case index(String, ShardIndex)
        /// Index-less shards (sorted), read by ea-weights only: diffusers and transformers need the index.
        case shards([String])
    }

    public let folder: String
    public let layout: Layout
    /// The library whose standard name was found (nil when the folder's only checkpoint has another name).
    public let library: Library?
    public let variant: String?
    /// Weight files (`.safetensors`, indexes) of the folder that are not read, sorted.
    public let ignored: [String]
    /// Among `ignored`: the index of the same name as the single file read, and its shards. Loaders disagree on
    /// these (diffusers 0.29 and later read the index instead).
    public let shadowed: [String]

    /// Resolves `folder`. `library` restricts the names to that library's (no fallback to other names), as its
    /// loader does. Errors name the folder and what was looked for.
    public init(folder: String, library: Library? = nil, variant: String? = nil) throws {
        guard FileSystem.kind(folder) == .directory else {
            let reason = FileSystem.kind(folder) == .missing ? "no such folder" : "not a folder"
            throw SafetensorsError.cannotOpen(path: folder, reason: reason)
        }
        let names = try FileSystem.list(folder).filter { !$0.hasPrefix(".") && FileSystem.kind(FileSystem.join(folder, $0)) == .file }
        let present = Set(names)
        self.folder = folder
        self.variant = variant

        var standard: [(Layout, Library)] = []
        for candidate in library.map({ [$0] }) ?? Library.allCases {
            let single = Self.fileName(candidate.baseName, variant: variant)
            if present.contains(single) {
                standard.append((.file(single), candidate))
            } else if let index = Self.indexNames(candidate.baseName, variant: variant).first(where: present.contains) {
                standard.append((try Self.openIndex(folder, index), candidate))
            }
        }
        guard standard.count <= 1 else {
            throw SafetensorsError.cannotOpen(
                path: folder, reason: "it holds both \(standard.map { Self.entryName($0.0) }.joined(separator: " and ")) "
                    + "(diffusers' and transformers' names); remove the one its library does not read")
        }
        if let (chosen, chosenLibrary) = standard.first {
            layout = chosen
            self.library = chosenLibrary
        } else if library == nil, variant == nil,
                  let chosen = try Self.anyName(folder, names: names.filter { Self.isWeightsFile($0) && Self.variantOf($0) == nil }) {
            layout = chosen
            self.library = nil
        } else {
            throw SafetensorsError.cannotOpen(path: folder, reason: Self.notFound(names, library: library, variant: variant))
        }
        let read = Set(Self.readNames(layout))
        ignored = names.filter { Self.isWeightsFile($0) && !read.contains($0) }
        // The index of the single file's name, which diffusers 0.29 and later would read instead.
        if case let .file(single) = layout,
           let index = (self.library.map { Self.indexNames($0.baseName, variant: variant) } ?? [single + ".index.json"])
               .first(where: present.contains) {
            let shards = (try? ShardIndex(path: FileSystem.join(folder, index)))?.shardFiles ?? []
            shadowed = [index] + shards.filter { present.contains($0) && $0 != single }
        } else {
            shadowed = []
        }
    }

    /// The file or index a loader opens; the folder for index-less shards.
    public var path: String {
        switch layout {
        case let .file(name), let .index(name, _): return FileSystem.join(folder, name)
        case .shards: return folder
        }
    }

    /// The name loaders open: the file or the index (the shard names for index-less shards).
    public var entry: String { Self.entryName(layout) }

    /// Every file read: the single file, or the index and its shards.
    public var readFiles: [String] { Self.readNames(layout) }

    /// The files whose tensors are read: the single file, or the shards.
    public var files: [String] {
        switch layout {
        case let .file(name): return [name]
        case let .index(_, index): return index.shardFiles
        case let .shards(names): return names
        }
    }

    /// Opens what was chosen as one state dict (every shard checked against the index).
    public func open() throws -> any StateDict {
        switch layout {
        case let .file(name): return try SafetensorsFile(path: FileSystem.join(folder, name))
        case .index: return try ShardedCheckpoint(indexPath: path)
        case let .shards(names): return try ShardedCheckpoint(files: names.map { FileSystem.join(folder, $0) }, path: folder)
        }
    }

    /// One sentence on what the folder holds besides what is read, naming what is read; nil when nothing.
    public var note: String? {
        let read = entry
        if !shadowed.isEmpty {
            let shards = shadowed.count - 1
            return "holds both \(read) and \(shadowed[0])\(shards > 0 ? " (with \(shards) shard\(shards == 1 ? "" : "s"))" : ""): "
                + "loaders read \(read) (transformers, and diffusers before 0.29, take the single file before the index; "
                + "diffusers 0.29 and later take the index); keep only one of them"
        }
        let variants = ignored.filter { Self.variantOf($0) != nil && Self.variantOf($0) != variant }
        let others = ignored.filter { !variants.contains($0) }
        var parts: [String] = []
        if !others.isEmpty {
            parts.append("also holds \(others.joined(separator: ", ")), which loaders do not read (they read \(read))")
        }
        if !variants.isEmpty { parts.append("holds \(variants.joined(separator: ", ")), read only when that variant is asked for") }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    // MARK: names

    /// `_add_variant("<base>.safetensors", variant)`.
    static func fileName(_ base: String, variant: String?) -> String {
        variant.map { "\(base).\($0).safetensors" } ?? "\(base).safetensors"
    }

    /// The index names of a base, in the order diffusers tries them: `_add_variant(SAFE_WEIGHTS_INDEX_NAME,
    /// variant)`, then (with a variant) the legacy `<base>.<variant>.safetensors.index.json`.
    static func indexNames(_ base: String, variant: String?) -> [String] {
        guard let variant else { return ["\(base).safetensors.index.json"] }
        return ["\(base).safetensors.index.\(variant).json", "\(base).\(variant).safetensors.index.json"]
    }

    /// The names looked for, for messages.
    public static func standardNames(library: Library?, variant: String?) -> [String] {
        (library.map { [$0] } ?? Library.allCases).flatMap {
            [fileName($0.baseName, variant: variant)] + indexNames($0.baseName, variant: variant)
        }
    }

    /// A `.safetensors` file or an index (`*.safetensors.index.json`, or a variant's).
    public static func isWeightsFile(_ name: String) -> Bool {
        name.hasSuffix(".safetensors") || (name.hasSuffix(".json") && name.contains(".safetensors.index."))
    }

    /// The variant a standard-named weight file carries (`diffusion_pytorch_model.fp16.safetensors` → `fp16`).
    static func variantOf(_ name: String) -> String? {
        for library in Library.allCases {
            let base = library.baseName
            for (prefix, suffix) in [(base + ".", ".safetensors"), (base + ".safetensors.index.", ".json"),
                                     (base + ".", ".safetensors.index.json")] {
                guard name.hasPrefix(prefix), name.hasSuffix(suffix),
                      name.utf8.count > prefix.utf8.count + suffix.utf8.count else { continue }
                let middle = String(name.dropFirst(prefix.count).dropLast(suffix.count))
                if !middle.contains(".") { return middle }
            }
        }
        return nil
    }

    static func entryName(_ layout: Layout) -> String {
        switch layout {
        case let .file(name), let .index(name, _): return name
        case let .shards(names): return names.joined(separator: ", ")
        }
    }

    static func readNames(_ layout: Layout) -> [String] {
        switch layout {
        case let .file(name): return [name]
        case let .index(name, index): return [name] + index.shardFiles
        case let .shards(names): return names
        }
    }

    /// Reads an index and checks that every shard it names is in the folder.
    static func openIndex(_ folder: String, _ name: String) throws -> Layout {
        let path = FileSystem.join(folder, name)
        let index = try ShardIndex(path: path)
        guard !index.weightMap.isEmpty else { throw SafetensorsError.invalidIndex(path: path, reason: "'weight_map' is empty") }
        for shard in index.shardFiles where FileSystem.kind(FileSystem.join(folder, shard)) != .file {
            throw SafetensorsError.missingShard(path: path, shard: shard)
        }
        return .index(name, index)
    }

    /// A folder without standard names: its one index (the single file of the same name first), its one file, or
    /// one complete set of index-less shards; nil when it holds no weights.
    static func anyName(_ folder: String, names: [String]) throws -> Layout? {
        let indexes = names.filter { $0.hasSuffix(".safetensors.index.json") }
        let files = names.filter { $0.hasSuffix(".safetensors") }
        guard indexes.count <= 1 else {
            throw SafetensorsError.cannotOpen(
                path: folder, reason: "it holds several index files (\(indexes.joined(separator: ", "))); open one of them")
        }
        if let index = indexes.first {
            let single = String(index.dropLast(".index.json".count))
            return files.contains(single) ? .file(single) : try openIndex(folder, index)
        }
        if files.count <= 1 { return files.first.map { .file($0) } }
        let parsed = files.map { ShardPlan.parseShardName($0) }
        if let first = parsed[0], parsed.allSatisfy({ $0?.base == first.base && $0?.count == first.count }) {
            let expected = ShardPlan.shardNames(baseName: first.base, count: first.count)
            if let missing = expected.first(where: { !files.contains($0) }) {
                throw SafetensorsError.missingShard(path: folder, shard: missing)
            }
            if files.count == expected.count { return .shards(files) }
        }
        throw SafetensorsError.cannotOpen(
            path: folder, reason: "it holds \(files.count) .safetensors files and no index; open one of them or the index")
    }

    /// Why nothing was found: the names looked for, and the variants or pickles that are there instead.
    static func notFound(_ names: [String], library: Library?, variant: String?) -> String {
        var reason = "no weights to load: looked for " + standardNames(library: library, variant: variant).joined(separator: ", ")
        if library == nil && variant == nil { reason += " (or one .safetensors file or index of any name)" }
        let variants = names.filter { isWeightsFile($0) && variantOf($0) != nil && variantOf($0) != variant }
        if !variants.isEmpty {
            reason += "; it holds \(variants.joined(separator: ", ")), a variant read only when asked for"
        }
        if let pickle = names.first(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".ckpt") }) {
            reason += "; \(pickle) is a PyTorch pickle, which ea-weights does not read (loading one can run code): "
                + "convert it to .safetensors"
        }
        return reason
    }
}
