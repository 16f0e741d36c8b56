import Foundation
import Runner
import Safetensors
import WeightOps

/// The parsers that read untrusted input, each as a function of arbitrary bytes for coverage-guided fuzzing
/// (`scripts/fuzz.sh`, libFuzzer through `swiftc -sanitize=fuzzer`). A target may throw any error the parser
/// throws for bad input; a crash, a hang or a leak is a bug. The same functions replay the regression inputs
/// under `fixtures/fuzz/<target>/` in the tests.
public enum FuzzTargets {
    public static let names = ["safetensors-header", "shard-index", "tar-extract", "lora-keys", "tokenizer-config", "yaml-config"]

    /// Runs target `name` on `data`; false when there is no such target.
    @discardableResult
    public static func run(_ name: String, _ data: [UInt8]) -> Bool {
        do {
            switch name {
            case "safetensors-header": try safetensorsHeader(data)
            case "shard-index": try shardIndex(data)
            case "tar-extract": try tarExtract(data)
            case "lora-keys": loraKeys(data)
            case "tokenizer-config": try tokenizerConfig(data)
            case "yaml-config": try yamlConfig(data)
            default: return false
            }
        } catch {
            // Refusing bad input is the parser's job; a refusal must still say something.
            precondition(!String(describing: error).isEmpty, "an error with an empty message")
        }
        return true
    }

    /// A scratch folder per process, in memory when /dev/shm exists.
    static let scratch: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = base + "/ea-weights-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static func write(_ data: [UInt8], _ name: String) throws -> String {
        let path = scratch + "/" + name
        try Data(data).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The header parser and validator on a whole file's bytes; a valid header's tensors are then read.
    static func safetensorsHeader(_ data: [UInt8]) throws {
        let header = try data.withUnsafeBytes { try Header.parse(prefix: $0, fileSize: data.count, path: "fuzz") }
        let file = try SafetensorsFile(path: try write(data, "fuzz.safetensors"))
        for name in header.tensors.prefix(8).map(\.name) {
            let view = try file.tensor(name)
            if view.dtype.isFloatingPoint, view.elementCount <= 1 << 16 { _ = view.toFloat32() }
        }
    }

    /// A sharded checkpoint's index.json.
    static func shardIndex(_ data: [UInt8]) throws {
        let index = try ShardIndex(path: try write(data, "model.safetensors.index.json"))
        _ = index.shardFiles
        _ = index.totalSize
    }

    /// The tar entry policy over real libarchive reads: a full extraction into a scratch folder, whose result must
    /// stay inside it.
    static func tarExtract(_ data: [UInt8]) throws {
        let archive = try write(data, "fuzz.tar")
        let destination = scratch + "/out"
        AtomicOutput.removeTree(destination)
        var options = ArchiveExtractionOptions()
        options.requirePixArtFolder = false
        options.isCancelled = { false }
        defer { AtomicOutput.removeTree(destination) }
        let result = try ArchiveExtraction.extract(archive: archive, into: destination, options: options)
        precondition(result.folder.hasPrefix(destination + "/"), "extracted outside the destination: \(result.folder)")
    }

    /// kohya LoRA module names resolved against a key list: the input's lines are weight keys until an empty
    /// line, then LoRA module names.
    static func loraKeys(_ data: [UInt8]) {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let split = lines.firstIndex(of: "") ?? lines.count
        let map = KeyMap(keys: lines[..<split])
        for name in lines[min(split + 1, lines.count)...] {
            _ = map.resolve(flatPath: name)
            if let module = LoRAModuleName(name) {
                for target in [LoRATarget.transformer, .textEncoder] { _ = map.resolve(module, target: target) }
            }
        }
    }

    /// The tokenizer's JSON files beside a real SentencePiece model: the input holds tokenizer_config.json,
    /// special_tokens_map.json and added_tokens.json separated by NUL bytes; a prompt is then encoded.
    static func tokenizerConfig(_ data: [UInt8]) throws {
        let folder = scratch + "/tokenizer"
        if !FileManager.default.fileExists(atPath: folder + "/spiece.model") {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: spieceModel, toPath: folder + "/spiece.model")
        }
        let parts = data.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        for (i, name) in ["tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"].enumerated() {
            let path = folder + "/" + name
            if i < parts.count { try Data(parts[i]).write(to: URL(fileURLWithPath: path)) } else { try? FileManager.default.removeItem(atPath: path) }
        }
        let tokenizer = try T5Tokenizer(directory: folder)
        _ = try tokenizer.encode("A snowy forest <extra_id_0> </s> ☃")
    }

    /// EasyAnimate's yaml config: the scheduler kwargs and the transformer's additional kwargs.
    static func yamlConfig(_ data: [UInt8]) throws {
        let text = String(decoding: data, as: UTF8.self)
        _ = try SchedulerConfig(easyAnimateYAML: text, source: "fuzz.yaml")
        _ = try PixArtConfig.transformerAdditionalKwargs(yaml: text, source: "fuzz.yaml")
    }

    /// The fixture's SentencePiece model (the tokenizer target varies only the JSON files around it).
    public static var spieceModel: String {
        ProcessInfo.processInfo.environment["EA_WEIGHTS_FUZZ_SPIECE"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("fixtures/ea-tiny/tiny-pixart/tokenizer/spiece.model").path
    }
}
