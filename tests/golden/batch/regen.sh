#!/usr/bin/env bash
# Regenerates the golden Batch documents (tests/batch.rs compares against them). Run from the repository root.
set -euo pipefail
bin=${1:-target/release/terrafarm}
"$bin" batch render --workload mpi --nodes 4 --vm-size Standard_D16as_v5 --cores 16 \
  --input '$AZ_BATCH_NODE_SHARED_DIR/alps.f32' --mesh-arg=--size --mesh-arg=8193x8193 --mesh-arg=--max-error --mesh-arg=1 \
  --mesh-out az://tiles/alps --storage-account terrafarmdata --blob-auth identity --identity-client-id 11111111-2222-3333-4444-555555555555 \
  --pool-id terrafarm-mpi --job-id alps-mpi --out-dir tests/golden/batch/mpi
"$bin" batch render --workload scenes --env dev --nodes 8 --vm-size Standard_D8as_v5 --cores 8 --autoscale \
  --input '$AZ_BATCH_NODE_SHARED_DIR/a.png' --input '$AZ_BATCH_NODE_SHARED_DIR/b.hgt' --mesh-arg=--max-error --mesh-arg=2 \
  --mesh-out az://tiles/dev --storage-account terrafarmdata --blob-auth sas \
  --pool-id terrafarm-dev --job-id scenes-dev --out-dir tests/golden/batch/scenes
"$bin" batch render --workload scenes --env prod --nodes 3 --vm-size Standard_NC4as_T4_v3 --cores 4 --render \
  --input '$AZ_BATCH_NODE_SHARED_DIR/fuji.tif' --input '$AZ_BATCH_NODE_SHARED_DIR/etna.tif' --mesh-arg=--max-error --mesh-arg=1 \
  --mesh-out az://tiles/gpu --storage-account terrafarmdata --blob-auth identity \
  --pool-id terrafarm-gpu --job-id render-gpu --out-dir tests/golden/batch/render
