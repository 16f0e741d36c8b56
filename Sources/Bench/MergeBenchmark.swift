import Foundation
import Safetensors
import WeightOps

/// Synthetic inputs for `ea-weights bench merge`: a PixArt-XL-2 transformer with the real key names and
/// shapes (28 blocks of width 1152 by default: about 2.4 GB of F32) and a kohya LoRA on every Linear layer.
/// Both are written streaming, one tensor at a time, so making them does not itself need the memory the
/// benchmark is meant to show is not needed.
public enum MergeBenchmark {
    public struct Config: Sendable, Codable, Equatable {
        public var blocks = 28
        public var width = 1152
        /// T5-XXL's hidden size, the caption projection's input.
        public var captionChannels = 4096
        public var rank = 128
        public var inChannels = 4
        /// Learned sigma doubles the output channels.
        public var outChannels = 8
        public var patchSize = 2
        public var timestepChannels = 256

        public init() {}

        enum CodingKeys: String, CodingKey {
            case blocks, width, captionChannels = "caption_channels", rank, inChannels = "in_channels"
            case outChannels = "out_channels", patchSize = "patch_size", timestepChannels = "timestep_channels"
        }
    }

    /// The transformer's tensors (diffusers' Transformer2DModel names for PixArt-alpha), in name order.
    public static func transformerShapes(_ c: Config) -> [(name: String, shape: [Int])] {
        let w = c.width, p = c.patchSize
        var t: [(String, [Int])] = []
        func linear(_ name: String, out: Int, in n: Int) {
            t.append((name + ".weight", [out, n]))
            t.append((name + ".bias", [out]))
        }
        linear("adaln_single.emb.timestep_embedder.linear_1", out: w, in: c.timestepChannels)
        linear("adaln_single.emb.timestep_embedder.linear_2", out: w, in: w)
        linear("adaln_single.linear", out: 6 * w, in: w)
        linear("caption_projection.linear_1", out: w, in: c.captionChannels)
        linear("caption_projection.linear_2", out: w, in: w)
        t.append(("pos_embed.proj.weight", [w, c.inChannels, p, p]))
        t.append(("pos_embed.proj.bias", [w]))
        linear("proj_out", out: p * p * c.outChannels, in: w)
        t.append(("scale_shift_table", [2, w]))
        for b in 0..<c.blocks {
            let prefix = "transformer_blocks.\(b)."
            for attn in ["attn1", "attn2"] {
                for proj in ["to_q", "to_k", "to_v", "to_out.0"] { linear(prefix + "\(attn).\(proj)", out: w, in: w) }
            }
            linear(prefix + "ff.net.0.proj", out: 4 * w, in: w)
            linear(prefix + "ff.net.2", out: w, in: 4 * w)
            t.append((prefix + "scale_shift_table", [6, w]))
        }
        return t.sorted { $0.0 < $1.0 }
    }

    /// Writes `transformer.safetensors` and `lora.safetensors` (F32) into `directory`; returns their paths.
    public static func synthesize(in directory: String, config c: Config,
                                  progress: ProgressHandler? = nil) throws -> (transformer: String, lora: String) {
        let shapes = transformerShapes(c)
        let transformer = (directory as NSString).appendingPathComponent("transformer.safetensors")
        let lora = (directory as NSString).appendingPathComponent("lora.safetensors")
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random(_ name: String, _ shape: [Int], amplitude: Float) -> OutputTensor {
            seed &+= 0x1234_5678_9ABC_DEF1
            let s = seed
            return .computingFloats(name: name, dtype: .f32, shape: shape) {
                uniform(count: shape.reduce(1, *), amplitude: amplitude, seed: s)
            }
        }
        let base = shapes.map { random($0.name, $0.shape, amplitude: 0.02) }
        try CheckpointStreamer.write(to: transformer, tensors: base, metadata: ["format": "pt"],
                                     progress: progress.map { p in { p("transformer.safetensors", $0, $1) } })
        var factors: [OutputTensor] = []
        for (name, shape) in shapes where name.hasSuffix(".weight") && shape.count == 2 {
            let module = LoRAModuleName.name(forWeightKey: name, target: .transformer)
            factors.append(random(module + ".lora_down.weight", [c.rank, shape[1]], amplitude: 0.01))
            factors.append(random(module + ".lora_up.weight", [shape[0], c.rank], amplitude: 0.01))
            factors.append(.floats([Float(c.rank)], name: module + ".alpha", dtype: .f32, shape: []))
        }
        try CheckpointStreamer.write(to: lora, tensors: factors,
                                     metadata: ["ss_network_dim": String(c.rank), "ss_network_alpha": String(c.rank)],
                                     progress: progress.map { p in { p("lora.safetensors", $0, $1) } })
        return (transformer, lora)
    }

    /// Uniform values in [-amplitude, amplitude) from a xorshift generator (fast, reproducible).
    static func uniform(count: Int, amplitude: Float, seed: UInt64) -> [Float] {
        var state = seed | 1
        let scale = 2 * amplitude / Float(1 << 24)
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                buffer[i] = Float(state >> 40) * scale - amplitude
            }
            initialized = count
        }
    }

    /// Reads `paths` once so that they sit in the page cache: the merge and its Python counterpart then both
    /// start from the same, warm state (the synthesized files are written with direct I/O, past the cache).
    public static func readIntoPageCache(_ paths: [String]) throws {
        for path in paths {
            let file = try MappedFile(path: path)
            var sink: UInt8 = 0
            // One byte per page is enough to fault it in.
            file.forEachBlock(in: 0..<file.size, blockSize: 8 << 20) { block in
                for i in stride(from: 0, to: block.count, by: 4096) { sink &+= block[i] }
            }
            withExtendedLifetime(sink) {}
        }
    }

    /// Peak resident memory of this process so far (VmHWM), in bytes; nil where /proc is not available.
    public static func peakResidentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, let kib = Int(fields[1]) else { return nil }
        return kib * 1024
    }
}
