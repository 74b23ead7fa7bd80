//! One tile through mesh → encode → store: the work each rayon worker does per tile, shared by `mesh` and
//! (through [`super::InMemory`]) by `bench` and the tests. Kernels and encoders stay pure; the store writes.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::StageTimes;
use crate::encode::{self, Format};
use crate::halo::{Blocks, Halo};
use crate::manifest::{FileRecord, TileRecord};
use crate::mesh::{self, simplify, Method, Params, Window};
use crate::raster::Raster;
use crate::store::Store;
use crate::tiling::{Grid, TileId};

/// Everything a tile worker needs, shared read-only across threads.
pub struct SceneCtx<'a> {
    pub scene: &'a str,
    /// Level of detail (0: the tiles themselves) and the folder of its files under the scene (`tiles`, `lod/L`).
    pub level: usize,
    pub dir: &'a str,
    pub grid: Grid,
    pub params: Params,
    pub method: Method,
    pub skirts: Option<f32>,
    pub formats: &'a [Format],
    pub key: &'a str,
    pub windows: Windows<'a>,
    pub store: &'a dyn Store,
    /// How GLB vertex data is stored, and the level's quantization steps (when not plain).
    pub gltf: encode::glb::Compression,
    pub quant_step: [f64; 3],
    /// Where GLB vertices go on the ellipsoid (3D Tiles of a georeferenced input): placed vertex by vertex in the
    /// tileset's frame ([`encode::tileset::Placement`]); OBJ files stay in the raster's plane.
    pub placement: Option<&'a encode::tileset::Placement>,
}

/// Where a tile's window (its samples and the halo ring) comes from.
pub enum Windows<'a> {
    /// Owned blocks read (or scattered) up front, and the halo received from other ranks.
    Exchanged { blocks: &'a Blocks, halo: &'a Halo },
    /// Straight from a windowed input when the tile is meshed, holes marked as in the read stage.
    Direct { raster: &'a Raster, z: (f32, f32) },
}

impl Windows<'_> {
    /// Fills `buf` with tile `t`'s halo window, row-major over `grid.halo_rect(t)`.
    pub fn fill(&self, grid: &Grid, t: TileId, buf: &mut Vec<f32>) -> Result<()> {
        match self {
            Windows::Exchanged { blocks, halo } => halo.window(grid, t, blocks, buf),
            Windows::Direct { raster, z } => super::read_heights(raster, grid.halo_rect(t), *z, buf)?,
        }
        Ok(())
    }
}

/// Per-thread buffers reused from tile to tile: the halo window, the simplifier's scratch, and the GLB bytes.
pub type TileScratch = (Vec<f32>, simplify::Scratch, Vec<u8>);

fn tile_extras(t: TileId, level: usize, requested: Option<f32>, achieved: f32) -> serde_json::Value {
    let mut v = json!({ "terrafarm": { "tile": [t.col, t.row], "max_error_requested": requested, "max_error": achieved } });
    if level > 0 {
        v["terrafarm"]["level"] = json!(level);
    }
    v
}

/// A full-resolution tile without holes, written straight into GLB bytes (no intermediate mesh): the grid kernel
/// fills the GLB's buffer views in place. Same bytes as meshing then encoding (tests/simd.rs).
pub fn grid_glb_into(win: &Window, params: &Params, extras: &serde_json::Value, out: &mut Vec<u8>, kernel: mesh::grid::Kernel) -> Option<mesh::grid::GridPlan> {
    let plan = mesh::grid::plan_with(win, params, kernel)?;
    encode::glb::encode_into(out, &plan, extras, |s| mesh::grid::fill(win, params, s, kernel));
    Some(plan)
}

/// A simplified tile whose GLB is quantized: the simplifier runs with the error budget less half a height step,
/// and the quantized mesh's error is re-measured against the samples (the recorded error). Should rounding in X/Z
/// (cells that are not multiples of the step) still push it past the requested error, the budget shrinks by the
/// excess and the tile is remade (at most four times).
fn mesh_quantized(cx: &SceneCtx, win: &Window, scratch: &mut simplify::Scratch) -> Result<(mesh::Mesh, Option<(encode::glb::Quantized, f32)>)> {
    let Method::Simplify(sp) = cx.method else { anyhow::bail!("quantized glTF needs a simplified tile (--max-error > 0)") };
    let step = cx.quant_step;
    let mut budget = sp.max_error - (step[1] / 2.0) as f32;
    for _ in 0..4 {
        let method = Method::Simplify(simplify::SimplifyParams { max_error: budget.max(0.0), ..sp });
        let mut m = mesh::mesh_tile(win, &cx.params, &method, cx.skirts, scratch);
        if m.triangles() == 0 {
            return Ok((m, None));
        }
        // Vertex-cache order for the index codec and fetch order for the vertex codec (meshoptimizer).
        if cx.gltf == encode::glb::Compression::Meshopt {
            reorder_for_meshopt(&mut m);
        }
        let (q, err) = match cx.placement {
            None => {
                let q = encode::glb::quantize(&m, step).map_err(|e| anyhow::anyhow!(e))?;
                let world: Vec<[f64; 3]> = (0..q.positions.len()).map(|i| q.world(i)).collect();
                let err = mesh::vertical_error(&world, &q.indices, win, &cx.params);
                (q, err)
            }
            Some(pl) => {
                // Quantized where placed; measured in the raster's plane: each vertex's rounding taken back through
                // the map's local inverse, then the placement's own share (the chords under the curve, which the
                // simplifier counted in its own error) added.
                let mut placed = m.clone();
                let how = pl.place(&mut placed, &win.tile, &cx.params, true);
                let q = encode::glb::quantize(&placed, step).map_err(|e| anyhow::anyhow!(e))?;
                let world: Vec<[f64; 3]> = (0..q.positions.len())
                    .map(|i| {
                        let at = |mm: &mesh::Mesh| -> [f64; 3] { std::array::from_fn(|k| mm.origin[k] + mm.positions[i][k] as f64) };
                        let (flat, exact, rounded) = (at(&m), at(&placed), q.world(i));
                        let d: [f64; 3] = std::array::from_fn(|k| rounded[k] - exact[k]);
                        std::array::from_fn(|k| flat[k] + (0..3).map(|j| how.unplace[i][k][j] * d[j]).sum::<f64>())
                    })
                    .collect();
                // Skirts by their samples (a skirt and its border vertex share one; unplaced, their rounding
                // differs, and the sliver between would be measured).
                let surface: Vec<u32> = q
                    .indices
                    .chunks_exact(3)
                    .filter(|t| {
                        let [a, b, c] = [t[0], t[1], t[2]].map(|i| m.grid[i as usize].map(i64::from));
                        (b[0] - a[0]) * (c[1] - a[1]) != (b[1] - a[1]) * (c[0] - a[0])
                    })
                    .flatten()
                    .copied()
                    .collect();
                let err = mesh::vertical_error(&world, &surface, win, &cx.params) + pl.sag(&placed) as f32;
                (q, err)
            }
        };
        if err <= sp.max_error {
            return Ok((m, Some((q, err))));
        }
        budget -= err - sp.max_error + (step[1] / 4.0) as f32;
    }
    anyhow::bail!("could not keep the quantized tile within --max-error {} (cells far from the quantization grid?); use --gltf plain", sp.max_error)
}

/// A plain GLB tile of a placed scene: meshed in the raster's plane, then placed
/// ([`encode::tileset::Placement::place`]). A simplified tile's error already counts its chords under the
/// ellipsoid's curve (the scene's [`simplify::SimplifyParams::curvature`]); a full-resolution one gets their bound
/// added. Returns the mesh in the plane when `keep_flat` (for OBJ), and the placed one.
fn mesh_placed(
    cx: &SceneCtx,
    win: &Window,
    scratch: &mut simplify::Scratch,
    pl: &encode::tileset::Placement,
    keep_flat: bool,
) -> (Option<mesh::Mesh>, mesh::Mesh) {
    let mut m = mesh::mesh_tile(win, &cx.params, &cx.method, cx.skirts, scratch);
    let flat = keep_flat.then(|| m.clone());
    if m.triangles() > 0 {
        pl.place(&mut m, &win.tile, &cx.params, false);
        if matches!(cx.method, Method::Grid) {
            m.max_error += pl.sag(&m) as f32;
        }
    }
    (flat, m)
}

/// Reorders a mesh's triangles for the vertex cache and its vertices for fetch order: the orders meshoptimizer's
/// codecs compress best. Same triangles, same vertices.
fn reorder_for_meshopt(m: &mut mesh::Mesh) {
    let n = m.positions.len();
    m.indices = ::meshopt::optimize_vertex_cache(&m.indices, n);
    let mut remap = vec![u32::MAX; n];
    let mut next = 0u32;
    for i in m.indices.iter_mut() {
        if remap[*i as usize] == u32::MAX {
            remap[*i as usize] = next;
            next += 1;
        }
        *i = remap[*i as usize];
    }
    let used = next as usize;
    let permute = |v: &mut Vec<[f32; 3]>| {
        let mut out = vec![[0.0; 3]; used];
        for (old, &new) in remap.iter().enumerate() {
            if new != u32::MAX {
                out[new as usize] = v[old];
            }
        }
        *v = out;
    };
    permute(&mut m.positions);
    permute(&mut m.normals);
    let mut uvs = vec![[0.0; 2]; used];
    let mut grid = vec![[0; 2]; used];
    for (old, &new) in remap.iter().enumerate() {
        if new != u32::MAX {
            uvs[new as usize] = m.uvs[old];
            grid[new as usize] = m.grid[old];
        }
    }
    m.uvs = uvs;
    m.grid = grid;
}

pub fn process_tile(cx: &SceneCtx, t: TileId, scratch: &mut TileScratch) -> Result<(TileRecord, StageTimes)> {
    let mut times = StageTimes::default();
    let t0 = Instant::now();
    cx.windows.fill(&cx.grid, t, &mut scratch.0)?;
    times.read = t0.elapsed();
    let win = Window { data: &scratch.0, rect: cx.grid.halo_rect(t), tile: cx.grid.tile_rect(t) };
    let base = super::tile_key_in(cx.scene, cx.dir, t);
    let bounds = |origin: [f64; 3], min: [f32; 3], max: [f32; 3]| {
        [0, 1].map(|k| {
            let b = if k == 0 { min } else { max };
            [origin[0] + b[0] as f64, origin[1] + b[1] as f64, origin[2] + b[2] as f64]
        })
    };

    // GLB only, full resolution: mesh and encode in one pass into the reused buffer.
    if matches!(cx.method, Method::Grid) && cx.skirts.is_none() && cx.formats == [Format::Glb] && cx.placement.is_none() {
        let t0 = Instant::now();
        if let Some(plan) = grid_glb_into(&win, &cx.params, &tile_extras(t, cx.level, None, 0.0), &mut scratch.2, mesh::grid::Kernel::Auto) {
            times.encode = t0.elapsed();
            let name = format!("{}/{}_{}.glb", cx.dir, t.col, t.row);
            let t2 = Instant::now();
            cx.store.put(&format!("{}/{name}", cx.scene), &scratch.2)?;
            times.write = t2.elapsed();
            let rec = TileRecord {
                col: t.col,
                row: t.row,
                files: vec![FileRecord { format: Format::Glb, name, bytes: scratch.2.len() as u64 }],
                vertices: plan.vertices,
                triangles: plan.indices / 3,
                nodata_samples: 0,
                bounds: bounds(plan.origin, plan.min, plan.max),
                max_error_requested: None,
                max_error: 0.0,
                key: cx.key.to_string(),
            };
            let t3 = Instant::now();
            cx.store.put(&format!("{base}.json"), &serde_json::to_vec(&rec)?)?;
            times.write += t3.elapsed();
            return Ok((rec, times));
        }
    }

    let t0 = Instant::now();
    let compact = cx.gltf != encode::glb::Compression::Plain && cx.formats.contains(&Format::Glb);
    // (A placed scene's plain GLB gets the placed mesh, and OBJ, if asked too, the one in the raster's plane.)
    let (m, quantized, placed) = match (compact, cx.placement) {
        (true, _) => {
            let (m, q) = mesh_quantized(cx, &win, &mut scratch.1)?;
            (m, q, None)
        }
        (false, Some(pl)) => match mesh_placed(cx, &win, &mut scratch.1, pl, cx.formats.contains(&Format::Obj)) {
            (Some(flat), placed) => (flat, None, Some(placed)),
            (None, placed) => (placed, None, None),
        },
        (false, None) => (mesh::mesh_tile(&win, &cx.params, &cx.method, cx.skirts, &mut scratch.1), None, None),
    };
    let glb_mesh = placed.as_ref().unwrap_or(&m);
    times.mesh = t0.elapsed();

    let mut rec = TileRecord {
        col: t.col,
        row: t.row,
        files: Vec::new(),
        vertices: m.vertices(),
        triangles: m.triangles(),
        nodata_samples: m.nodata_samples,
        // A quantized tile's vertices moved to the quantization grid: its bounds are theirs.
        bounds: quantized.as_ref().map_or_else(|| bounds(glb_mesh.origin, glb_mesh.min, glb_mesh.max), |(q, _)| q.bounds()),
        max_error_requested: super::requested_error(&cx.method),
        max_error: quantized.as_ref().map_or(glb_mesh.max_error, |q| q.1),
        key: cx.key.to_string(),
    };
    if m.triangles() > 0 {
        for &f in cx.formats {
            let t1 = Instant::now();
            let bytes = match (f, &quantized) {
                (Format::Glb, Some((q, err))) => {
                    let extras = tile_extras(t, cx.level, super::requested_error(&cx.method), *err);
                    encode::glb::encode_quantized(q, cx.gltf == encode::glb::Compression::Meshopt, &extras).map_err(|e| anyhow::anyhow!(e))?
                }
                (Format::Glb, None) => encode::glb::encode(glb_mesh, &tile_extras(t, cx.level, super::requested_error(&cx.method), glb_mesh.max_error)),
                (Format::Obj, _) => encode::obj::encode(&m, cx.params.cell, &format!("terrafarm {} tile {} {}", env!("CARGO_PKG_VERSION"), t.col, t.row)),
            };
            times.encode += t1.elapsed();
            let t2 = Instant::now();
            if f == Format::Glb && bytes.len() as u64 > encode::glb::MAX_GLB_BYTES {
                anyhow::bail!("{} bytes of GLB for one tile: past glTF's 4 GiB limit (use a smaller --tile-size or fewer --lod levels)", bytes.len());
            }
            let name = format!("{}/{}_{}.{}", cx.dir, t.col, t.row, f.ext());
            cx.store.put(&format!("{}/{name}", cx.scene), &bytes)?;
            times.write += t2.elapsed();
            rec.files.push(FileRecord { format: f, name, bytes: bytes.len() as u64 });
        }
    }
    // The tile's record goes last: it is the marker that the tile is complete.
    let t3 = Instant::now();
    cx.store.put(&format!("{base}.json"), &serde_json::to_vec(&rec)?)?;
    times.write += t3.elapsed();
    Ok((rec, times))
}
