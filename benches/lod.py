#!/usr/bin/env python3
"""Levels of detail and compact glTF (issue #13), on fuji upsampled to 4097² (the peers benchmark's smooth input,
1 m cells), `--max-error 1`, tile 256, both cores, output to a RAM disk (/dev/shm) so the disk does not dominate.

- Pyramid build time: `--lod auto --format 3dtiles` (levels 0-4 and the tileset) against level 0 alone (`--format
  glb`), best of --repeat, interleaved; goal ≤ 1.5×.
- Bytes per triangle of the GLB tiles for --gltf plain, quantized and meshopt (level 0 alone, and the whole
  pyramid); goal: meshopt ≤ 1/4 of plain.

With --geotiff the heights are read from a Deflate COG (512² blocks, floating-point predictor) that GDAL writes,
as a real DEM usually comes, instead of `.npy`.

Usage: python3 benches/lod.py [--size 4097] [--repeat 3] [--geotiff] [--terrafarm target/release/terrafarm]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import ROOT, fuji_heights, upsample  # noqa: E402


def write_input(tmp, size, geotiff=False):
    """fuji upsampled to size² as `.npy`, or (`geotiff`) as a real DEM usually comes: a COG in 512² blocks, Deflate
    with the floating-point predictor, written by GDAL's `gdal_translate`."""
    h = np.ascontiguousarray(upsample(fuji_heights(), size), dtype=np.float32)
    if not geotiff:
        src = os.path.join(tmp, "fuji.npy")
        np.save(src, h)
        return src
    raw = os.path.join(tmp, "fuji.f32")
    h.astype("<f4").tofile(raw)
    with open(os.path.join(tmp, "fuji.hdr"), "w") as f:
        f.write(f"ENVI\nsamples = {size}\nlines = {size}\nbands = 1\nheader offset = 0\ndata type = 4\ninterleave = bsq\nbyte order = 0\n")
    src = os.path.join(tmp, "fuji.tif")
    subprocess.run(["gdal_translate", "-q", "-of", "COG", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=YES", "-co", "BLOCKSIZE=512",
                    "-co", "OVERVIEWS=NONE", raw, src], check=True)
    os.remove(raw)
    return src


def run(exe, src, out, extra):
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    r = subprocess.run([exe, "mesh", src, "--out", out, "--cell-size", "1", "--max-error", "1", "--json", *extra], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    m = json.load(open(os.path.join(out, "fuji", "manifest.json")))
    levels = [m["totals"]] + [l["totals"] for l in m.get("levels", [])]
    return wall, levels, m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--terrafarm", default=os.path.join(ROOT, "target", "release", "terrafarm"))
    ap.add_argument("--size", type=int, default=4097)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--geotiff", action="store_true", help="read the heights from a Deflate COG written by GDAL instead of .npy")
    a = ap.parse_args()
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir=shm) as out:
        src = write_input(tmp, a.size, a.geotiff)
        o = os.path.join(out, "o")
        base, pyr = [], []
        for _ in range(a.repeat):
            base.append(run(a.terrafarm, src, o, ["--format", "glb"])[0])
            pyr.append(run(a.terrafarm, src, o, ["--format", "3dtiles", "--lod", "auto"])[0])
        _, levels, m = run(a.terrafarm, src, o, ["--format", "3dtiles", "--lod", "auto"])
        print(f"fuji {a.size}² ({os.path.basename(src)}), 1 m, tile 256, {os.cpu_count()} threads, best of {a.repeat} (interleaved):")
        print(f"  level 0 alone: {min(base):.3f} s (all: {', '.join(f'{t:.3f}' for t in base)})")
        print(f"  pyramid, {len(levels)} levels + tileset: {min(pyr):.3f} s (all: {', '.join(f'{t:.3f}' for t in pyr)})")
        print(f"  pyramid / level 0: {min(pyr) / min(base):.2f}x (goal <= 1.5x)")
        errs = [m["params"]["max_error"]] + [l["max_error_requested"] for l in m["levels"]]
        for i, (t, e) in enumerate(zip(levels, errs)):
            print(f"    level {i}: {e:g} m, {t['tiles']} tiles, {t['triangles']} triangles, {t['bytes'] / 1e6:.1f} MB")
        print("\n| tiles | glTF | triangles | MB | bytes / triangle | × plain |")
        print("|---|---|---:|---:|---:|---:|")
        for label, extra in (("level 0", ["--format", "glb"]), ("pyramid (all levels)", ["--format", "3dtiles", "--lod", "auto"])):
            plain = None
            for g in ("plain", "quantized", "meshopt"):
                _, lv, _ = run(a.terrafarm, src, o, [*extra, "--gltf", g])
                tris = sum(t["triangles"] for t in lv)
                b = sum(t["bytes"] for t in lv)
                plain = plain or b / tris
                print(f"| {label} | {g} | {tris:,} | {b / 1e6:.1f} | {b / tris:.2f} | {b / tris / plain:.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
