"""Sanity checks of what the motion stage trains on (a silent bug there would let videos move but ignore the
direction word):

  (a) clips: every clip of WORK/data/base as train.py loads it (MP4 decode, clips.npz) judged against its own
      caption; then motion-stage batches drawn by train.motion_batch (window, sampled latents x scaling
      factor, [B, C, F, H, W]) decoded frame by frame with the work folder's VAE (or --vae) and judged against
      the captions drawn with them (caption/clip pairing through shuffling and batching);
  (b) layout: Transformer3D with a non-zero motion module on a batch of 3 clips: changing clip 1 leaves clips 0
      and 2 exactly as they were (no mixing across clips in the (b f) token layout), changing one frame of
      clip 0 changes the other frames of clip 0 (the temporal attention does mix frames), and each clip's
      output equals its output alone in a batch of one.

    python3 tools/train-demo/check_data.py --work /work/demo-work/train5 [--vae DIR] [--batches 4]
"""
from __future__ import annotations

import argparse
import os
import sys
import types

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import judge  # noqa: E402
import models  # noqa: E402
import train  # noqa: E402


def check_clips(work: str) -> None:
    clips, texts = train.frames_of(work, "base")
    bad = [i for i in range(len(clips)) if not judge.judge(clips[i], texts[i], "filled")["ok"]]
    print(f"(a) decoded clips judged against their captions: {len(clips) - len(bad)}/{len(clips)} right"
          + (f"; wrong: {bad[:10]}" if bad else ""))


def check_batches(work: str, vae_dir: str | None, batches: int, frames: int, shape_pairs: bool) -> None:
    vae = models.AutoencoderKL.from_pretrained(vae_dir or os.path.join(work, "vae")).eval()
    clips, texts = train.frames_of(work, "base")
    # as train.py draws them (the shape partners' latents are the work folder encoder's: not with --vae)
    a = types.SimpleNamespace(mm_batch=16, frames=frames, mm_reverse_pairs=1, mm_shape_pairs=int(shape_pairs), work=work)
    shapes = train.shape_latents(a) if a.mm_shape_pairs else None
    if vae_dir:  # encode with this VAE as write_latents does
        with torch.no_grad():
            flat = clips.reshape(-1, 64, 64, 3)
            means, stds = [], []
            for i in range(0, len(flat), 256):
                post = vae.encode(train.to_pixels(flat[i:i + 256])).latent_dist
                means.append(post.mean)
                stds.append(post.std)
        shape = (clips.shape[0], clips.shape[1]) + tuple(means[0].shape[1:])
        mean, std = torch.cat(means).view(shape), torch.cat(stds).view(shape)
        scale = vae.config.scaling_factor
    else:
        mean, std, scale = train.latents_of(argparse.Namespace(work=work), "base")
    rng = np.random.default_rng(3)
    ok = total = direction = 0
    wrong = []
    for _ in range(batches):
        x0, batch_texts = train.motion_batch(a, rng, mean, std, scale, texts, shapes)
        for b in range(x0.shape[0]):
            z = x0[b].permute(1, 0, 2, 3) / scale      # as evaluate.py decodes: [F, C, h, w]
            with torch.no_grad():
                y = vae.decode(z).sample
            r = judge.judge(((y / 2 + 0.5).clamp(0, 1)).permute(0, 2, 3, 1).numpy(), batch_texts[b], "filled")
            ok += r["ok"]
            direction += r["direction_ok"]
            total += 1
            if not r["ok"]:
                wrong.append(f"{batch_texts[b]}: shape {r['shape']} disp {r['displacement']}")
    print(f"(a) motion-stage batches (x0 {tuple(x0.shape)}) decoded and judged against their captions: {ok}/{total}"
          f" right, direction right {direction}/{total}")
    for w in wrong[:12]:
        print("    ", w)


def check_layout() -> None:
    torch.manual_seed(0)
    base = models.make_transformer2d()
    model = models.Transformer3D(base, motion=True).eval()
    with torch.no_grad():   # proj_out is zero-initialised: make the motion module do something
        for m in model.motion:
            torch.nn.init.normal_(m.temporal_transformer.proj_out.weight, std=0.2)
        for p in base.parameters():
            p.add_(0.02 * torch.randn_like(p))
    b, f, lat = 3, 8, models.LATENT
    x = torch.randn(b, 4, f, lat, lat)
    t = torch.tensor([10, 500, 900])
    ctx = torch.randn(b, 6, 64)
    mask = torch.ones(b, 6)
    with torch.no_grad():
        y = model(x, t, ctx, mask)
        x2 = x.clone()
        x2[1] = torch.randn_like(x2[1])
        y2 = model(x2, t, ctx, mask)
        across = max((y2[0] - y[0]).abs().max().item(), (y2[2] - y[2]).abs().max().item())
        x3 = x.clone()
        x3[0, :, 3] += 1.0
        y3 = model(x3, t, ctx, mask)
        other = (y3[0, :, [0, 1, 2, 4, 5, 6, 7]] - y[0, :, [0, 1, 2, 4, 5, 6, 7]]).abs().max().item()
        y_no = model(x3, t, ctx, mask, use_motion=False)
        y_no0 = model(x, t, ctx, mask, use_motion=False)
        other_2d = (y_no[0, :, [0, 1, 2, 4, 5, 6, 7]] - y_no0[0, :, [0, 1, 2, 4, 5, 6, 7]]).abs().max().item()
        alone = max((model(x[i:i + 1], t[i:i + 1], ctx[i:i + 1], mask[i:i + 1]) - y[i:i + 1]).abs().max().item()
                    for i in range(b))
    print(f"(b) clip 1 changed: clips 0 and 2 change by {across:.2e} (must be 0)")
    print(f"(b) frame 3 of clip 0 changed: its other frames change by {other:.2e} with the motion module (must be"
          f" > 0), {other_2d:.2e} without it (must be 0: self-attention is per frame and the caption"
          f" cross-attention's queries do not see each other)")
    print(f"(b) each clip alone vs in the batch of 3: max diff {alone:.2e} (must be ~0)")
    assert across == 0 and other > 0 and other_2d == 0 and alone < 1e-4


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True)
    p.add_argument("--vae", help="encode and decode with this VAE (default: the work folder's, and its latents.pt)")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--skip-clips", action="store_true")
    p.add_argument("--shape-pairs", action="store_true", help="batches with shape partners (train.py --mm-shape-pairs 1)")
    a = p.parse_args()
    torch.set_num_threads(2)
    check_layout()
    if not a.skip_clips:
        check_clips(a.work)
    if a.shape_pairs and a.vae:
        p.error("--shape-pairs uses the work folder's encoder: not with --vae")
    check_batches(a.work, a.vae, a.batches, a.frames, a.shape_pairs)


if __name__ == "__main__":
    main()
