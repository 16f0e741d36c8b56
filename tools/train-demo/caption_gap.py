"""How much a checkpoint uses a caption word, measured on training clips (no sampling): the MSE of the model's
x0 estimate with the true caption against the same clips, noise and timestep with the word swapped: the
direction for its opposite (left <-> right, up <-> down), or the shape (circle <-> square, on the circle and square
clips only: the two shapes whose clips differ least, in the corners). gap = swapped - true, per timestep; ~0
means the word is ignored. (For an eps model gap/true is the same as in eps terms: eps MSE = SNR x0 MSE at one t.)
A dit2d checkpoint is measured as the 2D model alone on the clips' frames.

    python3 tools/train-demo/caption_gap.py --work W --ckpt motion-snapshot.pt [--word shape] [--batches 4]
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



OTHER_SHAPE = {"circle": "square", "square": "circle"}


def swap(text: str, word: str) -> str:
    w = grammar.parse(text)
    if word == "shape":
        return grammar.caption(w["colour"], OTHER_SHAPE[w["shape"]], w["direction"], w["background"])
    return grammar.caption(w["colour"], w["shape"], grammar.OPPOSITE[w["direction"]], w["background"])


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True)
    p.add_argument("--ckpt", required=True, help="a motion checkpoint or snapshot in --work")
    p.add_argument("--word", choices=["direction", "shape"], default="direction")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ck = torch.load(os.path.join(a.work, a.ckpt))
    train.PREDICTION = ck.get("prediction", "epsilon")
    tok = train.tokenizer(a.work)
    base = models.make_transformer2d()
    base.load_state_dict(ck["base"])
    use_motion = "motion" in ck  # a dit2d checkpoint has none: the 2D model alone, frame by frame
    model = models.Transformer3D(base, motion=use_motion).eval()
    if use_motion:
        model.load_motion_state_dict(ck["motion"])
    t5 = models.make_t5(len(tok)).eval()
    t5.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in ck["t5"].items()})
    mean, std, scale = train.latents_of(a, "base")
    _, texts = train.frames_of(a.work, "base")
    acp = train.ddpm_alphas_cumprod()
    rng = np.random.default_rng(123)
    g = torch.Generator().manual_seed(123)
    args = argparse.Namespace(mm_batch=16, frames=8, mm_reverse_pairs=False, mm_shape_pairs=False)
    batches = [train.motion_batch(args, rng, mean, std, scale, texts) for _ in range(a.batches)]
    if a.word == "shape":  # the circle and square clips of each batch
        batches = [(x0[keep], [caps[i] for i in keep]) for x0, caps in batches
                   for keep in [[i for i, c in enumerate(caps) if grammar.parse(c)["shape"] in OTHER_SHAPE]]]
    noises = [torch.randn(x0.shape, generator=g) for x0, _ in batches]
    print("t    x0 MSE true  swapped  gap     gap/true")
    for tv in (100, 300, 500, 600, 700, 800, 900):
        lt = ls = 0.0
        for (x0, caps), noise in zip(batches, noises):
            t = torch.full((x0.shape[0],), tv)
            ab = acp[t].view(-1, 1, 1, 1, 1)
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
            for which, cs in (("t", caps), ("s", [swap(c, a.word) for c in caps])):
                ids, mask = train.encode_text(tok, cs)
                ctx = t5(ids, attention_mask=mask).last_hidden_state
                out = model(xt, t, ctx, mask, use_motion=use_motion)[:, :x0.shape[1]]
                l = float(((train.predicted_x0(out, xt, ab) - x0) ** 2).mean())
                if which == "t":
                    lt += l / len(batches)
                else:
                    ls += l / len(batches)
        print(f"{tv:3d}  {lt:.5f}    {ls:.5f}       {ls - lt:+.5f}  {(ls - lt) / lt:+.4f}", flush=True)


if __name__ == "__main__":
    main()
