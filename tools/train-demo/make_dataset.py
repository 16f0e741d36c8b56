"""Writes the synthetic dataset in EasyAnimate's training format.

    <dir>/json_of_internal_datasets.json   [{"file_path": "videos/000000.mp4", "text": caption, "type": "video"}, ...]
    <dir>/videos/000000.mp4 ...            8 frames of 64x64, H.264 (yuv420p, near-lossless), 8 fps
    <dir>/clip_paths.json                  each clip's geometry, to draw its shape partners (train.py)

Combinations in grammar.HELD_OUT are never written. `--outline` draws the personalized style (contours only).
Usage: python3 make_dataset.py --dir data/base --clips 1600 --seed 0 [--outline]
"""
from __future__ import annotations

import argparse
import json
import os
from fractions import Fraction

import av
import numpy as np

import grammar

PATHS = "clip_paths.json"  # each clip's geometry (grammar.random_path), for drawing it again in another shape


def write_mp4(path: str, frames: np.ndarray, fps: int = 8) -> None:
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "8", "preset": "medium"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_mp4(path: str) -> np.ndarray:
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def training_combinations():
    return [c for c in grammar.combinations() if not grammar.is_held_out(*c[:3])]


def make(directory: str, clips: int, seed: int, outline: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    combos = training_combinations()
    os.makedirs(os.path.join(directory, "videos"), exist_ok=True)
    entries, paths = [], []
    order = np.concatenate([rng.permutation(len(combos)) for _ in range(clips // len(combos) + 1)])[:clips]
    for i, k in enumerate(order):
        colour, shape, direction, background = combos[k]
        path = grammar.random_path(rng, direction)
        clip = grammar.render_clip(path, colour, shape, background, outline=outline)
        paths.append(path)
        rel = f"videos/{i:06d}.mp4"
        write_mp4(os.path.join(directory, rel), clip)
        entries.append({"file_path": rel, "text": grammar.caption(colour, shape, direction, background), "type": "video"})
    with open(os.path.join(directory, "json_of_internal_datasets.json"), "w") as f:
        json.dump(entries, f, indent=1)
    with open(os.path.join(directory, PATHS), "w") as f:  # beside EasyAnimate's list, which has no room for it
        json.dump({"outline": outline, "paths": paths}, f)
    return entries


def shape_partners(directory: str) -> np.ndarray:
    """Every clip drawn again along its own path in each of grammar.SHAPES: uint8 [N, len(SHAPES), F, H, W, 3]
    (cached in shape_partners.npz). The clip's own shape is drawn too (uncompressed, unlike its MP4)."""
    cache = os.path.join(directory, "shape_partners.npz")
    if os.path.exists(cache):
        return np.load(cache)["clips"]
    with open(os.path.join(directory, "json_of_internal_datasets.json")) as f:
        entries = json.load(f)
    with open(os.path.join(directory, PATHS)) as f:
        meta = json.load(f)
    out = []
    for e, path in zip(entries, meta["paths"]):
        w = grammar.parse(e["text"])
        out.append(np.stack([grammar.render_clip(path, w["colour"], s, w["background"], outline=meta["outline"])
                             for s in grammar.SHAPES]))
    clips = np.stack(out)
    np.savez(cache, clips=clips)
    return clips


def load(directory: str) -> tuple[np.ndarray, list[str]]:
    """All clips as uint8 [N, F, H, W, 3] and their captions, decoded from the MP4s (cached in clips.npz)."""
    cache = os.path.join(directory, "clips.npz")
    with open(os.path.join(directory, "json_of_internal_datasets.json")) as f:
        entries = json.load(f)
    texts = [e["text"] for e in entries]
    if os.path.exists(cache):
        return np.load(cache)["clips"], texts
    clips = np.stack([read_mp4(os.path.join(directory, e["file_path"])) for e in entries])
    np.savez(cache, clips=clips)
    return clips, texts


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True)
    p.add_argument("--clips", type=int, default=1600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--outline", action="store_true")
    a = p.parse_args()
    print(f"{len(make(a.dir, a.clips, a.seed, a.outline))} clips written to {a.dir}")
