#!/usr/bin/env python3
"""Prints the README's simplification table from a recorded `benches/peers.py` run (a file in benches/runs/).

Usage: python3 benches/peers_table.py benches/runs/2026-11-29-lossless.md
"""
import re, sys

ROW = re.compile(r"^(.+?²)\s+(\d+(?:\.\d+)?)\s+(terrafarm|pymartini|pydelatin|pymartini@bound)\s+(\d+)\s+([\d.]+|nan)\s+([\d.]+)(?:\s+\(nominal [\d.e+-]+ m\))?$")
RATIO = re.compile(r"time tf/(delatin|martini) ([\d.]+)")


def main(path):
    # Ratios from the run's own "ratios:" lines (computed from unrounded times; the rows print seconds to 3
    # decimals, too coarse for the 10-ms cells), else from the rows.
    rows, ratios, last = {}, {}, None
    for line in open(path, encoding="utf-8"):
        m = ROW.match(line.strip())
        if m:
            inp, e, tool, n, err, sec = m.groups()
            rows.setdefault((inp, e), {})[tool] = (int(n), float(sec), float(err))
            last = (inp, e)
        elif "ratios:" in line and last:
            ratios[last] = {("pymartini" if t == "martini" else "pydelatin"): float(v) for t, v in RATIO.findall(line)}
    print("| input | max error | terrafarm (2 threads) | pymartini | pymartini within the bound | pydelatin | time / pymartini | time / pydelatin |")
    print("|---|---:|---|---|---|---|---:|---:|")
    for (inp, e), r in rows.items():
        tf, mt, mb, dl = r["terrafarm"], r.get("pymartini"), r.get("pymartini@bound"), r.get("pydelatin")
        cell = lambda x: (f"{x[1]:.3f}" if x[1] < 1 else f"{x[1]:.2f}") + f" s / {x[0]:,}" if x else "–"
        # A tool's error where it is past the bound (by more than f32 rounding).
        over = lambda x: f" ({x[2]:.3f} m)" if x and x[2] == x[2] and x[2] > float(e) + 1e-3 else ""
        within = f"{mb[0]:,} ({mb[2]:.3f} m)" if mb else ("same" if mt and not over(mt) else "–")
        given = ratios.get((inp, e), {})
        ratio = lambda x, tool: f"{given.get(tool, tf[1] / x[1] if x else 0):.2f}" if x else "–"
        print(f"| {inp} | {e} m | {cell(tf)}{over(tf)} | {cell(mt)}{over(mt)} | {within} | {cell(dl)}{over(dl)} | {ratio(mt, 'pymartini')} | {ratio(dl, 'pydelatin')} |")


if __name__ == "__main__":
    main(sys.argv[1])
