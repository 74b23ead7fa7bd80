#!/usr/bin/env python3
"""Two terrafarm binaries alternated on lod.py's input and command lines (fuji upsampled to 4097², 1 m cells,
`--max-error 1`, tile 256, both cores, output to /dev/shm): level 0 alone (`--format glb`) and the pyramid
(`--format 3dtiles --lod auto`), wall time, the child's user+sys CPU time and the thread-seconds it reports reading
the input, medians over --rounds. For a change that should only move the pyramid: level 0 runs the same code in
both, so the ratio is also given against the median of all level-0 runs.

Usage: python3 benches/lod_ab.py BEFORE AFTER [--rounds 7] [--size 4097] [--geotiff] (as in lod.py)
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lod import write_input  # noqa: E402


def run(exe, src, out, extra):
    """Wall time, the child's user+sys CPU time, and the thread-seconds the run reports reading its input."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    p = subprocess.Popen([exe, "mesh", src, "--out", out, "--cell-size", "1", "--max-error", "1", "--log", "error", "--json", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    report = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"{exe} failed ({status})")
    return wall, ru.ru_utime + ru.ru_stime, json.loads(report)["scenes"][0]["timings"]["read_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--size", type=int, default=4097)
    ap.add_argument("--geotiff", action="store_true", help="read the heights from a Deflate COG written by GDAL instead of .npy")
    a = ap.parse_args()
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    bins = {"before": a.before, "after": a.after}
    res = {k: {"l0": [], "pyr": []} for k in bins}
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(dir=shm) as out:
        src = write_input(tmp, a.size, a.geotiff)
        o = os.path.join(out, "o")
        for _ in range(a.rounds):
            for k, exe in bins.items():
                res[k]["l0"].append(run(exe, src, o, ["--format", "glb"]))
                res[k]["pyr"].append(run(exe, src, o, ["--format", "3dtiles", "--lod", "auto"]))
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    l0 = [x for k in bins for x in res[k]["l0"]]
    print(f"fuji {a.size}² ({os.path.basename(src)}), 1 m, tile 256, {os.cpu_count()} threads, {a.rounds} rounds alternating, medians (wall, CPU):")
    for k in bins:
        l, p = res[k]["l0"], res[k]["pyr"]
        print(f"  {k}: level 0 alone {med(l, 0):.3f} s, {med(l, 1):.3f} s; pyramid {med(p, 0):.3f} s, {med(p, 1):.3f} s; "
              f"pyramid / own level 0: {med(p, 0) / med(l, 0):.2f}x wall; pyramid / all level-0 runs: {med(p, 0) / med(l0, 0):.2f}x wall, "
              f"{med(p, 1) / med(l0, 1):.2f}x CPU")
    print(f"  pyramid after / before: {med(res['after']['pyr'], 0) / med(res['before']['pyr'], 0):.3f} wall, "
          f"{med(res['after']['pyr'], 1) / med(res['before']['pyr'], 1):.3f} CPU")
    print(f"  level 0 after / before: {med(res['after']['l0'], 0) / med(res['before']['l0'], 0):.3f} wall, "
          f"{med(res['after']['l0'], 1) / med(res['before']['l0'], 1):.3f} CPU")
    print("  input reads (thread-seconds, median): " + "; ".join(f"{k}: level 0 {med(res[k]['l0'], 2):.3f}, pyramid {med(res[k]['pyr'], 2):.3f}" for k in bins))
    print("  all:", json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
