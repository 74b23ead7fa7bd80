#!/usr/bin/env python3
"""Render benchmark (issue #14): frames per second and triangles per second of `terrafarm render` on this machine's
Vulkan adapter (lavapipe, the software driver, unless a GPU is present), for fuji upsampled to 4097² (the peers
benchmark's smooth input, 1 m cells) meshed at full resolution and simplified to 1 m.

For each scene and view: the first frame (reading the GLB tiles from disk, uploading, drawing, waiting), then
--frames more frames with the tiles resident on the GPU (fps = 1 / mean frame time; triangles/s = triangles × fps),
and a streamed render with a small GPU budget (tiles pass through the frame in batches, the depth buffer kept),
whose GPU peak shows the memory bound.

Usage: python3 benches/render.py [--size 4097] [--frames 5] [--terrafarm target/release/terrafarm]
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import ROOT, fuji_heights, upsample  # noqa: E402


def tf(exe, *args):
    return subprocess.run([exe, *args], check=True, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--terrafarm", default=os.path.join(ROOT, "target", "release", "terrafarm"))
    ap.add_argument("--size", type=int, default=4097)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--stream-mib", type=int, default=128)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "fuji.npy")
        np.save(src, np.ascontiguousarray(upsample(fuji_heights(), a.size), dtype=np.float32))
        rows = []
        for label, extra in (("full resolution", []), ("1 m", ["--max-error", "1"])):
            out = os.path.join(tmp, label.replace(" ", "_"))
            tf(a.terrafarm, "mesh", src, "--out", out, "--format", "glb", "--cell-size", "1", *extra)
            scene = os.path.join(out, "fuji")
            for view, size in (("top", None), ("oblique", "1920x1080")):
                common = ["render", scene, "--camera", view, "--json", "--output", os.path.join(tmp, f"{view}.png")]
                if size:
                    common += ["--size", size]
                r = json.loads(tf(a.terrafarm, *common, "--frames", str(a.frames + 1), "--gpu-budget-mib", "4096").stdout)[0]["stats"]
                s = json.loads(tf(a.terrafarm, *common, "--gpu-budget-mib", str(a.stream_mib)).stdout)[0]["stats"]
                fps = 1 / r["frame_s"]
                rows.append((label, view, r, s, fps))
                print(f"{label:<16} {view:<8} {r['size'][0]}x{r['size'][1]:<5} {r['triangles']:>10} tris  first frame {r['first_frame_s']:6.2f} s  "
                      f"resident {fps:6.2f} fps = {r['triangles'] * fps / 1e6:7.1f} M tris/s (GPU peak {r['gpu_peak_bytes'] / 2**20:.0f} MiB)  "
                      f"streamed in {s['batches']} batches: {s['first_frame_s']:6.2f} s, GPU peak {s['gpu_peak_bytes'] / 2**20:.0f} MiB", flush=True)
        print(f"\nadapter: {rows[0][2]['adapter']}")
        print("\n| scene | view | image | triangles | first frame (load+upload+draw) | resident fps | M triangles/s | GPU peak | streamed: batches, time, GPU peak |")
        print("|---|---|---|---:|---:|---:|---:|---:|---|")
        for label, view, r, s, fps in rows:
            print(f"| fuji {a.size}², {label} | {view} | {r['size'][0]}×{r['size'][1]} | {r['triangles']:,} | {r['first_frame_s']:.2f} s | {fps:.2f} | "
                  f"{r['triangles'] * fps / 1e6:.1f} | {r['gpu_peak_bytes'] / 2**20:.0f} MiB | {s['batches']}, {s['first_frame_s']:.2f} s, {s['gpu_peak_bytes'] / 2**20:.0f} MiB |")


if __name__ == "__main__":
    sys.exit(main())
