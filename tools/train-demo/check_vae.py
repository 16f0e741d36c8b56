"""Judges VAE reconstructions of freshly drawn clips: the limit the VAE sets on every generated video.

    python3 tools/train-demo/check_vae.py --vae fixtures/ea-demo/demo-pixart/vae [--outline] [--sample]

Every one of the 216 combinations (held-out ones too) is drawn once (8 frames, seed 7), encoded (posterior mean,
or a sample with --sample, as training sees), decoded frame by frame, and judged with judge.py.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train.py: shared cores

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar  # noqa: E402
import judge  # noqa: E402
import models  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae", required=True)
    p.add_argument("--outline", action="store_true")
    p.add_argument("--sample", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    vae = models.AutoencoderKL.from_pretrained(a.vae).eval()
    rng = np.random.default_rng(7)
    t0 = time.time()
    wrong, results = [], {"colour": 0, "background": 0, "shape": 0, "direction": 0, "ok": 0}
    combos = list(grammar.combinations())
    for colour, shape, direction, background in combos:
        clip = grammar.random_clip(rng, colour, shape, direction, background, outline=a.outline)[:8]
        x = torch.from_numpy(clip).float().permute(0, 3, 1, 2) / 127.5 - 1
        with torch.no_grad():
            post = vae.encode(x).latent_dist
            y = vae.decode(post.sample() if a.sample else post.mean).sample
        frames = ((y / 2 + 0.5).clamp(0, 1)).permute(0, 2, 3, 1).numpy()
        prompt = grammar.caption(colour, shape, direction, background)
        r = judge.judge(frames, prompt, "outline" if a.outline else "filled")
        results["colour"] += r["colour_found"]
        results["background"] += r["background"] == background
        results["shape"] += r["shape"] == shape
        results["direction"] += r["direction_ok"]
        results["ok"] += r["ok"]
        if not r["ok"]:
            wrong.append(f"{prompt}: shape {r['shape']} {r.get('shape_votes')} style {r['style']} disp {r['displacement']}")
    print("\n".join(wrong[:20]))
    print({k: f"{v}/{len(combos)}" for k, v in results.items()}, f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
