"""How much a checkpoint uses the direction word, measured on training clips (no sampling): the MSE of the
motion model's x0 estimate with the true caption against the same clips, noise and timestep with the direction
word swapped for its opposite (left <-> right, up <-> down). gap = swapped - true, per timestep; ~0 means the
word is ignored. (For an eps model gap/true is the same as in eps terms: eps MSE = SNR x0 MSE at one t.)

    python3 tools/train-demo/direction_gap.py --work W --ckpt motion-snapshot.pt [--batches 4]
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grammar  # noqa: E402
import models  # noqa: E402
import train  # noqa: E402



def swap(text: str) -> str:
    w = grammar.parse(text)
    return grammar.caption(w["colour"], w["shape"], grammar.OPPOSITE[w["direction"]], w["background"])


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True)
    p.add_argument("--ckpt", required=True, help="a motion checkpoint or snapshot in --work")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ck = torch.load(os.path.join(a.work, a.ckpt))
    train.PREDICTION = ck.get("prediction", "epsilon")
    tok = train.tokenizer(a.work)
    base = models.make_transformer2d()
    base.load_state_dict(ck["base"])
    model = models.Transformer3D(base, motion=True).eval()
    model.load_motion_state_dict(ck["motion"])
    t5 = models.make_t5(len(tok)).eval()
    t5.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in ck["t5"].items()})
    mean, std, scale = train.latents_of(a, "base")
    _, texts = train.frames_of(a.work, "base")
    acp = train.ddpm_alphas_cumprod()
    rng = np.random.default_rng(123)
    g = torch.Generator().manual_seed(123)
    args = argparse.Namespace(mm_batch=16, frames=8, mm_reverse_pairs=False)
    batches = [train.motion_batch(args, rng, mean, std, scale, texts) for _ in range(a.batches)]
    noises = [torch.randn(x0.shape, generator=g) for x0, _ in batches]
    print("t    x0 MSE true  swapped  gap     gap/true")
    for tv in (100, 300, 500, 700, 800, 900):
        lt = ls = 0.0
        for (x0, caps), noise in zip(batches, noises):
            t = torch.full((x0.shape[0],), tv)
            ab = acp[t].view(-1, 1, 1, 1, 1)
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
            for which, cs in (("t", caps), ("s", [swap(c) for c in caps])):
                ids, mask = train.encode_text(tok, cs)
                ctx = t5(ids, attention_mask=mask).last_hidden_state
                out = model(xt, t, ctx, mask, use_motion=True)[:, :x0.shape[1]]
                l = float(((train.predicted_x0(out, xt, ab) - x0) ** 2).mean())
                if which == "t":
                    lt += l / len(batches)
                else:
                    ls += l / len(batches)
        print(f"{tv:3d}  {lt:.5f}    {ls:.5f}       {ls - lt:+.5f}  {(ls - lt) / lt:+.4f}", flush=True)


if __name__ == "__main__":
    main()
