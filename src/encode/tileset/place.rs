//! Vertices placed on the WGS84 ellipsoid, in the tileset's frame. Pure: a mesh in, the same mesh moved out.
//!
//! The root transform ([`super::root_transform`]) is the projection's map at the raster's centre, so a mesh left in
//! the raster's plane lies on the tangent plane there and leaves the ellipsoid away from it: about d²/2R above it at
//! a distance d (0.8 m at 3 km, 80 m at 32 km, about 600 m at the corners of a 4097² raster of 30 m cells), and
//! sideways by the projection's distortion. A placed vertex lies where the CRS puts its sample: the sample's
//! longitude and latitude (through the map to WGS 84 that the root transform uses), at the vertex's height above
//! the ellipsoid, in the tileset frame (x, y along the grid's columns and rows at the centre, z up there).
//!
//! An exact position costs an inverse projection (0.2–1 µs); a level holds up to millions of vertices. So the map
//! is computed exactly on a lattice of nodes about [`SPACING`] metres apart and interpolated between them by
//! Catmull–Rom splines, which reproduce quadratics exactly: what is left is third order in the spacing over the
//! earth's radius, about a micrometre (the unit tests measure it). Nodes are global (a node depends on its
//! index alone), so a vertex that two tiles share is placed by the same arithmetic in both: bit for bit the same.

use super::{cofactors, cross, dot, linear_inverse};
use crate::mesh::{self, Mesh, Params};
use crate::raster::georef::{self, Georef, ToWgs84};
use crate::tiling::Rect;

/// The lattice's node spacing, metres (rounded down to whole samples; at least one sample).
pub const SPACING: f64 = 1000.0;

/// The smallest radius of curvature of the WGS84 ellipsoid (its meridian radius at the equator, a(1 − e²)): the
/// largest curvature any curve on it has.
const MIN_RADIUS: f64 = georef::WGS84_A * (1.0 - georef::WGS84_E2);

/// Where the samples of a georeferenced raster lie in its tileset's frame.
pub struct Placement {
    georef: Georef,
    to_wgs84: ToWgs84,
    /// The root transform's linear part (columns: the frame's x, y and z in earth-centred metres), its inverse
    /// (rows), and its translation.
    lin: [[f64; 3]; 3],
    inv: [[f64; 3]; 3],
    origin: [f64; 3],
    cell: [f64; 2],
    /// Samples between nodes.
    step: i64,
    /// The largest curvature of the ellipsoid per metre of the raster's plane ([`Placement::curvature`]).
    curvature: f64,
}

/// A vertex's frame: where it is, and the map's derivatives there (the columns: along the frame's x and y per
/// metre of the raster's plane, and up).
pub struct Local {
    pub position: [f64; 3],
    pub jacobian: [[f64; 3]; 3],
}

/// How to undo a tile's placement locally.
pub struct Placed {
    /// Per vertex, the map from the placed frame back to the raster's plane to first order (the Jacobian's
    /// inverse, rows), in the glTF frame: a small move of a placed vertex (quantization) is this move in the plane.
    pub unplace: Vec<[[f64; 3]; 3]>,
}

/// Catmull–Rom weights of the four nodes around a point a fraction `t` ∈ [0, 1) past the second.
fn weights(t: f64) -> [f64; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [0.5 * (-t + 2.0 * t2 - t3), 0.5 * (2.0 - 5.0 * t2 + 3.0 * t3), 0.5 * (t + 4.0 * t2 - 3.0 * t3), 0.5 * (-t2 + t3)]
}

impl Placement {
    /// The placement of a raster of `raster` samples of `cell` metres in the CRS of `g`, when terrafarm gives it a
    /// root transform ([`super::root_transform`]); `None` otherwise.
    pub fn new(g: &Georef, cell: [f64; 2], raster: [usize; 2]) -> Option<Placement> {
        let (t, to_wgs84) = super::frame(g, cell, raster)?;
        let lin: [[f64; 3]; 3] = std::array::from_fn(|r| [t[r], t[4 + r], t[8 + r]]);
        let inv = linear_inverse(&t);
        let step = ((SPACING / cell[0].max(cell[1])).floor() as i64).max(1);
        let mut pl = Placement { georef: g.clone(), to_wgs84, lin, inv, origin: [t[12], t[13], t[14]], cell, step, curvature: 0.0 };
        // Ground metres per metre of the plane: the largest length the map gives a column or row step, over a 9×9
        // grid of the raster's points (a percent more for what lies between).
        let mut scale = 0.0f64;
        for i in 0..9 {
            for j in 0..9 {
                let (c, r) = ((raster[0] - 1) * i / 8, (raster[1] - 1) * j / 8);
                let jac = pl.local(c as u32, r as u32, 0.0).jacobian;
                // The map's columns along x and y, in earth-centred metres.
                for col in [0, 1].map(|k| jac.map(|row| row[k])) {
                    let ground = pl.lin.map(|row| dot(row, col));
                    scale = scale.max(dot(ground, ground).sqrt());
                }
            }
        }
        // And the normal's own turn at heights up to 9 km (κ·h, 0.14%).
        pl.curvature = (1.01 * scale).powi(2) / MIN_RADIUS * 1.0015;
        Some(pl)
    }

    /// The largest curvature of the ellipsoid per metre of the raster's plane (its smallest radius of curvature,
    /// the map's largest scale over the raster squared): what a chord in the plane can lie under the placed surface,
    /// per [`crate::mesh::simplify::SimplifyParams::curvature`].
    pub fn curvature(&self) -> f64 {
        self.curvature
    }

    /// The exact node at sample (`c`, `r`): the frame position of its point on the ellipsoid, and the frame's
    /// image of the ellipsoid's normal there. Where the projection does not reach, the raster's plane.
    fn node(&self, c: i64, r: i64) -> [f64; 6] {
        let [x, y] = self.georef.at(c as f64 + 0.5, r as f64 + 0.5);
        let Some([lon, lat]) = self.to_wgs84.lon_lat(x, y) else {
            return [c as f64 * self.cell[0], -(r as f64) * self.cell[1], 0.0, 0.0, 0.0, 1.0];
        };
        let e = georef::ecef(lon, lat, 0.0);
        let (l, f) = (lon.to_radians(), lat.to_radians());
        let n = [f.cos() * l.cos(), f.cos() * l.sin(), f.sin()];
        let d = [e[0] - self.origin[0], e[1] - self.origin[1], e[2] - self.origin[2]];
        let b = self.inv.map(|row| dot(row, d));
        let u = self.inv.map(|row| dot(row, n));
        [b[0], b[1], b[2], u[0], u[1], u[2]]
    }

    /// Samples between nodes for a level whose tiles are `tile` cells wide: [`SPACING`] metres, or more for the
    /// widest tiles, so a tile holds at most about 128 node intervals a side (a level's tiles all use the same
    /// nodes, so its seams stay exact; levels share no vertices).
    fn step(&self, tile: usize) -> i64 {
        self.step.max(tile.div_ceil(128) as i64)
    }

    /// The nodes a tile's vertices interpolate from, `s` samples apart.
    fn field(&self, t: &Rect, s: i64) -> Field {
        // Every node interval holding a sample of the tile, with the points within half a sample of its centre
        // (the frames' differences), and the nodes of their splines: one more node each side than the samples need.
        let span = |a: usize, b: usize| ((a as i64).div_euclid(s) - 2, (b as i64 - 1).div_euclid(s) + 3);
        let ((i0, i1), (j0, j1)) = (span(t.x0, t.x1), span(t.y0, t.y1));
        let cols = (i1 - i0 + 1) as usize;
        let rows = (j1 - j0 + 1) as usize;
        let mut nodes = Vec::with_capacity(cols * rows);
        for j in j0..=j1 {
            for i in i0..=i1 {
                nodes.push(self.node(i * s, j * s));
            }
        }
        Field { nodes, cols, rows, i0, j0, step: s, cell: self.cell, frames: vec![None; cols * rows] }
    }

    /// Places one sample's point at `h` metres above the ellipsoid (exact, for tests and checks): its frame
    /// position.
    pub fn exact(&self, c: i64, r: i64, h: f64) -> [f64; 3] {
        let n = self.node(c, r);
        [n[0] + h * n[3], n[1] + h * n[4], n[2] + h * n[5]]
    }

    /// The position (frame) and local derivatives of sample (`c`, `r`) at height `h`, as a placed tile has them.
    pub fn local(&self, c: u32, r: u32, h: f64) -> Local {
        let t = Rect { x0: c as usize, y0: r as usize, x1: c as usize + 1, y1: r as usize + 1 };
        self.field(&t, self.step).local(c as f64, r as f64, h)
    }

    /// Moves the tile's vertices (glTF frame, tile-local, heights in metres) to their places on the ellipsoid in
    /// the tileset frame, turns their normals with the map, and re-bases the tile on its first sample's place.
    /// Positions are snapped to a power of two per axis ([`Params::quantum`], twice as coarse for the room a placed
    /// tile may need), so tile-local offsets stay exact in f32 and a vertex two tiles share is the same
    /// number in both. With `unplace`, also each vertex's inverse map (see [`Placed`]).
    pub fn place(&self, m: &mut Mesh, tile: &Rect, p: &Params, unplace: bool) -> Placed {
        let mut f = self.field(tile, self.step(p.tile));
        let [qx, qz] = p.quantum().map(|q| 2.0 * q);
        let first = f.eval(tile.x0 as f64, tile.y0 as f64);
        let (ox, oz) = (mesh::snap(first[0], qx), mesh::snap(-first[1], qz));
        let mut inverses = Vec::with_capacity(if unplace { m.positions.len() } else { 0 });
        for i in 0..m.positions.len() {
            let [c, r] = m.grid[i];
            let h = m.origin[1] + m.positions[i][1] as f64;
            let v = f.eval(c as f64, r as f64);
            let [px, py, pz] = [v[0] + h * v[3], v[1] + h * v[4], v[2] + h * v[5]];
            m.positions[i] = [(mesh::snap(px, qx) - ox) as f32, pz as f32, (mesh::snap(-py, qz) - oz) as f32];
            // Normals turn with the inverse transpose of the map's derivative, taken at the centre of the node
            // interval the vertex lies in (it turns by an interval over the earth's radius across one, 0.16 mrad
            // a kilometre: far below a normal's quantization); see [`Frame`].
            let fr = f.frame(c, r);
            let nf = m.normals[i];
            let n = [nf[0] as f64, -nf[2] as f64, nf[1] as f64];
            let np: [f64; 3] = std::array::from_fn(|k| fr.cof[0][k] * n[0] + fr.cof[1][k] * n[1] + fr.cof[2][k] * n[2]);
            let len = dot(np, np).sqrt();
            if len > 0.0 {
                m.normals[i] = [(np[0] / len) as f32, (np[2] / len) as f32, (-np[1] / len) as f32];
            }
            if unplace {
                // J⁻¹ has rows b×u, u×a, a×b over det J (frame to frame); in glTF axes (x, y, z) = (X, Z, −Y) on
                // both sides.
                let rows = fr.cof.map(|r| r.map(|v| v / fr.det));
                let g = |row: [f64; 3]| [row[0], row[2], -row[1]];
                inverses.push([g(rows[0]), g(rows[2]), g(rows[1]).map(|v| -v)]);
            }
        }
        m.origin = [ox, 0.0, oz];
        m.finish_bounds();
        Placed { unplace: inverses }
    }

    /// The most any surface triangle of a placed mesh lies below the ellipsoid's surface through its corners, at
    /// heights that vary linearly over it: for a surface of curvature at most κ, a chord plane through three of its
    /// points lies within κ/2 · Σ λᵢ |vᵢ − x|² of it at the point x of barycentric coordinates λ, which over the
    /// triangle is largest at the circumcentre when the triangle is acute (the circumradius squared) and at the
    /// longest side's midpoint otherwise (half that side, squared). Lengths are in earth-centred metres (the root
    /// transform's scale), horizontal in the frame; the normal's own turn over the triangle adds κ·h of that at
    /// height h. Skirts (no extent in plan) are left out.
    pub fn sag(&self, m: &Mesh) -> f64 {
        let k = 1.0 / MIN_RADIUS;
        let top = m.positions.iter().map(|p| (m.origin[1] + p[1] as f64).abs()).fold(0.0, f64::max);
        let ground = |a: [f32; 3], b: [f32; 3]| -> [f64; 3] {
            // glTF (x, y, z) → frame (x, −z) horizontal, then to earth-centred metres.
            let d = [(b[0] - a[0]) as f64, -(b[2] - a[2]) as f64, 0.0];
            self.lin.map(|row| dot(row, d))
        };
        let mut worst = 0.0f64;
        for t in m.indices.chunks_exact(3) {
            let [i, j, l] = [t[0], t[1], t[2]].map(|v| v as usize);
            let (gi, gj, gl) = (m.grid[i], m.grid[j], m.grid[l]);
            let plan = (gj[0] as i64 - gi[0] as i64) * (gl[1] as i64 - gi[1] as i64) - (gj[1] as i64 - gi[1] as i64) * (gl[0] as i64 - gi[0] as i64);
            if plan == 0 {
                continue;
            }
            let (a, b) = (ground(m.positions[i], m.positions[j]), ground(m.positions[i], m.positions[l]));
            let c = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            let x = cross(a, b);
            worst = worst.max(mesh::simplify::enclosing_radius2([dot(a, a), dot(b, b), dot(c, c)], dot(x, x)));
        }
        // A thousandth of margin for the frame's tilt from the local horizontal (under 2° over 200 km).
        1.001 * 0.5 * k * (1.0 + k * top) * worst
    }
}

/// The nodes around one tile.
struct Field {
    nodes: Vec<[f64; 6]>,
    cols: usize,
    rows: usize,
    /// The map's derivative per node interval, made when a vertex first needs it.
    frames: Vec<Option<Frame>>,
    i0: i64,
    j0: i64,
    step: i64,
    cell: [f64; 2],
}

/// The map's derivative J (columns a, b, u: frame metres per metre of the plane's x and y, and per metre of height)
/// at the centre of a node interval, as its cofactor rows (b×u, u×a, a×b) and determinant: J⁻¹ = cof / det, and
/// (J⁻¹)ᵀ n ∝ cofᵀ n.
#[derive(Clone, Copy)]
struct Frame {
    cof: [[f64; 3]; 3],
    det: f64,
}

impl Field {
    /// The frame of the node interval holding sample (`c`, `r`).
    fn frame(&mut self, c: u32, r: u32) -> Frame {
        let s = self.step;
        let (i, j) = ((c as i64).div_euclid(s), (r as i64).div_euclid(s));
        let k = (j - self.j0) as usize * self.cols + (i - self.i0) as usize;
        debug_assert!(k < self.cols * self.rows);
        if let Some(fr) = self.frames[k] {
            return fr;
        }
        let half = s as f64 / 2.0;
        let l = self.local((i * s) as f64 + half, (j * s) as f64 + half, 0.0);
        let (cof, det) = cofactors([0, 1, 2].map(|k| l.jacobian.map(|row| row[k])));
        let fr = Frame { cof, det };
        self.frames[k] = Some(fr);
        fr
    }

    /// The interpolated node values at sample position (`c`, `r`) (fractional positions allowed).
    fn eval(&self, c: f64, r: f64) -> [f64; 6] {
        let s = self.step as f64;
        let (u, v) = (c / s, r / s);
        let (i, j) = (u.floor(), v.floor());
        let (wx, wy) = (weights(u - i), weights(v - j));
        let (i, j) = (i as i64 - 1 - self.i0, j as i64 - 1 - self.j0);
        let mut out = [0.0; 6];
        for (dy, wy) in wy.iter().enumerate() {
            let mut row = [0.0; 6];
            for (dx, wx) in wx.iter().enumerate() {
                let n = &self.nodes[(j as usize + dy) * self.cols + i as usize + dx];
                for k in 0..6 {
                    row[k] += wx * n[k];
                }
            }
            for k in 0..6 {
                out[k] += wy * row[k];
            }
        }
        out
    }

    fn local(&self, c: f64, r: f64, h: f64) -> Local {
        let v = self.eval(c, r);
        let position = [v[0] + h * v[3], v[1] + h * v[4], v[2] + h * v[5]];
        // Along the plane's x (columns, cw metres a sample) and y (north: rows run south), half a sample each way.
        let (e, w) = (self.eval(c + 0.5, r), self.eval(c - 0.5, r));
        let (s, n) = (self.eval(c, r + 0.5), self.eval(c, r - 0.5));
        let a: [f64; 3] = std::array::from_fn(|k| (e[k] - w[k] + h * (e[k + 3] - w[k + 3])) / self.cell[0]);
        let b: [f64; 3] = std::array::from_fn(|k| (n[k] - s[k] + h * (n[k + 3] - s[k + 3])) / self.cell[1]);
        let u = [v[3], v[4], v[5]];
        Local { position, jacobian: std::array::from_fn(|row| [a[row], b[row], u[row]]) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::georef::Model;

    /// A north-up raster with its first sample's corner at (`x0`, `y0`) and cells of `cell` CRS units.
    fn georef(epsg: u32, model: Model, x0: f64, y0: f64, cell: f64) -> Georef {
        let units = if model == Model::Geographic { "degree" } else { "metre" };
        Georef {
            epsg: Some(epsg),
            model,
            units: units.into(),
            unit_metres: 1.0,
            geotransform: [x0, cell, 0.0, y0, 0.0, -cell],
            raster_type: "area".into(),
            vertical: None,
            flipped: None,
            proj: None,
        }
    }

    fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
        (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
    }

    /// Rasters of 4097² samples: 30 m cells in UTM 33 N 200 km off the central meridian (123 km a side), 1
    /// arc-second cells at 60° N (a degree and more), and 25 m cells of the British National Grid (shifted from
    /// OSGB36). Interpolated from nodes a kilometre apart, every position lies within 10 µm of the exact map (1 µm
    /// measured) at heights up to 4 km, where the tangent plane is 390–660 m off.
    #[test]
    fn interpolated_positions_match_the_exact_map() {
        let cases = [
            (georef(32633, Model::Projected, 300_000.0, 5_323_000.0, 30.0), [30.0, 30.0]),
            (georef(4326, Model::Geographic, 10.0, 61.0, 1.0 / 3600.0), [15.47, 30.92]),
            (georef(27700, Model::Projected, 480_000.0, 250_000.0, 25.0), [25.0, 25.0]),
        ];
        let mut next = crate::mesh::xorshift(7);
        for (g, cell) in cases {
            let pl = Placement::new(&g, cell, [4097, 4097]).expect("placed");
            let (mut worst, mut flat) = (0.0f64, 0.0f64);
            for _ in 0..400 {
                let (c, r) = ((next() % 4097) as u32, (next() % 4097) as u32);
                let h = (next() % 4000) as f64;
                let (got, want) = (pl.local(c, r, h).position, pl.exact(c as i64, r as i64, h));
                worst = worst.max(dist(got, want));
                flat = flat.max(dist([c as f64 * cell[0], -(r as f64) * cell[1], h], want));
            }
            println!("EPSG:{:?}: interpolated within {worst:.2e} m of the exact map; the tangent plane up to {flat:.1} m off", g.epsg);
            assert!(worst < 1e-5, "{worst}");
            assert!(flat > 100.0, "{flat}: the case should be one where the plane is far off");
        }
    }

    /// A vertex two tiles share is placed to the same world position, bit for bit, its normal too; a tile's
    /// positions are exact tile-local f32 offsets from its origin.
    #[test]
    fn shared_vertices_are_placed_alike_in_both_tiles() {
        let g = georef(32633, Model::Projected, 300_000.0, 5_323_000.0, 30.0);
        let p = Params { cell: [30.0, 30.0], z_scale: 1.0, z_offset: 0.0, raster: [4097, 4097], tile: 256 };
        let pl = Placement::new(&g, p.cell, p.raster).unwrap();
        let vertex = |tile: &Rect, c: u32, r: u32, h: f32| {
            let vm = crate::mesh::VertexMap::new(tile, &p);
            let mut m = Mesh {
                positions: vec![vm.position(c as usize, r as usize, h)],
                normals: vec![[0.3, 0.9, -0.3]],
                uvs: vec![[0.0, 0.0]],
                grid: vec![[c, r]],
                indices: vec![],
                origin: vm.origin(),
                ..Mesh::default()
            };
            pl.place(&mut m, tile, &p, false);
            let w: [f64; 3] = std::array::from_fn(|k| m.origin[k] + m.positions[0][k] as f64);
            (w, m.normals[0])
        };
        let (a, b) = (Rect::new(3840, 256, 4097, 513), Rect::new(3584, 256, 3841, 513));
        for (c, r, h) in [(3840, 300, 1234.5f32), (3840, 256, 0.0), (3840, 512, 3999.0)] {
            let (wa, na) = vertex(&a, c, r, h);
            let (wb, nb) = vertex(&b, c, r, h);
            assert_eq!(wa.map(f64::to_bits), wb.map(f64::to_bits), "({c}, {r})");
            assert_eq!(na, nb);
            // And where the exact map puts it (glTF axes: x, up, south), to the interpolation and the snapping (to
            // 2^-10 m here: half a millimetre per axis at most).
            let e = pl.exact(c as i64, r as i64, h as f64);
            assert!(dist(wa, [e[0], e[2], -e[1]]) < 1e-3, "{wa:?} {e:?}");
        }
    }

    /// The chord bound: on a triangle of the UTM raster 30 km a side, 60 km from the centre, the plane through the
    /// placed corners lies below the exact placed surface at every sample inside it by at most [`Placed::sag`],
    /// and the bound is within 15% of the worst sample. (The simplifier counts the same bound per triangle:
    /// `SimplifyParams::curvature`.)
    #[test]
    fn the_sag_bounds_the_chord_under_the_curve() {
        let g = georef(32633, Model::Projected, 300_000.0, 5_323_000.0, 30.0);
        let p = Params { cell: [30.0, 30.0], z_scale: 1.0, z_offset: 0.0, raster: [4097, 4097], tile: 1024 };
        let pl = Placement::new(&g, p.cell, p.raster).unwrap();
        let tile = Rect::new(0, 0, 1025, 1025);
        let vm = crate::mesh::VertexMap::new(&tile, &p);
        let corners = [[0u32, 0u32], [1000, 0], [0, 1000]];
        let heights = [100.0f32, 800.0, 400.0];
        let mut m = Mesh {
            positions: corners.iter().zip(heights).map(|(c, h)| vm.position(c[0] as usize, c[1] as usize, h)).collect(),
            normals: vec![[0.0, 1.0, 0.0]; 3],
            uvs: vec![[0.0, 0.0]; 3],
            grid: corners.to_vec(),
            indices: vec![0, 1, 2],
            origin: vm.origin(),
            ..Mesh::default()
        };
        pl.place(&mut m, &tile, &p, false);
        let sag = pl.sag(&m);
        let v: Vec<[f64; 3]> = m.positions.iter().map(|q| [m.origin[0] + q[0] as f64, -(m.origin[2] + q[2] as f64), q[1] as f64]).collect();
        let mut worst = 0.0f64;
        for r in (0..=1000).step_by(10) {
            for c in (0..=1000 - r).step_by(10) {
                let (l1, l2) = (c as f64 / 1000.0, r as f64 / 1000.0);
                let h = (1.0 - l1 - l2) * 100.0 + l1 * 800.0 + l2 * 400.0;
                let s = pl.exact(c as i64, r as i64, h);
                // The chord plane at the sample's place (frame x, y), against the sample's height there.
                let (a, b, cc) = (v[0], v[1], v[2]);
                let det = (b[0] - a[0]) * (cc[1] - a[1]) - (b[1] - a[1]) * (cc[0] - a[0]);
                let w1 = ((s[0] - a[0]) * (cc[1] - a[1]) - (s[1] - a[1]) * (cc[0] - a[0])) / det;
                let w2 = ((b[0] - a[0]) * (s[1] - a[1]) - (b[1] - a[1]) * (s[0] - a[0])) / det;
                let z = a[2] + w1 * (b[2] - a[2]) + w2 * (cc[2] - a[2]);
                worst = worst.max((z - s[2]).abs());
            }
        }
        println!("chord under the curve: {worst:.4} m at worst, bound {sag:.4} m");
        assert!(worst <= sag && sag < 1.15 * worst, "{worst} vs {sag}");
    }
}

#[cfg(test)]
mod unplace_tests {
    use super::*;
    use crate::raster::georef::Model;

    /// A small move of a placed vertex, taken back through [`Placed::unplace`], is the move in the raster's plane
    /// that the map sends there: moving a vertex in the plane by δ and placing it moves it by J δ; unplacing J δ
    /// gives δ back (glTF axes on both sides), to a thousandth.
    #[test]
    fn unplace_inverts_the_local_map() {
        let g = Georef {
            epsg: Some(32633),
            model: Model::Projected,
            units: "metre".into(),
            unit_metres: 1.0,
            geotransform: [300_000.0, 500.0, 0.0, 5_316_500.0, 0.0, -500.0],
            raster_type: "area".into(),
            vertical: None,
            flipped: None,
            proj: None,
        };
        let p = Params { cell: [500.0, 500.0], z_scale: 1.0, z_offset: 0.0, raster: [301, 233], tile: 64 };
        let pl = Placement::new(&g, p.cell, p.raster).unwrap();
        let tile = Rect::new(0, 0, 65, 65);
        let vm = crate::mesh::VertexMap::new(&tile, &p);
        let mut m = Mesh {
            positions: vec![vm.position(3, 5, 300.0)],
            normals: vec![[0.0, 1.0, 0.0]],
            uvs: vec![[0.0, 0.0]],
            grid: vec![[3, 5]],
            origin: vm.origin(),
            ..Mesh::default()
        };
        let how = pl.place(&mut m, &tile, &p, true);
        let l = pl.local(3, 5, 300.0);
        let j = l.jacobian;
        for d in [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.3, -0.2, 0.7]] {
            // glTF delta → frame (x, −z, y) → J → frame → glTF (x, z, −y).
            let f = [d[0], -d[2], d[1]];
            let jf: [f64; 3] = std::array::from_fn(|r| (0..3).map(|c| j[r][c] * f[c]).sum());
            let moved = [jf[0], jf[2], -jf[1]];
            let back: [f64; 3] = std::array::from_fn(|r| (0..3).map(|c| how.unplace[0][r][c] * moved[c]).sum());
            // (The inverse is the map's at the centre of the vertex's node interval, a kilometre of turn away at
            // most: 0.2 mrad.)
            for k in 0..3 {
                assert!((back[k] - d[k]).abs() < 1e-3, "{d:?} → {moved:?} → {back:?}");
            }
        }
    }
}
