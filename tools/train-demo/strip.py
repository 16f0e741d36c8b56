"""A frame strip PNG of a video tensor: python3 strip.py video.safetensors out.png [--scale 3] [--every 1]
(the [1, 3, F, H, W] float tensor `video` that `ea-weights generate --out x.safetensors` writes; several
videos give one row each)."""
import argparse

import numpy as np
from PIL import Image
from safetensors.numpy import load_file

p = argparse.ArgumentParser()
p.add_argument("videos", nargs="+")
p.add_argument("out")
p.add_argument("--scale", type=int, default=3)
p.add_argument("--every", type=int, default=1)
a = p.parse_args()
rows = []
for path in a.videos:
    v = load_file(path)["video"][0]                      # [3, F, H, W]
    frames = np.transpose(v, (1, 2, 3, 0))[::a.every]    # [F, H, W, 3]
    gap = np.ones((frames.shape[1], 2, 3))
    rows.append(np.concatenate([x for f in frames for x in (f, gap)][:-1], axis=1))
img = np.concatenate([x for r in rows for x in (r, np.ones((2, r.shape[1], 3)))][:-1], axis=0)
img = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
img.resize((img.width * a.scale, img.height * a.scale), Image.NEAREST).save(a.out)
print(f"wrote {a.out} ({img.width * a.scale}x{img.height * a.scale})")
