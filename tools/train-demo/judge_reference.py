"""Writes the reference the Swift port of judge.py is checked against: clips as lossless video and judge.py's
verdict, with every intermediate, on exactly those pixels.

    python3 tools/train-demo/judge_reference.py --out fixtures/ea-demo-judge \
        [--videos DIR:STYLE ...]     # also videos saved by evaluate.py --save (STYLE: filled or outline)

clips.mov: every clip's 8 frames in order, 64x64 RGB, PNG-coded in QuickTime (lossless). verdicts.json: one entry per clip,
{"prompt", "style" (the style asked of the judge), "source", "result" (judge.py's dict)}. The clips: the 216
combinations drawn filled and drawn as outlines (seed 11), then the given generated videos rounded to uint8.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from fractions import Fraction

import av
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate  # noqa: E402
import grammar  # noqa: E402
import judge  # noqa: E402

FRAMES = 8


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--videos", action="append", default=[], help="DIR:STYLE, DIR/<i>.safetensors of evaluate.py")
    a = p.parse_args()
    clips, entries = [], []
    rng = np.random.default_rng(11)
    for outline in (False, True):
        style = "outline" if outline else "filled"
        for colour, shape, direction, background in grammar.combinations():
            clips.append(grammar.random_clip(rng, colour, shape, direction, background, frames=FRAMES, outline=outline))
            entries.append({"prompt": grammar.caption(colour, shape, direction, background), "style": style,
                            "source": "drawn"})
    prompts = evaluate.eval_prompts()
    prompts = prompts["seen"] + prompts["held_out"]
    from safetensors.numpy import load_file
    for spec in a.videos:
        directory, style = spec.rsplit(":", 1)
        for i, prompt in enumerate(prompts):
            video = load_file(os.path.join(directory, f"{i}.safetensors"))["video"]
            frames = judge.frames_from_tensor(video)
            clips.append((np.clip(frames, 0, 1) * 255).round().astype(np.uint8))
            entries.append({"prompt": prompt, "style": style, "source": f"{os.path.basename(directory)}/{i}"})
    for clip, entry in zip(clips, entries):
        entry["result"] = judge.judge(clip, entry["prompt"], entry["style"])
    os.makedirs(a.out, exist_ok=True)
    with av.open(os.path.join(a.out, "clips.mov"), "w") as container:
        stream = container.add_stream("png", rate=Fraction(8))
        stream.width = stream.height = grammar.SIZE
        stream.pix_fmt = "rgb24"
        for clip in clips:
            for f in clip:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(os.path.join(a.out, "clips.mov")) as container:  # lossless: decoded back bit for bit
        back = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert back.shape == (len(clips) * FRAMES, grammar.SIZE, grammar.SIZE, 3) and (back == np.concatenate(clips)).all()
    with open(os.path.join(a.out, "verdicts.json"), "w") as f:
        json.dump({"frames_per_clip": FRAMES, "clips": entries}, f, indent=0)
    right = sum(e["result"]["ok"] for e in entries)
    print(f"{len(entries)} clips ({right} judged right) in {a.out}")


if __name__ == "__main__":
    main()
