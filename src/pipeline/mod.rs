//! The pipeline as stages: open → agree on input facts → plan and resume → read blocks → halo → mesh/encode/store
//! tiles → commit the manifest. Each stage is a function with typed inputs and outputs and one timed span; `mesh`
//! composes them per scene, `bench` and the tests drive the same functions (in memory: [`memory::InMemory`]).
//!
//! Every stage that can fail before a collective goes through [`crate::comm::agree`], so all ranks fail together;
//! nothing here names MPI. Must not decode bytes (raster does), mesh (mesh does) or write (the store does).

pub mod memory;
pub mod tile;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::comm::{self, agree, Comm};
use crate::config::{GeoidChoice, MeshConfig};
use crate::encode::tileset::Placement;
use crate::halo::{self, Blocks, Halo};
use crate::manifest::{InputRecord, LevelRecord, LodRecord, Manifest, ParamsRecord, RunRecord, TileRecord, Timings, Totals};
use crate::mesh::simplify::{SimplifyParams, Split};
use crate::mesh::{Method, Params};
use crate::raster::geoid::{self, ToEllipsoid};
use crate::raster::georef::Model;
use crate::raster::{self, ByteSource, CellSize, Georef, Raster, ReadOptions, ZScale};
use crate::store::{self, BlobOptions, Store};
use crate::tiling::{self, Grid, Rect, TileId};

pub use memory::InMemory;
pub use tile::grid_glb_into;

/// Bumped whenever the bytes terrafarm writes for the same input and parameters change (a kernel, an encoder, the
/// coordinate mapping), so `--resume` never reuses tiles written by a binary that wrote different bytes.
/// 2: world X/Z snapped to a power-of-two quantum (exact seams at any cell size).
/// 3: tiles of a scene or level of fewer than four tiles meshed as pieces ([`with_split`]): their border lines are
/// simplified per half, so a tile of version 2 beside one of version 3 would not share its border vertices.
/// 4: tiles wider than 256 cells (coarse levels of detail, a large `--tile-size`) meshed as up to 4×4 pieces of about
/// 256 cells ([`crate::mesh::simplify::PIECE_CELLS`]): their border lines are simplified per piece.
pub const OUTPUT_FORMAT_VERSION: u32 = 4;

/// Resume checks in flight at once (one GET and a HEAD per file each, on blob storage).
const RESUME_CHECKS_IN_FLIGHT: usize = 16;

/// What one scene produced, for the end-of-run summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SceneSummary {
    pub scene: String,
    pub ok: bool,
    pub error: Option<String>,
    pub tiles: usize,
    pub resumed_tiles: usize,
    pub vertices: usize,
    pub triangles: usize,
    pub bytes: u64,
    /// Bytes of the input read by all ranks, and the input's size.
    pub bytes_fetched: u64,
    pub input_bytes: u64,
    pub seconds: f64,
    pub timings: Timings,
}

impl SceneSummary {
    fn failed(scene: &str, msg: String, seconds: f64) -> SceneSummary {
        SceneSummary {
            scene: scene.to_string(),
            ok: false,
            error: Some(msg),
            tiles: 0,
            resumed_tiles: 0,
            vertices: 0,
            triangles: 0,
            bytes: 0,
            bytes_fetched: 0,
            input_bytes: 0,
            seconds,
            timings: Timings::default(),
        }
    }
}

/// An input's bytes (a local file, or a blob through the store) and the name to show for it (never a SAS).
pub struct Input {
    pub source: Arc<dyn ByteSource>,
    pub shown: PathBuf,
}

/// Opens `input`: a local path, or a blob address through the store. Every byte read from it is counted.
pub fn open_input(input: &Path, blob: &BlobOptions) -> Result<Input> {
    let s = input.to_string_lossy();
    let (source, shown): (Arc<dyn ByteSource>, PathBuf) = if store::is_remote(&s) {
        let (source, shown) = store::open_input(&s, blob)?;
        (source, PathBuf::from(shown))
    } else {
        (Arc::new(raster::FileSource::open(input)?), input.to_path_buf())
    };
    Ok(Input { source: Arc::new(Counted { inner: source, bytes: Arc::new(AtomicU64::new(0)) }), shown })
}

/// A byte source that counts what it reads (reported as the input's bytes fetched).
pub struct Counted {
    inner: Arc<dyn ByteSource>,
    /// Shared with the counted sources of its sidecar files (an external mask): one count per input.
    bytes: Arc<AtomicU64>,
}

impl ByteSource for Counted {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.read_at(off, buf)
    }
    fn read_many(&self, reqs: &mut [(u64, &mut [u8])]) -> std::io::Result<()> {
        self.bytes.fetch_add(reqs.iter().map(|r| r.1.len() as u64).sum(), Ordering::Relaxed);
        self.inner.read_many(reqs)
    }
    fn identity(&self) -> Option<String> {
        self.inner.identity()
    }
    fn fetched(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    fn sibling(&self, suffix: &str) -> std::io::Result<Option<Arc<dyn ByteSource>>> {
        Ok(self.inner.sibling(suffix)?.map(|inner| Arc::new(Counted { inner, bytes: self.bytes.clone() }) as Arc<dyn ByteSource>))
    }
}

/// Stage 1 (collective): the opened input. Formats decoded whole (PNG, RGB-encoded TIFF) are decoded once, by rank 0, and
/// scattered; windowed formats are opened by every rank, each reading only its own tiles' samples.
pub struct Opened {
    pub shown: PathBuf,
    /// `None` on ranks that wait for rank 0's scatter.
    pub raster: Option<Raster>,
    pub source: Option<Arc<dyn ByteSource>>,
    pub scatter: bool,
}

pub fn open(comm: &dyn Comm, input: Result<Input>, read: &ReadOptions, shown_if_failed: &Path) -> Result<Opened> {
    let shown = input.as_ref().map_or_else(|_| PathBuf::from(crate::redact::url_for_display(&shown_if_failed.to_string_lossy())), |i| i.shown.clone());
    let scatter = comm.size() > 1 && input.as_ref().is_ok_and(|i| raster::decodes_whole(&i.shown, i.source.as_ref(), read));
    let opened = (|| -> Result<Option<(Raster, Arc<dyn ByteSource>)>> {
        let Input { source, shown } = input?;
        if scatter && comm.rank() != 0 {
            return Ok(None);
        }
        Ok(Some((raster::open_source(&shown, source.clone(), read)?, source)))
    })();
    let (raster, source) = agree(comm, opened)?.unzip();
    Ok(Opened { shown, raster, source, scatter })
}

/// Stage 2 (collective): what rank 0 learns about the input and every rank needs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct InputFacts {
    pub width: usize,
    pub height: usize,
    /// The input's identity in the resume key: `sha256:<hex>` of a local file, `etag:<etag>:<bytes>` of a blob.
    pub content_id: String,
    pub bytes: u64,
    pub encoding: String,
    pub windowed: bool,
    pub georef: Option<Georef>,
    /// The cell size this run uses: `--cell-size`, else from the georeferencing, else 1 m.
    pub cell: CellSize,
    /// The z-scale and z-offset this run uses ([`z_scale`]).
    pub z_scale: ZScale,
    /// Identities of the sidecar files read with the input ([`Raster::sidecars`]: an external mask).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<String>,
}

/// How an input's samples become metres of height. `--z-scale` replaces the file's whole derivation (its offset
/// too, unless `--z-offset` is given); `--z-offset` replaces its offset. Otherwise the file's band scale and offset
/// (GDAL metadata) times its vertical unit (VerticalUnitsGeoKey, else the vertical CRS's unit; negated for a depth
/// CRS); else 1 and 0. A projected CRS in feet without a vertical unit gets 1 and `doubt` set: its heights may well
/// be feet, which nothing in the file says. A derived scale or offset out of the bounds of `--z-scale` and
/// `--z-offset` is an error that asks for them.
pub fn z_scale(asked: (Option<f32>, Option<f32>), georef: Option<&Georef>, band: Option<(f64, f64)>, shown: &Path) -> Result<(ZScale, bool)> {
    let vertical = georef.and_then(|g| g.vertical.as_ref());
    let mut from = Vec::new();
    let (factor, offset, doubt) = if let Some(f) = asked.0 {
        from.push("--z-scale".to_string());
        (f as f64, 0.0, false)
    } else {
        let band = band.filter(|&b| b != (1.0, 0.0));
        let (scale, offset) = band.unwrap_or((1.0, 0.0));
        if let Some(b) = band {
            from.push(format!("the file's band scale {} and offset {}", b.0, b.1));
        }
        let unit = match vertical {
            Some(v) => {
                let u = v.z_scale().map_err(|m| anyhow!("{}: {m}", shown.display()))?;
                from.push(format!("the file's {}: {} m per {}{}", v.describe(), u.abs(), v.unit, if v.depth { ", depths negated into heights" } else { "" }));
                u
            }
            None => 1.0,
        };
        let doubt = match georef {
            Some(g) if vertical.is_none() && g.model == Model::Projected && g.unit_metres != 1.0 => {
                let offset = if offset != 0.0 { format!(" --z-offset {}", (offset * g.unit_metres) as f32) } else { String::new() };
                from.push(format!(
                    "heights taken as metres: the file declares no vertical unit, and its horizontal unit is {}; if the heights are in {} too, pass --z-scale {}{offset}",
                    g.units,
                    g.units,
                    (scale * g.unit_metres) as f32
                ));
                true
            }
            _ => false,
        };
        if from.is_empty() {
            from.push("default: heights taken as metres".into());
        }
        // (+ 0.0: a depth's offset of 0 is 0, not -0.)
        (scale * unit, offset * unit + 0.0, doubt)
    };
    let offset = match asked.1 {
        Some(o) => {
            from.push("--z-offset".into());
            o as f64
        }
        None => offset,
    };
    let z = ZScale { factor: factor as f32, offset: offset as f32, derived_from: from.join("; ") };
    if !crate::config::Z_SCALE.contains(&z.factor.abs()) || !crate::config::height_in_range(z.offset) {
        bail!(
            "{}: {} give z-scale {} and z-offset {}, outside what terrafarm meshes; pass --z-scale and --z-offset",
            shown.display(),
            z.derived_from,
            factor,
            offset
        );
    }
    Ok((z, doubt))
}

/// The cell size of a `w × h` raster: `--cell-size` when given, else what its georeferencing implies, else 1 m.
pub fn cell_size(asked: Option<[f64; 2]>, georef: Option<&Georef>, w: usize, h: usize, shown: &Path) -> Result<CellSize> {
    let cell = match (asked, georef) {
        (Some(m), _) => CellSize { metres: m, derived_from: "--cell-size".into(), at_latitude: None },
        (None, Some(g)) => g.cell_size(w, h).map_err(|m| anyhow!("{}: {m}", shown.display()))?,
        (None, None) => {
            CellSize { metres: [1.0, 1.0], derived_from: "default 1 m (the input has no georeferencing; pass --cell-size)".into(), at_latitude: None }
        }
    };
    // A file's pixel size can be any positive number (a damaged or careless geotransform); refuse one that would
    // put the vertices at 0 or infinity before anything is meshed or written.
    if !crate::config::cell_in_range(cell.metres) {
        let r = &crate::config::CELL_METRES;
        bail!(
            "{}: the georeferencing gives a cell size of {:e} × {:e} m, outside {:e} to {:e} m; pass --cell-size",
            shown.display(),
            cell.metres[0],
            cell.metres[1],
            r.start(),
            r.end()
        );
    }
    Ok(cell)
}

pub fn agree_facts(comm: &dyn Comm, o: &Opened, cell: Option<[f64; 2]>, z_asked: (Option<f32>, Option<f32>)) -> Result<InputFacts> {
    let facts = (|| -> Result<Option<Vec<u8>>> {
        let Some((r, src)) = o.raster.as_ref().zip(o.source.as_ref()).filter(|_| comm.rank() == 0) else { return Ok(None) };
        let content_id = match src.identity() {
            Some(id) => id,
            None => format!("sha256:{}", sha256_source(&o.shown, src.as_ref())?),
        };
        let georef = r.georef();
        let cell = cell_size(cell, georef.as_ref(), r.width(), r.height(), &o.shown)?;
        let (z_scale, doubt) = z_scale(z_asked, georef.as_ref(), r.band_scale(), &o.shown)?;
        if doubt {
            warn!("{}: {}", o.shown.display(), z_scale.derived_from);
        }
        let f = InputFacts {
            width: r.width(),
            height: r.height(),
            content_id,
            bytes: src.len(),
            encoding: r.encoding().to_string(),
            windowed: r.windowed(),
            georef,
            cell,
            z_scale,
            sidecars: r.sidecars()?,
        };
        Ok(Some(serde_json::to_vec(&f)?))
    })();
    let facts = agree(comm, facts)?;
    let bytes = comm::or_abort(comm, comm.broadcast_bytes(facts), "broadcast of the input facts")?;
    Ok(serde_json::from_slice(&bytes)?)
}

fn sha256_source(name: &Path, src: &dyn ByteSource) -> Result<String> {
    let mut h = Sha256::new();
    let n = src.len();
    let mut buf = vec![0u8; (8 << 20).min(n as usize)];
    let mut off = 0u64;
    while off < n {
        let k = buf.len().min((n - off) as usize);
        src.read_at(off, &mut buf[..k]).with_context(|| format!("{}", name.display()))?;
        h.update(&buf[..k]);
        off += k as u64;
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The parameters of a run that change output bytes, as recorded in the manifest (with the cell size and z-scale in
/// force).
pub fn params_record(cfg: &MeshConfig, facts: &InputFacts) -> ParamsRecord {
    ParamsRecord {
        cell_size: facts.cell.metres,
        tile_size: cfg.tile_size,
        z_scale: facts.z_scale.factor,
        z_offset: facts.z_scale.offset,
        nodata: cfg.read.nodata,
        max_error: requested_error(&cfg.method),
        max_triangles: match cfg.method {
            Method::Simplify(sp) => sp.max_triangles,
            Method::Grid => None,
        },
        skirts: cfg.skirts,
        formats: cfg.formats.clone(),
        lod: None,
        gltf: (cfg.gltf != crate::encode::glb::Compression::Plain).then_some(cfg.gltf),
        placed: false,
        geoid: None,
    }
}

/// What `--geoid` does to an input's heights in 3D Tiles placed on the ellipsoid.
#[derive(Debug, PartialEq)]
pub enum GeoidPlan {
    /// Heights placed as they are; with why, when the input says they are above a geoid and they stay so.
    AsTheyAre(Option<String>),
    /// Heights above the geoid of this grid file (and what they are above, in words): its undulation is added.
    Grid(PathBuf, String),
}

/// The geoid whose undulations a run adds to the heights of `georef`'s raster (`encoding`: the input's) with
/// `--geoid choice`, or why none is added ([`raster::geoid`]).
pub fn geoid_plan(choice: &GeoidChoice, georef: Option<&Georef>, encoding: &str) -> GeoidPlan {
    let declared = georef
        .and_then(|g| g.vertical.as_ref())
        .and_then(|v| v.epsg.map(|e| (e, v.describe())))
        .or_else(|| (encoding == "hgt").then(|| (geoid::HGT_VERTICAL, "SRTM .hgt heights".to_string())));
    match choice {
        GeoidChoice::None => GeoidPlan::AsTheyAre(None),
        GeoidChoice::File(p) => GeoidPlan::Grid(p.clone(), format!("the geoid of {}", p.display())),
        GeoidChoice::Auto | GeoidChoice::Model(_) => {
            let declared = match choice {
                GeoidChoice::Model(code) => Some((*code, String::new())),
                _ => declared,
            };
            let Some((code, what)) = declared else { return GeoidPlan::AsTheyAre(None) };
            let Some(&geoid::Model { name, files, .. }) = geoid::model(code) else {
                return GeoidPlan::AsTheyAre(Some(format!(
                    "heights in the file's {what} are placed as heights above the WGS 84 ellipsoid: terrafarm converts EGM96 and EGM2008 heights (EPSG:5773, 3855); for another geoid pass its grid with --geoid FILE"
                )));
            };
            let what = format!("{name} (EPSG:{code})");
            match geoid::find(files) {
                Some(p) => GeoidPlan::Grid(p, what),
                None => GeoidPlan::AsTheyAre(Some(format!(
                    "heights above {what} are placed as heights above the WGS 84 ellipsoid, off by the geoid's undulation (up to ±100 m): neither {} is in PROJ's grid folders ({}); install PROJ's data (Debian: proj-data) or pass --geoid FILE",
                    files.join(" nor "),
                    geoid::search_path().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
                ))),
            }
        }
    }
}

/// A simplifying method for a scene whose vertices are placed on the ellipsoid: its error bound then holds there
/// ([`SimplifyParams::curvature`]).
fn curved(m: Method, placement: Option<&Placement>) -> Method {
    match (m, placement) {
        (Method::Simplify(sp), Some(pl)) => Method::Simplify(SimplifyParams { curvature: pl.curvature(), ..sp }),
        _ => m,
    }
}

/// The key of level `l`'s tiles: level 0's key (the scene's), or a key derived from it per level.
pub fn level_key(key: &str, l: usize) -> String {
    if l == 0 {
        key.to_string()
    } else {
        hex(&Sha256::digest(format!("{key}/level {l}").as_bytes()))
    }
}

/// One key over everything that affects a tile's bytes: the output format version, the input's hash, how its
/// bytes were decoded (encoding) and its size in samples, and every parameter. A tile record is reused by
/// `--resume` only when its key is this one.
pub fn output_key(version: u32, facts: &InputFacts, params: &ParamsRecord) -> Result<String> {
    let mut doc = json!({
        "format_version": version,
        "input": facts.content_id,
        "encoding": facts.encoding,
        "raster": [facts.width, facts.height],
        "params": params,
    });
    // Only when there are sidecars, so that the keys of every other input stay what they were.
    if !facts.sidecars.is_empty() {
        doc["sidecars"] = json!(facts.sidecars);
    }
    Ok(hex(&Sha256::digest(serde_json::to_vec(&doc)?)))
}

pub(crate) fn requested_error(m: &Method) -> Option<f32> {
    match m {
        Method::Grid => None,
        Method::Simplify(sp) => Some(sp.max_error),
    }
}

/// Stage 3: the tile grid, which rank owns which tile, and the world mapping.
pub struct Plan {
    pub grid: Grid,
    pub owners: Vec<usize>,
    /// This rank's tiles.
    pub mine: Vec<TileId>,
    pub params: Params,
}

pub fn plan(comm: &dyn Comm, facts: &InputFacts, cfg: &MeshConfig, shown: &Path) -> Result<Plan> {
    plan_tiles(comm, facts, cfg.tile_size, shown)
}

/// The plan of a grid of `tile`-cell tiles (level 0's, or a coarser level's), ranks assigned as for level 0.
pub fn plan_tiles(comm: &dyn Comm, facts: &InputFacts, tile: usize, shown: &Path) -> Result<Plan> {
    let grid = Grid::new(facts.width, facts.height, tile).ok_or_else(|| anyhow!("{}: raster too small to mesh", shown.display()))?;
    let owners = tiling::assign_owners(&grid, comm.size());
    let mine = grid.tiles().filter(|t| owners[grid.index(*t)] == comm.rank()).collect();
    let params =
        Params { cell: facts.cell.metres, z_scale: facts.z_scale.factor, z_offset: facts.z_scale.offset, raster: [grid.width, grid.height], tile: grid.tile };
    Ok(Plan { grid, owners, mine, params })
}

/// The folder of level 0's files (the tiles) without an implicit tileset.
pub const LEVEL0_DIR: &str = "tiles";
/// The folder of every level's files with an implicit tileset, one subfolder per depth.
pub const IMPLICIT_DIR: &str = "content";
/// The folder of level `l`'s files: `tiles` and `lod/L`; with an implicit tileset whose top level is `top`,
/// `content/D` for every level, D = top − L being the depth from the root (the layout the tileset's content URI
/// template addresses).
pub fn level_dir(l: usize, implicit_top: Option<usize>) -> String {
    match implicit_top {
        Some(top) => format!("{IMPLICIT_DIR}/{}", top - l),
        None if l == 0 => LEVEL0_DIR.to_string(),
        None => format!("lod/{l}"),
    }
}

/// A scene (or level) of fewer tiles than this has each tile meshed as pieces in parallel
/// ([`crate::mesh::simplify::mesh_split`]): with so few tiles, meshing each whole would leave cores idle (a
/// one-tile scene would use one core).
pub const SPLIT_BELOW_TILES: usize = 4;

/// `m` with its `split` set for a scene (or level) laid out as `grid`, the same for every tile of it so that the
/// tiles sharing a border cut it alike: up to 4×4 pieces of about 256 cells
/// ([`crate::mesh::simplify::Split::Pieces`]), and at least 2×2 in a scene of fewer than [`SPLIT_BELOW_TILES`] tiles
/// (`Cores`). A function of the grid alone (not of threads or ranks), so the output is the same on any machine;
/// whole tiles with a triangle budget (a cap per tile).
pub fn with_split(m: Method, grid: &Grid) -> Method {
    match m {
        Method::Simplify(sp) => {
            let split = if sp.max_triangles.is_some() {
                Split::Whole
            } else if grid.cols * grid.rows < SPLIT_BELOW_TILES {
                Split::Cores
            } else {
                Split::Pieces
            };
            Method::Simplify(SimplifyParams { split, ..sp })
        }
        Method::Grid => Method::Grid,
    }
}

/// Key of tile `t`'s files in folder `dir` of the scene, without the extension.
pub fn tile_key_in(scene: &str, dir: &str, t: TileId) -> String {
    format!("{scene}/{dir}/{}_{}", t.col, t.row)
}

/// A tile finished by an earlier run with the same key, whose files are all still there at their recorded sizes.
fn resumable(store: &dyn Store, scene: &str, dir: &str, t: TileId, key: &str) -> Option<TileRecord> {
    let bytes = store.get(&format!("{}.json", tile_key_in(scene, dir, t))).ok()??;
    let rec: TileRecord = serde_json::from_slice(&bytes).ok()?;
    let complete = rec.key == key
        && (rec.col, rec.row) == (t.col, t.row)
        && rec.files.iter().all(|f| store.size(&format!("{scene}/{}", f.name)).ok().flatten() == Some(f.bytes));
    complete.then_some(rec)
}

/// Which of `tiles` an earlier run finished with the same key (their records) and which are still to do. The
/// checks run in parallel, at most [`RESUME_CHECKS_IN_FLIGHT`] at once: on blob storage each is a few round trips.
pub fn resume_check(store: &dyn Store, scene: &str, dir: &str, tiles: &[TileId], key: &str) -> Result<(Vec<TileRecord>, Vec<TileId>)> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(RESUME_CHECKS_IN_FLIGHT.min(tiles.len()).max(1)).build()?;
    let found: Vec<Option<TileRecord>> = pool.install(|| tiles.par_iter().map(|&t| resumable(store, scene, dir, t, key)).collect());
    let mut done = Vec::new();
    let mut todo = Vec::new();
    for (&t, rec) in tiles.iter().zip(found) {
        match rec {
            Some(r) => done.push(r),
            None => todo.push(t),
        }
    }
    Ok((done, todo))
}

/// Stage 3b (collective): rank 0 retracts the scene's manifest (the scene's "done" marker) until this run has
/// finished and sweeps the temporaries a killed run left; then each rank finds which of its tiles are done.
pub fn retract_and_resume(
    comm: &dyn Comm,
    store: &dyn Store,
    scene: &str,
    dir: &str,
    plan: &Plan,
    key: &str,
    resume: bool,
) -> Result<(Vec<TileRecord>, Vec<TileId>)> {
    let retracted = (|| -> Result<()> {
        if comm.rank() == 0 {
            store.delete(&format!("{scene}/manifest.json"))?;
            let swept = store.remove_partials(scene)?;
            if swept > 0 {
                warn!("scene '{scene}': removed {swept} partial file(s) left by an interrupted run");
            }
        }
        Ok(())
    })();
    agree(comm, retracted)?;
    if resume {
        resume_check(store, scene, dir, &plan.mine, key)
    } else {
        Ok((Vec::new(), plan.mine.clone()))
    }
}

/// Samples that cannot be meshed become holes: non-finite samples (±inf as well as NaN), and samples whose height
/// after `z_scale`/`z_offset` is beyond ±[`HEIGHT_METRES`](crate::config::HEIGHT_METRES) (undeclared fill values such
/// as -3.4028235e38) or not finite in f32 (what the kernels compute). Returns the first finite sample made a hole.
pub fn sanitize(block: &mut [f32], z_scale: f32, z_offset: f32) -> Option<f32> {
    let mut first = None;
    for v in block {
        if !crate::config::height_in_range(*v * z_scale + z_offset) {
            if v.is_finite() && first.is_none() {
                first = Some(*v);
            }
            *v = f32::NAN;
        }
    }
    first
}

/// The heights of `rect`, holes marked ([`sanitize`]): how both the read stage and streamed tiles read an input. The
/// first finite sample out of range is reported once per input (per rank), with what to do about it.
pub fn read_heights(raster: &Raster, rect: Rect, z: (f32, f32), out: &mut Vec<f32>) -> Result<(), raster::RasterError> {
    // Every source writes every sample of the window, so what a reused buffer held before is not cleared first.
    out.resize(rect.len(), 0.0);
    raster.read_window(rect, out)?;
    if let Some(v) = sanitize(out, z.0, z.1) {
        if raster.first_report(raster::Report::OutOfRange) {
            let fill = if v.abs() == f32::MAX { " (f32's extreme value, the usual fill of float DEMs' voids)" } else { "" };
            warn!(
                "{}: samples whose height is beyond ±{:e} m after z-scale {} and z-offset {} are holes, e.g. the value {v:e}{fill}: if it marks voids, declare it with --nodata {v:e}; if the heights are in other units, set --z-scale",
                raster.path.display(),
                crate::config::HEIGHT_METRES,
                z.0,
                z.1
            );
        }
    }
    if let Some(s) = raster.suspect() {
        if out.contains(&s) && raster.first_report(raster::Report::Suspect) {
            warn!(
                "{}: samples of {s} (int16's lowest value, the usual void of SRTM-like DEMs) are meshed as heights: the file declares no no-data value; if they mark voids, pass --nodata {s}",
                raster.path.display()
            );
        }
    }
    raster.to_ellipsoid(rect, out)
}

/// Stage 4 (collective): the samples this rank's tiles own, read window by window where the format allows,
/// else scattered from rank 0's whole decode in one all-to-all. Holes are NaN ([`sanitize`]).
pub fn read(comm: &dyn Comm, o: &Opened, plan: &Plan, z: (f32, f32)) -> Result<Blocks> {
    let (grid, me) = (&plan.grid, comm.rank());
    let read_block = |t: TileId| -> Result<(usize, Vec<f32>)> {
        let mut b = Vec::new();
        let raster = o.raster.as_ref().ok_or_else(|| anyhow!("rank {me} has no reader"))?;
        read_heights(raster, grid.owned_rect(t), z, &mut b).with_context(|| format!("rank {me}, tile ({}, {})", t.col, t.row))?;
        Ok((grid.index(t), b))
    };
    let blocks: Blocks = if !o.scatter {
        agree(comm, plan.mine.par_iter().map(|&t| read_block(t)).collect())?
    } else {
        // Rank 0 decoded the whole raster: it keeps its tiles and sends every other rank its tiles' samples, in
        // tile-index order, through one all-to-all (after every rank knows the decode went well).
        let decoded = (|| -> Result<(Blocks, Vec<Vec<f32>>)> {
            let mut per_rank: Vec<Vec<f32>> = vec![Vec::new(); comm.size()];
            let mut own = Blocks::new();
            if me == 0 {
                for t in grid.tiles() {
                    let (i, b) = read_block(t)?;
                    match plan.owners[i] {
                        0 => drop(own.insert(i, b)),
                        r => per_rank[r].extend_from_slice(&b),
                    }
                }
            }
            Ok((own, per_rank))
        })();
        let (own, per_rank) = agree(comm, decoded)?;
        let counts: Vec<usize> = per_rank.iter().map(Vec::len).collect();
        let (recv, _) = comm::or_abort(comm, comm.all_to_all_v(&per_rank.concat(), &counts), "scatter of the decoded raster")?;
        if me == 0 {
            own
        } else {
            let mut at = 0;
            plan.mine
                .iter()
                .map(|&t| {
                    let n = grid.owned_rect(t).len();
                    at += n;
                    (grid.index(t), recv[at - n..at].to_vec())
                })
                .collect()
        }
    };
    let valid: usize = blocks.values().map(|b| b.iter().filter(|h| !h.is_nan()).count()).sum();
    if comm::or_abort(comm, comm.all_ok(valid == 0), "agreement on valid samples")? {
        bail!("{}: no valid height samples (every sample is NaN, infinite or --nodata)", o.shown.display());
    }
    Ok(blocks)
}

/// Stage 5 (collective): one all-to-all brings every border sample our tiles need from other ranks.
pub fn exchange_halo(comm: &dyn Comm, plan: &Plan, blocks: &Blocks) -> Result<Halo> {
    let halo = comm::or_abort(comm, halo::exchange(&plan.grid, &plan.owners, comm, blocks), "halo exchange")?;
    if comm.size() > 1 {
        info!("rank {}: halo sent {} B, received {} B", comm.rank(), halo.bytes_sent, halo.bytes_received);
    }
    Ok(halo)
}

#[derive(Default, Clone, Copy)]
pub struct StageTimes {
    /// Reading tile windows straight from the input (streamed inputs).
    pub read: Duration,
    pub mesh: Duration,
    pub encode: Duration,
    pub write: Duration,
}

impl StageTimes {
    /// Adds these thread-seconds to a scene's recorded stage timings.
    pub fn add_to(&self, t: &mut Timings) {
        t.mesh_s += self.mesh.as_secs_f64();
        t.encode_s += self.encode.as_secs_f64();
        t.write_s += self.write.as_secs_f64();
        t.read_s += self.read.as_secs_f64();
    }
}

/// Stage 6 (collective at its end): mesh → encode → store for each tile to do, tile-parallel on the current rayon
/// pool. After the first failure (storage gone, retries exhausted) the remaining tiles are not attempted: each
/// would only wait out its own retries before failing the same way. Agreed on, so every rank learns of a failure.
pub fn tiles(comm: &dyn Comm, cx: &tile::SceneCtx, todo: &[TileId]) -> Result<(Vec<TileRecord>, StageTimes)> {
    let work: Vec<(usize, TileId)> = todo.iter().map(|&t| (0, t)).collect();
    let (mut recs, times) = tiles_of(comm, &[cx], &work)?;
    Ok((recs.pop().unwrap_or_default(), times))
}

/// One tile's record and stage times, or why it failed.
type TileOutcome = Result<(TileRecord, StageTimes)>;

/// [`tiles`] over several levels at once: `work` pairs an index into `cxs` (a level's context) with a tile of
/// that level, and the records come back per context. One pool runs them all, in the order given.
pub fn tiles_of(comm: &dyn Comm, cxs: &[&tile::SceneCtx], work: &[(usize, TileId)]) -> Result<(Vec<Vec<TileRecord>>, StageTimes)> {
    let me = comm.rank();
    let bar = (me == 0 && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(work.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} tiles {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_prefix(cxs.first().map_or(String::new(), |c| c.scene.to_string()));
        b
    });
    let failed = AtomicBool::new(false);
    // Workers take the tiles one at a time in the order given, from one shared front (not each from its own half of
    // the list, as an indexed split would): tiles read in row order share the input's blocks and pages with the
    // tiles just before them, which a reader's cache still holds.
    let mut results: Vec<(usize, Option<(usize, TileOutcome)>)> = work
        .iter()
        .enumerate()
        .par_bridge()
        .map_init(Default::default, |scratch, (i, &(c, t))| {
            if failed.load(Ordering::Relaxed) {
                return (i, None);
            }
            let cx = cxs[c];
            let r = tile::process_tile(cx, t, scratch).with_context(|| {
                if cx.level == 0 {
                    format!("rank {me}, tile ({}, {})", t.col, t.row)
                } else {
                    format!("rank {me}, level {} tile ({}, {})", cx.level, t.col, t.row)
                }
            });
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
            (i, Some((c, r)))
        })
        .collect();
    results.sort_unstable_by_key(|r| r.0);
    let results: Vec<Option<(usize, TileOutcome)>> = results.into_iter().map(|r| r.1).collect();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let done = (|| -> Result<(Vec<Vec<TileRecord>>, StageTimes)> {
        let mut recs: Vec<Vec<TileRecord>> = vec![Vec::new(); cxs.len()];
        let mut times = StageTimes::default();
        let skipped = results.iter().filter(|r| r.is_none()).count();
        for (c, r) in results.into_iter().flatten() {
            let (rec, st) = r.map_err(|e| if skipped > 0 { e.context(format!("{skipped} more tile(s) not attempted")) } else { e })?;
            times.read += st.read;
            times.mesh += st.mesh;
            times.encode += st.encode;
            times.write += st.write;
            recs[c].push(rec);
        }
        Ok((recs, times))
    })();
    agree(comm, done)
}

/// What the commit stage records about the run besides the tiles.
pub struct CommitInfo<'a> {
    pub scene: &'a str,
    pub input: InputRecord,
    pub params: ParamsRecord,
    pub georef: Option<Georef>,
    pub cell_size: CellSize,
    pub z_scale: ZScale,
    pub key: &'a str,
    pub run: RunRecord,
    /// Render `preview.png` from the stored tiles before the manifest is written (rank 0).
    pub preview: bool,
    /// The levels above the tiles: spec and grid of each.
    pub levels: Vec<(crate::config::LevelSpec, Grid)>,
    /// Write `tileset.json` (3D Tiles 1.1) over every level.
    pub tileset: bool,
    /// The top level when the tileset is implicit (files by depth from the root).
    pub implicit_top: Option<usize>,
}

/// One rank's part of the commit: its tile records and the input bytes it read.
#[derive(serde::Serialize, serde::Deserialize)]
struct RankPart {
    tiles: Vec<TileRecord>,
    /// Records of the levels above the tiles, level 1 first.
    #[serde(default)]
    levels: Vec<Vec<TileRecord>>,
    bytes_fetched: u64,
}

/// Stage 7 (collective): rank 0 gathers every rank's tile records (and input bytes read) and writes the manifest
/// last. Returns the manifest on rank 0, `None` elsewhere.
pub fn commit(
    comm: &dyn Comm,
    store: &dyn Store,
    grid: &Grid,
    recs: Vec<TileRecord>,
    level_recs: Vec<Vec<TileRecord>>,
    bytes_fetched: u64,
    mut info: CommitInfo,
) -> Result<Option<Manifest>> {
    let part = serde_json::to_vec(&RankPart { tiles: recs, levels: level_recs, bytes_fetched })?;
    let gathered = comm::or_abort(comm, comm.gather_bytes(&part), "gather of the tile records")?;
    let Some(parts) = gathered else { return Ok(None) };
    let mut tiles: Vec<TileRecord> = Vec::with_capacity(grid.count());
    let mut levels: Vec<Vec<TileRecord>> = vec![Vec::new(); info.levels.len()];
    for p in parts {
        let part: RankPart = serde_json::from_slice(&p)?;
        tiles.extend(part.tiles);
        for (all, mine) in levels.iter_mut().zip(part.levels) {
            all.extend(mine);
        }
        info.run.bytes_fetched += part.bytes_fetched;
    }
    tiles.sort_by_key(|r| (r.row, r.col));
    let levels: Vec<LevelRecord> = info
        .levels
        .iter()
        .zip(levels)
        .map(|((spec, g), mut recs)| {
            recs.sort_by_key(|r| (r.row, r.col));
            LevelRecord {
                level: spec.level,
                dir: level_dir(spec.level, info.implicit_top),
                tile_size: spec.tile,
                tile_grid: [g.cols, g.rows],
                max_error_requested: spec.max_error,
                max_error: recs.iter().map(|r| r.max_error).fold(0.0, f32::max),
                skirts: spec.skirt,
                totals: Totals::of(&recs),
                tiles: recs,
            }
        })
        .collect();
    let totals = Totals::of(&tiles);
    let mut manifest = Manifest {
        terrafarm: env!("CARGO_PKG_VERSION").to_string(),
        scene: info.scene.to_string(),
        input: info.input,
        raster: [grid.width, grid.height],
        tile_grid: [grid.cols, grid.rows],
        params: info.params,
        georef: info.georef,
        cell_size: info.cell_size,
        z_scale: Some(info.z_scale),
        key: info.key.to_string(),
        tiles,
        totals,
        run: info.run,
        levels,
        tileset: None,
        subtrees: Vec::new(),
        preview: None,
    };
    if info.tileset {
        use crate::encode::tileset;
        let (doc, subtrees) = match info.implicit_top {
            None => tileset::tileset(&manifest).map(|doc| (doc, Vec::new())),
            Some(top) => tileset::implicit(&manifest, top).map(|(doc, subtree)| (doc, vec![(tileset::SUBTREE_ROOT.to_string(), subtree)])),
        }
        .map_err(|m| anyhow!("scene {}: {m}", info.scene))?;
        if let Some(g) = manifest.georef.as_ref().filter(|_| tileset::root_transform(&manifest).is_none()) {
            warn!(
                "scene '{}': {}; tileset.json has no root transform, so viewers show the scene in its own frame at the earth's centre",
                info.scene,
                g.unplaced(manifest.raster[0], manifest.raster[1])
            );
        }
        for (name, bytes) in &subtrees {
            store.put(&format!("{}/{name}", info.scene), bytes)?;
        }
        manifest.subtrees = subtrees.into_iter().map(|(name, _)| name).collect();
        store.put(&format!("{}/tileset.json", info.scene), &serde_json::to_vec_pretty(&doc)?)?;
        manifest.tileset = Some("tileset.json".into());
    }
    if info.preview {
        manifest.preview = Some(crate::render::preview(store, info.scene, &manifest)?);
    }
    store.put(&format!("{}/manifest.json", info.scene), &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(Some(manifest))
}

/// Fails the scene on every rank when no tile holds a valid sample (checked after the tiles when they read their
/// own windows): a scene without heights has nothing to commit. The records of its empty tiles (they have no files)
/// are removed again, so a failed scene leaves nothing behind.
fn agree_some_valid(comm: &dyn Comm, store: &dyn Store, scene: &str, dir: &str, grid: &Grid, recs: &[TileRecord], shown: &Path) -> Result<()> {
    let valid = recs.iter().any(|r| grid.tile_rect(TileId { col: r.col, row: r.row }).len() > r.nodata_samples);
    if comm::or_abort(comm, comm.all_ok(!valid), "agreement on valid samples")? {
        for r in recs {
            store.delete(&format!("{}.json", tile_key_in(scene, dir, TileId { col: r.col, row: r.row })))?;
        }
        bail!("{}: no valid height samples (every sample is NaN, infinite or --nodata)", shown.display());
    }
    Ok(())
}

/// One level of detail to mesh: its plan, method, skirts and key, and which of this rank's tiles an earlier run
/// already finished.
pub struct Level<'a> {
    pub level: usize,
    /// The folder of its files under the scene ([`level_dir`]).
    pub dir: String,
    pub plan: &'a Plan,
    pub method: Method,
    pub skirts: Option<f32>,
    pub key: &'a str,
    pub done: Vec<TileRecord>,
    pub todo: Vec<TileId>,
    /// Where its GLB vertices go on the ellipsoid, when they are placed ([`tile::SceneCtx::placement`]).
    pub placement: Option<&'a crate::encode::tileset::Placement>,
}

/// The read, halo and tile stages for one level: streamed inputs read each tile's window when it is meshed;
/// inputs decoded whole are read into owned blocks (scattered from rank 0 under MPI) and exchange one halo per
/// level. Returns every tile record of this rank's tiles (resumed ones included) and how many were resumed.
#[allow(clippy::too_many_arguments)]
pub fn mesh_level(
    comm: &dyn Comm,
    cfg: &MeshConfig,
    opened: &Opened,
    streamed: bool,
    z: (f32, f32),
    scene: &str,
    store: &dyn Store,
    lv: Level,
    timings: &mut Timings,
) -> Result<(Vec<TileRecord>, usize)> {
    let (blocks, halo) = if streamed {
        (Blocks::new(), None)
    } else {
        let t = Instant::now();
        let blocks = read(comm, opened, lv.plan, z)?;
        timings.read_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let halo = exchange_halo(comm, lv.plan, &blocks)?;
        timings.halo_s += t.elapsed().as_secs_f64();
        (blocks, Some(halo))
    };
    let windows = match (&halo, &opened.raster) {
        (Some(halo), _) => tile::Windows::Exchanged { blocks: &blocks, halo },
        (None, Some(raster)) => tile::Windows::Direct { raster, z },
        (None, None) => bail!("rank {} has no reader for a streamed input", comm.rank()),
    };
    let dir = lv.dir.clone();
    let cx = level_ctx(cfg, scene, store, &lv, &dir, windows);
    let (mut recs, st) = tiles(comm, &cx, &lv.todo)?;
    st.add_to(timings);
    let resumed = lv.done.len();
    recs.extend(lv.done);
    Ok((recs, resumed))
}

/// Rows of the raster that the windows of `threads` tiles read in row order can span at once: a window's height
/// (a tile's samples and the halo ring), plus a tile's for each further row of tiles the workers can reach.
pub fn in_flight_rows(grid: &Grid, threads: usize) -> usize {
    (grid.tile + 3).min(grid.height) + grid.tile * threads.max(1).div_ceil(grid.cols)
}

/// The tile workers' context for one level.
fn level_ctx<'a>(cfg: &'a MeshConfig, scene: &'a str, store: &'a dyn Store, lv: &Level<'a>, dir: &'a str, windows: tile::Windows<'a>) -> tile::SceneCtx<'a> {
    tile::SceneCtx {
        scene,
        level: lv.level,
        dir,
        grid: lv.plan.grid,
        params: lv.plan.params,
        method: lv.method,
        skirts: lv.skirts,
        formats: &cfg.formats,
        key: lv.key,
        windows,
        store,
        gltf: cfg.gltf,
        quant_step: crate::encode::glb::quant_steps(lv.plan.grid.tile, lv.plan.params.cell, requested_error(&lv.method).unwrap_or(0.0)),
        placement: lv.placement,
    }
}

/// One scene through every stage. Inputs read window by window (GeoTIFF, raw, `.hgt`, `.npy`) are streamed: each
/// tile reads its own window with the halo ring straight from the input when it is meshed, so memory holds the
/// tiles in flight, not the raster, and ranks exchange nothing. Inputs decoded whole (PNG) go through the read and
/// halo stages: owned blocks, scattered from rank 0 under MPI, and one all-to-all for the halo.
pub fn mesh_scene(
    cfg: &MeshConfig,
    input: Result<Input>,
    asked: &Path,
    scene: &str,
    comm: &dyn Comm,
    store: &dyn Store,
    threads: usize,
) -> Result<SceneSummary> {
    let started = Instant::now();
    let mut timings = Timings::default();

    let t = Instant::now();
    let mut opened = open(comm, input, &cfg.read, asked)?;
    let facts = agree_facts(comm, &opened, cfg.cell, (cfg.z_scale, cfg.z_offset))?;
    let plan = plan(comm, &facts, cfg, &opened.shown)?;
    let max_tile = if cfg.formats.contains(&crate::encode::Format::Glb) { crate::encode::glb::max_tile_size() } else { 1 << 24 };
    let specs = match &cfg.lod {
        Some(l) => l.specs(cfg.tile_size, plan.grid.cols, plan.grid.rows, max_tile).map_err(|m| anyhow!("{}: {m}", opened.shown.display()))?,
        None => Vec::new(),
    };
    // With levels of detail every level gets skirts deep enough to hide cracks against the levels next to it.
    let skirts_of = |spec: Option<&crate::config::LevelSpec>| match spec {
        Some(s) => Some(cfg.skirts.unwrap_or(0.0).max(s.skirt)),
        None => cfg.skirts,
    };
    // 3D Tiles of a georeferenced raster: GLB vertices placed on the ellipsoid in the tileset's frame.
    let placement = if cfg.tileset { facts.georef.as_ref().and_then(|g| Placement::new(g, facts.cell.metres, [facts.width, facts.height])) } else { None };
    // Heights above a geoid made heights above the ellipsoid the scene is placed on, as the samples are read.
    let to_ellipsoid = match (&placement, facts.georef.as_ref(), geoid_plan(&cfg.geoid, facts.georef.as_ref(), &facts.encoding)) {
        (Some(_), Some(g), GeoidPlan::Grid(path, what)) => {
            let t = agree(
                comm,
                geoid::Grid::load(&path)
                    .map_err(|m| anyhow!("{}: {m}", opened.shown.display()))
                    .map(|grid| ToEllipsoid::new(Arc::new(grid), g, [facts.width, facts.height], facts.cell.metres, facts.z_scale.factor)),
            )?;
            let t = t.map(Arc::new).ok_or_else(|| anyhow!("{}: no longitude and latitude at the raster's centre", opened.shown.display()))?;
            info!("{}: heights above {what} made heights above the WGS 84 ellipsoid through {}", opened.shown.display(), path.display());
            Some(t)
        }
        (None, _, _) if matches!(cfg.geoid, GeoidChoice::File(_) | GeoidChoice::Model(_)) => bail!(
            "{}: --geoid: the raster is not placed on the ellipsoid ({}), so its heights stay in its own frame",
            opened.shown.display(),
            facts.georef.as_ref().map_or("it has no CRS".into(), |g| g.unplaced(facts.width, facts.height))
        ),
        // Asked by name and not found: an error, not a silent fallback.
        (Some(_), _, GeoidPlan::AsTheyAre(Some(why))) if matches!(cfg.geoid, GeoidChoice::Model(_)) => bail!("{}: --geoid: {why}", opened.shown.display()),
        (Some(_), _, GeoidPlan::AsTheyAre(Some(why))) => {
            warn!("{}: {why}", opened.shown.display());
            None
        }
        _ => None,
    };
    if let (Some(t), Some(r)) = (&to_ellipsoid, opened.raster.as_mut()) {
        r.set_to_ellipsoid(t.clone());
    }
    let mut params_rec = params_record(cfg, &facts);
    params_rec.placed = placement.is_some();
    params_rec.geoid = to_ellipsoid.as_ref().map(|t| t.grid_name().to_string());
    params_rec.skirts = skirts_of(specs.first());
    if !specs.is_empty() {
        params_rec.lod = Some(LodRecord {
            max_errors: specs.iter().map(|s| s.max_error).collect(),
            skirts: specs.iter().map(|s| skirts_of(Some(s)).unwrap_or(0.0)).collect(),
        });
    }
    let key = output_key(OUTPUT_FORMAT_VERSION, &facts, &params_rec)?;
    // An implicit tileset is one quadtree from a single top tile; its files are laid out by depth from that root.
    let implicit_top = if cfg.implicit {
        let top = specs.len().saturating_sub(1);
        if plan.grid.cols.div_ceil(1 << top) != 1 || plan.grid.rows.div_ceil(1 << top) != 1 {
            bail!(
                "{}: --tileset implicit needs levels up to one tile over the raster (a {}×{} grid of tiles needs --lod {} or auto)",
                opened.shown.display(),
                plan.grid.cols,
                plan.grid.rows,
                plan.grid.cols.max(plan.grid.rows).next_power_of_two().trailing_zeros()
            );
        }
        Some(top)
    } else {
        None
    };
    let dir0 = level_dir(0, implicit_top);
    let (done, todo) = retract_and_resume(comm, store, scene, &dir0, &plan, &key, cfg.resume)?;
    let streamed = !opened.scatter && opened.raster.as_ref().is_some_and(|r| r.windowed());
    if let (true, Some(r)) = (streamed, &opened.raster) {
        // Level 0's tiles are read in row order, `threads` at a time, and every level reads the raster once more.
        r.plan_windows(in_flight_rows(&plan.grid, threads), specs.len().max(1));
    }
    let z = (facts.z_scale.factor, facts.z_scale.offset);
    if !streamed {
        // Opening (and decoding) a whole-decoded input counts as reading it; streamed inputs count their window reads.
        timings.read_s = t.elapsed().as_secs_f64();
    }

    let level0 = Level {
        level: 0,
        dir: dir0.clone(),
        plan: &plan,
        method: curved(with_split(cfg.method, &plan.grid), placement.as_ref()),
        skirts: skirts_of(specs.first()),
        key: &key,
        done,
        todo,
        placement: placement.as_ref(),
    };
    let mut levels: Vec<(Plan, String)> = Vec::new();
    for spec in specs.iter().skip(1) {
        levels.push((plan_tiles(comm, &facts, spec.tile, &opened.shown)?, level_key(&key, spec.level)));
    }
    let mut todo_levels = Vec::new();
    for (spec, (plan_l, key_l)) in specs.iter().skip(1).zip(&levels) {
        let (done, todo) =
            if cfg.resume { resume_check(store, scene, &level_dir(spec.level, implicit_top), &plan_l.mine, key_l)? } else { (Vec::new(), plan_l.mine.clone()) };
        let method =
            with_split(Method::Simplify(SimplifyParams { max_error: spec.max_error, max_triangles: None, split: Split::Pieces, curvature: 0.0 }), &plan_l.grid);
        let method = curved(method, placement.as_ref());
        todo_levels.push(Level {
            level: spec.level,
            dir: level_dir(spec.level, implicit_top),
            plan: plan_l,
            method,
            skirts: skirts_of(Some(spec)),
            key: key_l,
            done,
            todo,
            placement: placement.as_ref(),
        });
    }
    let (mut recs, mut level_recs, resumed) = if streamed {
        // Every level's tiles in one pool, coarsest first: the few long tiles of the top levels start at once and
        // the many small tiles of level 0 fill the cores around them.
        let Some(raster) = &opened.raster else { bail!("rank {} has no reader for a streamed input", comm.rank()) };
        let all: Vec<Level> = std::iter::once(level0).chain(todo_levels).collect();
        let dirs: Vec<String> = all.iter().map(|l| l.dir.clone()).collect();
        let cxs: Vec<tile::SceneCtx> =
            all.iter().zip(&dirs).map(|(lv, dir)| level_ctx(cfg, scene, store, lv, dir, tile::Windows::Direct { raster, z })).collect();
        let mut work: Vec<(usize, TileId)> = all.iter().enumerate().flat_map(|(c, lv)| lv.todo.iter().map(move |&t| (c, t))).collect();
        work.sort_by_key(|&(c, _)| std::cmp::Reverse(c));
        let (mut per_level, st) = tiles_of(comm, &cxs.iter().collect::<Vec<_>>(), &work)?;
        st.add_to(&mut timings);
        let mut resumed = 0;
        for (recs, lv) in per_level.iter_mut().zip(all) {
            resumed += lv.done.len();
            recs.extend(lv.done);
        }
        let level0_recs = per_level.remove(0);
        agree_some_valid(comm, store, scene, &dir0, &plan.grid, &level0_recs, &opened.shown)?;
        (level0_recs, per_level, resumed)
    } else {
        let (recs, mut resumed) = mesh_level(comm, cfg, &opened, streamed, z, scene, store, level0, &mut timings)?;
        let mut level_recs = Vec::new();
        for lv in todo_levels {
            let (r, n) = mesh_level(comm, cfg, &opened, streamed, z, scene, store, lv, &mut timings)?;
            resumed += n;
            level_recs.push(r);
        }
        (recs, level_recs, resumed)
    };
    for r in &mut level_recs {
        r.sort_by_key(|r| (r.row, r.col));
    }
    let level_grids: Vec<(crate::config::LevelSpec, Grid)> = specs.iter().skip(1).zip(&levels).map(|(s, (p, _))| (*s, p.grid)).collect();
    recs.sort_by_key(|r| (r.row, r.col));
    let fetched = opened.source.as_ref().map_or(0, |s| s.fetched());
    let shown = opened.shown.clone();
    drop(opened);

    timings.total_s = started.elapsed().as_secs_f64();
    let (sha256, etag) = match facts.content_id.split_once(':') {
        Some(("sha256", h)) => (Some(h.to_string()), None),
        _ => (None, facts.content_id.strip_prefix("etag:").map(str::to_string)),
    };
    let info = CommitInfo {
        scene,
        input: InputRecord { path: shown.display().to_string(), bytes: facts.bytes, sha256, etag, encoding: facts.encoding.clone(), windowed: facts.windowed },
        params: params_rec,
        georef: facts.georef.clone(),
        cell_size: facts.cell.clone(),
        z_scale: facts.z_scale.clone(),
        key: &key,
        run: RunRecord { ranks: comm.size(), threads_per_rank: threads, resumed_tiles: resumed, bytes_fetched: 0, timings: timings.clone() },
        preview: cfg.preview,
        levels: level_grids,
        tileset: cfg.tileset,
        implicit_top,
    };
    let manifest = commit(comm, store, &plan.grid, recs, level_recs, fetched, info)?;
    let mut summary = SceneSummary {
        scene: scene.to_string(),
        ok: true,
        error: None,
        tiles: plan.mine.len(),
        resumed_tiles: resumed,
        vertices: 0,
        triangles: 0,
        bytes: 0,
        bytes_fetched: fetched,
        input_bytes: facts.bytes,
        seconds: timings.total_s,
        timings: timings.clone(),
    };
    if let Some(m) = manifest {
        let totals = &m.totals;
        summary.tiles = totals.tiles;
        summary.vertices = totals.vertices;
        summary.triangles = totals.triangles;
        summary.bytes = totals.bytes;
        summary.bytes_fetched = m.run.bytes_fetched;
        info!(
            "scene '{scene}': {} tiles ({resumed} resumed), {} triangles, {:.1} MB in {:.2} s → {}; {:.1} MB read from the {:.1} MB input",
            totals.tiles,
            totals.triangles,
            totals.bytes as f64 / 1e6,
            timings.total_s,
            store.describe(),
            m.run.bytes_fetched as f64 / 1e6,
            m.input.bytes as f64 / 1e6
        );
    }
    Ok(summary)
}

/// Every scene of a `mesh` run; a failing scene does not stop the others. Returns the per-scene summaries.
pub fn mesh_scenes(cfg: &MeshConfig, names: &[String], comm: &dyn Comm, store: &dyn Store, threads: usize) -> Vec<SceneSummary> {
    cfg.inputs
        .iter()
        .zip(names)
        .map(|(input, scene)| {
            let t0 = Instant::now();
            match mesh_scene(cfg, open_input(input, &cfg.blob), input, scene, comm, store, threads) {
                Ok(s) => s,
                Err(e) => {
                    let msg = crate::redact::redact(&format!("{e:#}"));
                    error!("scene '{scene}' failed: {msg}");
                    SceneSummary::failed(scene, msg, t0.elapsed().as_secs_f64())
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(enc: &str, w: usize, h: usize) -> InputFacts {
        InputFacts {
            width: w,
            height: h,
            content_id: "sha256:ab".into(),
            bytes: 10,
            encoding: enc.into(),
            windowed: true,
            georef: None,
            cell: CellSize { metres: [1.0, 1.0], derived_from: "--cell-size".into(), at_latitude: None },
            z_scale: ZScale { factor: 1.0, offset: 0.0, derived_from: "--z-scale".into() },
            sidecars: Vec::new(),
        }
    }

    #[test]
    fn scenes_of_fewer_than_four_tiles_are_split() {
        let at = |max_triangles| Method::Simplify(SimplifyParams { max_error: 1.0, max_triangles, split: Split::Whole, curvature: 0.0 });
        let split = |m: Method| match m {
            Method::Simplify(sp) => sp.split,
            Method::Grid => unreachable!(),
        };
        for (w, h, cores) in [(257, 257, true), (513, 257, true), (769, 257, true), (513, 513, false), (1025, 257, false)] {
            let g = Grid::new(w, h, 256).unwrap();
            assert_eq!(split(with_split(at(None), &g)), if cores { Split::Cores } else { Split::Pieces }, "{w}x{h}");
            assert_eq!(split(with_split(at(Some(1000)), &g)), Split::Whole, "never with a triangle budget");
        }
        assert_eq!(with_split(Method::Grid, &Grid::new(257, 257, 256).unwrap()), Method::Grid);
    }

    #[test]
    fn output_key_covers_encoding_size_and_version() {
        // Issue #12, item 2: each of these used to give the same key.
        let p = ParamsRecord {
            cell_size: [1.0, 1.0],
            tile_size: 256,
            z_scale: 1.0,
            z_offset: 0.0,
            nodata: None,
            max_error: None,
            max_triangles: None,
            skirts: None,
            formats: vec![crate::encode::Format::Glb],
            lod: None,
            gltf: None,
            placed: false,
            geoid: None,
        };
        let k = |v, f: &InputFacts| output_key(v, f, &p).unwrap();
        let base = k(2, &facts("terrain-rgb", 512, 256));
        // Vertices placed on the ellipsoid are other bytes: another key.
        assert_ne!(base, output_key(2, &facts("terrain-rgb", 512, 256), &ParamsRecord { placed: true, ..p.clone() }).unwrap());
        assert_ne!(base, k(2, &facts("terrarium", 512, 256)));
        assert_ne!(base, k(2, &facts("terrain-rgb", 256, 512)));
        assert_ne!(base, k(1, &facts("terrain-rgb", 512, 256)));
        assert_eq!(base, k(2, &facts("terrain-rgb", 512, 256)));
        // A sidecar (an external mask) is part of the input: with one, and with another, the key changes.
        let with = |id: &str| InputFacts { sidecars: vec![id.into()], ..facts("terrain-rgb", 512, 256) };
        assert_ne!(base, k(2, &with("sha256:cd")));
        assert_ne!(k(2, &with("sha256:cd")), k(2, &with("sha256:ef")));
    }

    #[test]
    fn non_finite_and_overflowing_samples_become_holes() {
        let mut b = [1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 3.0e38, -2.0];
        assert_eq!(sanitize(&mut b, 10.0, 0.0), Some(3.0e38));
        assert_eq!(b[0], 1.0);
        assert_eq!(b[5], -2.0);
        assert!(b[1..5].iter().all(|v| v.is_nan()), "{b:?}");
        // Heights beyond ±1e9 m after scaling are holes too (an undeclared float fill, data in other units); the
        // first finite one is reported, and non-finite samples alone report nothing.
        let mut b = [f32::NAN, 5.0, f32::MIN, -1e9, 1e9, 1.0000001e9, f32::MAX, 2.0];
        assert_eq!(sanitize(&mut b, 1.0, 0.0), Some(f32::MIN));
        assert_eq!(b.map(f32::is_nan), [true, false, true, false, false, true, true, false]);
        let mut b = [4e8, 8e8, -3e8, -3.0];
        assert_eq!(sanitize(&mut b, 2.0, -5e8), Some(8e8));
        assert_eq!(b.map(f32::is_nan), [false, true, true, false]);
        assert_eq!(sanitize(&mut [1.0, f32::INFINITY, f32::NAN], 1.0, 0.0), None);
    }
}
