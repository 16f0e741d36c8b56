import Foundation
import Safetensors

/// EasyAnimate's `models/` tree (from its README):
///
///     models/
///       Diffusion_Transformer/PixArt-XL-2-512x512/   the diffusers folder from PixArt-XL-2-512x512.tar
///       Motion_Module/easyanimate_v1_mm.safetensors
///       Personalized_Model/easyanimate_portrait.safetensors, easyanimate_portrait_lora.safetensors, ...
///       manifest.json                                 written by `ea-weights prepare`
public enum ModelsLayout {
    public static let diffusionTransformer = "Diffusion_Transformer"
    public static let motionModule = "Motion_Module"
    public static let personalizedModel = "Personalized_Model"
    public static let manifest = "manifest.json"
    public static let folders = [diffusionTransformer, motionModule, personalizedModel]
}

/// A diffusers PixArtAlphaPipeline folder: model_index.json plus the transformer, vae, text_encoder, tokenizer and
/// scheduler components, each with its config and (for networks) safetensors weights.
public enum PixArtFolder {
    /// Each component and the config file it must hold.
    public static let components: [(name: String, config: String)] = [
        ("transformer", "config.json"), ("vae", "config.json"), ("text_encoder", "config.json"),
        ("tokenizer", "tokenizer_config.json"), ("scheduler", "scheduler_config.json"),
    ]
    /// The networks, the file names diffusers/transformers load, and the kind their weights must have.
    public static let networks: [(name: String, weights: String, kind: ModelKind)] = [
        ("transformer", "diffusion_pytorch_model", .pixartTransformer2D),
        ("vae", "diffusion_pytorch_model", .vae),
        ("text_encoder", "model", .t5Encoder),
    ]

    /// What is missing or wrong, one phrase each (empty when the folder is complete).
    public static func problems(at folder: String) -> [String] {
        var problems: [String] = []
        let fm = FileManager.default
        func isFile(_ relative: String) -> Bool {
            var isDirectory: ObjCBool = false
            return fm.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        func isFolder(_ relative: String) -> Bool {
            var isDirectory: ObjCBool = false
            return fm.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory) && isDirectory.boolValue
        }

        if !isFile("model_index.json") {
            problems.append("model_index.json is missing")
        } else if let data = fm.contents(atPath: folder + "/model_index.json") {
            if (try? JSONParser.parse(data))?.objectValue == nil { problems.append("model_index.json is not a JSON object") }
        }
        for (name, config) in components {
            guard isFolder(name) else {
                problems.append("\(name)/ is missing")
                continue
            }
            if !isFile("\(name)/\(config)") { problems.append("\(name)/\(config) is missing") }
        }
        if isFolder("tokenizer"), !isFile("tokenizer/spiece.model"), !isFile("tokenizer/tokenizer.json") {
            problems.append("tokenizer/ has neither spiece.model nor tokenizer.json")
        }
        for network in networks where isFolder(network.name) {
            switch weights(of: network.name, in: folder, baseName: network.weights) {
            case .none:
                problems.append("\(network.name)/ has no \(network.weights).safetensors (or its index)")
            case let .some(path):
                // Unreadable weights are reported by the validation of every weight file, not here.
                if let dict = try? ModelFolderCheck.openWeights(path), ModelKind.detect(dict) != network.kind {
                    problems.append("\(network.name)/ holds \(ModelKind.detect(dict)) weights, not \(network.kind)")
                }
            }
        }
        return problems
    }

    /// The weights a component loads: `<base>.safetensors.index.json` when sharded, else `<base>.safetensors`.
    public static func weights(of component: String, in folder: String, baseName: String) -> String? {
        let fm = FileManager.default
        let index = "\(folder)/\(component)/\(baseName).safetensors.index.json"
        if fm.fileExists(atPath: index) { return index }
        let single = "\(folder)/\(component)/\(baseName).safetensors"
        if fm.fileExists(atPath: single) { return single }
        return nil
    }
}

/// Validation of the weight files inside an extracted or copied model folder.
enum ModelFolderCheck {
    /// Validates every `.safetensors` file and every index in `files` (relative to `staging`) and, when asked, the
    /// PixArt layout. Errors name the files where they will finally live (`finalPath`), not the staging folder.
    static func validateExtracted(
        staging: String, finalPath: String, files: [String], archive: String, requirePixArt: Bool
    ) throws {
        let folderName = (finalPath as NSString).lastPathComponent
        for file in files where isWeightsFile(file) {
            do {
                _ = try openWeights(staging + "/" + file)
            } catch {
                let reason = "\(error)".replacingOccurrences(of: staging + "/" + file + ": ", with: "")
                    .replacingOccurrences(of: staging, with: finalPath)
                throw ArchiveError.invalidModelFile(path: archive, entry: folderName + "/" + file, reason: reason)
            }
        }
        if requirePixArt {
            let problems = PixArtFolder.problems(at: staging)
            if !problems.isEmpty { throw ArchiveError.notPixArtFolder(path: archive, problems: problems) }
        }
    }

    static func isWeightsFile(_ path: String) -> Bool {
        path.hasSuffix(".safetensors") || path.hasSuffix(".safetensors.index.json")
    }

    /// Opens a `.safetensors` file or a `.safetensors.index.json` (validating it and every shard it names).
    static func openWeights(_ path: String) throws -> any StateDict {
        if path.hasSuffix(".index.json") { return try ShardedCheckpoint(indexPath: path) }
        return try SafetensorsFile(path: path)
    }
}

/// The `kind` the manifest records for each file: the model kind for weights (for a sharded checkpoint, the
/// kind of the whole checkpoint on every shard), else `safetensors-index`, `tokenizer`, `config` or `other`.
public enum FileKinds {
    public static let index = "safetensors-index"
    public static let tokenizer = "tokenizer"
    public static let config = "config"
    public static let other = "other"

    /// Kinds of `files` (relative to `folder`). Reads only headers.
    public static func ofFolder(_ folder: String, files: [String]) -> [String: String] {
        var kinds: [String: String] = [:]
        for file in files where file.hasSuffix(".safetensors.index.json") {
            kinds[file] = index
            let directory = (file as NSString).deletingLastPathComponent
            guard let dict = try? ShardedCheckpoint(indexPath: folder + "/" + file) else { continue }
            let kind = ModelKind.detect(dict).rawValue
            for shard in dict.index?.shardFiles ?? [] {
                kinds[directory.isEmpty ? shard : directory + "/" + shard] = kind
            }
        }
        for file in files where kinds[file] == nil {
            kinds[file] = ofFile(folder + "/" + file, relative: file)
        }
        return kinds
    }

    /// The kind of one file; `relative` (its path in its model folder) tells tokenizer files apart.
    public static func ofFile(_ path: String, relative: String? = nil) -> String {
        let name = relative ?? (path as NSString).lastPathComponent
        if name.hasSuffix(".safetensors") {
            return (try? SafetensorsFile(path: path)).map { ModelKind.detect($0).rawValue } ?? ModelKind.unknown.rawValue
        }
        if name.hasSuffix(".safetensors.index.json") { return index }
        if name.hasPrefix("tokenizer/") || name.contains("/tokenizer/") { return tokenizer }
        if name.hasSuffix(".json") || name.hasSuffix(".yaml") || name.hasSuffix(".txt") { return config }
        return other
    }
}
