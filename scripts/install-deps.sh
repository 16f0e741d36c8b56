#!/usr/bin/env bash
# Installs the Debian packages ea-weights builds against, when any is missing. Safe to run again.
# `install-deps.sh browser` adds headless Chromium and its driver for scripts/browser-test.sh.
set -euo pipefail
packages=(pkg-config libzstd-dev libarchive-dev zlib1g-dev libopenblas-dev libavcodec-dev libavformat-dev
          libavutil-dev libswscale-dev libsentencepiece-dev)
[ "${1:-}" = browser ] && packages+=(chromium chromium-driver curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ea-weights: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
