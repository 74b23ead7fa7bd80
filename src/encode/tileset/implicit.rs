//! The implicit form of the tileset (`--tileset implicit`; 3D Tiles 1.1 §implicit tiling): instead of listing every
//! tile, the tree is one quadtree from a single top tile, described by a content URI template, the root's box
//! (subdivided in halves along its x and y axes per level) and one subtree file of availability bits. Its size no
//! longer grows with the number of tiles (a 65,536² raster in 256-cell tiles lists ~87,000 tiles explicitly).
//!
//! Layout: the tile (x, y) at depth d from the root is level L = top − d's tile (column x, row y), its GLB at
//! `content/{d}/{x}_{y}.glb` (the pipeline lays files out so). The root box spans 2^top level-0 tiles each way from
//! the raster's first sample: x east along columns, its y half-axis pointing south (−y in the tileset frame) so that
//! y counts rows as the files do, and z (down, to keep the axes right-handed) over every level's heights and
//! skirts. Tiles past the raster's last column or row are unavailable. Geometric error halves per depth from the
//! root's, which is chosen so that every depth's error is at least the largest error achieved at its level.

use serde_json::{json, Value};

use super::{above, region, root_transform, Aabb, MIN_HALF};
use crate::encode::Format;
use crate::manifest::{Manifest, TileRecord};

/// The one subtree file (the subtree template at level 0, x 0, y 0), relative to the scene folder.
pub const SUBTREE_ROOT: &str = "subtrees/0/0/0.subtree";
const SUBTREE_TEMPLATE: &str = "subtrees/{level}/{x}/{y}.subtree";
const CONTENT_TEMPLATE: &str = "content/{level}/{x}_{y}.glb";

/// Bit `i` of a level's availability: the Morton index of (x, y), x in the lower bit of each pair.
fn morton(x: usize, y: usize) -> usize {
    let mut m = 0;
    for b in 0..usize::BITS as usize / 2 {
        m |= ((x >> b) & 1) << (2 * b) | ((y >> b) & 1) << (2 * b + 1);
    }
    m
}

/// Availability of every tile of a `top + 1`-level quadtree, level by level from the root, each level in Morton
/// order (3D Tiles §availability): as a bitstream (least significant bit first), with the count of set bits.
struct Bits {
    bytes: Vec<u8>,
    count: usize,
    len: usize,
}

impl Bits {
    fn new(top: usize) -> Bits {
        let len = ((1usize << (2 * (top + 1))) - 1) / 3;
        Bits { bytes: vec![0; len.div_ceil(8)], count: 0, len }
    }
    fn set(&mut self, d: usize, x: usize, y: usize) {
        let i = ((1usize << (2 * d)) - 1) / 3 + morton(x, y);
        if self.bytes[i / 8] & (1 << (i % 8)) == 0 {
            self.bytes[i / 8] |= 1 << (i % 8);
            self.count += 1;
        }
    }
    /// The subtree JSON's availability object: a constant when every bit is the same, else bitstream `view`.
    fn json(&self, view: usize) -> Value {
        match self.count {
            0 => json!({ "constant": 0 }),
            c if c == self.len => json!({ "constant": 1 }),
            c => json!({ "bitstream": view, "availableCount": c }),
        }
    }
    fn constant(&self) -> bool {
        self.count == 0 || self.count == self.len
    }
}

/// The implicit tileset of a scene whose levels run from 0 to `top` (a single tile): the tileset document and the
/// bytes of its subtree file ([`SUBTREE_ROOT`]).
pub fn implicit(m: &Manifest, top: usize) -> Result<(Value, Vec<u8>), String> {
    let mut levels: Vec<&[TileRecord]> = vec![&m.tiles];
    levels.extend(m.levels.iter().map(|l| l.tiles.as_slice()));
    if levels.len() != top + 1 {
        return Err(format!("an implicit tileset over levels 0..={top} got {} levels", levels.len()));
    }
    let has_glb = |r: &&TileRecord| r.files.iter().any(|f| f.format == Format::Glb);
    let (mut tiles, mut content) = (Bits::new(top), Bits::new(top));
    let mut error = 0.0f64;
    let mut all: Option<Aabb> = None;
    // A tile with content is available, and so is every tile above it (its ancestors hold its area).
    for d in 0..=top {
        for r in levels[top - d].iter().filter(has_glb) {
            if r.col >> d != 0 || r.row >> d != 0 {
                return Err(format!("tile {}_{} of level {} lies outside the quadtree of {} levels", r.col, r.row, top - d, top + 1));
            }
            content.set(d, r.col, r.row);
            for p in 0..=d {
                tiles.set(d - p, r.col >> p, r.row >> p);
            }
            let b = Aabb::of(r);
            all = Some(all.map_or(b, |a| a.union(b)));
            error = error.max(r.max_error as f64 * (1u64 << d) as f64);
        }
    }
    let Some(all) = all else {
        return Err("no tile has content: nothing to put in a tileset".into());
    };
    let (zmin, zmax) = (all.min[2], all.max[2]);
    let error = above(error);

    // The subtree: JSON then the bitstreams, each 8-byte aligned (3D Tiles §subtree binary format).
    let mut bin: Vec<u8> = Vec::new();
    let mut views = Vec::new();
    for b in [&tiles, &content] {
        if !b.constant() {
            views.push(json!({ "buffer": 0, "byteOffset": bin.len(), "byteLength": b.bytes.len() }));
            bin.extend_from_slice(&b.bytes);
            bin.resize(bin.len().next_multiple_of(8), 0);
        }
    }
    let tile_view = 0;
    let content_view = usize::from(!tiles.constant());
    let mut sub = json!({
        "tileAvailability": tiles.json(tile_view),
        "contentAvailability": [content.json(content_view)],
        "childSubtreeAvailability": { "constant": 0 }
    });
    if !views.is_empty() {
        sub["buffers"] = json!([{ "byteLength": bin.len() }]);
        sub["bufferViews"] = Value::Array(views);
    }
    let mut js = serde_json::to_vec(&sub).map_err(|e| e.to_string())?;
    js.resize(js.len().next_multiple_of(8), b' ');
    let mut subtree = Vec::with_capacity(24 + js.len() + bin.len());
    subtree.extend_from_slice(b"subt");
    subtree.extend_from_slice(&1u32.to_le_bytes());
    subtree.extend_from_slice(&(js.len() as u64).to_le_bytes());
    subtree.extend_from_slice(&(bin.len() as u64).to_le_bytes());
    subtree.extend_from_slice(&js);
    subtree.extend_from_slice(&bin);

    // The root box: 2^top level-0 tiles each way from the first sample.
    let span = ((1u64 << top) * m.params.tile_size as u64) as f64;
    let (w, h) = (span * m.params.cell_size[0], span * m.params.cell_size[1]);
    let hz = ((zmax - zmin) / 2.0).max(MIN_HALF);
    let zc = (zmin + zmax) / 2.0;
    let bx = [w / 2.0, -h / 2.0, zc, w / 2.0, 0.0, 0.0, 0.0, -h / 2.0, 0.0, 0.0, 0.0, -hz];
    let implicit_root = json!({
        "boundingVolume": { "box": bx },
        "geometricError": error,
        "refine": "REPLACE",
        "content": { "uri": CONTENT_TEMPLATE },
        "implicitTiling": {
            "subdivisionScheme": "QUADTREE",
            "subtreeLevels": top + 1,
            "availableLevels": top + 1,
            "subtrees": { "uri": SUBTREE_TEMPLATE }
        }
    });
    // An explicit root above it holds the scene's own box (the quadtree's reaches past the raster's last tiles, to
    // 2^top of them: a client framing the tileset frames the scene) and the placement on the ellipsoid (with a
    // region when placed). Every content lies inside both, as 3D Tiles asks of a tile's descendants.
    let transform = root_transform(m);
    let mut bv = json!({ "box": all.to_box() });
    if let Some(t) = &transform {
        bv["region"] = json!(region(&all, t));
    }
    let mut root = json!({ "boundingVolume": bv, "geometricError": above(error), "refine": "REPLACE", "children": [implicit_root] });
    if let Some(t) = transform {
        root["transform"] = json!(t);
    }
    let doc = json!({
        "asset": { "version": "1.1", "generator": concat!("terrafarm ", env!("CARGO_PKG_VERSION")) },
        "geometricError": above(above(error) * 2.0),
        "root": root
    });
    Ok((doc, subtree))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morton_order_and_level_offsets() {
        // x in the lower bit of each pair: (1,0) → 1, (0,1) → 2, (3,3) → 15, (2,1) → 6.
        assert_eq!([morton(0, 0), morton(1, 0), morton(0, 1), morton(1, 1), morton(2, 1), morton(3, 3)], [0, 1, 2, 3, 6, 15]);
        let mut b = Bits::new(2); // 1 + 4 + 16 bits
        assert_eq!((b.len, b.bytes.len()), (21, 3));
        b.set(0, 0, 0);
        b.set(1, 1, 0); // bit 1 + 1
        b.set(2, 0, 1); // bit 5 + 2
        b.set(2, 0, 1); // counted once
        assert_eq!(b.bytes, [0b1000_0101, 0, 0]);
        assert_eq!(b.count, 3);
    }
}
