"""Checks models.Transformer3D (the motion module written here) against ea-tiny's goldens, which EasyAnimate
computed: the 3D transformer with the motion module, and the 2D transformer alone (also against diffusers).

Usage: python3 tools/train-demo/check_goldens.py [--fixtures fixtures/ea-tiny]
"""
import argparse
import os

import torch
import yaml
from diffusers import Transformer2DModel
from safetensors.torch import load_file

import models

p = argparse.ArgumentParser()
p.add_argument("--fixtures", default=os.path.join(os.path.dirname(__file__), "../../fixtures/ea-tiny"))
a = p.parse_args()
torch.set_num_threads(1)
fx = a.fixtures
kw = yaml.safe_load(open(os.path.join(fx, "easyanimate_video_motion_module_v1.yaml")))["transformer_additional_kwargs"]
base = Transformer2DModel.from_pretrained(os.path.join(fx, "tiny-pixart/transformer")).eval()
model = models.Transformer3D(base, kw=kw["motion_module_kwargs"]).eval()
model.load_motion_state_dict(load_file(os.path.join(fx, "motion_module.safetensors")))
worst = 0.0
with torch.no_grad():
    g = load_file(os.path.join(fx, "goldens/transformer3d.safetensors"))
    for ts, key in (("timestep", "sample"), ("timestep_b", "sample_b")):
        out = model(g["hidden_states"], g[ts], g["encoder_hidden_states"], g["encoder_attention_mask"])
        err = (out - g[key]).abs().max().item()
        worst = max(worst, err)
        print(f"transformer3d {key}: max abs diff {err:.2e}")
    g = load_file(os.path.join(fx, "goldens/transformer2d.safetensors"))
    out = model(g["hidden_states"][:, :, None], g["timestep"], g["encoder_hidden_states"], g["encoder_attention_mask"],
                use_motion=False)[:, :, 0]
    ref = base(g["hidden_states"], encoder_hidden_states=g["encoder_hidden_states"], timestep=g["timestep"],
               encoder_attention_mask=g["encoder_attention_mask"], added_cond_kwargs={"resolution": None, "aspect_ratio": None}).sample
    for name, target in (("golden", g["sample"]), ("diffusers", ref)):
        err = (out - target).abs().max().item()
        worst = max(worst, err)
        print(f"transformer2d vs {name}: max abs diff {err:.2e}")
print("OK" if worst <= 1e-4 else "MISMATCH")
raise SystemExit(0 if worst <= 1e-4 else 1)
