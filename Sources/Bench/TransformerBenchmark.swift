import Foundation
import Runner
import Safetensors
import WeightOps

/// Synthetic input and the timed stage of `ea-weights bench transformer`: EasyAnimate v1's 3D transformer,
/// PixArt-XL-2 (28 blocks of width 1152, 16 heads of 72, caption 4096) with the VanillaGrid motion module of
/// easyanimate_video_motion_module_v1.yaml in every block, random F32 weights in the release's layout (a diffusers
/// `transformer/` folder and a separate motion module file), evaluated once on a classifier-free-guidance batch
/// of two, as one denoising step of the pipeline does.
public enum TransformerBenchmark {
    public struct Config: Sendable, Codable, Equatable {
        public var blocks = 28
        public var width = 1152
        public var heads = 16
        public var captionChannels = 4096
        /// The motion module's `block_size` and `temporal_position_encoding_max_len` in EasyAnimate v1's yaml
        /// (`EasyAnimateConfig.v1`, written beside the weights).
        public var motionBlockSize = 2
        public var positionEncodingLength = 4096

        public init() {}

        /// The sizes of a loaded model's config (for its FLOP count).
        public init(_ config: PixArtConfig) {
            blocks = config.numLayers
            width = config.width
            heads = config.numAttentionHeads
            captionChannels = config.captionChannels ?? captionChannels
            motionBlockSize = config.motionModule?.blockSize ?? 1
        }

        var pixart: MergeBenchmark.Config {
            var c = MergeBenchmark.Config()
            c.blocks = blocks
            c.width = width
            c.captionChannels = captionChannels
            return c
        }

        enum CodingKeys: String, CodingKey {
            case blocks, width, heads, captionChannels = "caption_channels"
            case motionBlockSize = "motion_block_size", positionEncodingLength = "position_encoding_length"
        }
    }

    /// The caption length the pipeline pads prompts to.
    public static let captionTokens = 120

    /// The motion module's tensors as EasyAnimate saves them (`transformer_blocks.N.attn_temporal.…`), in name
    /// order: one temporal block of two `Temporal_Self` attentions with their position tables, GEGLU feed-forward.
    public static func motionModuleShapes(_ c: Config) -> [(name: String, shape: [Int])] {
        let w = c.width
        var t: [(String, [Int])] = []
        func pair(_ name: String, _ shape: [Int]) {
            t.append((name + ".weight", shape))
            t.append((name + ".bias", [shape[0]]))
        }
        for b in 0..<c.blocks {
            let m = "transformer_blocks.\(b).attn_temporal.temporal_transformer."
            pair(m + "norm", [w])
            pair(m + "proj_in", [w, w])
            pair(m + "proj_out", [w, w])
            let block = m + "transformer_blocks.0."
            for a in 0..<2 {
                let attention = block + "attention_blocks.\(a)."
                for proj in ["to_q", "to_k", "to_v"] { t.append((attention + proj + ".weight", [w, w])) }
                pair(attention + "to_out.0", [w, w])
                t.append((attention + "pos_encoder.pe", [1, c.positionEncodingLength, w]))
                pair(block + "norms.\(a)", [w])
            }
            pair(block + "ff.net.0.proj", [8 * w, w])
            pair(block + "ff.net.2", [w, 4 * w])
            pair(block + "ff_norm", [w])
        }
        return t.sorted { $0.0 < $1.0 }
    }

    /// FLOPs of one evaluation on `batch` items of `frames` latent frames of `height` × `width` (latent pixels):
    /// every Linear (2·rows·in·out) and the attention products (2 · 2·queries·keys·width), per block.
    public static func flops(_ c: Config, batch: Int, frames: Int, height: Int, width: Int) -> Double {
        let w = Double(c.width), p = 2
        let perFrame = Double((height / p) * (width / p))
        let tokens = Double(batch * frames) * perFrame, captions = Double(batch * captionTokens)
        let selfAttention = 8 * tokens * w * w + 4 * Double(batch * frames) * perFrame * perFrame * w
        let crossAttention = 4 * tokens * w * w + 4 * captions * w * w + 4 * tokens * Double(captionTokens) * w
        let feedForward = 16 * tokens * w * w
        let sequenceLength = Double(frames * c.motionBlockSize * c.motionBlockSize)
        let sequences = tokens / sequenceLength
        let motion = 4 * tokens * w * w
            + 2 * (8 * tokens * w * w + 4 * sequences * sequenceLength * sequenceLength * w)
            + 24 * tokens * w * w
        let captionProjection = 2 * captions * (Double(c.captionChannels) * w + w * w)
        let edges = 2 * tokens * w * Double(4 * p * p + 8 * p * p)   // patch embedding and proj_out
        return Double(c.blocks) * (selfAttention + crossAttention + feedForward + motion) + captionProjection + edges
    }

    public struct Paths: Sendable {
        public let folder: String
        public var transformer: String { (folder as NSString).appendingPathComponent("transformer") }
        public var motionModule: String { (folder as NSString).appendingPathComponent("motion_module.safetensors") }
        public var yaml: String { (folder as NSString).appendingPathComponent("easyanimate_video_motion_module_v1.yaml") }
        var record: String { (folder as NSString).appendingPathComponent("bench-config.json") }
        public init(folder: String) { self.folder = folder }
    }

    /// Writes the transformer folder, the motion module and EasyAnimate v1's yaml into `folder`, unless a complete set for
    /// the same config is there (its record is written last). Returns whether it wrote them.
    @discardableResult
    public static func synthesize(in folder: String, config c: Config, progress: ProgressHandler? = nil) throws -> Bool {
        let paths = Paths(folder: folder)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys   // the same bytes for the same config, run after run
        let record = try encoder.encode(c)
        if FileManager.default.contents(atPath: paths.record) == record { return false }
        try? FileManager.default.removeItem(atPath: paths.record)
        try BenchFolder.create(paths.transformer)
        let isNorm: (String, [Int]) -> Bool = { name, shape in shape.count == 1 && name.hasSuffix(".weight") && name.contains("norm") }
        try CheckpointStreamer.write(
            to: (paths.transformer as NSString).appendingPathComponent("diffusion_pytorch_model.safetensors"),
            tensors: RandomWeights.tensors(MergeBenchmark.transformerShapes(c.pixart), dtype: .f32, seed: 0x2C1B_3C6D_5E7F_8091,
                                           isNorm: isNorm),
            metadata: ["format": "pt"], progress: progress.map { p in { p("transformer", $0, $1) } })
        try CheckpointStreamer.write(
            to: paths.motionModule,
            tensors: RandomWeights.tensors(motionModuleShapes(c), dtype: .f32, seed: 0x6A09_E667_F3BC_C909, isNorm: isNorm),
            metadata: ["format": "pt"], progress: progress.map { p in { p("motion module", $0, $1) } })
        let json = """
        {"_class_name": "Transformer2DModel", "_diffusers_version": "0.27.0", "activation_fn": "gelu-approximate", \
        "attention_bias": true, "attention_head_dim": \(c.width / c.heads), "attention_type": "default", \
        "caption_channels": \(c.captionChannels), "cross_attention_dim": \(c.width), "double_self_attention": false, \
        "dropout": 0.0, "in_channels": 4, "interpolation_scale": null, "norm_elementwise_affine": false, \
        "norm_eps": 1e-06, "norm_num_groups": 32, "norm_type": "ada_norm_single", "num_attention_heads": \(c.heads), \
        "num_embeds_ada_norm": 1000, "num_layers": \(c.blocks), "num_vector_embeds": null, "only_cross_attention": false, \
        "out_channels": 8, "patch_size": 2, "sample_size": 64, "upcast_attention": false, "use_linear_projection": false}
        """
        try AtomicOutput.writeFile(Array(json.utf8), to: (paths.transformer as NSString).appendingPathComponent("config.json"))
        try AtomicOutput.writeFile(Array(EasyAnimateConfig.v1.yaml.utf8), to: paths.yaml)
        try AtomicOutput.writeFile(Array(record), to: paths.record)
        return true
    }

    /// The weights `compute` runs on: the synthesized F32 files, or for `.int8` their `Int8Copy` in `int8/`.
    public static func weights(folder: String, compute: ComputePrecision,
                               progress: ProgressHandler? = nil) throws -> (transformer: String, motionModule: String) {
        let paths = Paths(folder: folder)
        guard compute == .int8 else { return (paths.transformer, paths.motionModule) }
        let int8 = (folder as NSString).appendingPathComponent("int8")
        let transformer = (int8 as NSString).appendingPathComponent("transformer")
        let motion = (int8 as NSString).appendingPathComponent("motion_module.safetensors")
        try Int8Copy.ensure([(paths.transformer, transformer), (paths.motionModule, motion)], in: int8,
                            stamp: FileManager.default.contents(atPath: paths.record) ?? Data(), progress: progress)
        return (transformer, motion)
    }

    /// Loads the 3D transformer from `folder` as generate does (mapped: diffusers weights, then the motion module;
    /// with `compute` `.int8` the `weights(folder:compute:)` conversion), evaluates a tiny input to warm up, then
    /// times one evaluation of a CFG batch (2 items) of `frames` frames of `height` × `width` video pixels.
    public static func run(folder: String, frames: Int, height: Int, width: Int,
                           compute: ComputePrecision = .f32) throws -> StageTiming {
        let paths = Paths(folder: folder)
        let config = try PixArtConfig(contentsOf: (paths.transformer as NSString).appendingPathComponent("config.json"),
                                      easyAnimateYAML: paths.yaml)
        let files = try weights(folder: folder, compute: compute)
        let backbone = try openStateDict(path: files.transformer), motion = try openStateDict(path: files.motionModule)
        let model = try Transformer3D.load(config: config, backbone: backbone, motionModule: motion, compute: compute)
        let (h, w, batch) = (height / 8, width / 8, 2)
        guard let caption = config.captionChannels else {
            throw BenchError.failed(path: paths.transformer, reason: "has no caption projection")
        }
        func evaluate(frames f: Int, height h: Int, width w: Int) throws -> Tensor {
            let latents = Tensor(shape: [batch, config.inChannels, f, h, w],
                                 storage: MergeBenchmark.uniform(count: batch * config.inChannels * f * h * w, amplitude: 1, seed: 7))
            let states = Tensor(shape: [batch, captionTokens, caption],
                                storage: MergeBenchmark.uniform(count: batch * captionTokens * caption, amplitude: 0.2, seed: 11))
            let mask = Tensor(shape: [batch, captionTokens], storage: [Float](repeating: 1, count: batch * captionTokens))
            return try model.forward(latents: latents, timestep: 500, encoderHiddenStates: states, encoderMask: mask)
        }
        let cell = 2 * (config.motionModule?.blockSize ?? 1)
        _ = try evaluate(frames: 1, height: cell, width: cell)
        return try StageTiming.measure(flops: flops(Config(config), batch: batch, frames: frames, height: h, width: w)) {
            let output = try evaluate(frames: frames, height: h, width: w)
            guard output.withUnsafeBufferPointer({ $0.allSatisfy(\.isFinite) }) else {
                throw BenchError.failed(path: folder, reason: "the transformer's output is not finite")
            }
        }
    }
}
