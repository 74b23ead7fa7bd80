//! Error-bounded simplification with exact seams: greedy Delaunay insertion (Garland & Heckbert 1995, "Fast
//! Polygonal Approximation of Terrains and Height Fields", the algorithm of fogleman/hmm and mapbox/delatin),
//! run per tile with the tile's border fixed first.
//!
//! Seams: each of the tile's four border lines is simplified on its own, in one dimension, from the border samples
//! alone (top-down vertical-error refinement, always walked in increasing coordinate). The two tiles sharing a
//! border hold the same samples on it, so they choose the same border vertices, bit for bit, without talking to
//! each other. The interior is then refined greedily: the triangle with the largest vertical error gets its worst
//! sample inserted, and the triangulation is kept Delaunay by edge flips, until every sample is within `max_error`.
//! Border samples are never interior candidates: the 1-D pass already bounds their error by `max_error`.
//!
//! Voids: every interior no-data sample, and every valid interior sample next to one (its 8-neighbours), is made
//! a vertex before the greedy refinement. With every no-data sample a vertex, no triangle can contain one, so
//! the triangles left after dropping those that touch no-data cover valid samples only, and the refinement
//! bounds the error of every valid sample they cover; the rim keeps each hole within one sample of the grid's. The
//! border lines keep every no-data sample and its neighbours in the 1-D pass. The rest of the tile is simplified as
//! if it had no void.
//!
//! Pure: a height window and parameters in, buffers out; scratch is per thread and reused.

use super::{Mesh, Params, VertexMap, Window};

const NONE: u32 = u32::MAX;

/// Options of the simplifying mesher.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimplifyParams {
    /// Maximum vertical distance (metres, after `z_scale`) between the mesh and any sample of the tile.
    pub max_error: f32,
    /// Optional triangle budget per tile; when it stops refinement first, the achieved error is reported.
    pub max_triangles: Option<usize>,
}

/// Per-thread working memory, reused across tiles.
#[derive(Default)]
pub struct Scratch {
    /// Tile-local sample coordinates of each vertex.
    coords: Vec<[i32; 2]>,
    /// Raw height of each vertex.
    heights: Vec<f32>,
    /// Three vertex ids per triangle; half-edge `3t + k` runs from corner k to corner k+1.
    tris: Vec<u32>,
    /// Opposite half-edge, or NONE on the tile boundary.
    half: Vec<u32>,
    /// Worst sample of each triangle and its error (raw height units); error < 0 means "no candidate".
    cand: Vec<[i32; 2]>,
    err: Vec<f64>,
    /// Max-heap of triangles by error, and each triangle's position in it.
    heap: Vec<u32>,
    pos: Vec<u32>,
    pending: Vec<u32>,
    /// Whether a triangle is already in `pending` (a flip can rewrite a fresh triangle; scan it once).
    queued: Vec<bool>,
    /// Per tile sample: is it a vertex already.
    is_vertex: Vec<bool>,
    /// Per tile sample: must become a vertex before refinement (an interior void sample or its valid rim).
    forced: Vec<bool>,
    legalize_stack: Vec<(u32, u32)>,
    /// The tile's heights, contiguous (taken out while a tile is meshed, then put back for reuse).
    tile_heights: Vec<f32>,
    /// Coarse search (see [`Scratch::set_coarse_stride`]): the lattice step of the first phase (1: off), and
    /// whether the exact phase has begun.
    stride: usize,
    exact_phase: bool,
}

struct Tile<'a> {
    /// Raw heights of the tile, row-major, `nx × ny`.
    h: &'a [f32],
    nx: usize,
    ny: usize,
    /// The tile has no-data samples (some samples are `forced`).
    voids: bool,
}

impl Tile<'_> {
    #[inline]
    fn at(&self, x: i32, y: i32) -> f32 {
        self.h[y as usize * self.nx + x as usize]
    }
}

#[inline]
fn orient(a: [i32; 2], b: [i32; 2], c: [i32; 2]) -> i64 {
    (b[0] - a[0]) as i64 * (c[1] - a[1]) as i64 - (b[1] - a[1]) as i64 * (c[0] - a[0]) as i64
}

/// > 0 when `d` lies strictly inside the circumcircle of the triangle (a, b, c), whatever its orientation.
fn in_circle(a: [i32; 2], b: [i32; 2], c: [i32; 2], d: [i32; 2]) -> bool {
    // Coordinates are below 2^15 (tile size ≤ 16384), so every term stays below 2^62: exact in i64.
    let (adx, ady) = ((a[0] - d[0]) as i64, (a[1] - d[1]) as i64);
    let (bdx, bdy) = ((b[0] - d[0]) as i64, (b[1] - d[1]) as i64);
    let (cdx, cdy) = ((c[0] - d[0]) as i64, (c[1] - d[1]) as i64);
    let ad = adx * adx + ady * ady;
    let bd = bdx * bdx + bdy * bdy;
    let cd = cdx * cdx + cdy * cdy;
    let det = adx * (bdy * cd - bd * cdy) - ady * (bdx * cd - bd * cdx) + ad * (bdx * cdy - bdy * cdx);
    let o = orient(a, b, c);
    det * o.signum() > 0
}

/// 1-D refinement of one border line: indices (into `line`) of the samples to keep, sorted, ends included.
/// Keeps every no-data sample and its neighbours; valid runs between them are refined to within `limit`, worst
/// span first, inserting at most `budget` samples beyond those (ties broken by position). Refining until every
/// span is within `limit` gives the same set in any order, so without a budget this is plain top-down refinement;
/// with one, both tiles sharing the line still pick the same samples, since the choice depends on the line alone.
pub(crate) fn border_keep(line: &[f32], limit: f64, budget: Option<usize>, out: &mut Vec<usize>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    out.clear();
    let n = line.len();
    let mut keep = vec![false; n];
    keep[0] = true;
    keep[n - 1] = true;
    for i in 0..n {
        if line[i].is_nan() {
            keep[i] = true;
            if i > 0 {
                keep[i - 1] = true;
            }
            if i + 1 < n {
                keep[i + 1] = true;
            }
        }
    }
    // The worst sample strictly inside span (a, b), as (error bits, Reverse(index)): f64 bits of a non-negative
    // error order like the error itself.
    let worst = |a: usize, b: usize| -> Option<(u64, Reverse<usize>, usize, usize)> {
        let (ha, hb) = (line[a] as f64, line[b] as f64);
        let mut w = (0.0f64, 0usize);
        for (i, &hv) in line.iter().enumerate().take(b).skip(a + 1) {
            let t = (i - a) as f64 / (b - a) as f64;
            let e = (ha + (hb - ha) * t - hv as f64).abs();
            if e > w.0 {
                w = (e, i);
            }
        }
        (w.0 > limit).then_some((w.0.to_bits(), Reverse(w.1), a, b))
    };
    let mut heap = BinaryHeap::new();
    let mut a = 0;
    for b in 1..n {
        if keep[b] {
            if b > a + 1 && !line[a].is_nan() && !line[b].is_nan() {
                heap.extend(worst(a, b));
            }
            a = b;
        }
    }
    let mut left = budget.unwrap_or(usize::MAX);
    while left > 0 {
        let Some((_, Reverse(i), a, b)) = heap.pop() else { break };
        keep[i] = true;
        left -= 1;
        heap.extend(worst(a, i));
        heap.extend(worst(i, b));
    }
    out.extend((0..n).filter(|&i| keep[i]));
}

/// Largest vertical error of a border line against the kept samples (valid spans only).
fn border_error(line: &[f32], kept: &[usize]) -> f64 {
    let mut worst = 0.0f64;
    for w in kept.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (ha, hb) = (line[a] as f64, line[b] as f64);
        if ha.is_nan() || hb.is_nan() {
            continue;
        }
        for (i, &hv) in line.iter().enumerate().take(b).skip(a + 1) {
            let t = (i - a) as f64 / (b - a) as f64;
            worst = worst.max((ha + (hb - ha) * t - hv as f64).abs());
        }
    }
    worst
}

impl Scratch {
    /// Two-phase refinement for large tiles: first, candidates are the worst samples on a lattice of every
    /// `stride`-th sample each way (a sixteenth of the samples at stride 4), and the greedy insertion runs on those;
    /// once no lattice sample is past the error, every triangle is scanned in full and refinement continues with
    /// exact candidates until no sample at all is. The error bound is the same (the last phase is exact); the
    /// insertion order, hence the triangles, differ a little from the one-phase greedy. The levels of detail above
    /// the tiles use it; the tiles themselves keep the one-phase scan (their bytes are pinned by tests).
    pub fn set_coarse_stride(&mut self, stride: usize) {
        self.stride = stride.max(1);
    }

    fn reset(&mut self, samples: usize) {
        self.coords.clear();
        self.heights.clear();
        self.tris.clear();
        self.half.clear();
        self.cand.clear();
        self.err.clear();
        self.heap.clear();
        self.pos.clear();
        self.pending.clear();
        self.queued.clear();
        self.is_vertex.clear();
        self.is_vertex.resize(samples, false);
        self.forced.clear();
        self.exact_phase = self.stride <= 1;
    }

    fn add_vertex(&mut self, t: &Tile, p: [i32; 2]) -> u32 {
        self.coords.push(p);
        self.heights.push(t.at(p[0], p[1]));
        self.is_vertex[p[1] as usize * t.nx + p[0] as usize] = true;
        (self.coords.len() - 1) as u32
    }

    fn link(&mut self, a: u32, b: u32) {
        self.half[a as usize] = b;
        if b != NONE {
            self.half[b as usize] = a;
        }
    }

    /// Writes triangle (a, b, c) into slot `slot` (or a new slot), with the opposite half-edges of its three edges.
    fn set_tri(&mut self, slot: Option<u32>, v: [u32; 3], opp: [u32; 3]) -> u32 {
        let t = match slot {
            Some(t) => t,
            None => {
                let t = (self.tris.len() / 3) as u32;
                self.tris.extend_from_slice(&[0, 0, 0]);
                self.half.extend_from_slice(&[NONE, NONE, NONE]);
                self.cand.push([0, 0]);
                self.err.push(-1.0);
                self.pos.push(NONE);
                self.queued.push(false);
                t
            }
        };
        let e = 3 * t as usize;
        self.tris[e..e + 3].copy_from_slice(&v);
        for (k, &o) in opp.iter().enumerate() {
            self.link(e as u32 + k as u32, o);
        }
        if !self.queued[t as usize] {
            self.queued[t as usize] = true;
            self.pending.push(t);
        }
        t
    }

    // ---- heap keyed by err (max first; ties by lower triangle id, for determinism) ----
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.heap[i] as usize, self.heap[j] as usize);
        self.err[a] < self.err[b] || (self.err[a] == self.err[b] && a > b)
    }
    fn swap(&mut self, i: usize, j: usize) {
        self.heap.swap(i, j);
        self.pos[self.heap[i] as usize] = i as u32;
        self.pos[self.heap[j] as usize] = j as u32;
    }
    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if !self.less(p, i) {
                break;
            }
            self.swap(p, i);
            i = p;
        }
    }
    fn down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < self.heap.len() && self.less(m, l) {
                m = l;
            }
            if r < self.heap.len() && self.less(m, r) {
                m = r;
            }
            if m == i {
                break;
            }
            self.swap(i, m);
            i = m;
        }
    }
    fn heap_remove(&mut self, t: u32) {
        let i = self.pos[t as usize];
        if i == NONE {
            return;
        }
        let i = i as usize;
        let last = self.heap.len() - 1;
        self.swap(i, last);
        self.heap.pop();
        self.pos[t as usize] = NONE;
        if i < self.heap.len() {
            self.down(i);
            self.up(i);
        }
    }
    fn heap_set(&mut self, t: u32) {
        let i = self.pos[t as usize];
        if i != NONE && self.err[t as usize] >= 0.0 {
            // Already queued: restore heap order around its new key.
            self.down(i as usize);
            self.up(self.pos[t as usize] as usize);
            return;
        }
        self.heap_remove(t);
        if self.err[t as usize] >= 0.0 {
            self.heap.push(t);
            let i = self.heap.len() - 1;
            self.pos[t as usize] = i as u32;
            self.up(i);
        }
    }

    /// Scans the triangle's interior samples for the worst one (rasterisation with exact integer edge functions).
    fn find_candidate(&mut self, tile: &Tile, t: u32) {
        if !self.exact_phase && !tile.voids {
            return self.find_lattice_candidate(tile, t);
        }
        let e = 3 * t as usize;
        let [a, b, c] = [self.tris[e], self.tris[e + 1], self.tris[e + 2]].map(|v| self.coords[v as usize]);
        let [ha, hb, hc] = [self.tris[e], self.tris[e + 1], self.tris[e + 2]].map(|v| self.heights[v as usize] as f64);
        let area = orient(a, b, c);
        debug_assert!(area != 0, "degenerate triangle");
        let sign = area.signum();
        let inv = 1.0 / area as f64;
        let nan_tri = ha.is_nan() || hb.is_nan() || hc.is_nan();
        let voids = tile.voids;
        // Interior samples only: the tile border is handled by the 1-D pass.
        let x0 = a[0].min(b[0]).min(c[0]).max(1);
        let x1 = a[0].max(b[0]).max(c[0]).min(tile.nx as i32 - 2);
        let y0 = a[1].min(b[1]).min(c[1]).max(1);
        let y1 = a[1].max(b[1]).max(c[1]).min(tile.ny as i32 - 2);
        let mut best = -1.0f64;
        let mut at = [0, 0];
        // Edge functions, sign-normalised so "inside or on the edge" is w ≥ 0; each steps by d along x.
        let d = [(b[1] - c[1]) as i64 * sign, (c[1] - a[1]) as i64 * sign, (a[1] - b[1]) as i64 * sign];
        for y in y0..=y1 {
            let w = [orient(b, c, [x0, y]) * sign, orient(c, a, [x0, y]) * sign, orient(a, b, [x0, y]) * sign];
            // The row's inside span [lo, hi] in steps from x0, solved per edge instead of testing every sample.
            let (mut lo, mut hi) = (0i64, (x1 - x0) as i64);
            for k in 0..3 {
                if d[k] > 0 {
                    lo = lo.max((-w[k]).div_euclid(d[k]) + i64::from((-w[k]).rem_euclid(d[k]) != 0));
                } else if d[k] < 0 {
                    hi = hi.min(w[k].div_euclid(-d[k]));
                } else if w[k] < 0 {
                    hi = -1;
                }
            }
            if lo > hi {
                continue;
            }
            let row = &tile.h[y as usize * tile.nx..(y as usize + 1) * tile.nx];
            let vrow = &self.is_vertex[y as usize * tile.nx..(y as usize + 1) * tile.nx];
            let frow = if voids { &self.forced[y as usize * tile.nx..(y as usize + 1) * tile.nx] } else { &[][..] };
            // The triangle's plane is linear along the row: evaluate it once at the span start, then step.
            let inv = inv * sign as f64;
            let (w0, w1, w2) = ((w[0] + d[0] * lo) as f64, (w[1] + d[1] * lo) as f64, (w[2] + d[2] * lo) as f64);
            let mut z = (w0 * ha + w1 * hb + w2 * hc) * inv;
            let dz = (d[0] as f64 * ha + d[1] as f64 * hb + d[2] as f64 * hc) * inv;
            let (xa, xb) = ((x0 as i64 + lo) as usize, (x0 as i64 + hi) as usize);
            for (k, (&hv, &is_v)) in row[xa..=xb].iter().zip(&vrow[xa..=xb]).enumerate() {
                if !is_v {
                    let h = hv as f64;
                    // Void tiles: forced samples first; a triangle with a no-data corner will be dropped, so its
                    // other samples are no candidates (their error is undefined).
                    let e = if !voids {
                        (z - h).abs()
                    } else if frow[xa + k] {
                        f64::MAX
                    } else if nan_tri {
                        -1.0
                    } else {
                        (z - h).abs()
                    };
                    if e > best {
                        best = e;
                        at = [(xa + k) as i32, y];
                    }
                }
                z += dz;
            }
        }
        self.cand[t as usize] = at;
        self.err[t as usize] = best;
    }

    /// The first phase of [`Self::set_coarse_stride`]: the worst interior sample on the lattice of every
    /// `stride`-th sample, the plane evaluated directly at each.
    fn find_lattice_candidate(&mut self, tile: &Tile, t: u32) {
        let st = self.stride as i32;
        let e = 3 * t as usize;
        let [a, b, c] = [self.tris[e], self.tris[e + 1], self.tris[e + 2]].map(|v| self.coords[v as usize]);
        let [ha, hb, hc] = [self.tris[e], self.tris[e + 1], self.tris[e + 2]].map(|v| self.heights[v as usize] as f64);
        let area = orient(a, b, c);
        let sign = area.signum();
        let inv = sign as f64 / area as f64;
        let up = |v: i32| (v + st - 1).div_euclid(st) * st;
        let x0 = up(a[0].min(b[0]).min(c[0]).max(1));
        let x1 = a[0].max(b[0]).max(c[0]).min(tile.nx as i32 - 2);
        let y0 = up(a[1].min(b[1]).min(c[1]).max(1));
        let y1 = a[1].max(b[1]).max(c[1]).min(tile.ny as i32 - 2);
        let mut best = -1.0f64;
        let mut at = [0, 0];
        let mut y = y0;
        while y <= y1 && x0 <= x1 {
            let row = y as usize * tile.nx;
            let mut x = x0;
            while x <= x1 {
                let w = [orient(b, c, [x, y]) * sign, orient(c, a, [x, y]) * sign, orient(a, b, [x, y]) * sign];
                if w[0] >= 0 && w[1] >= 0 && w[2] >= 0 && !self.is_vertex[row + x as usize] {
                    let z = (w[0] as f64 * ha + w[1] as f64 * hb + w[2] as f64 * hc) * inv;
                    let err = (z - tile.h[row + x as usize] as f64).abs();
                    if err > best {
                        best = err;
                        at = [x, y];
                    }
                }
                x += st;
            }
            y += st;
        }
        self.cand[t as usize] = at;
        self.err[t as usize] = best;
    }

    /// Starts the exact phase: every triangle's candidate found again by a full scan.
    fn rescan_all(&mut self, tile: &Tile) {
        self.exact_phase = true;
        self.pending = (0..(self.tris.len() / 3) as u32).collect();
        self.queued.iter_mut().for_each(|q| *q = true);
        self.flush(tile);
    }

    fn flush(&mut self, tile: &Tile) {
        while let Some(t) = self.pending.pop() {
            self.queued[t as usize] = false;
            self.find_candidate(tile, t);
            self.heap_set(t);
        }
    }

    /// Restores the Delaunay property across edge `k` of triangle `t` (the corner opposite that edge is the new
    /// point), flipping and recursing as needed.
    fn legalize(&mut self, t: u32, k: u32) {
        self.legalize_stack.clear();
        self.legalize_stack.push((t, k));
        self.flip_until_delaunay(false);
    }

    /// Lawson's flip loop over the edges on `legalize_stack`. With `all4`, every outer edge of a flipped quad is
    /// re-examined (needed when the starting triangulation is arbitrary); otherwise only the edges opposite the
    /// newly inserted point (enough after an insertion into a Delaunay triangulation).
    fn flip_until_delaunay(&mut self, all4: bool) {
        while let Some((t, k)) = self.legalize_stack.pop() {
            let e = 3 * t + k;
            let o = self.half[e as usize];
            if o == NONE {
                continue;
            }
            let t1 = o / 3;
            let (e_ab, e_bc, e_ca) = (e, 3 * t + (k + 1) % 3, 3 * t + (k + 2) % 3);
            let (o_ad, o_db) = (3 * t1 + (o % 3 + 1) % 3, 3 * t1 + (o % 3 + 2) % 3);
            let (a, b, c) = (self.tris[e_ab as usize], self.tris[e_bc as usize], self.tris[e_ca as usize]);
            let d = self.tris[o_db as usize];
            let [pa, pb, pc, pd] = [a, b, c, d].map(|v| self.coords[v as usize]);
            if !in_circle(pa, pb, pc, pd) {
                continue;
            }
            // Flip a–b to c–d: (a, b, c) + (b, a, d) → (c, a, d) + (d, b, c), orientation preserved.
            let (h_bc, h_ca, h_ad, h_db) = (self.half[e_bc as usize], self.half[e_ca as usize], self.half[o_ad as usize], self.half[o_db as usize]);
            self.set_tri(Some(t), [c, a, d], [h_ca, h_ad, NONE]);
            self.set_tri(Some(t1), [d, b, c], [h_db, h_bc, 3 * t + 2]);
            // The new point is c; the edges opposite it are a→d (edge 1 of t) and d→b (edge 0 of t1).
            self.legalize_stack.push((t, 1));
            self.legalize_stack.push((t1, 0));
            if all4 {
                self.legalize_stack.push((t, 0));
                self.legalize_stack.push((t1, 1));
            }
        }
    }

    /// Inserts sample `p`, which lies in triangle `t` (possibly on one of its edges).
    fn insert(&mut self, tile: &Tile, t: u32, p: [i32; 2]) {
        let e = 3 * t as usize;
        let [v0, v1, v2] = [self.tris[e], self.tris[e + 1], self.tris[e + 2]];
        let [a, b, c] = [v0, v1, v2].map(|v| self.coords[v as usize]);
        let n = self.add_vertex(tile, p);
        for k in 0..3u32 {
            let (s, q) = ([a, b, c][k as usize], [a, b, c][((k + 1) % 3) as usize]);
            if orient(s, q, p) == 0 {
                self.split_edge(t, k, n, true);
                return;
            }
        }
        let (h0, h1, h2) = (self.half[e], self.half[e + 1], self.half[e + 2]);
        self.heap_remove(t);
        let t0 = self.set_tri(Some(t), [v0, v1, n], [h0, NONE, NONE]);
        let t1 = self.set_tri(None, [v1, v2, n], [h1, NONE, 3 * t0 + 1]);
        let t2 = self.set_tri(None, [v2, v0, n], [h2, 3 * t0 + 2, 3 * t1 + 1]);
        self.legalize(t0, 0);
        self.legalize(t1, 0);
        self.legalize(t2, 0);
    }

    /// Splits edge `k` of triangle `t` at new vertex `n` (and the triangle across it, if any).
    /// Returns the triangle holding the new edge n→b (edge 0), which is where the next point along a border goes
    /// when `legalize` is false.
    fn split_edge(&mut self, t: u32, k: u32, n: u32, legalize: bool) -> u32 {
        let e = 3 * t;
        let (e_ab, e_bc, e_ca) = (e + k, e + (k + 1) % 3, e + (k + 2) % 3);
        let (a, b, c) = (self.tris[e_ab as usize], self.tris[e_bc as usize], self.tris[e_ca as usize]);
        let (h_bc, h_ca) = (self.half[e_bc as usize], self.half[e_ca as usize]);
        let o = self.half[e_ab as usize];
        self.heap_remove(t);
        // (a, b, c) → (a, n, c) + (n, b, c)
        let t0 = self.set_tri(Some(t), [a, n, c], [NONE, NONE, h_ca]);
        let t1 = self.set_tri(None, [n, b, c], [NONE, h_bc, 3 * t0 + 1]);
        if o == NONE {
            if legalize {
                self.legalize(t0, 2);
                self.legalize(t1, 1);
            }
            return t1;
        }
        let tt = o / 3;
        let (o_ad, o_db) = (3 * tt + (o % 3 + 1) % 3, 3 * tt + (o % 3 + 2) % 3);
        let d = self.tris[o_db as usize];
        debug_assert_eq!((self.tris[o as usize], self.tris[o_ad as usize]), (b, a));
        let (h_ad, h_db) = (self.half[o_ad as usize], self.half[o_db as usize]);
        self.heap_remove(tt);
        // (b, a, d) → (b, n, d) + (n, a, d)
        let t2 = self.set_tri(Some(tt), [b, n, d], [3 * t1, NONE, h_db]);
        let t3 = self.set_tri(None, [n, a, d], [3 * t0, h_ad, 3 * t2 + 1]);
        if legalize {
            self.legalize(t0, 2);
            self.legalize(t1, 1);
            self.legalize(t2, 2);
            self.legalize(t3, 1);
        }
        t1
    }
}

/// Meshes the tile so every sample is within `sp.max_error` of the surface (or the triangle budget is spent).
pub fn mesh_simplified(w: &Window, p: &Params, sp: &SimplifyParams, s: &mut Scratch) -> Mesh {
    let t = w.tile;
    let (nx, ny) = (t.width(), t.height());
    let vm = VertexMap::new(&t, p);
    // The tile's raw heights, contiguous.
    let rw = w.rect.width();
    let mut h = std::mem::take(&mut s.tile_heights);
    h.clear();
    for y in t.y0..t.y1 {
        let s0 = (y - w.rect.y0) * rw + (t.x0 - w.rect.x0);
        h.extend_from_slice(&w.data[s0..s0 + nx]);
    }
    let nodata = h.iter().filter(|v| v.is_nan()).count();
    let limit = (sp.max_error as f64 / (p.z_scale as f64).abs()).max(0.0);
    let tile = Tile { h: &h, nx, ny, voids: nodata > 0 };
    s.reset(nx * ny);
    if tile.voids {
        // Interior void samples and their valid interior 8-neighbours.
        s.forced.resize(nx * ny, false);
        for y in 1..ny.saturating_sub(1) {
            for x in 1..nx.saturating_sub(1) {
                if !h[y * nx + x].is_nan() {
                    continue;
                }
                for yy in y - 1..=y + 1 {
                    for xx in x - 1..=x + 1 {
                        if yy > 0 && yy + 1 < ny && xx > 0 && xx + 1 < nx {
                            s.forced[yy * nx + xx] = true;
                        }
                    }
                }
            }
        }
    }

    // 1. Border lines, each walked in increasing coordinate so both tiles sharing it agree.
    let (xm, ym) = (nx as i32 - 1, ny as i32 - 1);
    let mut keep = Vec::new();
    let mut border_err = 0.0f64;
    // A triangle budget is a hard cap: two corner triangles, one more per border vertex, two per interior vertex.
    // Each side may add a quarter of what is left after the corners, so the border alone never passes the cap
    // (and both tiles of a side derive the same budget from the same parameter).
    let border_budget = sp.max_triangles.map(|m| m.saturating_sub(2) / 4);
    let mut sides: [Vec<i32>; 4] = Default::default(); // top, bottom (x positions), left, right (y positions)
    for (side, line) in [
        (0usize, (0..nx).map(|x| h[x]).collect::<Vec<f32>>()),
        (1, (0..nx).map(|x| h[(ny - 1) * nx + x]).collect()),
        (2, (0..ny).map(|y| h[y * nx]).collect()),
        (3, (0..ny).map(|y| h[y * nx + nx - 1]).collect()),
    ] {
        border_keep(&line, limit, border_budget, &mut keep);
        border_err = border_err.max(border_error(&line, &keep));
        sides[side] = keep.iter().map(|&i| i as i32).collect();
    }

    // 2. Two triangles over the tile's corners, then the border vertices, inserted along each side in order so
    //    each lands on the boundary edge created by the previous one.
    let c00 = s.add_vertex(&tile, [0, 0]);
    let c10 = s.add_vertex(&tile, [xm, 0]);
    let c01 = s.add_vertex(&tile, [0, ym]);
    let c11 = s.add_vertex(&tile, [xm, ym]);
    // Facing up (+Y) means clockwise in (column, row) coordinates: (0,0) → (0,1) → (1,0).
    let ta = s.set_tri(None, [c00, c01, c10], [NONE, NONE, NONE]);
    let tb = s.set_tri(None, [c10, c01, c11], [NONE, NONE, NONE]);
    s.link(3 * ta + 1, 3 * tb);
    s.pending.clear();
    s.queued.iter_mut().for_each(|q| *q = false);
    // Each side as (start corner, end corner, points strictly between, in walking order from start). Points are
    // split into the boundary edge without flips (each side fans from a vertex off its line, so nothing is
    // degenerate); one Lawson pass then makes the whole triangulation Delaunay.
    let walks: [(u32, u32, Vec<[i32; 2]>); 4] = [
        (c10, c00, sides[0].iter().rev().filter(|&&x| x > 0 && x < xm).map(|&x| [x, 0]).collect()),
        (c00, c01, sides[2].iter().filter(|&&y| y > 0 && y < ym).map(|&y| [0, y]).collect()),
        (c01, c11, sides[1].iter().filter(|&&x| x > 0 && x < xm).map(|&x| [x, ym]).collect()),
        (c11, c10, sides[3].iter().rev().filter(|&&y| y > 0 && y < ym).map(|&y| [xm, y]).collect()),
    ];
    for (from, to, pts) in walks {
        let Some(mut e) = (0..s.tris.len() as u32).find(|&e| s.tris[e as usize] == from && s.tris[(e - e % 3 + (e % 3 + 1) % 3) as usize] == to) else {
            unreachable!("corner-to-corner boundary edge exists before its side is split");
        };
        for pt in pts {
            let n = s.add_vertex(&tile, pt);
            e = 3 * s.split_edge(e / 3, e % 3, n, false);
        }
    }
    s.legalize_stack.clear();
    for e in 0..s.tris.len() as u32 {
        if s.half[e as usize] != NONE {
            s.legalize_stack.push((e / 3, e % 3));
        }
    }
    s.flip_until_delaunay(true);

    // 3. Greedy interior refinement.
    s.pending = (0..(s.tris.len() / 3) as u32).collect();
    s.queued.iter_mut().for_each(|q| *q = true);
    s.flush(&tile);
    let stop = limit;
    while let Some(&top) = s.heap.first() {
        if s.err[top as usize] <= stop {
            // Two-phase refinement: nothing on the lattice is past the error any more; now look at every sample.
            if !s.exact_phase {
                s.rescan_all(&tile);
                continue;
            }
            break;
        }
        // Each insertion adds two triangles (a split triangle, or two split across an edge). Void samples and
        // their rim are inserted whatever the budget: without them a hole would be covered.
        if s.err[top as usize] < f64::MAX && sp.max_triangles.is_some_and(|m| s.tris.len() / 3 + 2 > m) {
            if !s.exact_phase {
                // Stopped by the budget during the lattice phase: the errors to report are the exact ones.
                s.rescan_all(&tile);
            }
            break;
        }
        let p = s.cand[top as usize];
        s.insert(&tile, top, p);
        s.flush(&tile);
    }
    let interior_err = s.heap.first().map_or(0.0, |&t| s.err[t as usize].max(0.0));

    // 4. Output: drop triangles touching no-data, keep only used vertices, in insertion order.
    let mut m = Mesh { origin: vm.origin(), nodata_samples: nodata, ..Mesh::default() };
    let mut used = vec![false; s.coords.len()];
    let mut kept: Vec<u32> = Vec::with_capacity(s.tris.len());
    for tri in s.tris.chunks_exact(3) {
        if tri.iter().all(|&v| !s.heights[v as usize].is_nan()) {
            tri.iter().for_each(|&v| used[v as usize] = true);
            kept.extend_from_slice(tri);
        }
    }
    let mut remap = vec![NONE; s.coords.len()];
    for (v, c) in s.coords.iter().enumerate() {
        if used[v] {
            remap[v] = m.positions.len() as u32;
            let (x, y) = (t.x0 + c[0] as usize, t.y0 + c[1] as usize);
            let hv = s.heights[v];
            m.positions.push(vm.position(x, y, hv));
            m.normals.push(vm.normal(w, x, y, hv));
            m.uvs.push(vm.uv(x, y));
            m.grid.push([x as u32, y as u32]);
        }
    }
    m.indices = kept.iter().map(|&v| remap[v as usize]).collect();
    let err = border_err.max(interior_err);
    m.max_error = (err * (p.z_scale as f64).abs()) as f32;
    m.finish_bounds();
    s.tile_heights = h;
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiling::Rect;

    #[test]
    fn border_refinement_is_exact_on_lines_and_keeps_nodata_rims() {
        let mut k = Vec::new();
        border_keep(&[0.0, 1.0, 2.0, 3.0, 4.0], 0.0, None, &mut k);
        assert_eq!(k, [0, 4]);
        border_keep(&[0.0, 1.0, 5.0, 3.0, 4.0], 0.5, None, &mut k);
        assert!(k.contains(&2));
        border_keep(&[0.0, 0.0, f32::NAN, 0.0, 0.0, 0.0], 1.0, None, &mut k);
        assert_eq!(k, [0, 1, 2, 3, 5]);
    }

    fn run(data: &[f32], w: usize, h: usize, e: f32) -> Mesh {
        let r = Rect::new(0, 0, w, h);
        let p = Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [w, h], tile: w.max(h) };
        mesh_simplified(&Window { data, rect: r, tile: r }, &p, &SimplifyParams { max_error: e, max_triangles: None }, &mut Scratch::default())
    }

    #[test]
    fn plane_collapses_to_two_triangles() {
        let (w, h) = (33, 17);
        let data: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 * 0.5 + (i / w) as f32 * 2.0).collect();
        let m = run(&data, w, h, 0.0);
        assert_eq!((m.vertices(), m.triangles()), (4, 2));
    }

    #[test]
    fn lossless_reproduces_every_sample() {
        let (w, h) = (20, 15);
        let data: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 13) as f32).collect();
        let m = run(&data, w, h, 0.0);
        assert_eq!(m.max_error, 0.0);
        assert!(m.triangles() <= 2 * (w - 1) * (h - 1));
    }
}
