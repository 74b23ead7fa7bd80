#!/usr/bin/env python3
"""Prints the README's simplification table from a recorded `benches/peers.py` run (a file in benches/runs/).

Usage: python3 benches/peers_table.py benches/runs/2026-11-29-lossless.md
"""
import re, sys

ROW = re.compile(r"^(.+?²)\s+(\d+(?:\.\d+)?)\s+(terrafarm|pymartini|pydelatin)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$")


def main(path):
    rows = {}
    for line in open(path, encoding="utf-8"):
        m = ROW.match(line.strip())
        if m:
            inp, e, tool, n, _err, sec = m.groups()
            rows.setdefault((inp, e), {})[tool] = (int(n), float(sec))
    print("| input | max error | terrafarm (2 threads) | pymartini | pydelatin | time / pymartini | time / pydelatin |")
    print("|---|---:|---|---|---|---:|---:|")
    for (inp, e), r in rows.items():
        tf, mt, dl = r["terrafarm"], r.get("pymartini"), r.get("pydelatin")
        cell = lambda x: f"{x[1]:.2f} s / {x[0]:,}" if x else "–"
        ratio = lambda x: f"{tf[1] / x[1]:.2f}" if x else "–"
        print(f"| {inp} | {e} m | {cell(tf)} | {cell(mt)} | {cell(dl)} | {ratio(mt)} | {ratio(dl)} |")


if __name__ == "__main__":
    main(sys.argv[1])
