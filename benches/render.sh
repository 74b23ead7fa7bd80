#!/usr/bin/env bash
# Render benchmark (issue #14): builds terrafarm, then measures `terrafarm render` on fuji 4097² (full resolution and
# 1 m) on this machine's Vulkan adapter. Needs a Vulkan driver (apt-get install mesa-vulkan-drivers for lavapipe).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q numpy pillow
cargo build --release
python3 benches/render.py "$@"
