#!/usr/bin/env bash
# The web UI in a real browser: starts `ea-weights serve` on the bundled model set, drives Debian's headless
# Chromium (chromedriver + selenium) through the page (fill the form, generate, wait for the video to play,
# generate again, compare the two runs, the Models view) and saves screenshots.
# Usage: scripts/browser-test.sh [folder for the screenshots, default .build/browser-test]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build/browser-test}"
scripts/install-deps.sh browser
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install -q "selenium==4.51.0"
# The same build as scripts/test.sh, so that one and this one share it.
swift build --build-tests >&2
mkdir -p "$out"
work="$(mktemp -d)"
port="${EA_WEIGHTS_BROWSER_TEST_PORT:-17860}"
.build/debug/ea-weights serve --samples "$work/samples" --port "$port" >"$work/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/api/models" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
# DNS rebinding: the same request under another name is refused.
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: rebind.example:$port" "http://127.0.0.1:$port/api/models")
[ "$status" = 403 ] || { echo "browser-test: a foreign Host got $status, not 403" >&2; exit 1; }
python3 scripts/browser-test.py "http://127.0.0.1:$port/" "$out"
echo "browser-test: screenshots in $out"
