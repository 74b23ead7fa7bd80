//! 3D Tiles 1.1 tileset JSON over a scene's levels of detail (OGC 3D Tiles 1.1: §tileset, §tile, §bounding
//! volume, §geometric error, §coordinate reference system). Pure: manifest in, JSON out; the store writes it.
//!
//! The tree is the quadtree of the levels: a tile of level L has as children the (up to) 2×2 tiles of level L−1 it
//! covers, `refine: REPLACE`; level 0 holds the leaves. Content is each tile's GLB. glTF is Y-up and 3D Tiles Z-up
//! (§y-up to z-up): a GLB's (x, y, z) is the tileset's (x, −z, y), so with terrafarm's glTF axes (+X east, +Y up,
//! +Z south) the tileset frame is x east, y north, z up, metres from the raster's first sample. When the input's
//! CRS can be inverted (geographic, Web Mercator, WGS84 / UTM) the root's `transform` places that frame on the
//! WGS84 ellipsoid: east-north-up at the raster's centre, in earth-centred coordinates.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::encode::Format;
use crate::manifest::{Manifest, TileRecord};
use crate::raster::georef;

mod implicit;
pub use implicit::{implicit, SUBTREE_ROOT};

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
/// tileset frame placed by `t`: over the box's corners, edge midpoints and face centres. Heights on the tangent
/// plane only rise above the ellipsoid away from the centre, so the box's bottom is a safe lowest height; a
/// millimetre and a hair of angle of margin cover rounding. Regions are not moved by transforms (3D Tiles
/// §bounding volume), so this places the tile on the ellipsoid directly; CesiumJS uses the box when both are given.
pub fn region(b: &Aabb, t: &[f64; 16]) -> [f64; 6] {
    let (mut w, mut s, mut e, mut n, mut hi) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for i in 0..27 {
        let f = [i % 3, (i / 3) % 3, i / 9].map(|k| k as f64 / 2.0);
        let p: [f64; 3] = std::array::from_fn(|k| b.min[k] + (b.max[k] - b.min[k]) * f[k]);
        let q: [f64; 3] = std::array::from_fn(|r| t[r] * p[0] + t[4 + r] * p[1] + t[8 + r] * p[2] + t[12 + r]);
        let [lon, lat, h] = georef::geodetic(q);
        w = w.min(lon);
        e = e.max(lon);
        s = s.min(lat);
        n = n.max(lat);
        hi = hi.max(h);
    }
    let pad = 1e-9;
    [w.to_radians() - pad, s.to_radians() - pad, e.to_radians() + pad, n.to_radians() + pad, b.min[2] - 1e-3, hi + 1e-3]
}

/// East-north-up at the raster's centre → earth-centred (column-major 4×4), with the centre sample at the
/// frame's origin; `None` when the CRS is unknown or not one terrafarm inverts.
pub fn root_transform(m: &Manifest) -> Option<[f64; 16]> {
    let g = m.georef.as_ref()?;
    let [lon, lat] = g.centre_lon_lat(m.raster[0], m.raster[1])?;
    let p = georef::ecef(lon, lat, 0.0);
    let (l, f) = (lon.to_radians(), lat.to_radians());
    let e = [-l.sin(), l.cos(), 0.0];
    let n = [-f.sin() * l.cos(), -f.sin() * l.sin(), f.cos()];
    let u = [f.cos() * l.cos(), f.cos() * l.sin(), f.sin()];
    // The centre sample in the tileset frame: east of the first sample, south of it (negative y).
    let cx = (m.raster[0] - 1) as f64 / 2.0 * m.params.cell_size[0];
    let cy = -((m.raster[1] - 1) as f64 / 2.0 * m.params.cell_size[1]);
    let t: [f64; 3] = std::array::from_fn(|k| p[k] - e[k] * cx - n[k] * cy);
    Some([e[0], e[1], e[2], 0.0, n[0], n[1], n[2], 0.0, u[0], u[1], u[2], 0.0, t[0], t[1], t[2], 1.0])
}
