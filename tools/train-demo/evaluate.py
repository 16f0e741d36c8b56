"""Samples the exported ea-demo set with PyTorch as EasyAnimate's pipeline does (T5 prompt encoding with the
empty negative prompt first, DPM++ multistep built from the yaml's noise_scheduler_kwargs, classifier-free
guidance, the learned-sigma half dropped, per-frame VAE decoding, (x / 2 + 0.5).clamp(0, 1)) and judges every
video with judge.py.

    python3 tools/train-demo/evaluate.py --set fixtures/ea-demo                      # 24 prompts, base style
    python3 tools/train-demo/evaluate.py --set fixtures/ea-demo --transformer outline_personalized.safetensors --style outline
    python3 tools/train-demo/evaluate.py --set fixtures/ea-demo --lora outline_lora.safetensors:1 --style outline
    python3 tools/train-demo/evaluate.py --set fixtures/ea-demo --compare /tmp/runner   # judge and diff the runner's
                                                  # videos, /tmp/runner/<index>.safetensors (see README)
"""
from __future__ import annotations

import argparse
import json
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

SEEN = [
    ("red", "circle", "left", "black"), ("green", "square", "down", "gray"), ("blue", "triangle", "up", "black"),
    ("yellow", "square", "right", "blue"), ("white", "circle", "up", "green"), ("red", "triangle", "right", "gray"),
    ("green", "circle", "left", "black"), ("blue", "circle", "down", "green"), ("yellow", "triangle", "left", "black"),
    ("white", "triangle", "down", "blue"), ("red", "square", "up", "green"), ("blue", "square", "right", "gray"),
]
HELD = [
    ("red", "triangle", "left", "gray"), ("red", "square", "down", "black"), ("green", "circle", "up", "black"),
    ("green", "triangle", "right", "gray"), ("blue", "square", "left", "black"), ("yellow", "circle", "down", "green"),
    ("yellow", "triangle", "up", "gray"), ("white", "square", "right", "blue"), ("red", "triangle", "left", "green"),
    ("green", "circle", "up", "blue"), ("blue", "square", "left", "gray"), ("white", "square", "right", "black"),
]


def eval_prompts() -> dict:
    for c in SEEN:
        assert not grammar.is_held_out(*c[:3]) and c[0] != c[3]
    for c in HELD:
        assert grammar.is_held_out(*c[:3]) and c[0] != c[3]
    return {"seen": [grammar.caption(*c) for c in SEEN], "held_out": [grammar.caption(*c) for c in HELD]}


class Pipeline:
    def __init__(self, root: str, transformer: str | None = None, loras=(), pixart: str = "demo-pixart",
                 motion_module: str = "motion_module.safetensors"):
        from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, Transformer2DModel
        from safetensors.torch import load_file
        from transformers import T5EncoderModel, T5Tokenizer
        import yaml
        pix = os.path.join(root, pixart)
        cfg = yaml.safe_load(open(os.path.join(root, "easyanimate_video_motion_module_v1.yaml")))
        self.scheduler_kwargs = cfg["noise_scheduler_kwargs"]
        self.scheduler_class = DPMSolverMultistepScheduler
        self.tok = T5Tokenizer.from_pretrained(os.path.join(pix, "tokenizer"))
        self.t5 = T5EncoderModel.from_pretrained(os.path.join(pix, "text_encoder"), torch_dtype=torch.float32).eval()
        base = Transformer2DModel.from_pretrained(os.path.join(pix, "transformer")).eval()
        if transformer:
            base.load_state_dict(load_file(transformer), strict=True)
        self.model = models.Transformer3D(base, kw=cfg["transformer_additional_kwargs"]["motion_module_kwargs"]).eval()
        self.model.load_motion_state_dict(load_file(os.path.join(root, motion_module)))
        self.vae = AutoencoderKL.from_pretrained(os.path.join(pix, "vae")).eval()
        for path, mult in loras:
            merge_lora(self.model, self.t5, load_file(path), mult)

    @torch.no_grad()
    def encode(self, prompts):
        enc = self.tok([p.lower().strip() for p in prompts], padding="max_length", max_length=models.MAX_TOKENS,
                       truncation=True, add_special_tokens=True, return_tensors="pt")
        return self.t5(enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state, enc.attention_mask

    @torch.no_grad()
    def __call__(self, prompt, negative="", steps=20, guidance=6.0, seed=43, frames=8, height=64, width=64,
                 use_motion=True):
        sched = self.scheduler_class(**self.scheduler_kwargs)
        sched.set_timesteps(steps)
        g = torch.Generator("cpu").manual_seed(seed)
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)   # as the runner derives it
        latents = torch.randn([1, 4, frames, height // factor, width // factor], generator=g) * sched.init_noise_sigma
        ctx, mask = self.encode([negative, prompt])
        for t in sched.timesteps:
            inp = sched.scale_model_input(torch.cat([latents, latents]), t)
            out = self.model(inp, t.expand(2), ctx, mask, use_motion=use_motion)
            uncond, cond = out.chunk(2)
            noise = uncond + guidance * (cond - uncond)
            noise = noise.chunk(2, dim=1)[0]
            latents = sched.step(noise, t, latents, generator=g).prev_sample
        z = latents[0].permute(1, 0, 2, 3) / self.vae.config.scaling_factor
        video = torch.cat([self.vae.decode(z[i:i + 1]).sample for i in range(frames)])
        return (video / 2 + 0.5).clamp(0, 1).permute(1, 0, 2, 3)[None]   # [1, 3, F, H, W]


def merge_lora(model, t5, lora: dict, mult: float):
    """EasyAnimate's merge_lora: W += mult · (alpha / rank) · up @ down for every lora_unet / lora_te module."""
    targets = {}
    for name, mod in model.base.named_modules():
        targets["lora_unet__" + name.replace(".", "_")] = mod
    for name, mod in t5.named_modules():
        targets["lora_te_" + name.replace(".", "_")] = mod
    for key in {k.split(".")[0] for k in lora}:
        mod = targets[key]
        down, up = lora[key + ".lora_down.weight"].float(), lora[key + ".lora_up.weight"].float()
        alpha = float(lora[key + ".alpha"]) if key + ".alpha" in lora else down.shape[0]
        with torch.no_grad():
            mod.weight += mult * (alpha / down.shape[0]) * (up @ down)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", default="fixtures/ea-demo")
    p.add_argument("--transformer")
    p.add_argument("--lora", action="append", default=[])
    p.add_argument("--style", choices=["filled", "outline"], default=None)
    p.add_argument("--seed", type=int, default=43)
    p.add_argument("--seeds", type=int, default=1, help="judge each prompt at seeds seed, seed+1, ...")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=6.0)
    p.add_argument("--negative", default="", help="negative prompt (default none; `generate`'s default is "
                   "predict_t2v.py's, which train.py teaches as a no-caption)")
    p.add_argument("--save", help="write each video to DIR/<i>.safetensors")
    p.add_argument("--compare", help="also judge DIR/<i>.safetensors (the runner's) and report the max abs diff")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the report here")
    p.add_argument("--no-motion", action="store_true", help="the 2D model alone (motion module off): 8 independent "
                   "frames, for colour, shape and background before the motion stage (direction is meaningless)")
    p.add_argument("--limit", type=int, default=0, help="only the first N prompts of each group (quick checks)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from safetensors.torch import load_file, save_file
    loras = [(s.rsplit(":", 1)[0], float(s.rsplit(":", 1)[1])) if ":" in s else (s, 1.0) for s in a.lora]
    pipe = Pipeline(a.set, transformer=a.transformer, loras=loras)
    prompts = eval_prompts()
    report = {"style": a.style or "filled", "steps": a.steps, "guidance": a.guidance, "results": []}
    i = 0
    t0 = time.time()
    for group in ("seen", "held_out"):
        for prompt in prompts[group][:a.limit or None]:
            for s in range(a.seeds):
                video = pipe(prompt, negative=a.negative, steps=a.steps, guidance=a.guidance, seed=a.seed + s,
                             use_motion=not a.no_motion)
                r = judge.judge(judge.frames_from_tensor(video.numpy()), prompt, a.style or "filled")
                r.update(group=group, seed=a.seed + s, index=i)
                if a.save:
                    os.makedirs(a.save, exist_ok=True)
                    save_file({"video": video.contiguous()}, os.path.join(a.save, f"{i}.safetensors"))
                if a.compare:
                    other = load_file(os.path.join(a.compare, f"{i}.safetensors"))
                    ov = next(iter(other.values())).float()
                    r["runner_max_abs_diff"] = float((ov - video).abs().max())
                    rr = judge.judge(judge.frames_from_tensor(ov.numpy()), prompt, a.style or "filled")
                    r["runner_ok"] = rr["ok"]
                report["results"].append(r)
                print(f"{i:3d} {group:8s} {'ok ' if r['ok'] else 'BAD'} {prompt} | shape {r['shape']} votes "
                      f"{r.get('shape_votes')} style {r['style']} bg {r['background']} disp {r['displacement']}"
                      + (f" | runner {'ok' if r['runner_ok'] else 'BAD'} diff {r['runner_max_abs_diff']:.2e}"
                         if a.compare else ""), flush=True)
                i += 1
    for group in ("seen", "held_out"):
        rs = [r for r in report["results"] if r["group"] == group]
        report[f"{group}_accuracy"] = sum(r["ok"] for r in rs) / len(rs)
        if a.compare:
            report[f"{group}_runner_accuracy"] = sum(r["runner_ok"] for r in rs) / len(rs)
        report[f"{group}_parts"] = {
            "colour": sum(bool(r["colour_found"]) for r in rs),
            "background": sum(r["background"] == grammar.parse(r["prompt"])["background"] for r in rs),
            "shape": sum(r["shape"] == grammar.parse(r["prompt"])["shape"] for r in rs),
            "direction": sum(bool(r["direction_ok"]) for r in rs),
            "style": sum(r["style"] == (a.style or "filled") for r in rs), "of": len(rs)}
    report["seconds"] = round(time.time() - t0, 1)
    print(json.dumps({k: v for k, v in report.items() if k != "results"}))
    if a.json:
        json.dump(report, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
