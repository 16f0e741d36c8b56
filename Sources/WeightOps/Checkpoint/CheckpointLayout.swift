import Foundation
import Safetensors

/// The weights of one model on disk: a .safetensors file, a folder holding one (a diffusers component folder
/// with its config.json), or a sharded checkpoint (an index and its shards, as transformers saves a T5).
/// Operations read it as one state dict and write their result in the same layout.
public struct WeightFiles: Sendable {
    public enum Files: Sendable {
        case single(String)
        /// Index file name and its contents.
        case sharded(index: String, contents: Safetensors.ShardIndex)
    }

    /// The folder holding the files.
    public let directory: String
    public let files: Files
    /// True when the user named a folder (its other files, such as config.json, are carried over).
    public let isFolder: Bool
    /// Names of the folder's other entries (only when `isFolder`).
    public let otherEntries: [String]

    /// The weight file names.
    public var weightFileNames: [String] {
        switch files {
        case let .single(name): return [name]
        case let .sharded(_, contents): return contents.shardFiles
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
        }
    }

    /// Recognises `path`: a .safetensors file, a *.safetensors.index.json, or a folder holding either.
    public static func locate(_ path: String) throws -> WeightFiles {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw WeightOpsError.invalidInput(path: path, reason: "does not exist")
        }
        if !isDirectory.boolValue {
            let directory = (path as NSString).deletingLastPathComponent
            let name = (path as NSString).lastPathComponent
            if name.hasSuffix(".index.json") {
                return try sharded(directory: directory.isEmpty ? "." : directory, index: name, isFolder: false, others: [])
            }
            return WeightFiles(directory: directory.isEmpty ? "." : directory, files: .single(name), isFolder: false, otherEntries: [])
        }
        let entries = try fm.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        if entries.contains("model_index.json") {
            throw WeightOpsError.invalidInput(
                path: path, reason: "is a diffusers pipeline folder; name one of its components (e.g. \(path)/transformer)")
        }
        let indexes = entries.filter { $0.hasSuffix(".safetensors.index.json") }
        if indexes.count > 1 {
            throw WeightOpsError.invalidInput(path: path, reason: "holds several indexes (\(indexes.joined(separator: ", "))); name one")
        }
        if let index = indexes.first {
            let shardSet = Set(try sharded(directory: path, index: index, isFolder: true, others: []).weightFileNames)
            let others = entries.filter { $0 != index && !shardSet.contains($0) }
            return try sharded(directory: path, index: index, isFolder: true, others: others)
        }
        let weights = entries.filter { $0.hasSuffix(".safetensors") }
        guard weights.count == 1, let only = weights.first else {
            throw WeightOpsError.invalidInput(
                path: path, reason: weights.isEmpty ? "holds no .safetensors file"
                    : "holds \(weights.count) .safetensors files and no *.safetensors.index.json; name the file to use")
        }
        return WeightFiles(directory: path, files: .single(only), isFolder: true, otherEntries: entries.filter { $0 != only })
    }

    static func sharded(directory: String, index: String, isFolder: Bool, others: [String]) throws -> WeightFiles {
        let contents = try Safetensors.ShardIndex(path: (directory as NSString).appendingPathComponent(index))
        return WeightFiles(directory: directory, files: .sharded(index: index, contents: contents), isFolder: isFolder,
                           otherEntries: others)
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
        guard let data = FileManager.default.contents(atPath: index),
              let fields = (try? JSONParser.parse([UInt8](data)))?.objectValue else {
            throw WeightOpsError.invalidInput(path: index, reason: "is not a JSON object")
        }
        var components: [(String, WeightFiles)] = []
        for (name, value) in fields where !name.hasPrefix("_") {
            // Components are ["library", "Class"]; null entries are absent components.
            guard value.arrayValue?.count == 2, value.arrayValue?.first?.stringValue != nil else { continue }
            let folder = (path as NSString).appendingPathComponent(name)
            let hasWeights = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
                .contains { $0.hasSuffix(".safetensors") || $0.hasSuffix(".safetensors.index.json") }
            if hasWeights { components.append((name, try WeightFiles.locate(folder))) }
        }
        let entries = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        return .diffusers(root: path, components: components.sorted { $0.0 < $1.0 }, entries: entries)
    }
}
