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
//! Speed (issue #15; the profile and the measurements are in `benches/runs/`). A large tile's heights do not fit in
//! a core's caches, and greedy order jumps across the tile, so the kernel was bound by a cache miss on every row of
//! every small triangle scanned. Three changes, each keeping the bound exact:
//! - The queue holds only triangles still past the error; its order is: triangles larger than a block first (by
//!   error), then the rest by octave of error over the limit, and within an octave block by block
//!   ([`Scratch::class`]): the scans stay in cache, and the triangle count stays within a fraction of a percent of
//!   the strict greedy order (+0.45% on fuji 4097² at 1 m as one tile).
//! - Rows are scanned by [`scan`] (AVX2/SSE2 with a scalar twin that makes the same choices), around the corners
//!   instead of through a vertex map (the triangulation is conforming: the only vertices in a triangle are its
//!   corners). Each triangle is walked between its long edge and its short edges, each edge's column per row kept
//!   as an exact quotient and remainder stepped by integers (no division per row; see `scan_plain`), and the next
//!   row's heights are prefetched: per row, not per sample, is where the scan's time goes (a replay of the
//!   kernel's 2.75 M scans on fuji 4097² at 1 m: 46% of their time was per-row and per-triangle overhead before
//!   this walk, against 17% for the row's first load and 31% for the samples; the walk and the prefetch took 21%
//!   off).
//! - Large triangles (at least `LATTICE_MIN` samples) take their candidate from every 2nd–8th row only: the worst of
//!   those rows is a lower bound of the triangle's error, so a triangle whose lattice error is within the limit is
//!   scanned again in full before it can count as done, and a budget stop makes every queued error exact.
//! - Insertions go in batches: every queued triangle of the top's class (the same octave of error in the same
//!   block, which the order above already treats as one step) has its worst sample inserted, skipping those an
//!   earlier insertion of the batch rewrote, and the triangles the batch leaves new or changed are searched once,
//!   after it. One insertion at a time, 47% of the searches were of triangles a later insertion replaced before
//!   they were used; batches take 8% of the searches and 2–12% of the time off, with triangles between −0.2% and
//!   +1.2% (`benches/runs/2026-11-29-batches.md`). With a triangle budget insertions stay one at a time.
//! - Since a batch is a whole class, the queue is a bucket per class, sorted when taken ([`queue`]): the same
//!   order as the heap it replaced, triangle for triangle, without a sift per update
//!   (`benches/runs/2026-11-29-queue.md`).
//!
//! - At `max_error` 0 a tile without no-data takes the lossless fast path ([`lossless`]): the full grid, then the
//!   vertices the surface does not need removed by checked collapses; the same bound (every sample on the surface),
//!   the same borders, in a fraction of the greedy path's time and with fewer triangles on every input measured
//!   (its triangles are not Delaunay: a flat area fans out from the vertices it keeps).
//!
//! - A tile wider than [`PIECE_CELLS`] (256) cells, such as a coarse level of detail's, is cut evenly into pieces
//!   of at most that many cells, or into [`MAX_PIECES`] (4) a side when that would take more; the pieces are meshed
//!   in parallel and joined ([`mesh_split`], [`Split::Pieces`]). The refinement of one large tile rescans its large
//!   first triangles over the whole tile; pieces reach the same bound with about the same triangle count in a
//!   fraction of the time. A scene (or level) of very few tiles would leave cores idle: there every tile is also cut
//!   at least in two each way ([`Split::Cores`]; the pipeline chooses per scene or level,
//!   [`crate::pipeline::with_split`]). Border lines are then simplified per piece, on both tiles that share them.
//!
//! Pure: a height window and parameters in, buffers out; scratch is per thread and reused.

use super::{scan, Mesh, Params, VertexMap, Window};
use crate::tiling::Rect;
use rayon::prelude::*;

mod lossless;
mod queue;

const NONE: u32 = u32::MAX;

/// Options of the simplifying mesher.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimplifyParams {
    /// Maximum vertical distance (metres, after `z_scale`) between the mesh and any sample of the tile.
    pub max_error: f32,
    /// Optional triangle budget per tile; when it stops refinement first, the achieved error is reported.
    pub max_triangles: Option<usize>,
    /// How each tile is cut into pieces meshed in parallel ([`mesh_split`]). Every tile sharing a border must agree
    /// on it, so it is the same for all the tiles of a scene or level; ignored with a triangle budget.
    pub split: Split,
    /// The largest curvature (1/m, per metre of the raster's plane) of the surface the mesh will be placed on, 0 for
    /// the plane itself. Above 0, a triangle's error counts the most its chord can lie under such a surface between
    /// its corners, κ/2 · R² at a sample (R: the radius of the triangle's smallest enclosing circle), and a border
    /// span's κ/2 · t(1 − t)L² at each sample, so the bound holds on the curved surface (3D Tiles placed on the
    /// ellipsoid). Ignored at a zero error (lossless: every sample kept where it changes the surface).
    pub curvature: f64,
}

/// How [`mesh_split`] cuts a tile into pieces. Cuts depend on the tile's extent alone, so two tiles sharing a
/// border (the same extent along it) cut it at the same samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The whole tile at once: the kernel alone (`bench --whole-tiles`, and tests of the kernel).
    Whole,
    /// A side of more than [`PIECE_CELLS`] cells cut evenly into pieces of at most that many, or into
    /// [`MAX_PIECES`] when that would take more: what `mesh` does with large tiles (a coarse level's, or a large
    /// `--tile-size`).
    Pieces,
    /// As `Pieces`, and a side of at least [`SPLIT_MIN`] samples cut in at least two: a scene of few tiles then
    /// keeps every core busy.
    Cores,
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
    /// The triangles still past the error, by class (see [`Scratch::class`]).
    queue: queue::Queue,
    pending: Vec<u32>,
    /// Whether a triangle is already in `pending` (a flip can rewrite a fresh triangle; scan it once).
    in_pending: Vec<bool>,
    /// Per tile sample: is it a vertex already.
    is_vertex: Vec<bool>,
    /// Per tile sample: must become a vertex before refinement (an interior void sample or its valid rim).
    forced: Vec<bool>,
    legalize_stack: Vec<(u32, u32)>,
    /// The tile's heights, contiguous (taken out while a tile is meshed, then put back for reuse).
    tile_heights: Vec<f32>,
    /// The error (raw height units) a triangle must exceed to be queued: triangles within it are done and stay out
    /// of the queue (most of the final triangles), so the queue holds only the work left.
    limit: f64,
    /// Blocks per row and per column of the tile.
    blocks_x: u32,
    blocks_y: u32,
    /// Scratch for the pieces of a split tile ([`mesh_split`]): a pool, as many as have run at once.
    pieces: Vec<Scratch>,
    /// The triangles of the refinement batch being inserted (see `mesh_simplified`, step 3).
    batch: Vec<u32>,
    /// The chord's sag per squared metre of enclosing radius (raw height units): κ / 2 / |z_scale|, 0 on the plane
    /// ([`SimplifyParams::curvature`]); and the tile's cell size, metres.
    bend: f64,
    cell: [f64; 2],
}

/// log2 of the block side, in samples, of the block-ordered refinement: a block's heights and vertex map stay in
/// a core's L2 cache while its triangles are refined.
const BLOCK_SHIFT: u32 = 7;
/// Octaves of error over the limit that get a class band of their own (the last holds every larger error).
const BANDS: u32 = 32;
/// Triangles of at least this many samples take their candidate from a row lattice, every `rows`-th row with
/// `rows` = √samples / `LATTICE_DIV` rounded down to a power of two, at most 8.
const LATTICE_MIN: u64 = 1 << 9;
const LATTICE_DIV: f64 = 8.0;

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

/// The triangle's bounding box clipped to the tile's interior samples (the border is handled by the 1-D pass):
/// (x0, x1, y0, y1), empty when x0 > x1 or y0 > y1.
fn interior_box(tile: &Tile, [a, b, c]: [[i32; 2]; 3]) -> (i32, i32, i32, i32) {
    let x0 = a[0].min(b[0]).min(c[0]).max(1);
    let x1 = a[0].max(b[0]).max(c[0]).min(tile.nx as i32 - 2);
    let y0 = a[1].min(b[1]).min(c[1]).max(1);
    let y1 = a[1].max(b[1]).max(c[1]).min(tile.ny as i32 - 2);
    (x0, x1, y0, y1)
}

/// floor(n / d) and the remainder, for d > 0 and |n| < 2^52: an f64 quotient corrected by the exact remainder.
#[inline(always)]
fn floor_div(n: i64, d: i64) -> (i64, i64) {
    let mut q = (n as f64 / d as f64) as i64;
    let mut r = n - q * d;
    if r < 0 {
        q -= 1;
        r += d;
    } else if r >= d {
        q += 1;
        r -= d;
    }
    (q, r)
}

/// A row's inside span [lo, hi], in steps from the box's first column, from the three edge functions `w` at that
/// column (sign-normalised: inside or on is w ≥ 0) and their steps `d` along x; lo > hi when the row is outside.
/// Per edge, w + d·i ≥ 0 holds from i = ceil(−w / d) = −floor(w / d) when d > 0, up to i = floor(w / −d) when
/// d < 0, everywhere or nowhere when d = 0; each floor by [`floor_div`] (exact, no integer division).
#[inline(always)]
fn row_span(w: [i64; 3], d: [i64; 3], last: i64) -> (i64, i64) {
    let (mut lo, mut hi) = (0i64, last);
    for k in 0..3 {
        if d[k] > 0 {
            lo = lo.max(-floor_div(w[k], d[k]).0);
        } else if d[k] < 0 {
            hi = hi.min(floor_div(w[k], -d[k]).0);
        } else if w[k] < 0 {
            hi = -1;
        }
    }
    (lo, hi)
}

/// The worst interior sample of triangle (a, b, c) of a tile without no-data, and its error (raw height units; −1
/// when the triangle covers no interior sample but its corners). The triangle is walked row by row between its
/// long edge (top to bottom corner) and its two short edges, each edge's column at the row kept as an exact floor
/// quotient and remainder stepped by integers (no division per row); rows are clipped to the tile's interior; the
/// plane along the row is z(k) = z0 + k·dz and the span is scanned by [`scan::raise`]. The only vertices inside a
/// triangle are its corners (the triangulation is conforming), so rows holding a corner are scanned around it
/// instead of testing every sample against the vertex map. With `rows` > 1 (a power of two) only rows that are
/// multiples of it are scanned.
fn scan_plain(tile: &Tile, [a, b, c]: [[i32; 2]; 3], [ha, hb, hc]: [f64; 3], rows: i32) -> (f64, [i32; 2]) {
    let area = orient(a, b, c);
    debug_assert!(area != 0, "degenerate triangle");
    let sign = area.signum();
    let inv = sign as f64 / area as f64;
    let (x0, x1, y0, y1) = interior_box(tile, [a, b, c]);
    let mut best = -1.0f64;
    let mut at = [0, 0];
    let first = (y0 + rows - 1) & !(rows - 1);
    if x0 > x1 || first > y1 {
        return (best, at);
    }
    // The plane's slopes along x and y, from the edge functions' steps (b→c, c→a, a→b, sign-normalised).
    let d = [(b[1] - c[1]) as i64 * sign, (c[1] - a[1]) as i64 * sign, (a[1] - b[1]) as i64 * sign];
    let st = [(c[0] - b[0]) as i64 * sign, (a[0] - c[0]) as i64 * sign, (b[0] - a[0]) as i64 * sign];
    let dz = (d[0] as f64 * ha + d[1] as f64 * hb + d[2] as f64 * hc) * inv;
    let dzy = (st[0] as f64 * ha + st[1] as f64 * hb + st[2] as f64 * hc) * inv;
    // Vertices by row: the long edge top→bot bounds one side of every row; top→mid and then mid→bot the other.
    let mut v = [a, b, c];
    v.sort_unstable_by_key(|p| p[1]);
    let [top, mid, bot] = v;
    let mid_left = orient(top, bot, mid) > 0;
    let step = rows as i64;
    // x of an edge P→Q (P above Q) at row y is (P.x·dy + (y − P.y)·dx) / dy, walked as floor quotient and remainder.
    let (dl, dxl) = ((bot[1] - top[1]) as i64, (bot[0] - top[0]) as i64);
    let (mut ql, mut rl) = floor_div(top[0] as i64 * dl + (first - top[1]) as i64 * dxl, dl);
    let (qsl, rsl) = floor_div(step * dxl, dl);
    let mut y = first;
    for (p, q, yend) in [(top, mid, mid[1]), (mid, bot, bot[1])] {
        let yend = yend.min(y1);
        if y > yend {
            continue;
        }
        let (ds, dxs) = ((q[1] - p[1]) as i64, (q[0] - p[0]) as i64);
        // A horizontal short edge is one row, from the long edge's end to the other corner.
        let ((mut qq, mut rr), (qss, rss)) =
            if ds > 0 { (floor_div(p[0] as i64 * ds + (y - p[1]) as i64 * dxs, ds), floor_div(step * dxs, ds)) } else { ((q[0] as i64, 0), (0, 0)) };
        let ds = ds.max(1);
        while y <= yend {
            let (lo, hi) = if mid_left { (qq + i64::from(rr != 0), ql) } else { (ql + i64::from(rl != 0), qq) };
            let (lo, hi) = (lo.max(x0 as i64), hi.min(x1 as i64));
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a prefetch reads nothing and faults on nothing; the address is only computed.
            unsafe {
                use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch(tile.h.as_ptr().wrapping_add((y + rows) as usize * tile.nx + lo as usize) as *const i8, _MM_HINT_T0);
            }
            if lo <= hi {
                let (xa, xb) = (lo as usize, hi as usize);
                let z0 = ha + (lo - a[0] as i64) as f64 * dz + (y - a[1]) as f64 * dzy;
                let off = y as usize * tile.nx;
                let span = &tile.h[off + xa..=off + xb];
                // A corner is an extreme point of the triangle, so on its row it is an end of the span (both ends
                // on a horizontal edge): cut the ends that are corners.
                let corner = |x: usize| {
                    let x = x as i32;
                    (a[1] == y && a[0] == x) | (b[1] == y && b[0] == x) | (c[1] == y && c[0] == x)
                };
                let (mut k0, mut k1) = (0, span.len());
                if y == top[1] || y == mid[1] || y == bot[1] {
                    k0 = usize::from(corner(xa));
                    k1 -= usize::from(xb > xa && corner(xb));
                }
                if k1 > k0 {
                    if let Some(k) = scan::raise(span, z0, dz, k0, k1, &mut best) {
                        at = [(xa + k) as i32, y];
                    }
                }
            }
            let t = rl + rsl;
            let cl = i64::from(t >= dl);
            ql += qsl + cl;
            rl = t - cl * dl;
            let t = rr + rss;
            let cs = i64::from(t >= ds);
            qq += qss + cs;
            rr = t - cs * ds;
            y += rows;
        }
    }
    (best, at)
}

/// The squared radius of a triangle's smallest enclosing circle, from its squared side lengths and its doubled area
/// squared: the circumcircle's, (a²b²c²) / (4·(2K)²), when the triangle is acute, else the circle on its longest
/// side. It bounds Σ λᵢ |vᵢ − x|² over the triangle, so κ/2 times it bounds how far the triangle's chord lies under
/// a surface of curvature κ ([`SimplifyParams::curvature`]).
pub(crate) fn enclosing_radius2([ab, bc, ca]: [f64; 3], twice_area2: f64) -> f64 {
    let longest = ab.max(bc).max(ca);
    if 2.0 * longest < ab + bc + ca && twice_area2 > 0.0 {
        ab * bc * ca / (4.0 * twice_area2)
    } else {
        longest / 4.0
    }
}

/// 1-D refinement of one border line: indices (into `line`) of the samples to keep, sorted, ends included.
/// A sample's error in a span counts the span's sag under a curve, `bow` per square sample from each end
/// ([`SimplifyParams::curvature`]; 0 on the plane).
/// Keeps every no-data sample and its neighbours; valid runs between them are refined to within `limit`, worst
/// span first, inserting at most `budget` samples beyond those (ties broken by position). Refining until every
/// span is within `limit` gives the same set in any order, so without a budget this is plain top-down refinement;
/// with one, both tiles sharing the line still pick the same samples, since the choice depends on the line alone.
pub(crate) fn border_keep(line: &[f32], limit: f64, bow: f64, budget: Option<usize>, out: &mut Vec<usize>) {
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
            let e = (ha + (hb - ha) * t - hv as f64).abs() + bow * ((i - a) * (b - i)) as f64;
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

/// Largest vertical error of a border line against the kept samples (valid spans only), with a span's sag under a
/// curve of `bow` per square sample at each sample between its ends ([`SimplifyParams::curvature`]).
fn border_error(line: &[f32], kept: &[usize], bow: f64) -> f64 {
    let mut worst = 0.0f64;
    for w in kept.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (ha, hb) = (line[a] as f64, line[b] as f64);
        if ha.is_nan() || hb.is_nan() {
            continue;
        }
        for (i, &hv) in line.iter().enumerate().take(b).skip(a + 1) {
            let t = (i - a) as f64 / (b - a) as f64;
            worst = worst.max((ha + (hb - ha) * t - hv as f64).abs() + bow * ((i - a) * (b - i)) as f64);
        }
    }
    worst
}

impl Scratch {
    fn reset(&mut self, samples: usize) {
        self.coords.clear();
        self.heights.clear();
        self.tris.clear();
        self.half.clear();
        self.cand.clear();
        self.err.clear();
        self.queue.reset((1 + BANDS * self.blocks_x * self.blocks_y) as usize);
        self.pending.clear();
        self.in_pending.clear();
        self.is_vertex.clear();
        self.is_vertex.resize(samples, false);
        self.forced.clear();
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
                self.queue.grow();
                self.in_pending.push(false);
                t
            }
        };
        let e = 3 * t as usize;
        self.tris[e..e + 3].copy_from_slice(&v);
        for (k, &o) in opp.iter().enumerate() {
            self.link(e as u32 + k as u32, o);
        }
        if !self.in_pending[t as usize] {
            self.in_pending[t as usize] = true;
            self.pending.push(t);
        }
        t
    }

    /// Queues the triangle after its scan (or moves it to its new class), or takes it out of the queue when it is
    /// within the error.
    fn queue_set(&mut self, t: u32) {
        if self.err[t as usize] <= self.limit {
            self.queue.remove(t);
            return;
        }
        let class = self.class(t);
        self.queue.set(t, class, (self.err[t as usize] as f32).to_bits());
    }

    /// Scans the triangle's interior samples for the worst one (rasterisation with exact integer edge functions).
    fn find_candidate(&mut self, tile: &Tile, t: u32) {
        let e = 3 * t as usize;
        let [a, b, c] = [self.tris[e], self.tris[e + 1], self.tris[e + 2]].map(|v| self.coords[v as usize]);
        let [ha, hb, hc] = [self.tris[e], self.tris[e + 1], self.tris[e + 2]].map(|v| self.heights[v as usize] as f64);
        let area = orient(a, b, c);
        debug_assert!(area != 0, "degenerate triangle");
        if !tile.voids {
            // A row lattice for large triangles; an exact scan before a triangle can count as done.
            let samples = area.unsigned_abs() / 2;
            let rows = if samples >= LATTICE_MIN { (((samples as f64).sqrt() / LATTICE_DIV) as i32).clamp(1, 8) } else { 1 };
            let rows = if rows > 1 { 1 << (31 - rows.leading_zeros()) } else { 1 };
            let sag = self.sag([a, b, c]);
            let (mut best, mut at) = scan_plain(tile, [a, b, c], [ha, hb, hc], rows);
            if rows > 1 && best + sag <= self.limit {
                (best, at) = scan_plain(tile, [a, b, c], [ha, hb, hc], 1);
            }
            // Where the chord's sag is most of the error (a flat region placed on the ellipsoid), the worst point
            // is where the sag is largest, not the worst sample in the plane, which may sit in a corner.
            if best >= 0.0 && best < sag {
                at = self.sag_point(tile, [a, b, c]).unwrap_or(at);
            }
            self.cand[t as usize] = at;
            self.err[t as usize] = if best >= 0.0 { best + sag } else { best };
            return;
        }
        let sign = area.signum();
        let inv = 1.0 / area as f64;
        let nan_tri = ha.is_nan() || hb.is_nan() || hc.is_nan();
        let voids = tile.voids;
        let (x0, x1, y0, y1) = interior_box(tile, [a, b, c]);
        let mut best = -1.0f64;
        let mut at = [0, 0];
        // Edge functions, sign-normalised so "inside or on the edge" is w ≥ 0; each steps by d along x.
        let d = [(b[1] - c[1]) as i64 * sign, (c[1] - a[1]) as i64 * sign, (a[1] - b[1]) as i64 * sign];
        for y in y0..=y1 {
            let w = [orient(b, c, [x0, y]) * sign, orient(c, a, [x0, y]) * sign, orient(a, b, [x0, y]) * sign];
            let (lo, hi) = row_span(w, d, (x1 - x0) as i64);
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
        self.err[t as usize] = if (0.0..f64::MAX).contains(&best) { best + self.sag([a, b, c]) } else { best };
    }

    /// The most the triangle's chord lies under a surface of the tile's curvature at a sample inside it
    /// ([`SimplifyParams::curvature`]), raw height units: the curvature over 2 times the squared radius of its
    /// smallest enclosing circle (the circumcircle of an acute triangle, else the one on its longest side), metres.
    fn sag(&self, [a, b, c]: [[i32; 2]; 3]) -> f64 {
        if self.bend == 0.0 {
            return 0.0;
        }
        let [cw, ch] = self.cell;
        let len2 = |p: [i32; 2], q: [i32; 2]| ((q[0] - p[0]) as f64 * cw).powi(2) + ((q[1] - p[1]) as f64 * ch).powi(2);
        let twice_area = orient(a, b, c) as f64 * cw * ch;
        self.bend * enclosing_radius2([len2(a, b), len2(b, c), len2(c, a)], twice_area * twice_area)
    }

    /// The interior sample nearest to where a triangle's chord sags most under a curve: its circumcentre when it is
    /// acute, else the middle of its longest side pulled a third of the way to the opposite corner (a side may be
    /// the tile's border, where no point is inserted). `None` when that sample is not strictly inside it.
    fn sag_point(&self, tile: &Tile, [a, b, c]: [[i32; 2]; 3]) -> Option<[i32; 2]> {
        let [cw, ch] = self.cell;
        let f = |p: [i32; 2]| [p[0] as f64 * cw, p[1] as f64 * ch];
        let [pa, pb, pc] = [f(a), f(b), f(c)];
        let len2 = |p: [f64; 2], q: [f64; 2]| (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2);
        let (ab, bc, ca) = (len2(pa, pb), len2(pb, pc), len2(pc, pa));
        let longest = ab.max(bc).max(ca);
        let target = if 2.0 * longest < ab + bc + ca {
            let d = 2.0 * (pa[0] * (pb[1] - pc[1]) + pb[0] * (pc[1] - pa[1]) + pc[0] * (pa[1] - pb[1]));
            let (a2, b2, c2) = (pa[0] * pa[0] + pa[1] * pa[1], pb[0] * pb[0] + pb[1] * pb[1], pc[0] * pc[0] + pc[1] * pc[1]);
            [(a2 * (pb[1] - pc[1]) + b2 * (pc[1] - pa[1]) + c2 * (pa[1] - pb[1])) / d, (a2 * (pc[0] - pb[0]) + b2 * (pa[0] - pc[0]) + c2 * (pb[0] - pa[0])) / d]
        } else {
            let (p, q, o) = if longest == ab {
                (pa, pb, pc)
            } else if longest == bc {
                (pb, pc, pa)
            } else {
                (pc, pa, pb)
            };
            let m = [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0];
            [m[0] + (o[0] - m[0]) / 3.0, m[1] + (o[1] - m[1]) / 3.0]
        };
        let x = [(target[0] / cw).round() as i32, (target[1] / ch).round() as i32];
        let area = orient(a, b, c).signum();
        let inside = orient(a, b, x) * area > 0 && orient(b, c, x) * area > 0 && orient(c, a, x) * area > 0;
        let interior = x[0] >= 1 && x[1] >= 1 && (x[0] as usize) + 1 < tile.nx && (x[1] as usize) + 1 < tile.ny;
        (inside && interior).then_some(x)
    }

    /// The class of a queued triangle, the first key of the refinement order (lower first); inside a class the order
    /// is by error (as f32 bits, which order like the error; closer errors tie and fall to the triangle id), and a
    /// class is refined as one batch ([`queue`]). Classes: a triangle holding a void
    /// sample (error f64::MAX, so first of all) or larger than a block first (these are few, their scans stream long rows, in error order over the whole tile); then the
    /// others band by band (octaves of error over the limit, worst first) and within a band block by block
    /// (row-major). Refining block by block keeps the samples being scanned in cache — a large tile no longer
    /// misses on every row of every small triangle — and the bands keep the order close enough to greedy that the
    /// triangle count is within a fraction of a percent of it. A triangle changed in a block already passed sorts
    /// before the current block and is refined at once; the error bound is unaffected (every triangle is scanned
    /// after each change and stays queued while past the error).
    fn class(&self, t: u32) -> u32 {
        let e = 3 * t as usize;
        let [a, b, c] = [self.tris[e], self.tris[e + 1], self.tris[e + 2]].map(|v| self.coords[v as usize]);
        let err = self.err[t as usize];
        let area = orient(a, b, c).unsigned_abs() / 2;
        // A triangle holding a void sample or its rim (error f64::MAX) goes before everything: a hole must stay a
        // hole whatever the budget, so none may be left queued when the budget stops refinement.
        if err == f64::MAX || area > 1 << (2 * BLOCK_SHIFT) {
            0
        } else {
            let [x, y] = self.cand[t as usize];
            let r = if self.limit > 0.0 { err / self.limit } else { err };
            let band = ((r.to_bits() >> 52) as i64 - 1023).clamp(0, BANDS as i64 - 1) as u32;
            let blocks = self.blocks_x * self.blocks_y;
            1 + (BANDS - 1 - band) * blocks + (y as u32 >> BLOCK_SHIFT) * self.blocks_x + (x as u32 >> BLOCK_SHIFT)
        }
    }

    /// Replaces the error of every queued triangle by its exact one (a full scan, every row).
    fn exact_queued(&mut self, tile: &Tile) {
        let queued: Vec<u32> = self.queue.all().collect();
        for t in queued {
            let t = t as usize;
            if tile.voids || self.err[t] == f64::MAX {
                continue;
            }
            let [a, b, c] = [self.tris[3 * t], self.tris[3 * t + 1], self.tris[3 * t + 2]];
            let corners = [a, b, c].map(|v| self.coords[v as usize]);
            let (best, at) = scan_plain(tile, corners, [a, b, c].map(|v| self.heights[v as usize] as f64), 1);
            self.err[t] = if best >= 0.0 { best + self.sag(corners) } else { best };
            self.cand[t] = at;
        }
    }

    fn flush(&mut self, tile: &Tile) {
        while let Some(t) = self.pending.pop() {
            self.in_pending[t as usize] = false;
            self.find_candidate(tile, t);
            self.queue_set(t);
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
        self.queue.remove(t);
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
        self.queue.remove(t);
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
        self.queue.remove(tt);
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
    (s.blocks_x, s.blocks_y) = ((nx as u32 >> BLOCK_SHIFT) + 1, (ny as u32 >> BLOCK_SHIFT) + 1);
    s.reset(nx * ny);
    s.limit = limit;
    s.bend = if limit > 0.0 { sp.curvature.max(0.0) / 2.0 / (p.z_scale as f64).abs() } else { 0.0 };
    s.cell = p.cell;
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
        // Rows run along x, columns along y: a square sample of the line is that cell's size squared.
        let bow = s.bend * if side < 2 { p.cell[0] * p.cell[0] } else { p.cell[1] * p.cell[1] };
        border_keep(&line, limit, bow, border_budget, &mut keep);
        border_err = border_err.max(border_error(&line, &keep, bow));
        sides[side] = keep.iter().map(|&i| i as i32).collect();
    }

    // Lossless: the fast path (see `lossless`), unless it cannot keep a border's vertices (then start again).
    let fast = limit == 0.0 && !tile.voids && sp.max_triangles.is_none() && nx > 2 && ny > 2;
    if fast && lossless::mesh(&tile, s, &sides) {
        return output(w, p, &vm, s, h, nodata, border_err);
    }
    if fast {
        s.reset(nx * ny);
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
    s.in_pending.iter_mut().for_each(|q| *q = false);
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
    s.in_pending.iter_mut().for_each(|q| *q = true);
    s.flush(&tile);
    while let Some(class) = s.queue.top_class() {
        // With a budget, the first triangle of the first class: the budget is checked before it, and it is the batch.
        let top = sp.max_triangles.map(|_| s.queue.first(class));
        // Each insertion adds two triangles (a split triangle, or two split across an edge). Void samples and
        // their rim are inserted whatever the budget: without them a hole would be covered.
        if sp.max_triangles.is_some_and(|m| s.tris.len() / 3 + 2 > m) && top.is_some_and(|t| s.err[t as usize] < f64::MAX) {
            // Stopped by the budget: the errors still queued may come from a row lattice (lower bounds); the
            // error to report is the exact one.
            s.exact_queued(&tile);
            break;
        }
        // A batch: every queued triangle of the top's class (the same octave of error in the same block), in queue
        // order. Each has its worst sample inserted unless an insertion before it in the batch rewrote it (it is
        // then pending, its candidate gone); triangles the batch creates or rewrites are searched once, after it.
        let mut batch = std::mem::take(&mut s.batch);
        batch.clear();
        match top {
            Some(t) => {
                s.queue.remove(t);
                batch.push(t);
            }
            None => s.queue.take_class(class, &mut batch),
        }
        for &t in &batch {
            if !s.in_pending[t as usize] {
                let p = s.cand[t as usize];
                s.insert(&tile, t, p);
            }
        }
        s.batch = batch;
        s.flush(&tile);
    }
    output(w, p, &vm, s, h, nodata, border_err)
}

/// A side of at least this many samples is halved by [`mesh_split`] with [`Split::Cores`].
pub const SPLIT_MIN: usize = 64;

/// The side, in cells, of the pieces [`mesh_split`] cuts a larger tile into (the default tile's), and at most
/// how many it cuts a side into. The greedy refinement of one large tile rescans its large first triangles over
/// the whole tile at every step, and its block order leaves the caches between blocks: pieces reach the same bound
/// with about the same triangles in a fraction of the time on coarse levels of detail, whose tiles are up to 16×
/// wider. Past 4 pieces a side the pieces grow instead: a coarse level's error grows with its tile, and cut lines
/// every 256 cells would then cost triangles (fuji 4097² at 80 m: +5.8% on 256-cell pieces, +0.9% on 4×4 of 1024;
/// `benches/runs/2026-11-30-pieces.md`).
pub const PIECE_CELLS: usize = 256;
/// At most this many pieces a side ([`PIECE_CELLS`]).
pub const MAX_PIECES: usize = 4;

/// The pieces of sample range [a, b) along one side: `n` even parts of its cells, each piece holding its end
/// samples (neighbouring pieces share their cut sample).
fn cuts(a: usize, b: usize, split: Split) -> Vec<(usize, usize)> {
    let cells = b - a - 1;
    let mut n = match split {
        Split::Whole => 1,
        Split::Pieces | Split::Cores => cells.div_ceil(PIECE_CELLS).clamp(1, MAX_PIECES),
    };
    if split == Split::Cores && b - a >= SPLIT_MIN {
        n = n.max(2);
    }
    (0..n).map(|k| (a + k * cells / n, a + (k + 1) * cells / n + 1)).collect()
}

/// Meshes the tile as pieces in parallel (`cuts`: pieces of about [`PIECE_CELLS`] cells a side, at most
/// [`MAX_PIECES`] a side, and with [`Split::Cores`] at least 2×2), one mesh out. The pieces share their cut lines,
/// and each piece is meshed by [`mesh_simplified`] as a tile of its own (its border lines simplified from their
/// samples alone, so a line is simplified the same way from both pieces it separates, exactly as between two
/// tiles). The tile's own border lines are then simplified per piece: the tile sharing a border has the same
/// extent along it, so it cuts the line at the same samples, and seams stay exact when every tile of the scene is
/// cut alike. The result is the mesh of smaller tiles joined into one: the same error bound, the vertices on the
/// cut lines once. Pieces are meshed and joined in a fixed order, so the mesh is the same for any thread count.
pub fn mesh_split(w: &Window, p: &Params, sp: &SimplifyParams, s: &mut Scratch) -> Mesh {
    let t = w.tile;
    let (xs, ys) = (cuts(t.x0, t.x1, sp.split), cuts(t.y0, t.y1, sp.split));
    let whole = SimplifyParams { split: Split::Whole, ..*sp };
    if xs.len() * ys.len() == 1 || sp.max_triangles.is_some() {
        return mesh_simplified(w, p, &whole, s);
    }
    let pieces: Vec<Rect> = ys.iter().flat_map(|&(y0, y1)| xs.iter().map(move |&(x0, x1)| Rect { x0, y0, x1, y1 })).collect();
    // Piece scratch from a pool kept in the tile's scratch: as many as pieces run at once, not one per piece (a
    // coarse level's tile has up to hundreds).
    let pool = std::sync::Mutex::new(std::mem::take(&mut s.pieces));
    let meshes: Vec<Mesh> = pieces
        .par_iter()
        .map(|&r| {
            let mut sc = pool.lock().ok().and_then(|mut v| v.pop()).unwrap_or_default();
            let m = mesh_simplified(&Window { tile: r, ..*w }, p, &whole, &mut sc);
            if let Ok(mut v) = pool.lock() {
                v.push(sc);
            }
            m
        })
        .collect();
    s.pieces = pool.into_inner().unwrap_or_default();
    // Join: vertices in piece order, each once (only those on a cut line can repeat), positions from the tile's
    // own origin (normals and UVs depend on the sample alone, so the pieces' are kept).
    let vm = VertexMap::new(&t, p);
    // The joined index of each vertex on a cut line, by line: a vertical cut (x = const) by row, a horizontal one
    // by column; a vertex on both is kept in its vertical line's.
    let (cut_xs, cut_ys): (Vec<usize>, Vec<usize>) = (xs[1..].iter().map(|c| c.0).collect(), ys[1..].iter().map(|c| c.0).collect());
    let (h, wd) = (t.height(), t.width());
    let mut on_x = vec![NONE; cut_xs.len() * h];
    let mut on_y = vec![NONE; cut_ys.len() * wd];
    let mut m = Mesh { origin: vm.origin(), ..Mesh::default() };
    for pm in meshes {
        let mut remap = Vec::with_capacity(pm.grid.len());
        for (i, &g) in pm.grid.iter().enumerate() {
            let (x, y) = (g[0] as usize, g[1] as usize);
            let slot = match (cut_xs.binary_search(&x), cut_ys.binary_search(&y)) {
                (Ok(k), _) => Some(&mut on_x[k * h + y - t.y0]),
                (_, Ok(k)) => Some(&mut on_y[k * wd + x - t.x0]),
                _ => None,
            };
            if let Some(&v) = slot.as_deref().filter(|&&v| v != NONE) {
                remap.push(v);
                continue;
            }
            let v = m.positions.len() as u32;
            if let Some(slot) = slot {
                *slot = v;
            }
            m.positions.push(vm.position(x, y, w.at(x, y)));
            m.normals.push(pm.normals[i]);
            m.uvs.push(pm.uvs[i]);
            m.grid.push(g);
            remap.push(v);
        }
        m.indices.extend(pm.indices.iter().map(|&i| remap[i as usize]));
        m.nodata_samples += pm.nodata_samples;
        m.max_error = m.max_error.max(pm.max_error);
    }
    // A no-data sample on a cut line was counted by both pieces beside it, one where two cuts cross by all four.
    let nan = |x: usize, y: usize| usize::from(w.at(x, y).is_nan());
    for &cy in &cut_ys {
        m.nodata_samples -= (t.x0..t.x1).map(|x| nan(x, cy)).sum::<usize>();
    }
    for &cx in &cut_xs {
        m.nodata_samples -= (t.y0..t.y1).map(|y| nan(cx, y)).sum::<usize>();
        m.nodata_samples -= cut_ys.iter().map(|&cy| nan(cx, cy)).sum::<usize>();
    }
    m.finish_bounds();
    m
}

/// Step 4 of [`mesh_simplified`]: the mesh of the scratch's triangulation (every triangle's error current).
fn output(w: &Window, p: &Params, vm: &VertexMap, s: &mut Scratch, h: Vec<f32>, nodata: usize, border_err: f64) -> Mesh {
    let t = w.tile;
    // Every triangle's error is current (done ones are not in the queue, but keep theirs).
    let interior_err = s.err.iter().fold(0.0f64, |m, &e| m.max(e));

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
    let n_used = used.iter().filter(|&&u| u).count();
    m.positions.reserve_exact(n_used);
    m.normals.reserve_exact(n_used);
    m.uvs.reserve_exact(n_used);
    m.grid.reserve_exact(n_used);
    // Normals of vertices off the tile's edge from the tile's contiguous heights (the same samples as the window's,
    // and still in cache from the refinement; the window is not: reading it in insertion order missed on most
    // vertices); those on the edge need the halo, so the window.
    let (nx, ny) = (t.width(), t.height());
    let [kx, kz] = vm.slope_factors();
    // Snapped X per column and Z per row, once per tile instead of twice per vertex (the same function).
    let lx: Vec<f32> = (t.x0..t.x1).map(|x| vm.local_x(x)).collect();
    let lz: Vec<f32> = (t.y0..t.y1).map(|y| vm.local_z(y)).collect();
    for (v, c) in s.coords.iter().enumerate() {
        if used[v] {
            remap[v] = m.positions.len() as u32;
            let (cx, cy) = (c[0] as usize, c[1] as usize);
            let (x, y) = (t.x0 + cx, t.y0 + cy);
            let hv = s.heights[v];
            m.positions.push([lx[cx], vm.height(hv), lz[cy]]);
            m.normals.push(if cx > 0 && cy > 0 && cx + 1 < nx && cy + 1 < ny {
                let i = cy * nx + cx;
                super::normal_from(h[i - 1], h[i + 1], h[i - nx], h[i + nx], hv, kx, kz)
            } else {
                vm.normal(w, x, y, hv)
            });
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
        border_keep(&[0.0, 1.0, 2.0, 3.0, 4.0], 0.0, 0.0, None, &mut k);
        assert_eq!(k, [0, 4]);
        border_keep(&[0.0, 1.0, 5.0, 3.0, 4.0], 0.5, 0.0, None, &mut k);
        assert!(k.contains(&2));
        border_keep(&[0.0, 0.0, f32::NAN, 0.0, 0.0, 0.0], 1.0, 0.0, None, &mut k);
        assert_eq!(k, [0, 1, 2, 3, 5]);
    }

    /// Pieces cover the side, share their cut samples, have at most PIECE_CELLS cells up to MAX_PIECES of them and
    /// are MAX_PIECES past that (the pieces of one side differ by at most one cell), are at least two per side of
    /// SPLIT_MIN samples with `Cores`, and halve a side of up to 2·PIECE_CELLS cells at the sample the 2×2 split has
    /// always used (its tiles keep their bytes).
    #[test]
    fn cuts_cover_the_side_in_even_pieces() {
        assert_eq!(cuts(5, 6, Split::Pieces), [(5, 6)]);
        assert_eq!(cuts(0, 300, Split::Whole), [(0, 300)]);
        for a in [0usize, 7, 512] {
            for samples in 2..1400 {
                let b = a + samples;
                for split in [Split::Pieces, Split::Cores] {
                    let c = cuts(a, b, split);
                    assert_eq!((c[0].0, c[c.len() - 1].1), (a, b), "{a}..{b}");
                    assert!(c.windows(2).all(|p| p[0].1 == p[1].0 + 1), "{a}..{b}: pieces share their cut sample");
                    let cells: Vec<usize> = c.iter().map(|&(x0, x1)| x1 - x0 - 1).collect();
                    let most = PIECE_CELLS.max((samples - 1).div_ceil(MAX_PIECES));
                    assert!(cells.iter().all(|n| (1..=most).contains(n)), "{a}..{b}: {cells:?}");
                    assert!(cells.iter().max().unwrap() - cells.iter().min().unwrap() <= 1, "{a}..{b}: {cells:?}");
                    let n = (samples - 1).div_ceil(PIECE_CELLS).clamp(1, MAX_PIECES);
                    assert_eq!(c.len(), n.max(if split == Split::Cores && samples >= SPLIT_MIN { 2 } else { 1 }));
                    if c.len() == 2 {
                        let mid = a + (samples - 1) / 2;
                        assert_eq!(c, [(a, mid + 1), (mid, b)], "{a}..{b}");
                    }
                    // A function of the side alone: the same cuts, shifted, at any origin.
                    assert_eq!(c.iter().map(|&(x0, x1)| (x0 - a, x1 - a)).collect::<Vec<_>>(), cuts(0, samples, split));
                }
            }
        }
    }

    fn run(data: &[f32], w: usize, h: usize, e: f32) -> Mesh {
        let r = Rect::new(0, 0, w, h);
        let p = Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [w, h], tile: w.max(h) };
        mesh_simplified(
            &Window { data, rect: r, tile: r },
            &p,
            &SimplifyParams { max_error: e, max_triangles: None, split: Split::Whole, curvature: 0.0 },
            &mut Scratch::default(),
        )
    }

    /// The row scan against brute force: every sample inside or on the triangle but its corners, the plane
    /// evaluated from barycentric weights; the same maximum (to rounding), found at a sample that attains it, for
    /// random triangles of every shape, both orientations and on the tile's edges; a row lattice never reports
    /// more than the full scan.
    #[test]
    fn row_scan_matches_brute_force() {
        let (nx, ny) = (61usize, 47usize);
        let h: Vec<f32> = (0..nx * ny).map(|i| (((i * 7919) % 1013) as f32 * 0.37).sin() * 40.0 + (i % nx) as f32 * 0.3).collect();
        let tile = Tile { h: &h, nx, ny, voids: false };
        let mut next = crate::mesh::xorshift(0x2545f4914f6cdd1du64);
        let mut rnd = move |n: i32| (next() % n as u64) as i32;
        let mut checked = 0;
        while checked < 3000 {
            let p = [[rnd(nx as i32), rnd(ny as i32)], [rnd(nx as i32), rnd(ny as i32)], [rnd(nx as i32), rnd(ny as i32)]];
            let area = orient(p[0], p[1], p[2]);
            if area == 0 {
                continue;
            }
            checked += 1;
            let hp = p.map(|q| h[q[1] as usize * nx + q[0] as usize] as f64);
            let (best, at) = scan_plain(&tile, p, hp, 1);
            let err_at = |x: i32, y: i32| {
                let w = [orient(p[1], p[2], [x, y]), orient(p[2], p[0], [x, y]), orient(p[0], p[1], [x, y])];
                let inside = w.iter().all(|&v| v * area.signum() >= 0);
                let z = (w[0] as f64 * hp[0] + w[1] as f64 * hp[1] + w[2] as f64 * hp[2]) / area as f64;
                (inside && !p.contains(&[x, y])).then(|| (z - h[y as usize * nx + x as usize] as f64).abs())
            };
            let mut want = -1.0f64;
            for y in 1..ny as i32 - 1 {
                for x in 1..nx as i32 - 1 {
                    if let Some(e) = err_at(x, y) {
                        want = want.max(e);
                    }
                }
            }
            assert!((best - want).abs() <= 1e-9 * want.abs().max(1.0), "{p:?}: scan {best} brute {want}");
            if want >= 0.0 {
                let e = err_at(at[0], at[1]).expect("the candidate is an interior, non-corner sample of the triangle");
                assert!((e - best).abs() <= 1e-9 * best.max(1.0));
            }
            for rows in [2, 4, 8] {
                let mut want = -1.0f64;
                for y in (1..ny as i32 - 1).filter(|y| y % rows == 0) {
                    for x in 1..nx as i32 - 1 {
                        if let Some(e) = err_at(x, y) {
                            want = want.max(e);
                        }
                    }
                }
                let got = scan_plain(&tile, p, hp, rows).0;
                assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0) && got <= best + 1e-9, "{p:?} rows {rows}: {got} against {want}");
            }
        }
    }

    /// The row walk's quotient and remainder: exact floor division for both signs and near every multiple.
    #[test]
    fn floor_div_is_exact() {
        for d in [1i64, 2, 3, 7, 255, 4096, 32767] {
            for base in [0i64, 1 << 20, 1 << 31, (1 << 40) + 3] {
                for n in (-3 * d - 2..=3 * d + 2).flat_map(|k| [base + k, -base + k]) {
                    assert_eq!(floor_div(n, d), (n.div_euclid(d), n.rem_euclid(d)), "{n} / {d}");
                }
            }
        }
    }

    /// On a flat tile placed on a curve (30 m cells, 7.7 km a side, the earth's curvature, 0.1 m), every triangle's
    /// chord stays within the error under the curve, as the kernel reports: each triangle's smallest enclosing
    /// circle within √(2E/κ); and the triangles are few, within 4× of what circles that size need to cover the tile
    /// (58 against 36): the sag's own worst point is inserted, not the flat scan's first sample (which made 754).
    #[test]
    fn a_flat_tile_on_a_curve_is_cut_to_the_chords_the_error_allows() {
        let (n, cell, e, k) = (257usize, 30.0f64, 0.1f32, 1.0 / 6.335e6);
        let data = vec![12.5f32; n * n];
        let r = Rect::new(0, 0, n, n);
        let p = Params { cell: [cell, cell], z_scale: 1.0, z_offset: 0.0, raster: [n, n], tile: n - 1 };
        let sp = SimplifyParams { max_error: e, max_triangles: None, split: Split::Whole, curvature: k };
        let m = mesh_simplified(&Window { data: &data, rect: r, tile: r }, &p, &sp, &mut Scratch::default());
        assert!(m.max_error <= e, "{}", m.max_error);
        let limit = 2.0 * e as f64 / k;
        for t in m.indices.chunks_exact(3) {
            let [a, b, c] = [t[0], t[1], t[2]].map(|i| m.grid[i as usize].map(|v| v as f64 * cell));
            let l2 = |p: [f64; 2], q: [f64; 2]| (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2);
            let (ab, bc, ca) = (l2(a, b), l2(b, c), l2(c, a));
            let longest = ab.max(bc).max(ca);
            let twice = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
            let r2 = if 2.0 * longest < ab + bc + ca { ab * bc * ca / (4.0 * twice * twice) } else { longest / 4.0 };
            assert!(r2 <= limit * 1.0001, "enclosing radius {} m over {} m", r2.sqrt(), limit.sqrt());
        }
        // Circles of radius √(2E/κ) (1,125 m) hold equilateral triangles of 1.64 km²: 36 for the 59 km² tile.
        let ideal = ((n - 1) as f64 * cell).powi(2) / (3f64.sqrt() * 3.0 / 4.0 * limit);
        println!("{} triangles, about {ideal:.0} would do", m.triangles());
        assert!((m.triangles() as f64) < 4.0 * ideal, "{} triangles for about {ideal:.0}", m.triangles());
    }

    #[test]
    fn plane_collapses_to_two_triangles() {
        let (w, h) = (33, 17);
        let data: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 * 0.5 + (i / w) as f32 * 2.0).collect();
        let m = run(&data, w, h, 0.0);
        assert_eq!((m.vertices(), m.triangles()), (4, 2));
    }

    /// Tiles much taller than wide and wider than tall (more blocks down than across, and the reverse): every
    /// sample within the error, re-measured by brute force from the output triangles. (The class of a triangle
    /// once counted blocks as if the tile were square, which put a tall tile's lower blocks past the last class.)
    #[test]
    fn narrow_tiles_keep_the_bound() {
        for (w, h) in [(40usize, 700usize), (700, 40), (130, 300)] {
            let data: Vec<f32> = (0..w * h).map(|i| (((i * 7919) % 1013) as f32 * 0.37).sin() * 3.0 + ((i / w) as f32 * 0.05).sin() * 40.0).collect();
            let e = 0.5f32;
            let m = run(&data, w, h, e);
            assert!(m.max_error <= e, "{w}×{h}: reported {}", m.max_error);
            let mut worst = 0.0f64;
            for t in m.indices.chunks_exact(3) {
                let p = [0, 1, 2].map(|k| m.grid[t[k] as usize].map(|c| c as i32));
                let area = orient(p[0], p[1], p[2]);
                let hp = p.map(|q| data[q[1] as usize * w + q[0] as usize] as f64);
                let (x0, x1) = (p.iter().map(|q| q[0]).min().unwrap(), p.iter().map(|q| q[0]).max().unwrap());
                let (y0, y1) = (p.iter().map(|q| q[1]).min().unwrap(), p.iter().map(|q| q[1]).max().unwrap());
                for y in y0..=y1 {
                    for x in x0..=x1 {
                        let l = [orient(p[1], p[2], [x, y]), orient(p[2], p[0], [x, y]), orient(p[0], p[1], [x, y])];
                        if l.iter().all(|&v| v * area.signum() >= 0) {
                            let z = (l[0] as f64 * hp[0] + l[1] as f64 * hp[1] + l[2] as f64 * hp[2]) / area as f64;
                            worst = worst.max((z - data[y as usize * w + x as usize] as f64).abs());
                        }
                    }
                }
            }
            assert!(worst <= e as f64 + 1e-4, "{w}×{h}: measured {worst}");
            assert!(m.triangles() > 2, "{w}×{h}: refined");
        }
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
