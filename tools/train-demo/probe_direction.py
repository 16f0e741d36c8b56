"""Direction probe: two captions ("a red circle ... on a black background", "a yellow square ... on a blue
background") with each of the 4 direction words, at the same seeds (43, 44, ...), sampled and judged as evaluate.py
does. Prints each video's displacement and its projection on the wanted direction (px, y down: up = -y), then
the direction verdicts, the mean projection, and two spreads (std of the displacement, x + y, in px): across the
4 direction words at one seed, against across the seeds for one word. A set whose direction words do nothing
has spread_across_direction_words ~ 0 (session 5's set: 0.39 against 11.5 across seeds).

    python3 tools/train-demo/probe_direction.py --set /tmp/snap [--seeds 3] [--json out.json]
"""
import argparse, json, os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate, judge, grammar
U = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--set", required=True); p.add_argument("--seeds", type=int, default=3)
p.add_argument("--json"); a = p.parse_args()
torch.set_num_threads(1)
pipe = evaluate.Pipeline(a.set)
rows = []
for c, s, bg in (("red", "circle", "black"), ("yellow", "square", "blue")):
    for seed in range(43, 43 + a.seeds):
        for d in U:
            prompt = grammar.caption(c, s, d, bg)
            r = judge.judge(judge.frames_from_tensor(pipe(prompt, seed=seed).numpy()), prompt, "filled")
            disp = r["displacement"] or [0.0, 0.0]
            proj = disp[0] * U[d][0] + disp[1] * U[d][1]
            rows.append(dict(prompt=prompt, seed=seed, dir=d, disp=disp, proj=proj, dir_ok=bool(r["direction_ok"])))
            print(f"{seed} {d:5s} {c} {s} {bg}: disp {disp} proj {proj:+.1f} {'DIR-OK' if r['direction_ok'] else ''}", flush=True)
projs = np.array([r["proj"] for r in rows])
print(json.dumps({"direction_ok": int(sum(r["dir_ok"] for r in rows)), "of": len(rows),
                  "mean_projection": round(float(projs.mean()), 2),
                  "projection_positive": int((projs > 0).sum())}))
# spread: within (caption, seed) across direction words, vs across seeds for the same word
D = {(r["prompt"].split(" moving ")[0], r["seed"], r["dir"]): np.array(r["disp"]) for r in rows}
keys = {(k[0], k[1]) for k in D}
within = np.mean([np.std([D[k + (d,)] for d in U], axis=0).sum() for k in keys])
across = np.mean([np.std([D[(cap, sd, d)] for sd in range(43, 43 + a.seeds)], axis=0).sum()
                  for cap in {k[0] for k in keys} for d in U])
print(json.dumps({"spread_across_direction_words": round(float(within), 2), "spread_across_seeds": round(float(across), 2)}))
if a.json: json.dump(rows, open(a.json, "w"), indent=1)
