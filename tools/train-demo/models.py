"""The ea-demo networks in PyTorch: the diffusers PixArt Transformer2DModel, AutoencoderKL and T5EncoderModel with
small configs, and EasyAnimate v1's 3D transformer, whose motion module is written here.

The 3D forward mirrors EasyAnimate's Transformer3DModel with basic_block_type "motionmodule" and a VanillaGrid
motion module (easyanimate/models/transformer3d.py, attention.py, motion_module.py, April 2024), which is what
ea-weights' runner computes (Sources/Runner/PixArt/): per block

    h += gate_msa * attn1(norm1(h) * (1 + scale_msa) + shift_msa)     per frame, tokens "(b f) n c"
    h  = attn_temporal(h)                                             motion module, residual inside
    h += attn2(h, caption)                                            all frames of an item as one sequence
    h += gate_mlp * ff(norm2(h) * (1 + scale_mlp) + shift_mlp)

check_goldens.py checks this file against ea-tiny's goldens (computed by EasyAnimate itself).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import AutoencoderKL, Transformer2DModel
from diffusers.models.attention import FeedForward
from transformers import T5Config, T5EncoderModel

# ---------------------------------------------------------------------------------------------- configs
LATENT = 16  # latent height/width for 64x64 videos (VAE scale factor 4)
PATCH = 2    # transformer patch size (as the real PixArt): 8x8 tokens per 64x64 frame
WIDTH = 96  # transformer width: 6 heads x 16 (the motion module's GroupNorm(32) needs a multiple of 32)

TRANSFORMER_CONFIG = dict(
    activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=16, attention_type="default",
    caption_channels=64, cross_attention_dim=WIDTH, double_self_attention=False, dropout=0.0, in_channels=4,
    interpolation_scale=None, norm_elementwise_affine=False, norm_eps=1e-6, norm_num_groups=32,
    norm_type="ada_norm_single", num_attention_heads=WIDTH // 16, num_embeds_ada_norm=1000, num_layers=4,
    num_vector_embeds=None, only_cross_attention=False, out_channels=8, patch_size=PATCH, sample_size=LATENT,
    upcast_attention=False, use_linear_projection=False,
)

VAE_CONFIG = dict(
    act_fn="silu", block_out_channels=[16, 32, 48],  # 3 blocks: scale factor 4 (16x16 latents of 64x64)
    down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
    force_upcast=True, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=16,
    sample_size=64, scaling_factor=0.18215,  # replaced by 1/std of the trained latents at export
)

T5_CONFIG = dict(
    d_ff=128, d_kv=16, d_model=64, num_heads=4, num_layers=2, num_decoder_layers=2, dense_act_fn="gelu_new",
    feed_forward_proj="gated-gelu", is_gated_act=True, layer_norm_epsilon=1e-6, relative_attention_max_distance=128,
    relative_attention_num_buckets=32, dropout_rate=0.0, classifier_dropout=0.0, eos_token_id=1, pad_token_id=0,
    initializer_factor=1.0, tie_word_embeddings=False, is_encoder_decoder=True, use_cache=True, model_type="t5",
)

# EasyAnimate v1's yaml (config/easyanimate_video_motion_module_v1.yaml), unchanged: motion module kwargs.
MOTION = dict(num_attention_heads=8, num_transformer_block=1, attention_block_types=["Temporal_Self", "Temporal_Self"],
              temporal_position_encoding=True, temporal_position_encoding_max_len=4096, temporal_attention_dim_div=1,
              block_size=2)
MAX_TOKENS = 120  # the pipeline's max_sequence_length


def make_transformer2d() -> Transformer2DModel:
    return Transformer2DModel(**TRANSFORMER_CONFIG)


def make_vae() -> AutoencoderKL:
    return AutoencoderKL(**VAE_CONFIG)


def make_t5(vocab_size: int) -> T5EncoderModel:
    return T5EncoderModel(T5Config(vocab_size=vocab_size, **T5_CONFIG))


# ---------------------------------------------------------------------------------------------- motion module
def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """PositionalEncoding's buffer `pe` [1, length, dim]: pe[p, 2i] = sin(p·d_i), pe[p, 2i+1] = cos(p·d_i)."""
    position = torch.arange(length).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, length, dim)
    pe[0, :, 0::2] = torch.sin(position * div)
    pe[0, :, 1::2] = torch.cos(position * div)
    return pe


class PositionEncoder(nn.Module):
    def __init__(self, dim: int, max_len: int):
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_len, dim))


class TemporalSelfAttention(nn.Module):
    """VersatileAttention in Temporal mode: q/k/v without bias, `to_out.0` with bias, the frame's sinusoid added
    to its tokens, attention over (frame, row, column) of each block_size x block_size cell."""

    def __init__(self, dim: int, heads: int, head_dim: int, max_len: int, position_encoding: bool):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])
        self.pos_encoder = PositionEncoder(dim, max_len) if position_encoding else None

    def forward(self, x: torch.Tensor, frames: int, gh: int, gw: int, cell: int) -> torch.Tensor:
        bf, n, c = x.shape
        b = bf // frames
        if self.pos_encoder is not None:  # "(b f) d c -> (b d) f c", + pe[:, :f]
            x = (x.view(b, frames, n, c) + self.pos_encoder.pe[0, :frames, None, :]).view(bf, n, c)
        # "(b f) (h n w m) c -> (b h w) (f n m) c"
        seq = x.view(b, frames, gh // cell, cell, gw // cell, cell, c).permute(0, 2, 4, 1, 3, 5, 6)
        seq = seq.reshape(b * (gh // cell) * (gw // cell), frames * cell * cell, c)
        q, k, v = (t(seq).unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        out = self.to_out[0](out)
        out = out.view(b, gh // cell, gw // cell, frames, cell, cell, -1).permute(0, 3, 1, 4, 2, 5, 6)
        return out.reshape(bf, n, -1)


class TemporalBlock(nn.Module):
    def __init__(self, dim: int, kw: dict):
        super().__init__()
        heads = kw["num_attention_heads"]
        head_dim = dim // heads // kw["temporal_attention_dim_div"]
        n = len(kw["attention_block_types"])
        self.attention_blocks = nn.ModuleList([
            TemporalSelfAttention(dim, heads, head_dim, kw["temporal_position_encoding_max_len"],
                                  kw["temporal_position_encoding"]) for _ in range(n)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(n)])
        self.ff = FeedForward(dim, dropout=0.0, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x, frames, gh, gw, cell):
        for attention, norm in zip(self.attention_blocks, self.norms):
            x = attention(norm(x), frames, gh, gw, cell) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, kw: dict):
        super().__init__()
        inner = kw["num_attention_heads"] * (channels // kw["num_attention_heads"] // kw["temporal_attention_dim_div"])
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList([TemporalBlock(inner, kw) for _ in range(kw["num_transformer_block"])])
        self.proj_out = nn.Linear(inner, channels)
        nn.init.zeros_(self.proj_out.weight)   # zero_initialize: the 3D model starts as the 2D one
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x, frames, gh, gw, cell):
        h = self.norm(x.transpose(1, 2)).transpose(1, 2)   # GroupNorm per frame over (channels, tokens)
        h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, frames, gh, gw, cell)
        return self.proj_out(h) + x


class MotionModule(nn.Module):
    """`attn_temporal` of one PixArt block (VanillaTemporalModule)."""

    def __init__(self, channels: int, kw: dict = MOTION):
        super().__init__()
        self.temporal_transformer = TemporalTransformer(channels, kw)
        self.cell = kw["block_size"]

    def forward(self, x, frames, gh, gw):
        return self.temporal_transformer(x, frames, gh, gw, self.cell)


# ---------------------------------------------------------------------------------------------- 3D transformer
class Transformer3D(nn.Module):
    """`base` (a diffusers PixArt Transformer2DModel) with an optional motion module per block."""

    def __init__(self, base: Transformer2DModel, motion: bool = True, kw: dict = MOTION):
        super().__init__()
        self.base = base
        width = base.config.num_attention_heads * base.config.attention_head_dim
        self.motion = nn.ModuleList([MotionModule(width, kw) for _ in base.transformer_blocks]) if motion else None

    def motion_state_dict(self) -> dict:
        """The motion module as EasyAnimate saves it: transformer_blocks.N.attn_temporal.… (with the pe buffers)."""
        return {f"transformer_blocks.{i}.attn_temporal.{k}": v.detach().contiguous()
                for i, m in enumerate(self.motion) for k, v in m.state_dict().items()}

    def load_motion_state_dict(self, sd: dict) -> None:
        for i, m in enumerate(self.motion):
            prefix = f"transformer_blocks.{i}.attn_temporal."
            m.load_state_dict({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}, strict=True)

    def forward(self, latents, timestep, context, mask, use_motion: bool = True):
        """latents [B, C, F, H, W], timestep [B], context [B, L, caption], mask [B, L] → [B, out, F, H, W]."""
        base = self.base
        b, c, frames, height, width = latents.shape
        p = base.config.patch_size
        gh, gw = height // p, width // p
        h = base.pos_embed(latents.permute(0, 2, 1, 3, 4).reshape(b * frames, c, height, width))
        t, embedded = base.adaln_single(timestep, {"resolution": None, "aspect_ratio": None}, batch_size=b,
                                        hidden_dtype=h.dtype)
        ctx = base.caption_projection(context)
        bias = ((1 - mask.to(h.dtype)) * -10000.0)[:, None, :]
        d = h.shape[-1]
        n = gh * gw
        for i, blk in enumerate(base.transformer_blocks):
            mods = (blk.scale_shift_table[None] + t.reshape(b, 6, -1))
            sh_msa, sc_msa, g_msa, sh_mlp, sc_mlp, g_mlp = (m.repeat_interleave(frames, 0).unsqueeze(1)
                                                            for m in mods.unbind(1))
            x = blk.norm1(h) * (1 + sc_msa) + sh_msa
            h = h + g_msa * blk.attn1(x)
            if self.motion is not None and use_motion:
                h = self.motion[i](h, frames, gh, gw)
            hs = h.reshape(b, frames * n, d)
            hs = hs + blk.attn2(hs, encoder_hidden_states=ctx, attention_mask=bias)
            h = hs.reshape(b * frames, n, d)
            x = blk.norm2(h) * (1 + sc_mlp) + sh_mlp
            h = h + g_mlp * blk.ff(x)
        shift, scale = (base.scale_shift_table[None] + embedded[:, None]).chunk(2, dim=1)
        h = base.norm_out(h).view(b, frames * n, d) * (1 + scale) + shift
        h = base.proj_out(h)   # [B, F·N, p·p·out]
        out = base.config.out_channels
        h = h.view(b, frames, gh, gw, p, p, out)
        return torch.einsum("bfhwpqc->bcfhpwq", h).reshape(b, out, frames, height, width)
