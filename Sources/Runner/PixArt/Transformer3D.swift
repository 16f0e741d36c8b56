import Safetensors

/// The PixArt-α diffusion transformer as EasyAnimate runs it: diffusers 0.27 `Transformer2DModel` (PixArt
/// config) when `config.motionModule` is nil, EasyAnimate's `Transformer3DModel` (easyanimate/models/
/// transformer3d.py, April 2024) with its VanillaGrid motion module in every block otherwise.
///
/// The video's frames are folded into the batch for the patch embedding and self-attention ("b c f h w ->
/// (b f) c h w"); the timestep conditioning and the caption stay per batch item: adaLN modulations are shared
/// by all frames of an item and cross-attention treats the item's frames as one query sequence. With one
/// frame and no motion module this is exactly the 2D model.
public struct Transformer3D: Sendable {
    public let config: PixArtConfig
    let patchEmbedding: PatchEmbedding      // pos_embed
    let timestepConditioning: TimestepConditioning   // adaln_single
    let captionProjection: CaptionProjection?        // caption_projection
    let blocks: [TransformerBlock]          // transformer_blocks.i
    let scaleShiftTable: Parameter          // scale_shift_table (2, width)
    let normOut: LayerNorm                  // norm_out (no affine, eps 1e-6)
    let projOut: Linear                     // proj_out: (p·p·out, width)

    /// Builds the transformer from `weights`: every weight of `config`'s model must be there with its shape, and
    /// nothing else; motion-module weights that do not fit are reported as such, naming `motionModuleSource`
    /// (default: the store's name). With `compute` `.int8` the Linear layers multiply in int8 (`Int8Weight`).
    public static func load(_ weights: WeightStore, config: PixArtConfig, motionModuleSource: String? = nil,
                            compute: ComputePrecision = .f32) throws -> Transformer3D {
        try weights.load(compute: compute) { try Transformer3D($0, config: config, motionSource: motionModuleSource ?? weights.name) }
    }

    /// The 3D model as EasyAnimate assembles it: the 2D `backbone` (diffusers transformer weights or a
    /// personalized backbone) with `motionModule` (e.g. easyanimate_v1_mm.safetensors) loaded over it.
    public static func load(config: PixArtConfig, backbone: StateDict, motionModule: StateDict?,
                            compute: ComputePrecision = .f32) throws -> Transformer3D {
        let layers = [backbone] + (motionModule.map { [$0] } ?? [])
        let name = motionModule.map { "\(backbone.path) with \($0.path)" } ?? backbone.path
        return try load(WeightStore(name: name, layers: layers), config: config, motionModuleSource: motionModule?.path,
                        compute: compute)
    }

    private init(_ root: WeightScope, config: PixArtConfig, motionSource: String) throws {
        let store = root.store
        let width = config.width
        self.config = config
        if let motion = config.motionModule {
            try motion.validate(channels: width, source: motionSource)
            guard store.allKeys.contains(where: { $0.contains(".attn_temporal.") }) else {
                throw RunnerError.invalidConfig(
                    path: store.name,
                    reason: "has no motion module weights (transformer_blocks.N.attn_temporal.*), which the 3D transformer needs; give it a motion module")
            }
        }
        patchEmbedding = try PatchEmbedding(root.scope("pos_embed"), config: config)
        timestepConditioning = try TimestepConditioning(root.scope("adaln_single"), width: width)
        if let channels = config.captionChannels {
            captionProjection = try CaptionProjection(root.scope("caption_projection"), captionChannels: channels, width: width)
        } else {
            captionProjection = nil
        }
        blocks = try (0..<config.numLayers).map { i in
            let scope = root.scope("transformer_blocks").scope(i)
            do {
                return try TransformerBlock(scope, config: config, motionScope: scope.scope("attn_temporal"))
            } catch let error as RunnerError {
                throw Self.motionModuleError(error, source: motionSource, width: width) ?? error
            }
        }
        scaleShiftTable = try root.parameter("scale_shift_table", shape: [2, width])
        normOut = LayerNorm(size: width, eps: 1e-6)
        projOut = try Linear(root.scope("proj_out"), in: width,
                             out: config.patchSize * config.patchSize * config.outChannels)

        // Unbound temporal weights get their own explanation before `load` reports any other unused key.
        let temporal = store.unusedKeys().filter { $0.contains(".attn_temporal.") }
        if !temporal.isEmpty {
            let reason = config.motionModule == nil
                ? "holds motion module weights (\(temporal.count), e.g. \(temporal[0])) but the model was configured as the 2D transformer; give the EasyAnimate yaml"
                : "the motion module does not fit this transformer: \(temporal.count) weight(s) it does not use, e.g. \(temporal[0]) (the transformer has \(config.numLayers) blocks; the yaml's motion_module_kwargs give \(config.motionModule?.numTransformerBlocks ?? 0) temporal block(s) of \(config.motionModule?.attentionBlocks ?? 0) attention(s))"
            throw RunnerError.invalidConfig(path: config.motionModule == nil ? store.name : motionSource, reason: reason)
        }
    }

    /// Rewrites a binding error inside a motion module (`attn_temporal`) as "the motion module does not fit".
    static func motionModuleError(_ error: RunnerError, source: String, width: Int) -> RunnerError? {
        let prefix = "the motion module does not fit this transformer (width \(width) with the yaml's motion_module_kwargs)"
        switch error {
        case let .missingWeight(key, _) where key.contains(".attn_temporal."):
            return .invalidConfig(path: source, reason: "\(prefix): it has no weight '\(key)'")
        case let .shapeMismatch(key, _, expected, actual) where key.contains(".attn_temporal."):
            return .invalidConfig(path: source, reason: "\(prefix): weight '\(key)' has shape \(actual), the model expects \(expected)")
        default:
            return nil
        }
    }

    // MARK: Forward

    /// One denoising evaluation with the same timestep for every batch item (as the pipeline calls it).
    ///
    /// latents: [B, C, F, H, W] (or [B, C, H, W] for an image), encoderHiddenStates: [B, L, caption channels],
    /// encoderMask: [B, L] of 1 (keep) / 0 (padding) → [B, outChannels, F, H, W] (or [B, outChannels, H, W]).
    public func forward(latents: Tensor, timestep: Float, encoderHiddenStates: Tensor, encoderMask: Tensor) throws -> Tensor {
        try forward(latents: latents, timesteps: [timestep], encoderHiddenStates: encoderHiddenStates, encoderMask: encoderMask)
    }

    /// As above with one timestep per batch item (or one for all).
    public func forward(latents: Tensor, timesteps: [Float], encoderHiddenStates: Tensor, encoderMask: Tensor) throws -> Tensor {
        let shape = try checkInputs(latents: latents, timesteps: timesteps, encoderHiddenStates: encoderHiddenStates,
                                    encoderMask: encoderMask)
        let (batch, frames, height, width) = (shape.batch, shape.frames, shape.height, shape.width)
        let p = config.patchSize
        let (gh, gw) = (height / p, width / p)

        // "b c f h w -> (b f) c h w"
        let images = latents.rank == 5
            ? Kernels.permute(latents, [0, 2, 1, 3, 4]).reshaped([batch * frames, config.inChannels, height, width])
            : latents
        var hidden = patchEmbedding(images)   // [(B·F), N, D]

        let itemTimesteps = timesteps.count == 1 ? [Float](repeating: timesteps[0], count: batch) : timesteps
        let (modulation, embedded) = timestepConditioning(itemTimesteps)
        let caption = captionProjection?(encoderHiddenStates) ?? encoderHiddenStates
        // diffusers: (1 - mask) * -10000.0, added to the cross-attention scores.
        var captionBias = encoderMask
        Kernels.map(&captionBias) { (1 - $0) * -10000.0 }

        for block in blocks {
            hidden = block(hidden, t: modulation, caption: caption, captionBias: captionBias,
                           frames: frames, gridHeight: gh, gridWidth: gw)
        }

        // Output: norm_out, modulated by scale_shift_table + embedded timestep, proj_out.
        let d = config.width
        var shift = Tensor(uninitialized: [batch, d]), scale = Tensor(uninitialized: [batch, d])
        scaleShiftTable.withFloats { table in
        embedded.withUnsafeBufferPointer { e in
        shift.withUnsafeMutableBufferPointer { shiftRows in
        scale.withUnsafeMutableBufferPointer { scaleRows in
            for b in 0..<batch {
                for c in 0..<d {
                    shiftRows[b * d + c] = table[c] + e[b * d + c]
                    scaleRows[b * d + c] = table[d + c] + e[b * d + c]
                }
            }
        }}}}
        hidden = normOut(hidden)
        Kernels.modulate(&hidden, rowsPerGroup: frames * gh * gw, shift: shift, scale: scale)
        let patches = projOut(hidden)   // [(B·F), N, p·p·out]

        // Unpatchify: "n f h w p q c -> n c f h p w q".
        let out = config.outChannels
        let grid = patches.reshaped([batch, frames, gh, gw, p, p, out])
        let video = Kernels.permute(grid, [0, 6, 1, 2, 4, 3, 5])
        return latents.rank == 5
            ? video.reshaped([batch, out, frames, height, width])
            : video.reshaped([batch, out, height, width])
    }

    struct InputShape { let batch: Int, frames: Int, height: Int, width: Int }

    /// Rejects inputs the model cannot take, with the reason, before any work is done.
    func checkInputs(latents: Tensor, timesteps: [Float], encoderHiddenStates: Tensor, encoderMask: Tensor) throws -> InputShape {
        let s = latents.shape
        guard s.count == 5 || s.count == 4 else {
            throw RunnerError.invalidInput("transformer input must be latents [B, C, F, H, W] or [B, C, H, W], got \(s)")
        }
        let (batch, channels) = (s[0], s[1])
        let frames = s.count == 5 ? s[2] : 1
        let (height, width) = (s[s.count - 2], s[s.count - 1])
        guard channels == config.inChannels else {
            throw RunnerError.invalidInput("transformer input has \(channels) latent channels, the model takes \(config.inChannels)")
        }
        guard batch > 0, frames > 0, height > 0, width > 0 else {
            throw RunnerError.invalidInput("transformer input \(s) is empty")
        }
        let p = config.patchSize
        guard height % p == 0, width % p == 0 else {
            throw RunnerError.invalidInput(
                "latent size \(height)×\(width) is not divisible by the transformer's patch size \(p); choose a video height and width that are multiples of \(p) × the VAE's scale factor")
        }
        if let motion = config.motionModule {
            let cell = motion.blockSize
            guard (height / p) % cell == 0, (width / p) % cell == 0 else {
                throw RunnerError.invalidInput(
                    "the motion module's \(cell)×\(cell) grid does not divide the \(height / p)×\(width / p) token grid (latent \(height)×\(width), patch \(p)); choose a video height and width that are multiples of \(p * cell) × the VAE's scale factor")
            }
            if motion.temporalPositionEncoding, frames > motion.positionEncodingMaxLength {
                throw RunnerError.invalidInput(
                    "\(frames) frames exceed the motion module's position encoding length \(motion.positionEncodingMaxLength)")
            }
        }
        let expectedFeatures = config.captionChannels ?? config.width
        let e = encoderHiddenStates.shape
        guard e.count == 3, e[0] == batch, e[1] > 0, e[2] == expectedFeatures else {
            throw RunnerError.invalidInput(
                "encoder hidden states must be [\(batch), L, \(expectedFeatures)] for this transformer, got \(e)")
        }
        guard encoderMask.shape == [batch, e[1]] else {
            throw RunnerError.invalidInput("encoder attention mask must be [\(batch), \(e[1])], got \(encoderMask.shape)")
        }
        guard timesteps.count == 1 || timesteps.count == batch else {
            throw RunnerError.invalidInput("\(timesteps.count) timesteps for a batch of \(batch)")
        }
        return InputShape(batch: batch, frames: frames, height: height, width: width)
    }
}
