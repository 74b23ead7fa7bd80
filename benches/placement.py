#!/usr/bin/env python3
"""What placing a georeferenced scene's vertices on the ellipsoid costs (3D Tiles): the same heights as a GeoTIFF in
UTM 33 N (placed: a root transform, every GLB vertex placed where the CRS puts its sample) and as the same GeoTIFF
without a CRS (the raster's plane, identity transform), meshed alike into a pyramid with tileset.json, interleaved.

Input: terrafarm's synthetic terrain, 4097² samples of 10 m (41 km a side), written by gdal_translate as a tiled
Deflate GeoTIFF. Output to /dev/shm. Reports the best wall time and the child CPU time of each, the triangles per
level, and the recorded error per level.

Usage: python3 benches/placement.py [--terrafarm target/release/terrafarm] [--repeat 3] [--gltf plain|meshopt]
"""
import argparse, json, os, resource, shutil, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--terrafarm", default=os.path.join(ROOT, "target/release/terrafarm"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gltf", default="plain")
    ap.add_argument("--size", type=int, default=4097)
    a = ap.parse_args()
    n, cell = a.size, 10.0
    tmp = tempfile.mkdtemp(dir="/dev/shm")
    try:
        raw = os.path.join(tmp, "h.f32")
        subprocess.run([a.terrafarm, "synth", "--size", f"{n}x{n}", "--relief", "1500", "--seed", "7", raw], check=True, stderr=subprocess.DEVNULL)
        with open(os.path.join(tmp, "h.hdr"), "w") as f:
            f.write(f"ENVI\nsamples = {n}\nlines = {n}\nbands = 1\nheader offset = 0\nfile type = ENVI Standard\n"
                    "data type = 4\ninterleave = bsq\nbyte order = 0\n")
        e0, n0 = 300_000.0, 5_200_000.0
        ullr = [str(e0), str(n0 + n * cell), str(e0 + n * cell), str(n0)]
        tifs = {}
        for name, srs in [("placed", ["-a_srs", "EPSG:32633"]), ("plane", [])]:
            tifs[name] = os.path.join(tmp, f"{name}.tif")
            subprocess.run(["gdal_translate", "-q", *srs, "-a_ullr", *ullr, "-co", "TILED=YES", "-co", "COMPRESS=DEFLATE", raw, tifs[name]], check=True)
        times = {k: [] for k in tifs}
        manifests = {}
        for _ in range(a.repeat):
            for name, tif in tifs.items():
                out = os.path.join(tmp, "out-" + name)
                shutil.rmtree(out, ignore_errors=True)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run([a.terrafarm, "mesh", tif, "--out", out, "--max-error", "1", "--lod", "auto", "--format", "3dtiles",
                                "--gltf", a.gltf, "--cell-size", str(cell), "--log", "error"], check=True, stdout=subprocess.DEVNULL)
                wall = time.perf_counter() - t
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                times[name].append((wall, cpu))
                manifests[name] = json.load(open(os.path.join(out, name, "manifest.json")))
        print(f"synthetic {n}² of {cell:g} m cells ({n * cell / 1000:.0f} km a side), --max-error 1 --lod auto --format 3dtiles "
              f"--gltf {a.gltf}, {os.cpu_count()} threads, best of {a.repeat} (interleaved)")
        best = {}
        for name in tifs:
            w = min(t[0] for t in times[name])
            c = min(t[1] for t in times[name])
            best[name] = (w, c)
            m = manifests[name]
            levels = [("0", m["totals"]["triangles"], max(t["max_error"] for t in m["tiles"]))] + \
                     [(str(l["level"]), l["totals"]["triangles"], l["max_error"]) for l in m["levels"]]
            print(f"  {name:7s} wall {w:.3f} s, CPU {c:.3f} s (all: {', '.join(f'{t[0]:.3f}' for t in times[name])}); placed: {m['params'].get('placed', False)}")
            print("           " + "; ".join(f"level {l}: {t:,} triangles, {e:.4f} m" for l, t, e in levels))
        print(f"  placed / plane: wall {best['placed'][0] / best['plane'][0]:.3f}x, CPU {best['placed'][1] / best['plane'][1]:.3f}x, "
              f"triangles {manifests['placed']['totals']['triangles'] + sum(l['totals']['triangles'] for l in manifests['placed']['levels'])} / "
              f"{manifests['plane']['totals']['triangles'] + sum(l['totals']['triangles'] for l in manifests['plane']['levels'])}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
