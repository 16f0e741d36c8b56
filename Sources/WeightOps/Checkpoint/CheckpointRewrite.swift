import Foundation
import Safetensors

/// What an operation writes in place of one input tensor: nothing (dropped), itself converted, or several
/// tensors (a quantized weight and its scale).
public typealias TensorRewrite = (TensorView) throws -> [OutputTensor]

/// Progress of a long write: (what, bytes done, bytes total).
public typealias ProgressHandler = (String, Int, Int) -> Void

/// Writes rewritten checkpoints in the layout they were read in: a single file as a file, a folder as a folder
/// (same file names, other files such as config.json carried over), a sharded checkpoint with the same shards
/// and a new index, a diffusers folder as a complete new folder with unchanged components hard-linked.
/// Folders are built in a hidden sibling and renamed into place at the end, so a failure leaves nothing.
public enum CheckpointRewrite {
    /// The tensors written per output file, for metadata (e.g. which quantized layers a shard holds).
    public typealias Metadata = (_ fileName: String, _ tensors: [OutputTensor]) throws -> [String: String]
    /// Replaces placeholders in a file's metadata once its data is written, with values of the same length
    /// (see `SafetensorsWriter.finalMetadata`).
    public typealias MetadataCompletion = (_ metadata: [String: String]) throws -> [String: String]

    /// Whether `destination` names one file: it ends in `.safetensors`.
    public static func namesFile(_ destination: String) -> Bool { destination.hasSuffix(".safetensors") }

    /// `weights` rewritten to `destination`. A destination ending in `.safetensors` is one file whatever the input
    /// (a component folder's weights alone, shards joined); a single file named as a file stays a file; otherwise
    /// the input's layout is kept in a folder (which must not exist yet). Returns notes on what the output leaves
    /// out.
    @discardableResult
    public static func write(_ weights: WeightFiles, files: [(name: String, file: SafetensorsFile)], to destination: String,
                             rewrite: TensorRewrite, metadata: Metadata, completeMetadata: MetadataCompletion? = nil,
                             check: CheckpointStreamer.Check? = nil, progress: ProgressHandler? = nil) throws -> [String] {
        let singleInput: Bool
        if case .single = weights.files { singleInput = !weights.isFolder } else { singleInput = false }
        if singleInput || namesFile(destination), let first = files.first {
            var tensors: [OutputTensor] = []
            for (_, file) in files { tensors += try outputs(of: file, rewrite: rewrite) }
            let fileMetadata = try metadata(first.name, tensors)
            try CheckpointStreamer.write(to: destination, tensors: tensors, metadata: fileMetadata,
                                         finalMetadata: completeMetadata.map { complete in { try complete(fileMetadata) } },
                                         check: check, progress: progress.map { p in { p(first.name, $0, $1) } })
            var notes: [String] = []
            if files.count > 1 { notes.append("joined the \(files.count) shards into one file, \(destination)") }
            if weights.isFolder, !weights.otherEntries.isEmpty {
                notes.append("\(destination) holds the weights alone; the folder's other files (\(weights.otherEntries.joined(separator: ", "))) "
                             + "stay in \(weights.directory); give --out a folder name for a complete folder")
            }
            return notes
        }
        try inStagingFolder(destination) { stage in
            try writeFolder(weights, files: files, into: stage, rewrite: rewrite, metadata: metadata,
                            completeMetadata: completeMetadata, check: check, progress: progress)
        }
        return []
    }

    /// Refuses a file name for a diffusers folder's output, which one file cannot hold.
    public static func requireFolderName(_ destination: String, forDiffusers root: String) throws {
        if namesFile(destination) {
            throw WeightOpsError.invalidInput(
                path: destination,
                reason: "names a file, but \(root) is a diffusers folder whose result is a folder of components; give --out a folder name")
        }
    }

    /// A diffusers folder rewritten to `destination`: `rewrites[component]` for the components to change;
    /// everything else is hard-linked (copied across file systems).
    public static func writeDiffusers(root: String, components: [(name: String, weights: WeightFiles)], entries: [String],
                                      to destination: String,
                                      rewrites: [String: (files: [(name: String, file: SafetensorsFile)], rewrite: TensorRewrite)],
                                      metadata: Metadata, completeMetadata: MetadataCompletion? = nil,
                                      check: CheckpointStreamer.Check? = nil, progress: ProgressHandler? = nil) throws {
        try inStagingFolder(destination) { stage in
            for entry in entries {
                let target = (stage as NSString).appendingPathComponent(entry)
                if let component = components.first(where: { $0.name == entry }), let r = rewrites[entry] {
                    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
                    try writeFolder(component.weights, files: r.files, into: target, rewrite: r.rewrite, metadata: metadata,
                                    completeMetadata: completeMetadata, check: check, progress: progress.map { p in { p("\(entry)/\($0)", $1, $2) } })
                } else {
                    try linkOrCopy((root as NSString).appendingPathComponent(entry), to: target)
                }
            }
        }
    }

    static func outputs(of file: SafetensorsFile, rewrite: TensorRewrite) throws -> [OutputTensor] {
        var out: [OutputTensor] = []
        for info in file.tensorsInFileOrder {
            out += try rewrite(try file.tensor(info.name))
        }
        return out
    }

    /// Writes every weight file of `weights` (and its index, and its other files when it is a folder) into `folder`.
    static func writeFolder(_ weights: WeightFiles, files: [(name: String, file: SafetensorsFile)], into folder: String,
                            rewrite: TensorRewrite, metadata: Metadata, completeMetadata: MetadataCompletion?,
                            check: CheckpointStreamer.Check?, progress: ProgressHandler?) throws {
        var weightMap: [String: String] = [:]
        var totalSize = 0
        var quantized = QuantizationMetadata()
        for (name, file) in files {
            let tensors = try outputs(of: file, rewrite: rewrite)
            let fileMetadata = try metadata(name, tensors)
            try CheckpointStreamer.write(to: (folder as NSString).appendingPathComponent(name), tensors: tensors,
                                         metadata: fileMetadata,
                                         finalMetadata: completeMetadata.map { complete in { try complete(fileMetadata) } },
                                         check: check,
                                         progress: progress.map { p in { p(name, $0, $1) } })
            for t in tensors { weightMap[t.name] = name }
            totalSize += tensors.reduce(0) { $0 + $1.byteCount }
            if let layers = try QuantizationMetadata(metadata: fileMetadata, path: name)?.layers {
                quantized.layers.merge(layers) { a, _ in a }
            }
        }
        if case let .sharded(index, contents) = weights.files {
            // The input index's metadata, with the new size; a quantized checkpoint also lists all its quantized
            // layers there, so a reader of the index alone knows what each shard holds.
            var metadata = contents.metadata.filter { $0.0 != "total_size" && $0.0 != QuantizationMetadata.metadataKey }
            metadata.insert(("total_size", .integer(Int64(totalSize))), at: 0)
            if !quantized.layers.isEmpty { metadata.append((QuantizationMetadata.metadataKey, .string(quantized.jsonText))) }
            let bytes = Safetensors.ShardIndex(metadata: metadata, weightMap: weightMap).encoded()
            try writeSmallFile(bytes, to: (folder as NSString).appendingPathComponent(index))
        }
        if weights.isFolder {
            for entry in weights.otherEntries {
                try linkOrCopy(weights.path(entry), to: (folder as NSString).appendingPathComponent(entry))
            }
        }
    }

    /// Runs `body` with a fresh hidden folder next to `destination`, then renames it to `destination`.
    static func inStagingFolder(_ destination: String, _ body: (String) throws -> Void) throws {
        if FileManager.default.fileExists(atPath: destination) {
            throw WeightOpsError.invalidInput(path: destination, reason: "already exists; choose another --out or remove it first")
        }
        let parent = (destination as NSString).deletingLastPathComponent
        let stage = try AtomicOutput.Folder(in: parent.isEmpty ? "." : parent, for: (destination as NSString).lastPathComponent)
        try body(stage.path)
        let folders = (FileManager.default.subpaths(atPath: stage.path) ?? []).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: (stage.path as NSString).appendingPathComponent($0), isDirectory: &isDirectory)
                && isDirectory.boolValue
        }
        try stage.commit(to: destination, flushing: folders)
    }

    /// Hard-links a file (or every file of a folder, recursively); copies when linking is not possible.
    static func linkOrCopy(_ source: String, to target: String) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: source, isDirectory: &isDirectory) else {
            throw WeightOpsError.invalidInput(path: source, reason: "disappeared while being copied")
        }
        if isDirectory.boolValue {
            try fm.createDirectory(atPath: target, withIntermediateDirectories: false)
            for entry in try fm.contentsOfDirectory(atPath: source) {
                try linkOrCopy((source as NSString).appendingPathComponent(entry), to: (target as NSString).appendingPathComponent(entry))
            }
            return
        }
        if link(source, target) == 0 { return }
        do {
            try fm.copyItem(atPath: source, toPath: target)
        } catch {
            throw WeightOpsError.invalidInput(path: target, reason: "cannot copy \(source) here: \(error.localizedDescription)")
        }
    }

    static func writeSmallFile(_ bytes: [UInt8], to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw WeightOpsError.invalidInput(path: path, reason: "cannot be written")
        }
    }
}
