#!/usr/bin/env bash
# One command for the simplification comparison (issue #3): installs the peers, builds terrafarm, runs them side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q pymartini pydelatin numpy pillow matplotlib
cargo build --release
python3 benches/peers.py "$@"
