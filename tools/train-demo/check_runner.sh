#!/bin/sh
# Generates the 24 evaluation prompts with ea-weights' runner and judges them beside the PyTorch samples.
#   tools/train-demo/check_runner.sh [BINARY] [OUTDIR] [extra generate flags, e.g. --transformer F / --lora F:1]
# Writes OUTDIR/<i>.safetensors (the runner's videos), then runs evaluate.py --compare OUTDIR.
# No negative prompt, as evaluate.py (pass --negative-prompt TEXT to change it, and evaluate.py --negative TEXT).
set -eu
bin=${1:-.build/release/ea-weights}; out=${2:-/tmp/ea-demo-runner}; shift 2 2>/dev/null || true
set_dir=fixtures/ea-demo
mkdir -p "$out"
i=0
python3 -c 'import sys; sys.path.insert(0, "tools/train-demo"); import evaluate; p = evaluate.eval_prompts(); print("\n".join(p["seen"] + p["held_out"]))' |
while IFS= read -r prompt; do
  "$bin" generate --pixart "$set_dir/demo-pixart" --motion-module "$set_dir/motion_module.safetensors" \
    --config "$set_dir/easyanimate_video_motion_module_v1.yaml" --negative-prompt "" "$@" --prompt "$prompt" --frames 8 --height 64 \
    --width 64 --steps 20 --seed 43 --out "$out/$i.safetensors" > /dev/null
  i=$((i + 1))
done
echo "runner videos in $out"
