import Foundation

/// diffusers' `PatchEmbed` (`pos_embed`): a patch_size-strided convolution to tokens plus the 2D sin-cos position
/// embedding, recomputed for the latent's own grid (non-square latents included) as diffusers 0.27 does.
struct PatchEmbedding: Sendable {
    let proj: Conv2d   // pos_embed.proj: (width, in, p, p)
    let patchSize: Int
    let width: Int
    let baseSize: Int
    let interpolationScale: Double

    init(_ w: WeightScope, config: PixArtConfig) throws {
        proj = try Conv2d(w.scope("proj"), in: config.inChannels, out: config.width, kernel: config.patchSize,
                          stride: config.patchSize)
        patchSize = config.patchSize
        width = config.width
        baseSize = config.baseSize
        interpolationScale = config.interpolationScale
    }

    /// x: [N, C, H, W] (H, W multiples of the patch size) → tokens [N, (H/p)·(W/p), width], row-major over the grid.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, gh, gw) = (x.shape[0], x.shape[2] / patchSize, x.shape[3] / patchSize)
        let patches = proj(x)   // [N, width, gh, gw]
        var tokens = Kernels.permute(patches.reshaped([n, width, gh * gw]), [0, 2, 1])
        let table = Self.sinCosTable(width: width, gridHeight: gh, gridWidth: gw, baseSize: baseSize,
                                     interpolationScale: interpolationScale)
        table.withUnsafeBufferPointer { Kernels.addRowVector(&tokens, $0) }
        return tokens
    }

    /// diffusers' `get_2d_sincos_pos_embed(width, (gh, gw), base_size:, interpolation_scale:)` → [gh·gw, width].
    ///
    /// Coordinates are float32 (`np.arange(n, dtype=float32) / (n / base_size) / interpolation_scale`), the
    /// frequencies and sines float64, the table float32 (`torch.from_numpy(...).float()`). Token k = i·gw + j
    /// (row i, column j) gets [sin, cos] of the column coordinate in its first half and of the row coordinate
    /// in its second: diffusers' meshgrid puts w first.
    static func sinCosTable(width: Int, gridHeight gh: Int, gridWidth gw: Int, baseSize: Int,
                            interpolationScale: Double) -> Tensor {
        let half = width / 2, quarter = width / 4
        let scale = Float(interpolationScale)
        let rowStep = Float(Double(gh) / Double(baseSize)), columnStep = Float(Double(gw) / Double(baseSize))
        let rows = (0..<gh).map { Double(Float(Float($0) / rowStep) / scale) }
        let columns = (0..<gw).map { Double(Float(Float($0) / columnStep) / scale) }
        let omega = (0..<quarter).map { 1 / pow(10000, Double($0) / (Double(half) / 2)) }
        // One half-table per axis value, then each token copies its column's and its row's halves.
        func halves(_ positions: [Double]) -> [Float] {
            var out = [Float](repeating: 0, count: positions.count * half)
            for (p, position) in positions.enumerated() {
                for d in 0..<quarter {
                    let angle = position * omega[d]
                    out[p * half + d] = Float(sin(angle))
                    out[p * half + quarter + d] = Float(cos(angle))
                }
            }
            return out
        }
        let rowHalves = halves(rows), columnHalves = halves(columns)
        // Built at every forward (the grid follows the latent size), so it is a pooled tensor.
        var table = Tensor(zeros: [gh * gw, width])
        table.withUnsafeMutableBufferPointer { table in
            for i in 0..<gh {
                for j in 0..<gw {
                    let base = (i * gw + j) * width
                    for c in 0..<half {
                        table[base + c] = columnHalves[j * half + c]
                        table[base + half + c] = rowHalves[i * half + c]
                    }
                }
            }
        }
        return table
    }
}

/// diffusers' `AdaLayerNormSingle` (`adaln_single`), PixArt's timestep conditioning without the 1024 model's
/// size conditions: a 256-channel sinusoid (`Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)`),
/// `emb.timestep_embedder` (linear_1, SiLU, linear_2) and `linear` to 6 × width after a SiLU.
struct TimestepConditioning: Sendable {
    static let frequencyChannels = 256
    let linear1: Linear   // emb.timestep_embedder.linear_1: (width, 256)
    let linear2: Linear   // emb.timestep_embedder.linear_2: (width, width)
    let linear: Linear    // linear: (6·width, width)

    init(_ w: WeightScope, width: Int) throws {
        let embedder = w.scope("emb").scope("timestep_embedder")
        linear1 = try Linear(embedder.scope("linear_1"), in: Self.frequencyChannels, out: width)
        linear2 = try Linear(embedder.scope("linear_2"), in: width, out: width)
        linear = try Linear(w.scope("linear"), in: width, out: 6 * width)
    }

    /// timesteps: one per batch item → (modulation [B, 6·width], embedded timestep [B, width]).
    func callAsFunction(_ timesteps: [Float]) -> (modulation: Tensor, embedded: Tensor) {
        var embedded = linear1(Self.sinusoid(timesteps, channels: Self.frequencyChannels))
        Kernels.silu(&embedded)
        embedded = linear2(embedded)
        var activated = embedded
        Kernels.silu(&activated)
        return (linear(activated), embedded)
    }

    /// diffusers' `get_timestep_embedding(t, channels, flip_sin_to_cos=True, downscale_freq_shift=0)` in float32:
    /// [cos(t·f), sin(t·f)] with f_i = exp(-ln(10000)·i / (channels/2)).
    static func sinusoid(_ timesteps: [Float], channels: Int) -> Tensor {
        let half = channels / 2
        let logPeriod = Float(-log(10000.0))
        let frequencies = (0..<half).map { expf(logPeriod * Float($0) / Float(half)) }
        var out = Tensor(zeros: [timesteps.count, channels])
        out.withUnsafeMutableBufferPointer { out in
            for (b, t) in timesteps.enumerated() {
                for i in 0..<half {
                    let angle = t * frequencies[i]
                    out[b * channels + i] = cosf(angle)
                    out[b * channels + half + i] = sinf(angle)
                }
            }
        }
        return out
    }
}

/// diffusers' `PixArtAlphaTextProjection` (`caption_projection`): linear_1, GELU(tanh), linear_2.
struct CaptionProjection: Sendable {
    let linear1: Linear   // linear_1 (width, caption channels)
    let linear2: Linear   // linear_2 (width, width)

    init(_ w: WeightScope, captionChannels: Int, width: Int) throws {
        linear1 = try Linear(w.scope("linear_1"), in: captionChannels, out: width)
        linear2 = try Linear(w.scope("linear_2"), in: width, out: width)
    }

    /// [B, L, caption channels] → [B, L, width]
    func callAsFunction(_ caption: Tensor) -> Tensor {
        var hidden = linear1(caption)
        Kernels.geluTanh(&hidden)
        return linear2(hidden)
    }
}
