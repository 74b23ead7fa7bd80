#!/usr/bin/env bash
# GeoTIFF benchmarks (issue #11), side by side in one run on an idle machine:
#  1. decode throughput of a Deflate + predictor-3 float32 COG: `terrafarm bench --input` (open + decode, one
#     thread) against `gdal_translate` of the same file to raw f32 (GDAL_NUM_THREADS=1), both to/from the page cache;
#  2. peak RSS against raster size: `terrafarm mesh --max-error 5 --format glb` of raw f32 and of a tiled Deflate
#     GeoTIFF of the same samples, for each size in SIZES (default "4097 16385"; add 32769 for the 4.3 GB case),
#     as the process's own VmHWM (the "peak RSS" line it logs), with seconds and ns per sample.
# Usage: bash benches/geotiff.sh [SIZES...]   (needs gdal-bin; writes into a temporary folder it removes)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
tf=$PWD/target/release/terrafarm
sizes=("${@:-4097 16385}")
read -r -a sizes <<<"${sizes[*]}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tf-geotiff-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
hdr() { printf 'ENVI\nsamples = %s\nlines = %s\nbands = 1\nheader offset = 0\ndata type = 4\ninterleave = bsq\nbyte order = 0\n' "$1" "$1" >"$2"; }
now() { date +%s.%N; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, $(gdal_translate --version)"
echo
echo "## Decode: Deflate + predictor 3 float32 COG, one thread, best of 3"
n=8193
"$tf" synth --size ${n}x${n} --seed 7 "$tmp/d.f32" 2>/dev/null
hdr $n "$tmp/d.hdr"
gdal_translate -q -of COG -co COMPRESS=DEFLATE -co PREDICTOR=YES -co BLOCKSIZE=512 -co OVERVIEWS=NONE "$tmp/d.f32" "$tmp/d.tif"
rm "$tmp/d.f32"
echo "file: ${n}x${n} float32, $(stat -c %s "$tmp/d.tif") bytes"
best_tf=999; best_gdal=999
for _ in 1 2 3; do
  s=$("$tf" bench --input "$tmp/d.tif" --decode-only --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["decode_s"])')
  best_tf=$(python3 -c "print(min($best_tf, $s))")
  t0=$(now); GDAL_NUM_THREADS=1 gdal_translate -q -of ENVI "$tmp/d.tif" "$tmp/g.f32"; t1=$(now); rm -f "$tmp"/g.*
  best_gdal=$(python3 -c "print(min($best_gdal, $t1 - $t0))")
done
python3 -c "
n=$n*$n
print(f'| decoder | seconds | M samples/s |')
print(f'|---|---|---|')
print(f'| terrafarm (block by block) | {$best_tf:.3f} | {n/$best_tf/1e6:.1f} |')
print(f'| gdal_translate -of ENVI (GDAL_NUM_THREADS=1) | {$best_gdal:.3f} | {n/$best_gdal/1e6:.1f} |')
print(f'terrafarm / gdal time: {$best_tf/$best_gdal:.2f}x')"
rm -f "$tmp/d.tif"

echo
echo "## Peak RSS against raster size: mesh --max-error 5 --format glb, $(nproc) threads"
echo "| raster | input | raster f32 bytes | peak RSS | RSS / raster | seconds | ns per sample |"
echo "|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  "$tf" synth --size ${n}x${n} --seed 3 "$tmp/r.f32" 2>/dev/null
  hdr $n "$tmp/r.hdr"
  bytes=$((n * n * 4))
  for kind in raw tif; do
    if [ $kind = tif ]; then
      gdal_translate -q -co TILED=YES -co COMPRESS=DEFLATE -co PREDICTOR=3 -co BIGTIFF=IF_SAFER "$tmp/r.f32" "$tmp/r.tif"
      rm "$tmp/r.f32"; input="$tmp/r.tif"; extra=(--cell-size 1); label="tiled GeoTIFF, Deflate + pred. 3"
    else
      input="$tmp/r.f32"; extra=(--size ${n}x${n}); label="raw f32"
    fi
    rm -rf "$tmp/out"
    t0=$(now)
    err=$("$tf" --log info mesh "$input" "${extra[@]}" --max-error 5 --format glb --out "$tmp/out" 2>&1 >/dev/null)
    t1=$(now)
    rss=$(echo "$err" | sed -n 's/.*peak RSS \([0-9.]*\) MB.*/\1/p')
    python3 -c "
b=$bytes; rss=$rss*1048576; s=$t1-$t0
print(f'| ${n}² | $label | {b/1e6:.0f} MB | {rss/1e6:.1f} MB | {rss/b:.3f} | {s:.1f} | {s*1e9/($n*$n):.0f} |')"
  done
  rm -f "$tmp"/r.*
done
