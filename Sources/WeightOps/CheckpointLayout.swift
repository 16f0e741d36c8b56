import Foundation
import Safetensors

/// The weights of one model on disk: a .safetensors file, a folder holding one (a diffusers component folder
/// with its config.json), or a sharded checkpoint (an index and its shards, as transformers saves a T5).
/// Operations read it as one state dict and write their result in the same layout.
public struct WeightFiles: Sendable {
    public enum Files: Sendable {
        case single(String)
        /// Index file name, shard file names in index order, key → shard, the index's own metadata.
        case sharded(index: String, shards: [String], weightMap: [String: String], indexMetadata: [String: JSONValue])
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
        case let .sharded(_, shards, _, _): return shards
        }
    }

    public func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Opens every weight file; the state dict is all of them as one.
    public func open() throws -> (dict: any StateDict, files: [(name: String, file: SafetensorsFile)]) {
        let opened = try weightFileNames.map { (name: $0, file: try SafetensorsFile(path: path($0))) }
        if case let .sharded(index, _, weightMap, _) = files {
            for (key, shard) in weightMap {
                guard let file = opened.first(where: { $0.name == shard })?.file, file.info(key) != nil else {
                    throw WeightOpsError.invalidInput(
                        path: path(index), reason: "maps '\(key)' to \(shard), which does not hold it (incomplete download?)")
                }
            }
        }
        if opened.count == 1, let only = opened.first { return (only.file, opened) }
        return (try StateDictUnion(opened.map(\.file)), opened)
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
        let indexPath = (directory as NSString).appendingPathComponent(index)
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw WeightOpsError.invalidInput(path: indexPath, reason: "cannot be read")
        }
        let json: JSONValue
        do { json = try JSONParser.parse([UInt8](data)) } catch {
            throw WeightOpsError.invalidInput(path: indexPath, reason: "is not valid JSON: \(error)")
        }
        guard let fields = json.objectValue,
              let map = fields.first(where: { $0.0 == "weight_map" })?.1.objectValue else {
            throw WeightOpsError.invalidInput(path: indexPath, reason: "has no \"weight_map\" object")
        }
        var weightMap: [String: String] = [:]
        var shards: [String] = []
        for (key, value) in map {
            guard let shard = value.stringValue, !shard.contains("/"), !shard.hasPrefix(".") else {
                throw WeightOpsError.invalidInput(path: indexPath, reason: "maps '\(key)' to \(value.compactText), not a shard file name in the folder")
            }
            weightMap[key] = shard
            if !shards.contains(shard) { shards.append(shard) }
        }
        var indexMetadata: [String: JSONValue] = [:]
        for (k, v) in fields.first(where: { $0.0 == "metadata" })?.1.objectValue ?? [] { indexMetadata[k] = v }
        return WeightFiles(directory: directory, files: .sharded(index: index, shards: shards.sorted(), weightMap: weightMap,
                                                                 indexMetadata: indexMetadata),
                           isFolder: isFolder, otherEntries: others)
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
