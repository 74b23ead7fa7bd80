//! The scene manifest and per-tile records: what was written, from what, with which parameters. A tile's record is
//! also written beside its files as the tile's "done" marker, so `--resume` can skip it without re-meshing.

use serde::{Deserialize, Serialize};

use crate::encode::Format;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub format: Format,
    /// Key relative to the scene folder, e.g. `tiles/3_7.glb`.
    pub name: String,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TileRecord {
    pub col: usize,
    pub row: usize,
    /// Empty for a tile with no data at all (no file is written for it).
    pub files: Vec<FileRecord>,
    pub vertices: usize,
    pub triangles: usize,
    pub nodata_samples: usize,
    /// World-space bounds (metres): min and max corner.
    pub bounds: [[f64; 3]; 2],
    pub max_error_requested: Option<f32>,
    /// Largest vertical distance from the mesh to any sample of the tile.
    pub max_error: f32,
    /// Hash of input and parameters: a resumed run reuses the tile only when it matches.
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputRecord {
    pub path: String,
    pub bytes: u64,
    /// Content hash of a local input (the resume key's input identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// ETag of a blob input: its identity without reading it whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,

    pub encoding: String,
    /// True when ranks read only their own windows of the input.
    pub windowed: bool,
}

/// Everything that changes the output bytes; hashed into the resume key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamsRecord {
    pub cell_size: [f64; 2],
    pub tile_size: usize,
    pub z_scale: f32,
    pub z_offset: f32,
    pub nodata: Option<f32>,
    pub max_error: Option<f32>,
    pub max_triangles: Option<usize>,
    pub skirts: Option<f32>,
    pub formats: Vec<Format>,
    /// Levels of detail (`--lod`): every level's maximum error and skirt depth, from level 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lod: Option<LodRecord>,
    /// How GLB vertex data is stored, when not plain f32 (`--gltf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gltf: Option<crate::encode::glb::Compression>,
    /// GLB vertices placed on the WGS84 ellipsoid in the tileset's frame (3D Tiles of a georeferenced input), not
    /// in the raster's plane.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub placed: bool,
    /// The geoid grid whose undulations were added to the heights (heights above the ellipsoid), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geoid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LodRecord {
    pub max_errors: Vec<f32>,
    pub skirts: Vec<f32>,
}

/// One level of detail above the tiles: each of its tiles covers 2×2 tiles of the level below, simplified from the
/// full-resolution samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelRecord {
    pub level: usize,
    /// Folder of the level's files under the scene (`lod/L`).
    pub dir: String,
    pub tile_size: usize,
    pub tile_grid: [usize; 2],
    pub max_error_requested: f32,
    /// Largest error any tile of the level achieved, against the full-resolution samples.
    pub max_error: f32,
    pub skirts: f32,
    pub tiles: Vec<TileRecord>,
    pub totals: Totals,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub tiles: usize,
    pub empty_tiles: usize,
    pub vertices: usize,
    pub triangles: usize,
    pub nodata_samples: usize,
    pub bytes: u64,
}

/// Facts about this particular run; these legitimately differ between runs of the same scene.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub ranks: usize,
    pub threads_per_rank: usize,
    pub resumed_tiles: usize,
    /// Bytes read from the input by all ranks in this run (headers, blocks or rows, and the hash of a local file).
    #[serde(default)]
    pub bytes_fetched: u64,
    /// Wall seconds of each stage on rank 0 (mesh/encode/write, and the window reads of a streamed input: summed
    /// over tiles, so thread-seconds).
    pub timings: Timings,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub read_s: f64,
    pub halo_s: f64,
    pub mesh_s: f64,
    pub encode_s: f64,
    pub write_s: f64,
    pub total_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub terrafarm: String,
    pub scene: String,
    pub input: InputRecord,
    /// Width and height in samples.
    pub raster: [usize; 2],
    /// Tile grid columns and rows.
    pub tile_grid: [usize; 2],
    pub params: ParamsRecord,
    /// The input's georeferencing (CRS, geotransform), when it has one: place tile origins back in the CRS with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub georef: Option<crate::raster::Georef>,
    /// The cell size used and how it was found.
    pub cell_size: crate::raster::CellSize,
    /// The z-scale and z-offset used (also in `params`) and how they were found: `--z-scale`/`--z-offset`, the file's
    /// band scale and vertical unit, or 1 and 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_scale: Option<crate::raster::ZScale>,
    pub key: String,
    pub tiles: Vec<TileRecord>,
    pub totals: Totals,
    pub run: RunRecord,
    /// Levels of detail above the tiles (`--lod`), finest first; the tiles above are level 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelRecord>,
    /// The 3D Tiles 1.1 tileset over every level (`--format 3dtiles`), relative to the scene folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tileset: Option<String>,
    /// The tileset's subtree files when it uses implicit tiling (`--tileset implicit`), relative to the scene folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtrees: Vec<String>,
    /// The top-down hillshade `mesh --preview` rendered from the stored tiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<ImageRecord>,
}

/// An image written beside a scene's tiles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Key relative to the scene folder, e.g. `preview.png`.
    pub name: String,
    pub bytes: u64,
    /// Width and height in pixels.
    pub size: [u32; 2],
    /// Rendered on this adapter.
    pub adapter: String,
}

impl Totals {
    pub fn of(tiles: &[TileRecord]) -> Totals {
        let mut t = Totals { tiles: tiles.len(), ..Totals::default() };
        for r in tiles {
            t.empty_tiles += usize::from(r.files.is_empty());
            t.vertices += r.vertices;
            t.triangles += r.triangles;
            t.nodata_samples += r.nodata_samples;
            t.bytes += r.files.iter().map(|f| f.bytes).sum::<u64>();
        }
        t
    }
}
