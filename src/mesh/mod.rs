//! Meshing kernels: pure functions from a height window to vertex/index buffers. No I/O, no MPI, no global state.
//!
//! Every vertex attribute is a function of the vertex's global sample and the samples around it (never of the
//! tile it lands in), which is what makes seams between independently meshed tiles bit-identical.

pub mod grid;
pub mod scan;
pub mod simplify;

use crate::tiling::Rect;

/// Heights around one tile: `data` is row-major over `rect` (the tile's samples plus the halo ring where the raster
/// has one); `tile` is the sample rectangle the mesh covers. NaN means no data.
#[derive(Clone, Copy)]
pub struct Window<'a> {
    pub data: &'a [f32],
    pub rect: Rect,
    pub tile: Rect,
}

impl Window<'_> {
    /// Height at global sample (x, y); NaN outside the window.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> f32 {
        if self.rect.contains(x, y) {
            self.data[(y - self.rect.y0) * self.rect.width() + (x - self.rect.x0)]
        } else {
            f32::NAN
        }
    }
}

/// World mapping and raster-wide facts a kernel needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Metres per sample along X (columns) and Z (rows).
    pub cell: [f64; 2],
    pub z_scale: f32,
    pub z_offset: f32,
    /// Whole raster size in samples (for UVs over the scene).
    pub raster: [usize; 2],
    /// The scene's tile size in cells (the largest tile extent): sets the quantum that world X/Z are snapped to,
    /// so tile-local f32 offsets are exact and neighbouring tiles meet bit for bit at any cell size.
    pub tile: usize,
}

impl Params {
    /// The quantum (a power of two, metres) world X and Z are snapped to along each axis: the finest one at which
    /// every offset within a tile of `tile` cells is an integer multiple below 2^24, hence exact in f32. Dyadic cell
    /// sizes (1, 0.5, 2 m) are multiples of it, so their coordinates are unchanged by snapping.
    pub fn quantum(&self) -> [f64; 2] {
        self.cell.map(|c| {
            let extent = (self.tile.max(1) as f64) * c;
            2f64.powi((extent / ((1u32 << 24) - 2) as f64).log2().ceil() as i32)
        })
    }
}

/// Output buffers of one tile. Positions are tile-local (add `origin` for world coordinates) to keep f32 precision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub uvs: Vec<[f32; 2]>,
    /// Global sample (column, row) of each vertex.
    pub grid: Vec<[u32; 2]>,
    /// Counter-clockwise seen from +Y.
    pub indices: Vec<u32>,
    pub origin: [f64; 3],
    pub min: [f32; 3],
    pub max: [f32; 3],
    /// Samples of the tile that had no data.
    pub nodata_samples: usize,
    /// Largest vertical distance between the mesh and any valid sample of the tile (0 for the full grid).
    pub max_error: f32,
}

impl Mesh {
    pub fn triangles(&self) -> usize {
        self.indices.len() / 3
    }
    pub fn vertices(&self) -> usize {
        self.positions.len()
    }
    pub(crate) fn finish_bounds(&mut self) {
        let mut min = [f32::INFINITY; 3];
        let mut max = [f32::NEG_INFINITY; 3];
        for p in &self.positions {
            for k in 0..3 {
                min[k] = min[k].min(p[k]);
                max[k] = max[k].max(p[k]);
            }
        }
        if self.positions.is_empty() {
            min = [0.0; 3];
            max = [0.0; 3];
        }
        self.min = min.map(canonical_zero);
        self.max = max.map(canonical_zero);
    }
}

/// −0.0 → +0.0, so accessor bounds do not depend on which of two equal zeros a fold met first.
#[inline]
pub(crate) fn canonical_zero(v: f32) -> f32 {
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

/// How a tile is meshed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Every sample a vertex, two triangles per cell.
    Grid,
    /// Greedy Delaunay refinement to a maximum vertical error, with exact seams.
    Simplify(simplify::SimplifyParams),
}

/// Meshes one tile with `method`, then adds skirts `skirt` metres deep along the tile border if asked.
pub fn mesh_tile(w: &Window, p: &Params, method: &Method, skirt: Option<f32>, scratch: &mut simplify::Scratch) -> Mesh {
    let mut m = match method {
        Method::Grid => grid::mesh_grid(w, p),
        Method::Simplify(sp) if sp.split != simplify::Split::Whole => simplify::mesh_split(w, p, sp, scratch),
        Method::Simplify(sp) => simplify::mesh_simplified(w, p, sp, scratch),
    };
    if let Some(d) = skirt {
        add_skirts(&mut m, &w.tile, d);
    }
    m
}

/// Adds vertical curtains `depth` metres deep below every mesh edge that lies on the tile's border, facing
/// outwards, so viewers that mix levels of detail between neighbours show no gaps. Skirt vertices copy the
/// border vertex's normal and UV.
pub fn add_skirts(m: &mut Mesh, tile: &Rect, depth: f32) {
    if depth <= 0.0 || m.indices.is_empty() {
        return;
    }
    let (x0, y0, x1, y1) = (tile.x0 as u32, tile.y0 as u32, tile.x1 as u32 - 1, tile.y1 as u32 - 1);
    let on_same_side = |a: [u32; 2], b: [u32; 2]| (a[0] == b[0] && (a[0] == x0 || a[0] == x1)) || (a[1] == b[1] && (a[1] == y0 || a[1] == y1));
    // Only edges along a side can be boundary edges: count those alone (a few percent of a tile's edges).
    let mut edges: std::collections::HashMap<(u32, u32), u32> = std::collections::HashMap::new();
    for t in m.indices.chunks_exact(3) {
        for k in 0..3 {
            let (a, b) = (t[k], t[(k + 1) % 3]);
            if on_same_side(m.grid[a as usize], m.grid[b as usize]) {
                *edges.entry((a.min(b), a.max(b))).or_insert(0) += 1;
            }
        }
    }
    let mut lowered: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    let mut extra: Vec<u32> = Vec::new();
    let tris = m.indices.len() / 3;
    for ti in 0..tris {
        for k in 0..3 {
            let (a, b) = (m.indices[3 * ti + k], m.indices[3 * ti + (k + 1) % 3]);
            if !on_same_side(m.grid[a as usize], m.grid[b as usize]) || edges[&(a.min(b), a.max(b))] != 1 {
                continue;
            }
            let mut low = |v: u32, m: &mut Mesh| {
                *lowered.entry(v).or_insert_with(|| {
                    let mut p = m.positions[v as usize];
                    p[1] -= depth;
                    m.positions.push(p);
                    m.normals.push(m.normals[v as usize]);
                    m.uvs.push(m.uvs[v as usize]);
                    m.grid.push(m.grid[v as usize]);
                    (m.positions.len() - 1) as u32
                })
            };
            let (la, lb) = (low(a, m), low(b, m));
            extra.extend_from_slice(&[b, a, la, b, la, lb]);
        }
    }
    m.indices.extend_from_slice(&extra);
    m.finish_bounds();
}

/// Largest vertical distance between a triangle mesh given in world coordinates (glTF frame: X east, Y up, Z
/// south) and the valid samples of the window's tile that its surface covers. Triangles vertical in plan view
/// (skirts) are skipped. Used to re-measure a tile after its vertices were quantized.
pub fn vertical_error(world: &[[f64; 3]], indices: &[u32], w: &Window, p: &Params) -> f32 {
    let t = w.tile;
    let vm = VertexMap::new(&t, p);
    let o = vm.origin();
    let sx: Vec<f64> = (t.x0..t.x1).map(|x| o[0] + vm.local_x(x) as f64).collect();
    let sz: Vec<f64> = (t.y0..t.y1).map(|y| o[2] + vm.local_z(y) as f64).collect();
    let mut worst = 0.0f64;
    for tri in indices.chunks_exact(3) {
        let [a, b, c] = [tri[0], tri[1], tri[2]].map(|i| world[i as usize]);
        let area = (b[0] - a[0]) * (c[2] - a[2]) - (b[2] - a[2]) * (c[0] - a[0]);
        if area.abs() <= 1e-12 * (1.0 + a[0].abs() + a[2].abs()).powi(2) {
            continue;
        }
        let (lo_x, hi_x) = (a[0].min(b[0]).min(c[0]), a[0].max(b[0]).max(c[0]));
        let (lo_z, hi_z) = (a[2].min(b[2]).min(c[2]), a[2].max(b[2]).max(c[2]));
        let i0 = sx.partition_point(|&v| v < lo_x);
        let i1 = sx.partition_point(|&v| v <= hi_x);
        let j0 = sz.partition_point(|&v| v < lo_z);
        let j1 = sz.partition_point(|&v| v <= hi_z);
        let tol = area.abs() * 1e-9;
        for (j, &z) in sz.iter().enumerate().take(j1).skip(j0) {
            for (i, &x) in sx.iter().enumerate().take(i1).skip(i0) {
                let e = |p: [f64; 3], q: [f64; 3]| (q[0] - p[0]) * (z - p[2]) - (q[2] - p[2]) * (x - p[0]);
                let (w0, w1, w2) = (e(b, c), e(c, a), e(a, b));
                let inside = (w0 >= -tol && w1 >= -tol && w2 >= -tol) || (w0 <= tol && w1 <= tol && w2 <= tol);
                if !inside {
                    continue;
                }
                let h = w.at(t.x0 + i, t.y0 + j);
                if h.is_nan() {
                    continue;
                }
                let zi = (w0 * a[1] + w1 * b[1] + w2 * c[1]) / area;
                worst = worst.max((zi - (h * p.z_scale + p.z_offset) as f64).abs());
            }
        }
    }
    worst as f32
}

/// Per-tile constants for turning a global sample into vertex attributes.
#[derive(Clone, Copy)]
pub(crate) struct VertexMap {
    cx: f64,
    cy: f64,
    /// Snapping quanta along X and Z, and the tile origin's snapped world X and Z.
    qx: f64,
    qz: f64,
    ox: f64,
    oz: f64,
    zs: f32,
    zo: f32,
    /// z_scale / cell, for one-sided and (halved) central differences.
    kx: f32,
    kz: f32,
    inv_w: f64,
    inv_h: f64,
}

impl VertexMap {
    pub(crate) fn new(tile: &Rect, p: &Params) -> VertexMap {
        let [qx, qz] = p.quantum();
        VertexMap {
            cx: p.cell[0],
            cy: p.cell[1],
            qx,
            qz,
            ox: snap(tile.x0 as f64 * p.cell[0], qx),
            oz: snap(tile.y0 as f64 * p.cell[1], qz),
            zs: p.z_scale,
            zo: p.z_offset,
            kx: (p.z_scale as f64 / p.cell[0]) as f32,
            kz: (p.z_scale as f64 / p.cell[1]) as f32,
            inv_w: 1.0 / (p.raster[0] - 1) as f64,
            inv_h: 1.0 / (p.raster[1] - 1) as f64,
        }
    }

    /// The tile's origin in world metres: the snapped world position of its first sample.
    pub(crate) fn origin(&self) -> [f64; 3] {
        [self.ox, 0.0, self.oz]
    }

    /// z_scale / cell along X and Z: the factors the normal formula multiplies its height differences by.
    pub(crate) fn slope_factors(&self) -> [f32; 2] {
        [self.kx, self.kz]
    }

    /// Tile-local X of global column `x`: snapped world X minus the snapped origin, exact in f32 (so origin + local
    /// is the same number in every tile that holds the sample).
    #[inline]
    pub(crate) fn local_x(&self, x: usize) -> f32 {
        (snap(x as f64 * self.cx, self.qx) - self.ox) as f32
    }

    /// Tile-local Z of global row `y` (see [`Self::local_x`]).
    #[inline]
    pub(crate) fn local_z(&self, y: usize) -> f32 {
        (snap(y as f64 * self.cy, self.qz) - self.oz) as f32
    }

    #[inline]
    pub(crate) fn position(&self, x: usize, y: usize, h: f32) -> [f32; 3] {
        [self.local_x(x), self.height(h), self.local_z(y)]
    }

    /// Y of a raw height: scaled and offset.
    #[inline]
    pub(crate) fn height(&self, h: f32) -> f32 {
        h * self.zs + self.zo
    }

    #[inline]
    pub(crate) fn uv(&self, x: usize, y: usize) -> [f32; 2] {
        [(x as f64 * self.inv_w) as f32, (y as f64 * self.inv_h) as f32]
    }

    /// Unit normal of the height field at sample (x, y): central differences where both neighbours have data,
    /// one-sided where only one has, flat where neither has.
    #[inline]
    pub(crate) fn normal(&self, w: &Window, x: usize, y: usize, c: f32) -> [f32; 3] {
        let l = if x > 0 { w.at(x - 1, y) } else { f32::NAN };
        let r = w.at(x + 1, y);
        let u = if y > 0 { w.at(x, y - 1) } else { f32::NAN };
        let d = w.at(x, y + 1);
        normal_from(l, r, u, d, c, self.kx, self.kz)
    }
}

/// `v` rounded to the nearest multiple of the power of two `q` (exact: scaling by a power of two is exact).
#[inline]
pub(crate) fn snap(v: f64, q: f64) -> f64 {
    (v / q).round() * q
}

/// The one normal formula, shared by every kernel and its SIMD twin.
#[inline(always)]
pub(crate) fn normal_from(l: f32, r: f32, u: f32, d: f32, c: f32, kx: f32, kz: f32) -> [f32; 3] {
    let gx = slope(l, c, r) * kx;
    let gz = slope(u, c, d) * kz;
    let inv = 1.0 / (gx * gx + gz * gz + 1.0).sqrt();
    [-gx * inv, inv, -gz * inv]
}

#[inline(always)]
fn slope(a: f32, c: f32, b: f32) -> f32 {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => (b - a) * 0.5,
        (true, false) => b - c,
        (false, true) => c - a,
        (true, true) => 0.0,
    }
}

/// The unit tests' random numbers: xorshift64 from `seed` (deterministic, no dependency).
#[cfg(test)]
pub(crate) fn xorshift(mut s: u64) -> impl FnMut() -> u64 {
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_of_plane() {
        // h = 2·x over cells of 1 m: slope 2 → normal ∝ (−2, 1, 0).
        let n = normal_from(0.0, 4.0, 2.0, 2.0, 2.0, 1.0, 1.0);
        let s = 5f32.sqrt();
        assert!((n[0] + 2.0 / s).abs() < 1e-6 && (n[1] - 1.0 / s).abs() < 1e-6 && n[2] == 0.0);
        // One-sided at a hole gives the same slope on a plane.
        assert_eq!(normal_from(f32::NAN, 4.0, 2.0, 2.0, 2.0, 1.0, 1.0), n);
        assert_eq!(normal_from(f32::NAN, f32::NAN, f32::NAN, f32::NAN, 2.0, 1.0, 1.0), [0.0, 1.0, 0.0]);
    }
}

#[cfg(test)]
mod skirt_tests {
    use super::*;

    #[test]
    fn skirts_hang_below_every_border_edge_facing_out() {
        let data = [1.0f32; 16];
        let r = Rect::new(0, 0, 4, 4);
        let p = Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [4, 4], tile: 4 };
        let mut m = grid::mesh_grid(&Window { data: &data, rect: r, tile: r }, &p);
        let before = m.triangles();
        add_skirts(&mut m, &r, 5.0);
        // 12 border edges, 2 triangles each; 12 lowered copies of the 12 border vertices.
        assert_eq!(m.triangles(), before + 24);
        assert_eq!(m.vertices(), 16 + 12);
        assert_eq!(m.min[1], -4.0);
        for t in m.indices[before * 3..].chunks(3) {
            let [a, b, c] = [t[0], t[1], t[2]].map(|i| m.positions[i as usize]);
            let (u, v) = ([b[0] - a[0], b[1] - a[1], b[2] - a[2]], [c[0] - a[0], c[1] - a[1], c[2] - a[2]]);
            let n = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
            let centre = [(a[0] + b[0] + c[0]) / 3.0 - 1.5, (a[2] + b[2] + c[2]) / 3.0 - 1.5];
            assert!(n[0] * centre[0] + n[2] * centre[1] > 0.0, "skirt faces inwards");
            assert_eq!(n[1], 0.0, "skirts are vertical");
        }
    }
}
