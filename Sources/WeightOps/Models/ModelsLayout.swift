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
/// scheduler components, each with its config, the tokenizer with its SentencePiece model (T5Tokenizer reads
/// `spiece.model`), and the networks with safetensors weights under their library's standard name.
public enum PixArtFolder {
    /// Each component and the config file it must hold.
    public static let components: [(name: String, config: String)] = [
        ("transformer", "config.json"), ("vae", "config.json"), ("text_encoder", "config.json"),
        ("tokenizer", "tokenizer_config.json"), ("scheduler", "scheduler_config.json"),
    ]
    /// The networks, the library whose loader reads them, and the kinds their weights may have (EasyAnimate loads
    /// `transformer/` into its Transformer3DModel, so a 3D state dict there is fine too).
    public static let networks: [(name: String, library: ComponentWeights.Library, kinds: [ModelKind])] = [
        ("transformer", .diffusers, [.pixartTransformer2D, .easyAnimateTransformer3D]),
        ("vae", .diffusers, [.vae]),
        ("text_encoder", .transformers, [.t5Encoder]),
    ]

    /// What `check` found.
    public struct Check: Sendable {
        /// What makes the folder unusable, one phrase each (empty when it is complete).
        public var problems: [String] = []
        /// The config files of the component folders that are missing (`vae/config.json` when `vae/` is), which
        /// `problems` reports as the folder.
        public var filesInMissingFolders: [String] = []
        /// The weights each network loads, for the networks whose weights were found.
        public var weights: [String: ComponentWeights] = [:]
        /// Networks whose folder holds weights loaders disagree on (a single file and an index of the same name),
        /// with what it holds and which file loaders read (`ComponentWeights.note`).
        public var ambiguities: [(component: String, note: String)] = []
    }

    /// The one layout check of a PixArt folder (extract, prepare, verify and generate use it). Reads only
    /// headers; unreadable weights are reported by the validation of every weight file, not here.
    public static func check(_ folder: String) -> Check {
        var check = Check()
        let fm = FileManager.default
        func isFile(_ relative: String) -> Bool {
            var isDirectory: ObjCBool = false
            return fm.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        func isFolder(_ relative: String) -> Bool {
            var isDirectory: ObjCBool = false
            return fm.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        func requireFile(_ relative: String) {
            if !isFile(relative) { check.problems.append("\(relative) is missing") }
        }

        requireFile("model_index.json")
        if isFile("model_index.json"), let data = SmallFile.contents(atPath: folder + "/model_index.json"),
           (try? JSONParser.parse(data))?.objectValue == nil {
            check.problems.append("model_index.json is not a JSON object")
        }
        for (name, config) in components {
            guard isFolder(name) else {
                check.problems.append("\(name)/ is missing")
                check.filesInMissingFolders.append("\(name)/\(config)")
                continue
            }
            requireFile("\(name)/\(config)")
        }
        if isFolder("tokenizer") { requireFile("tokenizer/spiece.model") }
        for network in networks where isFolder(network.name) {
            let weights: ComponentWeights
            do {
                weights = try ComponentWeights(folder: folder + "/" + network.name, library: network.library)
            } catch SafetensorsError.cannotOpen {
                check.problems.append("\(network.name)/ has no \(network.library.baseName).safetensors (or its index)")
                continue
            } catch {
                continue   // an invalid index or a missing shard: reported by the validation of every weight file
            }
            check.weights[network.name] = weights
            if let note = weights.note, !weights.shadowed.isEmpty { check.ambiguities.append((network.name, note)) }
            if let dict = try? weights.open(), case let found = ModelKind.detect(dict), !network.kinds.contains(found) {
                let expected = network.kinds.map(\.rawValue).joined(separator: " or ")
                check.problems.append("\(network.name)/ holds \(found) weights, not \(expected)")
            }
        }
        return check
    }

    /// `check(folder).problems`.
    public static func problems(at folder: String) -> [String] { check(folder).problems }
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
