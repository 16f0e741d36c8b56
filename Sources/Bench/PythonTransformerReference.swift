/// The transformer step as EasyAnimate runs it, for `ea-weights bench transformer --python`: diffusers 0.27's
/// Transformer2DModel (PixArt, F32) from the same transformer/ folder, with EasyAnimate's VanillaGrid motion
/// module (written here in PyTorch from motion_module.py: GroupNorm, proj_in, Temporal_Self attentions over
/// frames × 2×2 cells with the per-frame position table, GEGLU feed-forward, proj_out, residual) run after each
/// block's self-attention, its weights from the same motion module file. One warm-up evaluation of a tiny input,
/// then one timed evaluation of the CFG batch of two. Prints one JSON object with the seconds and peak RSS, or
/// `{"error": ...}`.
public enum PythonTransformerReference {
    /// Run as `python3 -c <script> FOLDER FRAMES HEIGHT WIDTH THREADS` (THREADS 0: torch's default).
    public static let script = """
    import json, os, resource, sys, time
    folder, frames, height, width, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    try:
        import torch
        import torch.nn.functional as F
        import yaml
        from diffusers import Transformer2DModel
        from diffusers.utils import logging
        from safetensors.torch import load_file
        logging.set_verbosity_error()
    except ImportError as error:
        print(json.dumps({"error": f"python3 lacks torch, diffusers, safetensors or yaml ({error}); "
                                   "pip install torch==2.13.0+cpu diffusers==0.27.2 safetensors pyyaml"}))
        sys.exit(0)
    if threads > 0:
        torch.set_num_threads(threads)
    model = Transformer2DModel.from_pretrained(os.path.join(folder, "transformer")).eval()
    kwargs = yaml.safe_load(open(os.path.join(folder, "easyanimate_video_motion_module_v1.yaml")))
    mm_kwargs = kwargs["transformer_additional_kwargs"]["motion_module_kwargs"]
    motion_heads, cell = mm_kwargs["num_attention_heads"], mm_kwargs["block_size"]
    mm = load_file(os.path.join(folder, "motion_module.safetensors"))

    def linear(x, prefix, bias=True):
        return F.linear(x, mm[prefix + ".weight"], mm.get(prefix + ".bias") if bias else None)

    def layer_norm(x, prefix):
        return F.layer_norm(x, x.shape[-1:], mm[prefix + ".weight"], mm[prefix + ".bias"])

    def motion_module(x, b, f, gh, gw):
        p = f"transformer_blocks.{b}.attn_temporal.temporal_transformer."
        bf, n, c = x.shape
        h = F.group_norm(x.transpose(1, 2), 32, mm[p + "norm.weight"], mm[p + "norm.bias"], 1e-6).transpose(1, 2)
        h = linear(h, p + "proj_in")
        t = p + "transformer_blocks.0."
        for a in range(2):
            q = t + f"attention_blocks.{a}"
            normed = layer_norm(h, t + f"norms.{a}")
            normed = (normed.reshape(bf // f, f, n, c) + mm[q + ".pos_encoder.pe"][0, :f][None, :, None, :]).reshape(bf, n, c)
            s = normed.reshape(bf // f, f, gh // cell, cell, gw // cell, cell, c).permute(0, 2, 4, 1, 3, 5, 6)
            s = s.reshape(-1, f * cell * cell, c)
            heads = [linear(s, q + "." + name, bias=False).reshape(s.shape[0], -1, motion_heads, c // motion_heads).transpose(1, 2)
                     for name in ("to_q", "to_k", "to_v")]
            o = F.scaled_dot_product_attention(*heads).transpose(1, 2).reshape(s.shape)
            o = linear(o, q + ".to_out.0")
            o = o.reshape(bf // f, gh // cell, gw // cell, f, cell, cell, c).permute(0, 3, 1, 4, 2, 5, 6).reshape(bf, n, c)
            h = h + o
        value, gate = linear(layer_norm(h, t + "ff_norm"), t + "ff.net.0.proj").chunk(2, dim=-1)
        h = h + linear(value * F.gelu(gate), t + "ff.net.2")
        return linear(h, p + "proj_out") + x

    def forward(latents, states, mask, timestep):
        batch, _, f, lh, lw = latents.shape
        patch = model.config.patch_size
        gh, gw = lh // patch, lw // patch
        hidden = model.pos_embed(latents.permute(0, 2, 1, 3, 4).reshape(batch * f, -1, lh, lw))
        t, embedded = model.adaln_single(timestep, {"resolution": None, "aspect_ratio": None},
                                         batch_size=batch, hidden_dtype=hidden.dtype)
        caption = model.caption_projection(states)
        bias = ((1 - mask) * -10000.0)[:, None, :]
        c = hidden.shape[-1]
        hidden = hidden.reshape(batch, f * gh * gw, c)
        for b, block in enumerate(model.transformer_blocks):
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
                block.scale_shift_table[None] + t.reshape(batch, 6, -1)).chunk(6, dim=1)
            normed = block.norm1(hidden) * (1 + scale_msa) + shift_msa
            attended = block.attn1(normed.reshape(batch * f, gh * gw, c)).reshape(batch, -1, c)
            hidden = hidden + gate_msa * attended
            hidden = motion_module(hidden.reshape(batch * f, gh * gw, c), b, f, gh, gw).reshape(batch, -1, c)
            hidden = hidden + block.attn2(hidden, encoder_hidden_states=caption, attention_mask=bias)
            normed = block.norm2(hidden) * (1 + scale_mlp) + shift_mlp
            hidden = hidden + gate_mlp * block.ff(normed)
        shift, scale = (model.scale_shift_table[None] + embedded[:, None]).chunk(2, dim=1)
        hidden = model.proj_out(model.norm_out(hidden) * (1 + scale) + shift)
        out = model.config.out_channels
        hidden = hidden.reshape(batch, f, gh, gw, patch, patch, out).permute(0, 6, 1, 2, 4, 3, 5)
        return hidden.reshape(batch, out, f, lh, lw)

    generator = torch.Generator().manual_seed(42)
    def inputs(f, lh, lw):
        return (torch.rand(2, model.config.in_channels, f, lh, lw, generator=generator) * 2 - 1,
                (torch.rand(2, 120, model.config.caption_channels, generator=generator) * 2 - 1) * 0.2,
                torch.ones(2, 120), torch.tensor([500.0, 500.0]))
    with torch.no_grad():
        forward(*inputs(1, 2 * cell, 2 * cell))
        timed = inputs(frames, height // 8, width // 8)
        start = time.time()
        out = forward(*timed)
        seconds = time.time() - start
    print(json.dumps({"seconds": seconds, "library": "torch " + torch.__version__, "threads": torch.get_num_threads(),
                      "finite": bool(torch.isfinite(out).all()),
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
    """
}
