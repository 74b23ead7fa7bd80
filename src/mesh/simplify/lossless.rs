//! The lossless fast path (`--max-error 0`, issue #15): instead of inserting nearly every sample one by one, start
//! from the full grid (every sample a vertex, two triangles per cell) and remove the vertices the surface does not
//! need, each by collapsing it onto a neighbour: a collapse is taken only when every triangle it makes keeps its
//! orientation and is checked sample by sample by the same row scan as the greedy path, at an error of exactly 0.
//! The surface therefore passes through every sample, as the greedy path's does, at a small fraction of its cost
//! (one cheap test per vertex; only the few removable vertices pay for scans).
//!
//! Seams: the border samples the 1-D border pass drops (at error 0, those on a straight line with their kept
//! neighbours) are removed first, so each border keeps exactly the vertices the greedy path and the neighbouring
//! tile keep; border vertices are never removed after that. Should a dropped border sample fail to collapse, the
//! tile falls back to the greedy path (same border, same bound).
//!
//! Removal order: border samples in walking order, then interior vertices row by row, a vertex whose neighbourhood
//! changed being tried again (a worklist), so flat areas and planar slopes shrink to a few triangles and straight
//! creases lose their inner vertices. Deterministic: the result depends on the tile's samples alone.

use super::{orient, scan_plain, Scratch, Tile, NONE};

#[inline(always)]
fn next(e: u32) -> u32 {
    e - e % 3 + (e % 3 + 1) % 3
}

#[inline(always)]
fn prev(e: u32) -> u32 {
    e - e % 3 + (e % 3 + 2) % 3
}

/// The fast path's working state over the scratch's triangulation.
struct Grid<'s> {
    s: &'s mut Scratch,
    /// One outgoing half-edge of each vertex (NONE once removed).
    vhe: Vec<u32>,
    /// The half-edges out of the vertex being tried, in turning order (reused).
    fan: Vec<u32>,
    /// Candidate targets of the vertex being tried (reused).
    ring: Vec<u32>,
    /// Triangles made by the collapse being tried: slot and corners (reused).
    made: Vec<(u32, [u32; 3])>,
}

impl Grid<'_> {
    /// The half-edges out of `v`, in turning order; for a vertex on the tile's boundary the fan is open and
    /// starts at a boundary triangle.
    fn gather(&mut self, v: u32) {
        self.fan.clear();
        let e0 = self.vhe[v as usize];
        let mut e = e0;
        loop {
            self.fan.push(e);
            let o = self.s.half[prev(e) as usize];
            if o == NONE {
                break;
            }
            e = o;
            if e == e0 {
                return;
            }
        }
        // Open fan: walk the other way from e0 and put those first.
        let mut back = Vec::new();
        let mut e = e0;
        loop {
            let o = self.s.half[e as usize];
            if o == NONE {
                break;
            }
            e = next(o);
            back.push(e);
        }
        back.reverse();
        back.extend_from_slice(&self.fan);
        self.fan = back;
    }

    /// Tries to remove `v` by collapsing it onto `u` (a neighbour); `border` when `v` lies on the tile's boundary
    /// (its sample is the 1-D pass's, not scanned here). True if done.
    fn collapse(&mut self, tile: &Tile, v: u32, u: u32, border: bool) -> bool {
        let s = &mut *self.s;
        let pv = s.coords[v as usize];
        let hv = s.heights[v as usize] as f64;
        self.made.clear();
        let mut holds_v = false;
        // v's half-edges in the triangles on edge v–u, which the collapse removes (two inside, one on the border).
        let (mut gone, mut ngone) = ([NONE; 2], 0);
        for &e in &self.fan {
            let t = e / 3;
            let c = [s.tris[3 * t as usize], s.tris[3 * t as usize + 1], s.tris[3 * t as usize + 2]];
            if c.contains(&u) {
                if ngone == gone.len() {
                    return false; // not a manifold edge; cannot happen in a triangulation built here
                }
                gone[ngone] = e;
                ngone += 1;
                continue;
            }
            let n = c.map(|x| if x == v { u } else { x });
            let p = n.map(|x| s.coords[x as usize]);
            let area = orient(p[0], p[1], p[2]);
            if area >= 0 {
                return false; // folds over or degenerates (every triangle turns the same way, area < 0)
            }
            // Cheap test first: the new triangle holding v's sample must pass through it exactly.
            if !border && !holds_v {
                let l = [orient(p[1], p[2], pv), orient(p[2], p[0], pv), orient(p[0], p[1], pv)];
                if l.iter().all(|&x| x <= 0) {
                    holds_v = true;
                    let h = n.map(|x| s.heights[x as usize] as f64);
                    if l[0] as f64 * h[0] + l[1] as f64 * h[1] + l[2] as f64 * h[2] != area as f64 * hv {
                        return false;
                    }
                }
            }
            self.made.push((t, n));
        }
        if !border && !holds_v {
            return false;
        }
        for &(_, n) in &self.made {
            let (err, _) = scan_plain(tile, n.map(|x| s.coords[x as usize]), n.map(|x| s.heights[x as usize] as f64), 1);
            if err > 0.0 || err.is_nan() {
                // (NaN included: never take a collapse the scan could not vouch for.)
                return false;
            }
        }
        // Commit: the triangles on edge v–u go, each gluing its two other edges' neighbours together.
        let mut fix = [NONE; 4];
        let mut nfix = 0;
        for &ev in &gone[..ngone] {
            let base = 3 * (ev / 3) as usize;
            // The edge not touching v (u–w) follows v's own half-edge `ev`; the edge w–v is `ev` or the one before it.
            let (e_far, e_wv) = (next(ev), if s.tris[next(ev) as usize] == u { prev(ev) } else { ev });
            let (o1, o2) = (s.half[e_far as usize], s.half[e_wv as usize]);
            if o1 != NONE {
                s.half[o1 as usize] = o2;
            }
            if o2 != NONE {
                s.half[o2 as usize] = o1;
            }
            fix[nfix] = o1;
            fix[nfix + 1] = o2;
            nfix += 2;
            for k in 0..3 {
                s.tris[base + k] = NONE;
                s.half[base + k] = NONE;
            }
        }
        for &(t, n) in &self.made {
            s.tris[3 * t as usize..3 * t as usize + 3].copy_from_slice(&n);
        }
        // Outgoing half-edges of u and of the far corners of the removed triangles, from the glued edges.
        for &o in &fix[..nfix] {
            if o != NONE {
                for e in [o, next(o)] {
                    let a = s.tris[e as usize];
                    self.vhe[a as usize] = e;
                }
            }
        }
        self.vhe[v as usize] = NONE;
        s.is_vertex[pv[1] as usize * tile.nx + pv[0] as usize] = false;
        true
    }

    /// The distinct neighbours of `v` (from its fan), in turning order.
    fn neighbours(&mut self) {
        self.ring.clear();
        for &e in &self.fan {
            for w in [self.s.tris[next(e) as usize], self.s.tris[prev(e) as usize]] {
                if !self.ring.contains(&w) {
                    self.ring.push(w);
                }
            }
        }
    }
}

/// Meshes the tile losslessly into the scratch's triangulation (live triangles only, errors 0), keeping on each
/// side exactly the border samples in `sides`. False when a dropped border sample could not be removed: the
/// scratch is then left for the caller to reset and run the greedy path.
pub(super) fn mesh(tile: &Tile, s: &mut Scratch, sides: &[Vec<i32>; 4]) -> bool {
    let (nx, ny) = (tile.nx, tile.ny);
    for y in 0..ny as i32 {
        for x in 0..nx as i32 {
            s.add_vertex(tile, [x, y]);
        }
    }
    let id = |x: usize, y: usize| (y * nx + x) as u32;
    let cells = (nx - 1) * (ny - 1);
    s.tris.clear();
    s.half.clear();
    s.tris.reserve(6 * cells);
    s.half.reserve(6 * cells);
    // Each cell as (x, y) → (x, y+1) → (x+1, y) and (x+1, y) → (x, y+1) → (x+1, y+1), the orientation of the
    // greedy path's first two triangles; half-edge k runs from corner k to corner k+1.
    for y in 0..ny - 1 {
        for x in 0..nx - 1 {
            let c = (y * (nx - 1) + x) as u32;
            let (ta, tb) = (2 * c, 2 * c + 1);
            s.tris.extend_from_slice(&[id(x, y), id(x, y + 1), id(x + 1, y), id(x + 1, y), id(x, y + 1), id(x + 1, y + 1)]);
            // ta: 0 left side, 1 diagonal, 2 top side; tb: 0 diagonal, 1 bottom side, 2 right side.
            let left = if x > 0 { 3 * (ta - 1) + 2 } else { NONE };
            let top = if y > 0 { 3 * (2 * (c - (nx - 1) as u32) + 1) + 1 } else { NONE };
            let right = if x + 2 < nx { 3 * (ta + 2) } else { NONE };
            let bottom = if y + 2 < ny { 3 * (2 * (c + (nx - 1) as u32)) + 2 } else { NONE };
            s.half.extend_from_slice(&[left, 3 * tb, top, 3 * ta + 1, bottom, right]);
        }
    }
    let mut vhe = vec![NONE; nx * ny];
    for (e, &v) in s.tris.iter().enumerate() {
        vhe[v as usize] = e as u32;
    }
    let mut g = Grid { s, vhe, fan: Vec::new(), ring: Vec::new(), made: Vec::new() };

    // 1. The border samples the 1-D pass dropped, onto a neighbour along their side. `touched`: the vertices whose
    //    neighbourhood is no longer the grid's.
    let mut touched = vec![false; nx * ny];
    let on_border = |p: [i32; 2]| p[0] == 0 || p[1] == 0 || p[0] == nx as i32 - 1 || p[1] == ny as i32 - 1;
    for (side, kept) in sides.iter().enumerate() {
        let len = if side < 2 { nx } else { ny };
        let mut k = 0;
        for i in 0..len as i32 {
            if k < kept.len() && kept[k] == i {
                k += 1;
                continue;
            }
            let (x, y) = match side {
                0 => (i, 0),
                1 => (i, ny as i32 - 1),
                2 => (0, i),
                _ => (nx as i32 - 1, i),
            };
            let v = id(x as usize, y as usize);
            g.gather(v);
            g.neighbours();
            let along: Vec<u32> = g
                .ring
                .iter()
                .copied()
                .filter(|&w| {
                    let p = g.s.coords[w as usize];
                    if side < 2 {
                        p[1] == y
                    } else {
                        p[0] == x
                    }
                })
                .collect();
            if !along.into_iter().any(|u| g.collapse(tile, v, u, true)) {
                return false;
            }
            g.ring.iter().for_each(|&w| touched[w as usize] = true);
        }
    }

    // 2. Interior vertices, row by row; a vertex next to a removal is tried again. A vertex whose neighbourhood is
    //    still the grid's (six neighbours, in three opposite pairs) can only go onto a neighbour whose opposite
    //    one continues the straight line through it (it then lies on the collapse's new edge between the two):
    //    three exact comparisons rule most vertices out before any triangle is looked at.
    let h = tile.h;
    let mut queued = vec![false; nx * ny];
    let mut work: std::collections::VecDeque<u32> = std::collections::VecDeque::new();
    for y in 1..ny.saturating_sub(1) {
        for x in 1..nx - 1 {
            work.push_back(id(x, y));
            queued[id(x, y) as usize] = true;
        }
    }
    while let Some(v) = work.pop_front() {
        queued[v as usize] = false;
        if g.vhe[v as usize] == NONE {
            continue;
        }
        if !touched[v as usize] {
            let i = v as usize;
            let hv = 2.0 * h[i] as f64;
            let line = |a: usize, b: usize| h[a] as f64 + h[b] as f64 == hv;
            if !(line(i - 1, i + 1) || line(i - nx, i + nx) || line(i - nx + 1, i + nx - 1)) {
                continue;
            }
        }
        g.gather(v);
        g.neighbours();
        let ring = std::mem::take(&mut g.ring);
        let done = ring.iter().any(|&u| g.collapse(tile, v, u, false));
        if done {
            for &w in &ring {
                touched[w as usize] = true;
                if !queued[w as usize] && !on_border(g.s.coords[w as usize]) && g.vhe[w as usize] != NONE {
                    queued[w as usize] = true;
                    work.push_back(w);
                }
            }
        }
        g.ring = ring;
    }

    // 3. Live triangles only; every error is 0 (each made triangle was scanned, the others are grid cells).
    let s = g.s;
    let mut w = 0;
    for t in 0..s.tris.len() / 3 {
        if s.tris[3 * t] != NONE {
            s.tris.copy_within(3 * t..3 * t + 3, 3 * w);
            w += 1;
        }
    }
    s.tris.truncate(3 * w);
    s.half.clear();
    s.err.clear(); // no triangle has an error above 0, which is what an empty list reports
    true
}
