#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers of untrusted input (libFuzzer through `swiftc -sanitize=fuzzer,address`).
# Usage: scripts/fuzz.sh [seconds per target, default 60] [target...]
# Targets: safetensors-header shard-index tar-extract lora-keys tokenizer-config yaml-config (all by default).
# Seeds and regression inputs live in fixtures/fuzz/<target>/ (the tests replay them); new coverage goes to
# .build-fuzz/corpus/<target>/, and a crash, hang or leak is saved to .build-fuzz/findings/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors-header shard-index tar-extract lora-keys tokenizer-config yaml-config)

scripts/install-deps.sh
swift build --product ea-weights-fuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING >&2
binary=.build-fuzz/debug/ea-weights-fuzz
mkdir -p .build-fuzz/findings
failed=0
for target in "${targets[@]}"; do
  corpus=".build-fuzz/corpus/$target"
  mkdir -p "$corpus"
  log=".build-fuzz/$target.log"
  # A crash report can stall while symbolizing: no symbolization, and an outer SIGKILL bound.
  if EA_WEIGHTS_FUZZ_TARGET="$target" ASAN_OPTIONS=symbolize=0:detect_leaks=1 \
     timeout -s KILL $((seconds + 60)) "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -max_len=65536 -artifact_prefix=".build-fuzz/findings/$target-" "$corpus" "fixtures/fuzz/$target" >"$log" 2>&1
  then
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 || true)
    echo "fuzz $target: ${runs:-done}, no findings"
  else
    echo "fuzz $target: FOUND A PROBLEM (see $log and .build-fuzz/findings/)"
    tail -20 "$log" >&2
    failed=1
  fi
done
exit $failed
