"""Writes the synthetic dataset in EasyAnimate's training format.

    <dir>/json_of_internal_datasets.json   [{"file_path": "videos/000000.mp4", "text": caption, "type": "video"}, ...]
    <dir>/videos/000000.mp4 ...            16 frames of 64x64, H.264 (yuv420p, near-lossless), 8 fps

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
    entries = []
    order = np.concatenate([rng.permutation(len(combos)) for _ in range(clips // len(combos) + 1)])[:clips]
    for i, k in enumerate(order):
        colour, shape, direction, background = combos[k]
        clip = grammar.random_clip(rng, colour, shape, direction, background, outline=outline)
        rel = f"videos/{i:06d}.mp4"
        write_mp4(os.path.join(directory, rel), clip)
        entries.append({"file_path": rel, "text": grammar.caption(colour, shape, direction, background), "type": "video"})
    with open(os.path.join(directory, "json_of_internal_datasets.json"), "w") as f:
        json.dump(entries, f, indent=1)
    return entries


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
