import Foundation
import Safetensors

/// The weights of one model on disk: a .safetensors file, a *.safetensors.index.json, or a model folder, whose
/// weights `ComponentWeights` chooses (a diffusers component folder with its config.json, a sharded T5).
/// Operations read it as one state dict and write their result in the same layout.
public struct WeightFiles: Sendable {
    public enum Files: Sendable {
        case single(String)
        /// Index file name and its contents.
        case sharded(index: String, contents: Safetensors.ShardIndex)
        /// Index-less shard files.
        case shards([String])
    }

    /// The folder holding the files.
    public let directory: String
    public let files: Files
    /// The folder's resolution when the user named a folder (its other files, such as config.json, are carried
    /// over; its weight files that loaders do not read, `folder.ignored`, are not).
    public let folder: ComponentWeights?
    /// Names of the folder's other entries (only for a folder), without the weight files loaders do not read.
    public let otherEntries: [String]

    /// True when the user named a folder.
    public var isFolder: Bool { folder != nil }

    /// The weight file names.
    public var weightFileNames: [String] {
        switch files {
        case let .single(name): return [name]
        case let .sharded(_, contents): return contents.shardFiles
        case let .shards(names): return names
        }
    }

    public func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Opens every weight file (a sharded checkpoint is checked against its index); the state dict is all of them.
    public func open() throws -> (dict: any StateDict, files: [(name: String, file: SafetensorsFile)]) {
        switch files {
        case let .single(name):
            let file = try SafetensorsFile(path: path(name))
            return (file, [(name, file)])
        case let .sharded(index, contents):
            let checkpoint = try ShardedCheckpoint(indexPath: path(index))
            return (checkpoint, Array(zip(contents.shardFiles, checkpoint.shards)))
        case let .shards(names):
            let checkpoint = try ShardedCheckpoint(files: names.map(path), path: directory)
            return (checkpoint, Array(zip(names, checkpoint.shards)))
        }
    }

    /// Recognises `path`: a .safetensors file, a *.safetensors.index.json, or a model folder (read as
    /// `ComponentWeights` resolves it; `library` as there).
    public static func locate(_ path: String, library: ComponentWeights.Library? = nil) throws -> WeightFiles {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw WeightOpsError.invalidInput(path: path, reason: "does not exist")
        }
        if !isDirectory.boolValue {
            let directory = (path as NSString).deletingLastPathComponent
            let name = (path as NSString).lastPathComponent
            let files: Files = name.hasSuffix(".index.json")
                ? .sharded(index: name, contents: try Safetensors.ShardIndex(path: path)) : .single(name)
            return WeightFiles(directory: directory.isEmpty ? "." : directory, files: files, folder: nil, otherEntries: [])
        }
        if fm.fileExists(atPath: (path as NSString).appendingPathComponent("model_index.json")) {
            throw WeightOpsError.invalidInput(
                path: path, reason: "is a diffusers pipeline folder; name one of its components (e.g. \(path)/transformer)")
        }
        let weights = try ComponentWeights(folder: path, library: library)
        let files: Files
        switch weights.layout {
        case let .file(name): files = .single(name)
        case let .index(name, contents): files = .sharded(index: name, contents: contents)
        case let .shards(names): files = .shards(names)
        }
        let weightFiles = Set(weights.readFiles + weights.ignored)
        let others = try fm.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") && !weightFiles.contains($0) }.sorted()
        return WeightFiles(directory: path, files: files, folder: weights, otherEntries: others)
    }

    /// What is left out of an output written from this folder, and why (nil when nothing).
    public var leftOutNote: String? {
        guard let folder, !folder.ignored.isEmpty else { return nil }
        let left = folder.shadowed + folder.ignored.filter { !folder.shadowed.contains($0) }
        return "left out \(left.joined(separator: ", ")) of \(directory): loaders read \(folder.entry)"
    }
}

/// A checkpoint argument: one model's weights, or a whole diffusers pipeline folder (model_index.json).
public enum CheckpointLayout: Sendable {
    case weights(WeightFiles)
    /// Root, the components holding weights (name, files), and every top-level entry of the folder.
    case diffusers(root: String, components: [(name: String, weights: WeightFiles)], entries: [String])

    public static func locate(_ path: String) throws -> CheckpointLayout {
        let index = (path as NSString).appendingPathComponent("model_index.json")
        guard FileManager.default.fileExists(atPath: index) else { return .weights(try WeightFiles.locate(path)) }
        guard let data = SmallFile.contents(atPath: index),
              let fields = (try? JSONParser.parse([UInt8](data)))?.objectValue else {
            throw WeightOpsError.invalidInput(path: index, reason: "is not a JSON object")
        }
        var components: [(String, WeightFiles)] = []
        for (name, value) in fields where !name.hasPrefix("_") {
            // Components are ["library", "Class"]; null entries are absent components.
            guard value.arrayValue?.count == 2, let library = value.arrayValue?.first?.stringValue else { continue }
            let folder = (path as NSString).appendingPathComponent(name)
            let hasWeights = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
                .contains(where: ComponentWeights.isWeightsFile)
            if hasWeights {
                components.append((name, try WeightFiles.locate(folder, library: ComponentWeights.Library(rawValue: library))))
            }
        }
        let entries = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        return .diffusers(root: path, components: components.sorted { $0.0 < $1.0 }, entries: entries)
    }
}
