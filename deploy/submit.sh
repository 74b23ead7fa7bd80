#!/usr/bin/env bash
# Builds terrafarm with MPI, uploads it to the Batch account's linked storage, renders pool/job/task JSON with the
# advisor and submits them with the Azure CLI.
#
#   deploy/submit.sh [--dry-run] PROFILE -- RENDER_FLAGS...
#     PROFILE: mpi | scenes      RENDER_FLAGS: passed to `terrafarm batch render` (--input, --mesh-out, --nodes, ...)
#
# Needs: az CLI logged in, AZ_BATCH_ACCOUNT / AZ_BATCH_ENDPOINT set (az batch account login). No key, SAS or
# connection string is written into any file here; the binary comes from the account's linked storage.
# Blob outputs (--mesh-out az://...): with `--blob-auth sas`, export TERRAFARM_SAS (the SAS token for the output
# container); it is added to the job's environment as AZURE_STORAGE_SAS_TOKEN in a private temporary copy of
# job.json that is deleted after submission, and never printed. With `--blob-auth identity` (default) the pool
# needs a managed identity with Storage Blob Data Contributor on the account (assigned through ARM).
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
[ $dry = 1 ] || [ -n "${AZ_STORAGE_ACCOUNT:-}" ] || { echo "set AZ_STORAGE_ACCOUNT (the Batch account's linked storage)" >&2; exit 2; }
run az storage blob upload --auth-mode login --account-name "${AZ_STORAGE_ACCOUNT:-$([ $dry = 1 ] && echo '<linked-storage-account>')}" \
  --container-name terrafarm --name terrafarm --file target/release/terrafarm --overwrite
run az batch pool create --json-file "$out/pool.json"
job_json="$out/job.json"
need_sas=0
case " $* " in *" --blob-auth sas "*|*" --blob-auth=sas "*) need_sas=1 ;; esac
if [ $need_sas = 1 ]; then
  [ -n "${TERRAFARM_SAS:-}" ] || { echo "set TERRAFARM_SAS to the output container's SAS token" >&2; exit 2; }
  job_json=$(umask 077; mktemp --suffix=.json)
  trap 'rm -f "$job_json"' EXIT
  python3 - "$out/job.json" "$job_json" <<'PY'
import json, os, sys
job = json.load(open(sys.argv[1]))
job.setdefault("commonEnvironmentSettings", []).append({"name": "AZURE_STORAGE_SAS_TOKEN", "value": os.environ["TERRAFARM_SAS"].lstrip("?")})
json.dump(job, open(sys.argv[2], "w"))
PY
fi
run az batch job create --json-file "$job_json"
run az batch task create --job-id "$job_id" --json-file "$out/tasks.json"
echo "pool $pool_id, job $job_id; documents in $out"
