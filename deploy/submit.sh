#!/usr/bin/env bash
# Builds terrafarm with MPI, uploads it to the Batch account's linked storage, renders pool/job/task JSON with the
# advisor and submits them with the Azure CLI.
#
#   deploy/submit.sh [--dry-run] PROFILE -- RENDER_FLAGS...
#     PROFILE: mpi | scenes      RENDER_FLAGS: passed to `terrafarm batch render` (--input, --mesh-out, --nodes, ...)
#
# Needs: az CLI logged in, AZ_BATCH_ACCOUNT / AZ_BATCH_ENDPOINT set (az batch account login). No key, SAS or
# connection string is written into any file here; storage access is the account's linked storage.
# --dry-run prints every command instead of running it (and still renders the JSON into a temp folder).
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
profile=${1:?usage: deploy/submit.sh [--dry-run] mpi|scenes -- RENDER_FLAGS...}
shift
[ "${1:-}" = "--" ] && shift
run() { if [ $dry = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi; }

run cargo build --release --locked --features mpi
out=$(mktemp -d)
env_flag=prod; [ "$profile" = scenes ] && env_flag=dev
target/release/terrafarm batch render --workload "$profile" --env "$env_flag" --out-dir "$out" "$@" 2>/dev/null \
  || cargo run --release --quiet -- batch render --workload "$profile" --env "$env_flag" --out-dir "$out" "$@"
pool_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$out/pool.json")
job_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$out/job.json")
run az storage blob upload --auth-mode login --account-name "${AZ_STORAGE_ACCOUNT:?set AZ_STORAGE_ACCOUNT (Batch linked storage)}" \
  --container-name terrafarm --name terrafarm --file target/release/terrafarm --overwrite
run az batch pool create --json-file "$out/pool.json"
run az batch job create --json-file "$out/job.json"
run az batch task create --job-id "$job_id" --json-file "$out/tasks.json"
echo "pool $pool_id, job $job_id; documents in $out"
