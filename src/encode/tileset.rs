//! 3D Tiles 1.1 tileset JSON over a scene's levels of detail (OGC 3D Tiles 1.1: §tileset, §tile, §bounding
//! volume, §geometric error, §coordinate reference system). Pure: manifest in, JSON out; the store writes it.
//!
//! The tree is the quadtree of the levels: a tile of level L has as children the (up to) 2×2 tiles of level L−1 it
//! covers, `refine: REPLACE`; level 0 holds the leaves. Content is each tile's GLB. glTF is Y-up and 3D Tiles Z-up
//! (§y-up to z-up): a GLB's (x, y, z) is the tileset's (x, −z, y), so with terrafarm's glTF axes (+X east, +Y up,
//! +Z south) the tileset frame is x east, y north, z up, metres from the raster's first sample. When the input's
//! CRS can be inverted (geographic, Web Mercator, the projected CRSs of [`georef::projection`]) the root's
//! `transform` places that frame on the WGS84 ellipsoid as the projection lies at the raster's centre
//! ([`root_transform`]), in earth-centred coordinates, and the content's vertices are placed in that frame where the
//! CRS puts their samples ([`Placement`]), not left on the tangent plane.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::encode::Format;
use crate::manifest::{Manifest, TileRecord};
use crate::raster::georef;

mod implicit;
mod place;
pub use implicit::{implicit, SUBTREE_ROOT};
pub use place::Placement;

/// Smallest half-size of a box axis (a flat tile still gets a box with volume).
const MIN_HALF: f64 = 1e-3;

/// An axis-aligned box in the tileset frame: min and max corners.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aabb {
    pub min: [f64; 3],
    pub max: [f64; 3],
}

impl Aabb {
    /// A tile record's glTF-frame bounds in the tileset frame.
    pub fn of(r: &TileRecord) -> Aabb {
        let [lo, hi] = r.bounds;
        Aabb { min: [lo[0], -hi[2], lo[1]], max: [hi[0], -lo[2], hi[1]] }
    }
    pub(crate) fn union(self, o: Aabb) -> Aabb {
        Aabb { min: std::array::from_fn(|k| self.min[k].min(o.min[k])), max: std::array::from_fn(|k| self.max[k].max(o.max[k])) }
    }
    /// The 3D Tiles `box`: centre, then the three half-axis vectors.
    pub fn to_box(self) -> [f64; 12] {
        let c: [f64; 3] = std::array::from_fn(|k| (self.min[k] + self.max[k]) / 2.0);
        let h: [f64; 3] = std::array::from_fn(|k| ((self.max[k] - self.min[k]) / 2.0).max(MIN_HALF));
        [c[0], c[1], c[2], h[0], 0.0, 0.0, 0.0, h[1], 0.0, 0.0, 0.0, h[2]]
    }
}

/// One level's folder and its tiles by (column, row).
type LevelTiles<'a> = (String, HashMap<(usize, usize), &'a TileRecord>);

struct Node {
    json: Value,
    aabb: Aabb,
    error: f64,
}

/// The smallest number above `v` that the tree uses for a parent whose own error is not above its children's
/// (geometric error must fall strictly from parent to child).
fn above(v: f64) -> f64 {
    v + (v * 1e-6).max(1e-6)
}

/// The tileset document of a scene.
pub fn tileset(m: &Manifest) -> Result<Value, String> {
    // Level 0 is the manifest's tiles; the levels above follow.
    let mut levels: Vec<LevelTiles> = vec![("tiles".into(), m.tiles.iter().map(|t| ((t.col, t.row), t)).collect())];
    for l in &m.levels {
        levels.push((l.dir.clone(), l.tiles.iter().map(|t| ((t.col, t.row), t)).collect()));
    }
    let top = levels.len() - 1;
    let (cols, rows) = match m.levels.last() {
        Some(l) => (l.tile_grid[0], l.tile_grid[1]),
        None => (m.tile_grid[0], m.tile_grid[1]),
    };
    let transform = root_transform(m);
    let node = |l: usize, c: usize, r: usize| build(&levels, l, c, r, transform.as_ref());
    let mut roots: Vec<Node> = (0..rows).flat_map(|r| (0..cols).map(move |c| (c, r))).filter_map(|(c, r)| node(top, c, r)).collect();
    if roots.is_empty() {
        return Err("no tile has content: nothing to put in a tileset".into());
    }
    let mut root = if roots.len() == 1 {
        roots.pop().expect("one root")
    } else {
        let aabb = roots.iter().map(|n| n.aabb).reduce(Aabb::union).expect("roots");
        let error = above(roots.iter().map(|n| n.error).fold(0.0, f64::max));
        let children: Vec<Value> = roots.into_iter().map(|n| n.json).collect();
        let mut bv = json!({ "box": aabb.to_box() });
        if let Some(t) = &transform {
            bv["region"] = json!(region(&aabb, t));
        }
        Node { json: json!({ "boundingVolume": bv, "geometricError": error, "refine": "REPLACE", "children": children }), aabb, error }
    };
    if let Some(t) = transform {
        root.json["transform"] = json!(t);
    }
    Ok(json!({
        "asset": { "version": "1.1", "generator": concat!("terrafarm ", env!("CARGO_PKG_VERSION")) },
        "geometricError": above(root.error * 2.0),
        "root": root.json
    }))
}

fn build(levels: &[LevelTiles], l: usize, c: usize, r: usize, transform: Option<&[f64; 16]>) -> Option<Node> {
    let rec = levels[l].1.get(&(c, r)).copied();
    let children: Vec<Node> = if l == 0 {
        Vec::new()
    } else {
        [(0, 0), (1, 0), (0, 1), (1, 1)].iter().filter_map(|(dc, dr)| build(levels, l - 1, 2 * c + dc, 2 * r + dr, transform)).collect()
    };
    let content = rec.and_then(|t| t.files.iter().find(|f| f.format == Format::Glb));
    if content.is_none() && children.is_empty() {
        return None;
    }
    let own = content.and(rec).map(Aabb::of);
    let aabb = children.iter().map(|n| n.aabb).chain(own).reduce(Aabb::union).expect("content or children");
    let child_error = children.iter().map(|n| n.error).fold(f64::NEG_INFINITY, f64::max);
    let own_error = content.and(rec).map_or(0.0, |t| t.max_error as f64);
    let error = if children.is_empty() || own_error > child_error { own_error } else { above(child_error) };
    let mut bv = json!({ "box": aabb.to_box() });
    if let Some(t) = transform {
        bv["region"] = json!(region(&aabb, t));
    }
    let mut json = json!({ "boundingVolume": bv, "geometricError": error, "refine": "REPLACE" });
    if let Some(f) = content {
        json["content"] = json!({ "uri": f.name });
    }
    if !children.is_empty() {
        json["children"] = children.into_iter().map(|n| n.json).collect();
    }
    Some(Node { json, aabb, error })
}

/// The `region` (west, south, east, north in radians, lowest and highest ellipsoidal height) of a box in the
/// tileset frame placed by `t` (an affine map whose z column is the ellipsoid's unit normal at the origin of the
/// tangent plane its x and y span, as [`root_transform`] makes). Exact up to rounding, from the shapes of the
/// level sets, not from samples:
/// - Longitude: its level sets are half-planes through the polar axis, so over a box that misses the axis its
///   extremes lie at corners. Longitudes are taken relative to the box's centre, so a box across the
///   antimeridian gets west > east, which 3D Tiles reads eastward through ±180° (a box that holds the axis gets
///   every longitude and reaches the pole).
/// - Latitude: its level sets are cones about the axis, which a line meets at most twice, so along an edge
///   latitude has at most one turning point, where the edge runs perpendicular to north (found by bisection).
///   Inside a face it turns only where the face's normal points north: for the vertical faces (along the grid's
///   columns and rows) where true north runs along the grid (the scene's own vertical line, or a projection's
///   central meridian), where latitude changes with height only to second order (millimetres over a DEM's relief,
///   within the margin), so the face's extremes are its edges' turning points; for the horizontal ones, and
///   otherwise, only a quarter of the globe away or at a pole. So the extremes lie on edges.
/// - Height: the height above the ellipsoid is the signed distance to a convex body, a convex function, so its
///   highest value is at a corner; on the tangent plane heights only rise away from the centre, so the box's
///   bottom is a safe lowest height.
///
/// A millimetre and a hair of angle of margin cover rounding. Regions are not moved by transforms (3D Tiles
/// §bounding volume), so this places the tile on the ellipsoid directly; CesiumJS uses the box when both are given.
pub fn region(b: &Aabb, t: &[f64; 16]) -> [f64; 6] {
    use std::f64::consts::{FRAC_PI_2, PI, TAU};
    let place = |p: [f64; 3]| -> [f64; 3] { std::array::from_fn(|r| t[r] * p[0] + t[4 + r] * p[1] + t[8 + r] * p[2] + t[12 + r]) };
    // Longitude (radians), latitude (radians) and height of an earth-centred position.
    let geo = |q: [f64; 3]| -> [f64; 3] {
        let [lon, lat, h] = georef::geodetic(q);
        [lon.to_radians(), lat.to_radians(), h]
    };
    let corners: [[f64; 3]; 8] = std::array::from_fn(|i| place(std::array::from_fn(|k| if i >> k & 1 == 1 { b.max[k] } else { b.min[k] })));
    let g = corners.map(geo);
    let mid = geo(place(std::array::from_fn(|k| (b.min[k] + b.max[k]) / 2.0)))[0];
    // Longitude relative to the centre's, in [-π, π).
    let rel = |lon: f64| lon - mid - TAU * ((lon - mid + PI) / TAU).floor();
    let (mut w, mut e) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut s, mut n, mut hi) = (f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for q in &g {
        (w, e) = (w.min(rel(q[0])), e.max(rel(q[0])));
        (s, n, hi) = (s.min(q[1]), n.max(q[1]), hi.max(q[2]));
    }
    // North at a geodetic position (latitude rises along it).
    let north = |q: [f64; 3]| [-q[1].sin() * q[0].cos(), -q[1].sin() * q[0].sin(), q[1].cos()];
    for i in 0..8 {
        for k in 0..3 {
            let j = i | 1 << k;
            if j == i {
                continue;
            }
            let d: [f64; 3] = std::array::from_fn(|r| corners[j][r] - corners[i][r]);
            let s0 = dot(d, north(g[i]));
            if s0 * dot(d, north(g[j])) >= 0.0 {
                continue; // latitude is monotonic along this edge
            }
            let (mut lo, mut up) = (0.0, 1.0);
            for _ in 0..40 {
                let m = (lo + up) / 2.0;
                if dot(d, north(geo(std::array::from_fn(|r| corners[i][r] + d[r] * m)))) * s0 > 0.0 {
                    lo = m;
                } else {
                    up = m;
                }
            }
            let q = geo(std::array::from_fn(|r| corners[i][r] + d[r] * (lo + up) / 2.0));
            (s, n) = (s.min(q[1]), n.max(q[1]));
        }
    }
    // The polar axis, in the tileset frame: through the box?
    let inv = linear_inverse(t);
    let origin: [f64; 3] = std::array::from_fn(|c| -dot(inv[c], [t[12], t[13], t[14]]));
    let dir: [f64; 3] = std::array::from_fn(|c| inv[c][2]);
    let (mut a0, mut a1) = (f64::NEG_INFINITY, f64::INFINITY);
    for k in 0..3 {
        if dir[k].abs() < 1e-15 {
            if origin[k] < b.min[k] || origin[k] > b.max[k] {
                (a0, a1) = (1.0, 0.0);
            }
        } else {
            let (u, v) = ((b.min[k] - origin[k]) / dir[k], (b.max[k] - origin[k]) / dir[k]);
            (a0, a1) = (a0.max(u.min(v)), a1.min(u.max(v)));
        }
    }
    let pad = 1e-9;
    let (west, east) = if a0 <= a1 {
        // The axis crosses the box at heights a0..a1 along it (earth-centred z): that pole is inside.
        if a0 + a1 > 0.0 {
            n = FRAC_PI_2;
        } else {
            s = -FRAC_PI_2;
        }
        (-PI, PI)
    } else {
        // Back to absolute longitudes in [-π, π]; west > east when the box crosses the antimeridian.
        let wrap = |x: f64| x - TAU * ((x + PI) / TAU).floor();
        let west = wrap(mid + w - pad);
        let east = wrap(mid + e + pad);
        (west, if east == -PI { PI } else { east })
    };
    [west.clamp(-PI, PI), (s - pad).max(-FRAC_PI_2), east.clamp(-PI, PI), (n + pad).min(FRAC_PI_2), b.min[2] - 1e-3, hi + 1e-3]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// The 3×3 matrix with columns `a`, `b`, `c`: its cofactor rows (the cross products of its columns, b×c, c×a,
/// a×b) and its determinant. Its inverse is the rows over the determinant; the inverse transpose turns a normal
/// as the rows' transpose does, up to length.
fn cofactors([a, b, c]: [[f64; 3]; 3]) -> ([[f64; 3]; 3], f64) {
    let rows = [cross(b, c), cross(c, a), cross(a, b)];
    (rows, dot(a, rows[0]))
}

/// The inverse of the linear part of a column-major 4×4 affine map (rows).
fn linear_inverse(t: &[f64; 16]) -> [[f64; 3]; 3] {
    let (rows, det) = cofactors([0, 1, 2].map(|c| [t[4 * c], t[4 * c + 1], t[4 * c + 2]]));
    rows.map(|r| r.map(|v| v / det))
}

/// The tileset frame → earth-centred (column-major 4×4), placing the raster where its CRS says, when the CRS is
/// one terrafarm inverts; `None` otherwise. The map is the projection's own at the raster's centre: the centre
/// sample goes to its place on the ellipsoid, x and y (the grid's columns and rows, in the mesh's metres) along
/// where the grid's columns and rows run there on the ellipsoid, found by central differences over 100 m, z along
/// the ellipsoid's normal. So a grid's own north, which a projected CRS turns away from true north (UTM's
/// meridian convergence: about 2° at 200 km from a zone's central meridian in mid-latitudes) and scales (UTM's
/// 0.9996 to 1.001), is placed as it lies; east-north-up alone placed the corners of a 10 km raster there 230 m
/// off. Away from the centre the ellipsoid curves away from this frame: the GLB content of such a scene is placed
/// vertex by vertex ([`Placement`]), so every vertex lies where the CRS puts its sample.
pub fn root_transform(m: &Manifest) -> Option<[f64; 16]> {
    frame(m.georef.as_ref()?, m.params.cell_size, m.raster).map(|(t, _)| t)
}

/// The root transform of a raster of `raster` samples of `cell` metres in the CRS of `g` ([`root_transform`]), and
/// the map to WGS 84 it was made with (the one chosen at the raster's centre).
pub(crate) fn frame(g: &georef::Georef, cell: [f64; 2], raster: [usize; 2]) -> Option<([f64; 16], georef::ToWgs84)> {
    let [cw, ch] = cell;
    // The centre sample, in samples from the first one, and in the tileset frame (east of the first sample, south
    // of it: negative y).
    let (c0, r0) = ((raster[0] - 1) as f64 / 2.0, (raster[1] - 1) as f64 / 2.0);
    let centre = [c0 * cw, -r0 * ch];
    // The earth-centred position on the ellipsoid of a point `c` columns and `r` rows from the first sample.
    // One map for every point, a datum shift included: the one that holds at the centre.
    let [x, y] = g.at(c0 + 0.5, r0 + 0.5);
    let to_wgs84 = g.to_wgs84(x, y)?;
    let place = |c: f64, r: f64| -> Option<[f64; 3]> {
        let [x, y] = g.at(c + 0.5, r + 0.5);
        let [lon, lat] = to_wgs84.lon_lat(x, y)?;
        Some(georef::ecef(lon, lat, 0.0))
    };
    let [lon, lat] = to_wgs84.lon_lat(x, y)?;
    let p = georef::ecef(lon, lat, 0.0);
    let d = 100.0;
    let (east, west) = (place(c0 + d / cw, r0)?, place(c0 - d / cw, r0)?);
    let (north, south) = (place(c0, r0 - d / ch)?, place(c0, r0 + d / ch)?);
    let ex: [f64; 3] = std::array::from_fn(|k| (east[k] - west[k]) / (2.0 * d));
    let ny: [f64; 3] = std::array::from_fn(|k| (north[k] - south[k]) / (2.0 * d));
    let (l, f) = (lon.to_radians(), lat.to_radians());
    let up = [f.cos() * l.cos(), f.cos() * l.sin(), f.sin()];
    let t: [f64; 3] = std::array::from_fn(|k| p[k] - ex[k] * centre[0] - ny[k] * centre[1]);
    let m = [ex[0], ex[1], ex[2], 0.0, ny[0], ny[1], ny[2], 0.0, up[0], up[1], up[2], 0.0, t[0], t[1], t[2], 1.0];
    m.iter().all(|v| v.is_finite()).then_some((m, to_wgs84))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{PI, TAU};

    /// East-north-up at a longitude and latitude (degrees) on the ellipsoid → earth-centred, with that point at
    /// `at` (east, north) in the tileset frame, turned by `turn` radians (counter-clockwise seen from above) and
    /// scaled by `scale` horizontally, as a projected grid's frame is.
    fn enu(lon: f64, lat: f64, at: [f64; 2], turn: f64, scale: f64) -> [f64; 16] {
        let p = georef::ecef(lon, lat, 0.0);
        let (l, f) = (lon.to_radians(), lat.to_radians());
        let e = [-l.sin(), l.cos(), 0.0];
        let n = [-f.sin() * l.cos(), -f.sin() * l.sin(), f.cos()];
        let u = [f.cos() * l.cos(), f.cos() * l.sin(), f.sin()];
        let (c, s) = (turn.cos() * scale, turn.sin() * scale);
        let x: [f64; 3] = std::array::from_fn(|k| c * e[k] + s * n[k]);
        let y: [f64; 3] = std::array::from_fn(|k| -s * e[k] + c * n[k]);
        let t: [f64; 3] = std::array::from_fn(|k| p[k] - x[k] * at[0] - y[k] * at[1]);
        [x[0], x[1], x[2], 0.0, y[0], y[1], y[2], 0.0, u[0], u[1], u[2], 0.0, t[0], t[1], t[2], 1.0]
    }

    /// Samples every face of `b` on a 41×41 grid (edges included), placed by `t`: longitude, latitude (radians)
    /// and height of each.
    fn surface(b: &Aabb, t: &[f64; 16]) -> Vec<[f64; 3]> {
        let mut out = Vec::new();
        for axis in 0..3 {
            for side in [b.min[axis], b.max[axis]] {
                for i in 0..=40 {
                    for j in 0..=40 {
                        let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
                        let mut p = [0.0; 3];
                        p[axis] = side;
                        p[u] = b.min[u] + (b.max[u] - b.min[u]) * i as f64 / 40.0;
                        p[v] = b.min[v] + (b.max[v] - b.min[v]) * j as f64 / 40.0;
                        let q: [f64; 3] = std::array::from_fn(|r| t[r] * p[0] + t[4 + r] * p[1] + t[8 + r] * p[2] + t[12 + r]);
                        let [lon, lat, h] = georef::geodetic(q);
                        out.push([lon.to_radians(), lat.to_radians(), h]);
                    }
                }
            }
        }
        out
    }

    /// Every sampled point lies in the region (longitudes read eastward from west, as 3D Tiles does), and the
    /// region is tight: no side more than `slack` radians (or metres, for heights) past the samples.
    fn holds(b: &Aabb, t: &[f64; 16], slack: f64) -> [f64; 6] {
        let r = region(b, t);
        assert!(r.iter().all(|v| v.is_finite()) && r[0].abs() <= PI && r[2].abs() <= PI, "{r:?}");
        let span = if r[2] >= r[0] { r[2] - r[0] } else { r[2] - r[0] + TAU };
        let east_of_west = |lon: f64| (lon - r[0]).rem_euclid(TAU);
        let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
        for q in surface(b, t) {
            assert!(east_of_west(q[0]) <= span, "longitude {} outside {r:?}", q[0]);
            assert!(q[1] >= r[1] && q[1] <= r[3], "latitude {} outside {r:?}", q[1]);
            assert!(q[2] >= r[4] && q[2] <= r[5], "height {} outside {r:?}", q[2]);
            let k = [east_of_west(q[0]), q[1], q[2]];
            for i in 0..3 {
                (lo[i], hi[i]) = (lo[i].min(k[i]), hi[i].max(k[i]));
            }
        }
        if span < TAU - 1e-6 {
            assert!(lo[0] < slack && span - hi[0] < slack, "longitudes {lo:?}..{hi:?} against {r:?}");
        }
        // (A pole inside the box lies between samples.)
        assert!(lo[1] - r[1] < slack && (r[3] - hi[1] < slack || r[3] == PI / 2.0), "latitudes {lo:?}..{hi:?} against {r:?}");
        assert!(r[5] - hi[2] < 1e-2, "heights {lo:?}..{hi:?} against {r:?}");
        r
    }

    #[test]
    fn regions_hold_their_boxes_across_the_antimeridian_off_centre_and_at_a_pole() {
        // Across the antimeridian: west > east, both within ±π.
        let t = enu(180.0, 51.5, [0.0, 0.0], 0.0, 1.0);
        let b = Aabb { min: [-35e3, -55e3, -20.0], max: [35e3, 55e3, 2500.0] };
        let r = holds(&b, &t, 1e-7);
        assert!(r[0] > 0.0 && r[2] < 0.0, "{r:?}");
        // A raster whose first sample is at exactly -180°: the tile from it reaches a hair west of it.
        let t = enu(-179.5, 51.5, [35e3, -55e3], 0.0, 1.0);
        let b = Aabb { min: [0.0, -110e3, 0.0], max: [35e3, -55e3, 800.0] };
        holds(&b, &t, 1e-7);
        // A tile off the scene's centre meridian, far north: its north edge is highest where it crosses that
        // meridian, between the edge's ends and its midpoint.
        let t = enu(10.0, 60.0, [0.0, 0.0], 0.0, 1.0);
        let b = Aabb { min: [-20e3, 40e3, -50.0], max: [180e3, 120e3, 4000.0] };
        holds(&b, &t, 1e-7);
        // A projected grid's frame: turned 2° (UTM's meridian convergence 200 km off a zone's central meridian) and
        // scaled by 1/0.9996.
        let t = enu(12.0, 47.0, [0.0, 0.0], 2f64.to_radians(), 1.0 / 0.9996);
        let b = Aabb { min: [-60e3, -5e3, 100.0], max: [40e3, 75e3, 3800.0] };
        holds(&b, &t, 1e-7);
        // Southern hemisphere, below the ellipsoid.
        let t = enu(-70.0, -33.0, [0.0, 0.0], 0.0, 1.0);
        let b = Aabb { min: [-90e3, -30e3, -400.0], max: [15e3, 70e3, -10.0] };
        holds(&b, &t, 1e-7);
        // A box over the north pole: every longitude, up to the pole.
        let t = enu(0.0, 89.9, [0.0, 0.0], 0.0, 1.0);
        let b = Aabb { min: [-30e3, -30e3, -100.0], max: [30e3, 30e3, 100.0] };
        let r = holds(&b, &t, 1e-7);
        assert_eq!([r[0], r[2], r[3]], [-PI, PI, PI / 2.0]);
    }
}
