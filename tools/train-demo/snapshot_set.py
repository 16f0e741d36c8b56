"""Exports a training snapshot (WORK/dit2d-snapshot.pt, WORK/motion-snapshot.pt, or a stage checkpoint
dit2d.pt / motion.pt) as a set evaluate.py can sample, without the style variants:

    python3 tools/train-demo/snapshot_set.py --work /work/demo-work/train5 --snapshot motion-snapshot.pt --out /tmp/snap
    python3 tools/train-demo/evaluate.py --set /tmp/snap --limit 4

A dit2d snapshot gets a zero-initialised motion module (the 3D model is then the 2D one: use --no-motion).
The snapshot's T5 is rounded to BF16 as the export does.
"""
from __future__ import annotations

import argparse
import os
import sys
import types

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
import train  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True)
    p.add_argument("--snapshot", required=True, help="a file in --work")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    ck = torch.load(os.path.join(a.work, a.snapshot))
    train.PREDICTION = ck.get("prediction", "epsilon")  # the export writes it into the scheduler and yaml
    base = models.make_transformer2d()
    base.load_state_dict(ck["base"])
    if "motion" not in ck:
        ck["motion"] = models.Transformer3D(base, motion=True).motion_state_dict()
    t5 = {k: v.to(torch.bfloat16).float() for k, v in ck["t5"].items()}
    stages = {"motion": {"base": ck["base"], "t5": t5, "motion": ck["motion"]},
              "personalized": {"personalized": ck["base"]}, "lora": {}}
    train.load_stage = lambda _a, name: stages[name]
    from safetensors.torch import save_file
    real_save = save_file
    train_args = types.SimpleNamespace(out=a.out, work=a.work, lora_rank=8, lora_alpha=8.0)
    os.makedirs(a.out, exist_ok=True)
    import safetensors.torch as st
    st.save_file = lambda d, path, metadata=None: real_save(d, path, metadata=metadata) if d else None
    train.stage_export(train_args)


if __name__ == "__main__":
    main()
