import Foundation
import Safetensors

/// Puts a 2D backbone (a personalized PixArt transformer) under a motion module, giving the 3D transformer's
/// state dict. EasyAnimate's predict_t2v.py does this by loading the backbone and then the motion module into
/// Transformer3DModel with `strict=False`, so a wrong file silently leaves weights at their initial values;
/// here the two must fit: the backbone holds no temporal keys, the motion module only temporal keys, and both
/// have the same transformer blocks at the same widths.
public struct BackboneSwap: Sendable {
    public struct Report: Sendable, Codable {
        public var backbone: String
        public var motionModule: String
        public var backboneTensors: Int
        public var motionModuleTensors: Int
        public var blocks: Int
        /// Hidden width of the blocks, when it could be read from the weights.
        public var width: Int?
        /// Dtypes of the result with their tensor counts; more than one when the inputs differ.
        public var dtypes: [String: Int]
        /// What the result does not carry over (metadata entries of the inputs).
        public var ignored: [String]

        enum CodingKeys: String, CodingKey {
            case backbone, motionModule = "motion_module", backboneTensors = "backbone_tensors"
            case motionModuleTensors = "motion_module_tensors", blocks, width, dtypes, ignored
        }

        public var lines: [String] {
            var out = ["backbone: \(backbone) (\(backboneTensors) tensors)",
                       "motion module: \(motionModule) (\(motionModuleTensors) tensors)",
                       "result: \(backboneTensors + motionModuleTensors) tensors, \(blocks) blocks"
                           + (width.map { " of width \($0)" } ?? "")
                           + ", " + dtypes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")]
            if dtypes.count > 1 { out.append("note: the inputs have different dtypes; each tensor keeps its own") }
            out.append(ignored.isEmpty ? "ignored: nothing" : "ignored: " + ignored.joined(separator: ", "))
            return out
        }
    }

    /// The 3D state dict: the backbone's tensors and the motion module's, unchanged.
    public let result: StateDictUnion
    public let report: Report

    public static let blockPrefix = "transformer_blocks."

    public init(backbone: any StateDict, motionModule: any StateDict) throws {
        let temporalInBackbone = backbone.keys.filter { $0.contains("temporal") }
        if !temporalInBackbone.isEmpty {
            throw WeightOpsError.incompatible(
                path: backbone.path, reason: "the backbone holds \(temporalInBackbone.count) temporal (motion-module) tensor(s), "
                    + "e.g. '\(temporalInBackbone[0])'; it is already a 3D transformer. Use a 2D backbone, or "
                    + "extract-motion-module to take the motion module out of it")
        }
        let spatialInModule = motionModule.keys.filter { !$0.contains("temporal") }
        if !spatialInModule.isEmpty {
            throw WeightOpsError.incompatible(
                path: motionModule.path, reason: "the motion module holds \(spatialInModule.count) non-temporal tensor(s), "
                    + "e.g. '\(spatialInModule[0])'; a motion module has only keys containing 'temporal' "
                    + "(is this a full transformer? extract-motion-module takes the motion module out of it)")
        }
        guard !motionModule.keys.isEmpty else {
            throw WeightOpsError.incompatible(path: motionModule.path, reason: "holds no tensors")
        }
        let backboneBlocks = BackboneSwap.blockIndices(backbone.keys)
        let moduleBlocks = BackboneSwap.blockIndices(motionModule.keys)
        guard !backboneBlocks.isEmpty else {
            throw WeightOpsError.incompatible(
                path: backbone.path, reason: "has no 'transformer_blocks.N.' tensors; it is not a PixArt transformer")
        }
        guard backboneBlocks == moduleBlocks else {
            throw WeightOpsError.incompatible(
                path: motionModule.path, reason: "the motion module is for \(BackboneSwap.describe(moduleBlocks)) but the backbone "
                    + "has \(BackboneSwap.describe(backboneBlocks)); they come from different model sizes")
        }
        var width: Int?
        for block in backboneBlocks.sorted() {
            let b = BackboneSwap.backboneWidth(backbone, block: block)
            let m = BackboneSwap.motionModuleWidth(motionModule, block: block)
            if let b, let m, b != m {
                throw WeightOpsError.incompatible(
                    path: motionModule.path, reason: "block \(block) of the motion module works on width \(m) but the backbone's "
                        + "block \(block) has width \(b); they come from different model sizes")
            }
            width = width ?? b ?? m
        }
        let result = try StateDictUnion([backbone, motionModule])
        var dtypes: [String: Int] = [:]
        for info in result.allInfos { dtypes[info.dtype.rawValue, default: 0] += 1 }
        let ignored = (backbone.metadata.keys.map { "backbone metadata '\($0)'" }
            + motionModule.metadata.keys.map { "motion-module metadata '\($0)'" }).sorted()
        self.result = result
        self.report = Report(backbone: backbone.path, motionModule: motionModule.path, backboneTensors: backbone.keys.count,
                             motionModuleTensors: motionModule.keys.count, blocks: backboneBlocks.count, width: width,
                             dtypes: dtypes, ignored: ignored)
    }

    static func blockIndices(_ keys: [String]) -> Set<Int> {
        var out = Set<Int>()
        for key in keys where key.hasPrefix(blockPrefix) {
            let rest = key.dropFirst(blockPrefix.count)
            if let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]) { out.insert(i) }
        }
        return out
    }

    static func describe(_ blocks: Set<Int>) -> String {
        guard let lo = blocks.min(), let hi = blocks.max() else { return "no blocks" }
        return blocks.count == hi - lo + 1 ? "\(blocks.count) blocks (\(lo)-\(hi))"
                                           : "blocks " + blocks.sorted().map(String.init).joined(separator: ",")
    }

    /// The block's hidden width: attn1's query projection is (width, width).
    static func backboneWidth(_ dict: any StateDict, block: Int) -> Int? {
        let p = "\(blockPrefix)\(block)."
        if let q = dict.info(p + "attn1.to_q.weight"), q.shape.count == 2 { return q.shape[1] }
        if let t = dict.info(p + "scale_shift_table"), t.shape.count == 2 { return t.shape[1] }
        return nil
    }

    /// The width the motion module's block reads: its input projection's in-features, or its norm's size.
    static func motionModuleWidth(_ dict: any StateDict, block: Int) -> Int? {
        let p = "\(blockPrefix)\(block)."
        let keys = dict.keys.filter { $0.hasPrefix(p) }
        if let k = keys.first(where: { $0.hasSuffix("temporal_transformer.proj_in.weight") }),
           let s = dict.info(k)?.shape, s.count == 2 { return s[1] }
        if let k = keys.first(where: { $0.hasSuffix("temporal_transformer.norm.weight") }),
           let s = dict.info(k)?.shape, s.count == 1 { return s[0] }
        return nil
    }
}

extension BackboneSwap {
    public struct Options: Sendable {
        /// A 2D backbone file or folder; with `fromDiffusersFolder`, a diffusers pipeline folder (its transformer).
        public var backbone: String
        public var fromDiffusersFolder = false
        public var motionModule: String
        public var output: String

        public init(backbone: String, motionModule: String, output: String, fromDiffusersFolder: Bool = false) {
            self.backbone = backbone
            self.motionModule = motionModule
            self.output = output
            self.fromDiffusersFolder = fromDiffusersFolder
        }
    }

    /// `ea-weights swap`: checks, then writes the 3D state dict as one file (tensors copied from the inputs).
    public static func run(_ options: Options, dryRun: Bool = false, progress: ProgressHandler? = nil) throws -> Report {
        let backboneWeights: WeightFiles
        if options.fromDiffusersFolder {
            guard case let .diffusers(_, components, _) = try CheckpointLayout.locate(options.backbone),
                  let transformer = components.first(where: { $0.name == "transformer" }) else {
                throw WeightOpsError.invalidInput(path: options.backbone, reason: "is not a diffusers folder with a transformer/ (model_index.json)")
            }
            backboneWeights = transformer.weights
        } else {
            backboneWeights = try WeightFiles.locate(options.backbone)
        }
        let backbone = try backboneWeights.open().dict
        let motion = try WeightFiles.locate(options.motionModule).open().dict
        let swap = try BackboneSwap(backbone: backbone, motionModule: motion)
        if dryRun { return swap.report }
        let tensors = try swap.result.keys.map { OutputTensor.from(try swap.result.tensor($0)) }
        var metadata = ["format": "pt"]
        metadata[LoRAMerge.operationKey] = "swap"
        let provenance = PendingProvenance([("backbone", backbone), ("motion_module", motion)].flatMap { role, dict in
            sourceFiles(of: dict).map { (ProvenanceEntry(role: role, file: ($0 as NSString).lastPathComponent), $0) }
        })
        defer { provenance.cancel() }
        metadata[LoRAMerge.provenanceKey] = provenance.placeholderText
        let placeholderMetadata = metadata
        try CheckpointStreamer.write(to: options.output, tensors: tensors, metadata: metadata,
                                     finalMetadata: {
                                         var m = placeholderMetadata
                                         m[LoRAMerge.provenanceKey] = try provenance.text()
                                         return m
                                     },
                                     progress: progress.map { p in { p((options.output as NSString).lastPathComponent, $0, $1) } })
        return swap.report
    }

    /// The files a state dict was read from.
    static func sourceFiles(of dict: any StateDict) -> [String] {
        if let union = dict as? StateDictUnion { return union.parts.flatMap(sourceFiles) }
        return [dict.path]
    }
}
