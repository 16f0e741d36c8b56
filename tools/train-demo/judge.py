"""Judges a generated video against its prompt from the pixels alone (the algorithm the Swift test reimplements).

Input: frames [F, H, W, 3] with values in [0, 1] (or uint8), and a prompt of the grammar
"a {colour} {shape} moving {direction} on a {background} background".

1. Palette. Every pixel is labelled with the nearest (Euclidean RGB, values in [0, 1]) of the nine palette
   colours: the five object colours and the four backgrounds (object blue/green and background blue/green are
   different shades, so they are different labels). A pixel belongs to the object when its label is the prompt's
   colour and its distance to it is at most COLOUR_RADIUS.
2. Background. The label of the median colour (per channel) of the pixels on the frame's one-pixel border, over
   all frames, must be the prompt's background.
3. Region. Per frame, the largest 4-connected component of the object mask. A frame counts when it has at
   least MIN_AREA pixels; the colour is found when at least 3/4 of the frames count.
4. Holes. The component is filled: every pixel not in it that cannot be reached from the frame border through
   pixels not in it (4-connectivity) is added (an outline becomes its solid shape).
5. Shape, per counted frame, from the filled component's bounding box (w × h) and area A: fill = A / (w·h);
   fill >= SQUARE_FILL → square, fill < TRIANGLE_FILL → triangle, otherwise circle (a disc fills π/4 ≈ 0.785
   of its box, a square 1, an isosceles triangle 0.5). The video's shape is the majority over counted frames
   (ties: the earlier of square, circle, triangle).
6. Style: ring = (component area) / (filled area), median over counted frames; "outline" when ring <
   OUTLINE_RING, else "filled".
7. Motion. The centroid (mean x, mean y of the filled component) of each counted frame; a least-squares line
   against the frame index gives the velocity (vx, vy) in pixels per frame, and the displacement over the clip is
   v · (F − 1). Along the prompt's axis (x for left/right, y for up/down, y pointing down) it must have the
   prompt's sign and at least MIN_TRAVEL pixels; across it, at most half the travel along it.
8. The video is right when the colour is found and the background, shape and direction are right (and, when an
   expected style is given, the style).

Usage: python3 judge.py video.safetensors "a red circle moving left on a black background" [--style outline]
       (a safetensors file as `ea-weights generate --out x.safetensors` writes, [1, 3, F, H, W] in [0, 1];
        or an .mp4/.gif/.png strip is not accepted: judge the tensor, not a compressed copy)
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, deque

import numpy as np

import grammar

COLOUR_RADIUS = 0.30   # max distance in RGB [0,1] to the prompt's colour
MIN_AREA = 12          # pixels of the object's component in a 64x64 frame for the frame to count
SQUARE_FILL = 0.85
TRIANGLE_FILL = 0.67
OUTLINE_RING = 0.75
MIN_TRAVEL = 6.0       # pixels over the clip along the prompt's direction

PALETTE_NAMES = [f"object:{c}" for c in grammar.COLOURS] + [f"background:{b}" for b in grammar.BACKGROUNDS]
PALETTE = np.array(list(grammar.COLOURS.values()) + list(grammar.BACKGROUNDS.values()), dtype=np.float64) / 255


def labels(frames: np.ndarray):
    """Nearest palette index and distance per pixel: [F, H, W] each."""
    d = np.linalg.norm(frames[..., None, :] - PALETTE[None, None, None], axis=-1)
    return d.argmin(-1), d.min(-1)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a 2D bool mask (first found wins ties); empty when none."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best = []
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not seen[y, x]:
                comp, queue = [], deque([(y, x)])
                seen[y, x] = True
                while queue:
                    cy, cx = queue.popleft()
                    comp.append((cy, cx))
                    for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
                if len(comp) > len(best):
                    best = comp
    out = np.zeros_like(mask, dtype=bool)
    for y, x in best:
        out[y, x] = True
    return out


def fill_holes(comp: np.ndarray) -> np.ndarray:
    """comp plus every pixel outside it not reachable from the border through pixels outside it."""
    h, w = comp.shape
    outside = np.zeros_like(comp, dtype=bool)
    queue = deque()
    for y in range(h):
        for x in range(w):
            if (y in (0, h - 1) or x in (0, w - 1)) and not comp[y, x]:
                outside[y, x] = True
                queue.append((y, x))
    while queue:
        cy, cx = queue.popleft()
        for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
            if 0 <= ny < h and 0 <= nx < w and not comp[ny, nx] and not outside[ny, nx]:
                outside[ny, nx] = True
                queue.append((ny, nx))
    return ~outside


def classify(fill: float) -> str:
    if fill >= SQUARE_FILL:
        return "square"
    if fill < TRIANGLE_FILL:
        return "triangle"
    return "circle"


def judge(frames, prompt: str, style: str | None = None) -> dict:
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        frames = frames.astype(np.float64) / 255
    frames = frames.astype(np.float64)
    want = grammar.parse(prompt)
    n = frames.shape[0]
    label, dist = labels(frames)
    target = PALETTE_NAMES.index(f"object:{want['colour']}")
    mask = (label == target) & (dist <= COLOUR_RADIUS)

    border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1).reshape(-1, 3)
    bg_colour = np.median(border, axis=0)
    bg_palette = PALETTE[len(grammar.COLOURS):]
    background = list(grammar.BACKGROUNDS)[int(np.linalg.norm(bg_palette - bg_colour, axis=1).argmin())]

    shapes, rings, centroids, counted = [], [], [], []
    for f in range(n):
        comp = largest_component(mask[f])
        area = int(comp.sum())
        if area < MIN_AREA:
            continue
        filled = fill_holes(comp)
        ys, xs = np.nonzero(filled)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        shapes.append(classify(len(ys) / box))
        rings.append(area / len(ys))
        centroids.append((xs.mean(), ys.mean()))
        counted.append(f)

    result = {"prompt": prompt, "want": want, "frames_counted": len(counted), "background": background}
    found = len(counted) >= 0.75 * n
    result["colour_found"] = bool(found)
    if not counted:
        result.update(shape=None, style=None, displacement=None, direction_ok=False, ok=False)
        return result
    votes = Counter(shapes)
    shape = max(("square", "circle", "triangle"), key=lambda s: votes[s])
    ring = float(np.median(rings))
    got_style = "outline" if ring < OUTLINE_RING else "filled"
    t = np.array(counted, dtype=np.float64)
    c = np.array(centroids)
    if len(counted) >= 2:
        tc = t - t.mean()
        v = (tc[:, None] * (c - c.mean(0))).sum(0) / (tc ** 2).sum()
    else:
        v = np.zeros(2)
    disp = v * (n - 1)
    dx, dy = grammar.DIRECTIONS[want["direction"]]
    along = disp[0] * dx + disp[1] * dy
    across = abs(disp[1]) if dx else abs(disp[0])
    direction_ok = bool(along >= MIN_TRAVEL and across <= 0.5 * along)
    ok = bool(found and background == want["background"] and shape == want["shape"] and direction_ok
              and (style is None or got_style == style))
    result.update(shape=shape, shape_votes=dict(votes), style=got_style, ring=round(ring, 3),
                  displacement=[round(float(disp[0]), 2), round(float(disp[1]), 2)], direction_ok=direction_ok, ok=ok)
    if style is not None:
        result["style_wanted"] = style
    return result


def frames_from_tensor(video) -> np.ndarray:
    """[1, 3, F, H, W] (the pipeline's video) → [F, H, W, 3]."""
    v = np.asarray(video, dtype=np.float64)
    if v.ndim == 5:
        v = v[0]
    return np.transpose(v, (1, 2, 3, 0))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video")
    p.add_argument("prompt")
    p.add_argument("--style", choices=["filled", "outline"])
    a = p.parse_args()
    from safetensors.numpy import load_file
    tensors = load_file(a.video)
    key = "video" if "video" in tensors else next(iter(tensors))
    r = judge(frames_from_tensor(tensors[key].astype(np.float64)), a.prompt, a.style)
    print(json.dumps(r))
    sys.exit(0 if r["ok"] else 1)
