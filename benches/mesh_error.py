#!/usr/bin/env python3
"""The largest vertical error of a triangle mesh over a height grid, measured independently of any mesher.

Every sample inside or on a triangle (vertices on grid samples) is compared with the triangle's plane through its
three corners' heights; the result is the largest |plane − height| over all of them. Triangles are processed in
batches by bounding-box size, each batch as one numpy array of (triangle, row, column) samples, with inclusion
decided by exact integer edge functions. What `benches/peers.py` uses to report the error a peer actually reaches
(pymartini's RTIN stops on its own error measure, which is not the vertical distance to the final mesh).

Usage as a check (CI runs it): python3 benches/mesh_error.py (meshes a small raster with pymartini and compares the
batched measurement with a per-triangle loop).
"""
import numpy as np


def max_error(h, xy, tris, chunk=1 << 22):
    """h: (rows, cols) heights; xy: (V, 2) integer sample coordinates (column, row) of the vertices; tris: (T, 3)
    vertex indices. Returns the largest vertical error over every sample covered by a triangle (0.0 when none)."""
    h = np.asarray(h, dtype=np.float64)
    xy = np.asarray(xy).reshape(-1, 2)
    if not np.array_equal(xy, np.round(xy)):
        raise ValueError("vertices must lie on samples")
    xy = xy.astype(np.int64)
    tris = np.asarray(tris, dtype=np.int64).reshape(-1, 3)
    p = xy[tris]  # (T, 3, 2)
    z = h[p[..., 1], p[..., 0]]  # (T, 3)
    lo, hi = p.min(axis=1), p.max(axis=1)
    side = np.maximum(hi[:, 0] - lo[:, 0], hi[:, 1] - lo[:, 1]) + 1
    cls = np.ceil(np.log2(side)).astype(np.int64)  # box fits in 2^cls × 2^cls
    worst = 0.0
    for c in np.unique(cls):
        idx = np.nonzero(cls == c)[0]
        s = 1 << int(c)
        off = np.arange(s)
        per = max(1, chunk // (s * s))
        for b in range(0, len(idx), per):
            t = idx[b:b + per]
            a, bb, cc = p[t, 0], p[t, 1], p[t, 2]  # (n, 2)
            xs = lo[t, 0][:, None, None] + off[None, None, :]  # (n, 1, s)
            ys = lo[t, 1][:, None, None] + off[None, :, None]  # (n, s, 1)
            area = (bb[:, 0] - a[:, 0]) * (cc[:, 1] - a[:, 1]) - (bb[:, 1] - a[:, 1]) * (cc[:, 0] - a[:, 0])
            sg = np.sign(area)[:, None, None]

            def edge(u, v):
                # Edge function of u→v at (xs, ys), sign-normalised so the inside is ≥ 0 (exact in int64).
                return ((v[:, 0] - u[:, 0])[:, None, None] * (ys - u[:, 1][:, None, None])
                        - (v[:, 1] - u[:, 1])[:, None, None] * (xs - u[:, 0][:, None, None])) * sg

            w0, w1, w2 = edge(bb, cc), edge(cc, a), edge(a, bb)
            inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (xs <= hi[t, 0][:, None, None]) & (ys <= hi[t, 1][:, None, None])
            ar = np.abs(area).astype(np.float64)[:, None, None]
            zt = z[t]
            plane = (w0 * zt[:, 0][:, None, None] + w1 * zt[:, 1][:, None, None] + w2 * zt[:, 2][:, None, None]) / ar
            yc = np.minimum(ys, h.shape[0] - 1)
            xc = np.minimum(xs, h.shape[1] - 1)
            e = np.where(inside, np.abs(plane - h[yc, xc]), 0.0)
            worst = max(worst, float(e.max(initial=0.0)))
    return worst


def _slow(h, xy, tris):
    worst = 0.0
    for t in np.asarray(tris).reshape(-1, 3):
        p = np.asarray(xy).reshape(-1, 2)[t].astype(np.int64)
        zc = h[p[:, 1], p[:, 0]].astype(np.float64)
        for y in range(p[:, 1].min(), p[:, 1].max() + 1):
            for x in range(p[:, 0].min(), p[:, 0].max() + 1):
                (ax, ay), (bx, by), (cx, cy) = p
                d = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
                l1 = ((by - cy) * (x - cx) + (cx - bx) * (y - cy)) / d
                l2 = ((cy - ay) * (x - cx) + (ax - cx) * (y - cy)) / d
                l3 = 1 - l1 - l2
                if min(l1, l2, l3) >= -1e-12:
                    worst = max(worst, abs(l1 * zc[0] + l2 * zc[1] + l3 * zc[2] - h[y, x]))
    return worst


if __name__ == "__main__":
    from pymartini import Martini
    rng = np.random.default_rng(3)
    n = 65
    h = np.cumsum(np.cumsum(rng.normal(size=(n, n)), axis=0), axis=1).astype(np.float32)
    m = Martini(n)
    tile = m.create_tile(h)
    for e in (0.0, 0.5, 2.0, 8.0):
        v, t = tile.get_mesh(e)
        fast, slow = max_error(h, v, t), _slow(h, v, t)
        print(f"max error {e}: {len(t)} triangles, batched {fast:.6f}, per-triangle loop {slow:.6f}")
        assert abs(fast - slow) <= 1e-9 * max(1.0, slow), (fast, slow)
    print("ok")
