//! Command-line flags as typed by the user (clap derive). Parsing only: no validation beyond types, no syscalls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "terrafarm", version, about = "Height maps → seamless 3D tile meshes (GLB/OBJ) for render farms")]
pub struct Cli {
    /// Log filter (error, warn, info, debug, trace); default: RUST_LOG, else info. An explicit --log wins.
    #[arg(long, global = true)]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Mesh height maps into tiles of GLB/OBJ plus a manifest per scene.
    Mesh(MeshArgs),
    /// Write a deterministic synthetic terrain (.png 16-bit gray, .f32 raw, or .npy).
    Synth(SynthArgs),
    /// Azure Batch: advise a pool setup, or write pool/job/task JSON for `az batch ... create --json-file`.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Measure mesh throughput of this node: pipeline stages in memory, against memory and write bounds.
    Bench(BenchArgs),
    /// Describe inputs: format, layout, georeferencing, cell size, no-data, value range, and what a mesh run of
    /// them would produce and need.
    Info(InfoArgs),
    /// Render scenes that `mesh` wrote (GLB tiles) to PNG with the WGSL shaders on the GPU (wgpu; lavapipe, the
    /// software Vulkan driver, works): a top-down hillshade by default, or an oblique view.
    Render(RenderArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RenderArgs {
    /// Scene folders as `mesh` wrote them: OUT/SCENE, local or a blob address (az://CONTAINER/PREFIX/SCENE).
    #[arg(required = true, value_name = "SCENE")]
    pub scenes: Vec<String>,
    /// hillshade (grey, light from azimuth 315° at 45°, as `gdaldem hillshade`) or hypsometric (colour by height).
    #[arg(long, default_value = "hillshade")]
    pub style: String,
    /// Draw the triangle edges over the surface (shows where the simplifier put its vertices).
    #[arg(long)]
    pub wireframe: bool,
    /// Image size WIDTHxHEIGHT (default: the raster's size, long side capped at 2048).
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// top (orthographic, north up, exactly the raster's extent), oblique, or AZIMUTH,ELEVATION of the viewer in
    /// degrees.
    #[arg(long, default_value = "top")]
    pub camera: String,
    /// Write the PNG here (a local file; one scene only). Default: SCENE/renders/CAMERA-STYLE.png through the
    /// scene's store.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// GPU memory the tiles may take at once (MiB); larger scenes stream through the frame in batches.
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub gpu_budget_mib: u64,
    /// Draw this many frames and report the frame rate (the image is the last frame).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub frames: u32,
    /// Print what was rendered and measured as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct InfoArgs {
    /// Inputs, as for `mesh` (local paths or blob addresses).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Encoding, as for `mesh`.
    #[arg(long, default_value = "auto")]
    pub encoding: String,
    /// Raster size of raw inputs: WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// Cell size to assume instead of the file's georeferencing (metres, X or X,Y).
    #[arg(long, value_name = "X[,Y]")]
    pub cell_size: Option<String>,
    /// No-data value to assume instead of the file's.
    #[arg(long, allow_negative_numbers = true, value_name = "VALUE")]
    pub nodata: Option<f32>,
    /// Tile size of the mesh run to estimate (cells).
    #[arg(long, default_value_t = 256, value_name = "CELLS")]
    pub tile_size: usize,
    /// Worker threads of the mesh run to estimate (default: this machine's cores).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
    /// Print JSON (an array, one object per input) on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Synthetic terrain size in samples (ignored with --input).
    #[arg(long, default_value = "4097x4097", value_name = "WxH")]
    pub synth_size: String,
    /// Seed of the synthetic terrain.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Benchmark this height map instead (any input `mesh` reads, local or a blob address; decode time is
    /// reported).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Encoding of --input (as for `mesh`).
    #[arg(long, default_value = "auto")]
    pub encoding: String,
    /// Raster size of a raw --input, in samples: WIDTHxHEIGHT (as for `mesh`).
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// Tile size in cells.
    #[arg(long, default_value_t = 256)]
    pub tile_size: usize,
    /// Comma-separated max errors in metres; "grid" = full resolution.
    #[arg(long, default_value = "grid,1", value_name = "LIST")]
    pub max_error: String,
    /// Comma-separated thread counts (default: 1 and all cores).
    #[arg(long, value_name = "LIST")]
    pub threads: Option<String>,
    /// Repetitions per stage; the best is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Also time OBJ encoding.
    #[arg(long)]
    pub obj: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Skip the end-to-end row (the scene written through `mesh` to a RAM disk, against a plain write).
    #[arg(long)]
    pub no_end_to_end: bool,
    /// Mesh whole tiles even where `mesh` would cut them into pieces meshed in parallel (tiles wider than 256 cells,
    /// and every tile of a scene of fewer than 4): to time the kernel on one large tile.
    #[arg(long)]
    pub whole_tiles: bool,
    /// With --input: only open and decode it (one thread), print that time, and stop.
    #[arg(long, requires = "input")]
    pub decode_only: bool,
}

#[derive(Args, Debug, Clone)]
pub struct MeshArgs {
    /// Input height maps; each is one scene. Formats: GeoTIFF/COG (u8…f64, any common compression), PNG (8/16-bit
    /// gray, or RGB with --encoding), SRTM .hgt, .npy, raw .f32/.i16/.u16 (with --size).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output root (scenes go to OUT/<scene>/): a local folder, file://PATH, az://CONTAINER/PREFIX, or
    /// https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX[?SAS]. Inputs may be blob URLs too.
    #[arg(long, short, default_value = "out", value_name = "OUT")]
    pub out: String,
    /// Tile size in cells (samples per tile side minus one); neighbouring tiles share their border samples.
    #[arg(long, default_value_t = 256, value_name = "CELLS")]
    pub tile_size: usize,
    /// Output formats, comma-separated: glb, obj, and 3dtiles (a 3D Tiles 1.1 tileset.json over the GLB tiles of
    /// every level; implies glb).
    #[arg(long, default_value = "glb,obj", value_name = "LIST")]
    pub format: String,
    /// GLB vertex storage: plain (f32), quantized (KHR_mesh_quantization: u16 positions, i8 normals) or meshopt
    /// (quantized, then EXT_meshopt_compression). Quantization error is counted inside --max-error (needs > 0).
    #[arg(long, default_value = "plain", value_name = "ENCODING")]
    pub gltf: String,
    /// How tileset.json describes the tree (with 3dtiles): explicit (every tile listed) or implicit (3D Tiles 1.1
    /// implicit tiling: a quadtree template and one availability subtree; files laid out by depth from the root,
    /// content/D/X_Y.glb). Implicit needs levels up to one tile over the raster (--lod auto).
    #[arg(long, default_value = "explicit", value_name = "explicit|implicit")]
    pub tileset: String,
    /// Levels of detail above the tiles: N levels (each tile of level L covers 2×2 tiles of level L−1, simplified
    /// from the full-resolution samples), or auto (up to one tile over the whole raster). Needs --max-error > 0
    /// (level L's error is --max-error × 2^L) or --lod-errors.
    #[arg(long, value_name = "N|auto")]
    pub lod: Option<String>,
    /// Maximum error of each level above the tiles (metres, comma-separated, increasing; one per level).
    #[arg(long, value_name = "LIST")]
    pub lod_errors: Option<String>,
    /// How bytes map to heights: auto, gray, terrain-rgb, terrarium, raw-f32, raw-i16, raw-u16, hgt, npy.
    #[arg(long, default_value = "auto")]
    pub encoding: String,
    /// Raster size for raw inputs, in samples: WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// Horizontal sample spacing in metres: X or X,Y (X along columns, Y along rows). Default: from the input's
    /// georeferencing (GeoTIFF, .hgt name), else 1.
    #[arg(long, value_name = "X[,Y]")]
    pub cell_size: Option<String>,
    /// Multiplier from sample value to metres of height. Default: from a GeoTIFF, its band scale (GDAL metadata) times
    /// its vertical unit (VerticalUnitsGeoKey or the vertical CRS's: feet converted to metres, depths negated), else 1.
    /// Given, it replaces all of that, the band offset too.
    #[arg(long, allow_negative_numbers = true, value_name = "FACTOR")]
    pub z_scale: Option<f32>,
    /// Metres added to every height after scaling. Default: a GeoTIFF's band offset (GDAL metadata) in metres, else 0.
    #[arg(long, allow_negative_numbers = true, value_name = "METRES")]
    pub z_offset: Option<f32>,
    /// Sample value meaning "no data" (in input units, before scaling); such samples leave holes.
    #[arg(long, allow_negative_numbers = true, value_name = "VALUE")]
    pub nodata: Option<f32>,
    /// Refuse inputs whose header claims more samples than this (guards against decompression bombs).
    #[arg(long, default_value_t = 1 << 32, value_name = "SAMPLES")]
    pub max_samples: u64,
    /// Worker threads per process (default: the cores this rank may use).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
    /// Simplify each tile until every sample is within this vertical distance of the mesh (metres, after
    /// --z-scale); 0 = lossless but merges flat areas, planar slopes and straight creases. Without it tiles are
    /// full-resolution grids.
    #[arg(long, value_name = "METRES")]
    pub max_error: Option<f32>,
    /// Triangle budget per tile when simplifying (the achieved error is then recorded in the manifest).
    #[arg(long, value_name = "N")]
    pub max_triangles: Option<usize>,
    /// Add vertical skirts this many metres deep along tile borders (hides gaps between different levels of detail).
    #[arg(long, value_name = "METRES")]
    pub skirts: Option<f32>,
    /// With 3dtiles on the ellipsoid: how heights above a geoid (sea level) become heights above the ellipsoid.
    /// auto: heights the input declares above EGM96 or EGM2008 (GeoTIFF vertical CRS EPSG:5773 or 3855; SRTM .hgt:
    /// EGM96) get the geoid's undulation from the grid PROJ uses (us_nga_egm96_15.tif or egm96_15.gtx,
    /// us_nga_egm08_25.tif or egm08_25.gtx), found in PROJ_DATA or PROJ's usual folders; other heights are placed as
    /// they are. none: heights placed as they are. egm96, egm2008: every height is above that model (for files that
    /// do not say, such as the Copernicus DEM's GeoTIFFs, above EGM2008), its grid found as with auto, an error if
    /// missing. FILE: the undulations of that grid (GTX or GeoTIFF) for any input.
    #[arg(long, default_value = "auto", value_name = "auto|none|egm96|egm2008|FILE")]
    pub geoid: String,
    /// Skip tiles already written with the same input and parameters; finish an interrupted run.
    #[arg(long)]
    pub resume: bool,
    /// Blob storage: retries per request on 5xx/429/timeouts/connection errors (backoff 0.2 s growing to 15 s).
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub blob_retries: usize,
    /// Blob storage: give up retrying a request this many seconds after its first try.
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    pub blob_retry_timeout: f64,
    /// Blob storage: objects larger than this go up as blocks of this size (MiB).
    #[arg(long, default_value_t = 8, value_name = "MIB")]
    pub blob_block_mib: usize,
    /// Blob storage: blocks of one object uploaded at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub blob_concurrency: usize,
    /// Scene name (default: the input's file stem); only with a single input.
    #[arg(long)]
    pub scene: Option<String>,
    /// After the tiles, render SCENE/preview.png (top-down hillshade, as `terrafarm render`) and list it in the
    /// manifest. Needs a Vulkan adapter (lavapipe from mesa-vulkan-drivers is enough).
    #[arg(long)]
    pub preview: bool,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SynthArgs {
    /// Raster size in samples: WIDTHxHEIGHT.
    #[arg(long, default_value = "1025x1025", value_name = "WxH")]
    pub size: String,
    /// Seed: the same seed and size always give the same terrain.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Height range in metres (peak-to-valley, roughly).
    #[arg(long, default_value_t = 1200.0, value_name = "METRES")]
    pub relief: f32,
    /// Output file: .png (16-bit gray, heights rounded to metres), .f32 (raw little-endian) or .npy (f32).
    pub output: PathBuf,
}

#[derive(Subcommand, Debug, Clone)]
pub enum BatchCommand {
    /// Recommend allocation mode, node type, slots and pool size for a workload, with the reasons.
    Plan(BatchTraits),
    /// Write pool.json, job.json and tasks.json for the recommended setup.
    Render(BatchRender),
}

#[derive(Args, Debug, Clone)]
pub struct BatchTraits {
    /// mpi: one big scene across nodes (multi-instance task); scenes: one task per scene.
    #[arg(long, value_enum)]
    pub workload: crate::batch::Workload,
    /// prod: must finish on time; dev: short tasks that tolerate interruption.
    #[arg(long, value_enum, default_value = "prod")]
    pub env: crate::batch::Env,
    #[arg(long, value_enum, default_value = "linux")]
    pub os: crate::batch::Os,
    /// The pool must join a custom VNet / private network.
    #[arg(long)]
    pub custom_vnet: bool,
    /// Use Azure Hybrid Benefit for Windows Server licences (Windows only).
    #[arg(long)]
    pub windows_licenses: bool,
    /// Enable node-to-node communication for a scenes pool too.
    #[arg(long)]
    pub inter_node: bool,
    /// Ask for Spot nodes (yes/no, also true/false); by default the advisor decides.
    #[arg(long, value_parser = parse_yes_no, value_name = "yes|no")]
    pub spot: Option<bool>,
    /// Nodes in the pool (maximum, with --autoscale).
    #[arg(long, default_value_t = 2)]
    pub nodes: u32,
    /// VM size, e.g. Standard_D16as_v5.
    #[arg(long, default_value = "Standard_D16as_v5")]
    pub vm_size: String,
    /// Cores of that VM size.
    #[arg(long, default_value_t = 16)]
    pub cores: u32,
    /// Task slots per node (scenes; at most min(4 × cores, 256)).
    #[arg(long)]
    pub slots: Option<u32>,
    /// GPU render profile: after each scene is meshed, a render task (depending on its mesh task) renders its
    /// previews on the node's GPU with `terrafarm render`. Needs a GPU VM size (N-series, e.g. Standard_NC4as_T4_v3).
    #[arg(long)]
    pub render: bool,
    /// Accept combinations the advisor refuses as harmful.
    #[arg(long)]
    pub force: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BatchRender {
    #[command(flatten)]
    pub traits: BatchTraits,
    /// Folder to write pool.json, job.json and tasks.json into.
    #[arg(long, default_value = "batch")]
    pub out_dir: PathBuf,
    #[arg(long, default_value = "terrafarm-pool")]
    pub pool_id: String,
    #[arg(long, default_value = "terrafarm-job")]
    pub job_id: String,
    /// Inputs as the nodes see them; one task per input (scenes) or one scene (mpi).
    #[arg(long = "input", required = true)]
    pub inputs: Vec<String>,
    /// `--out` as the nodes see it.
    #[arg(long = "mesh-out")]
    pub mesh_out: String,
    /// Extra flags for `terrafarm mesh`, e.g. --mesh-arg=--max-error --mesh-arg=1.
    #[arg(long = "mesh-arg", allow_hyphen_values = true)]
    pub mesh_args: Vec<String>,
    /// Autoscale a scenes pool on $PendingTasks (up to --nodes).
    #[arg(long)]
    pub autoscale: bool,
    /// Storage account of az:// inputs/outputs (set as AZURE_STORAGE_ACCOUNT_NAME for the tasks).
    #[arg(long, value_name = "NAME")]
    pub storage_account: Option<String>,
    /// How tasks authenticate to blob storage: the pool's managed identity, or a SAS given at submit time
    /// (deploy/submit.sh reads TERRAFARM_SAS; it is never written into the generated files).
    #[arg(long, value_enum, default_value = "identity")]
    pub blob_auth: crate::batch::BlobAuth,
    /// Client id of the pool's user-assigned managed identity (AZURE_CLIENT_ID on the nodes).
    #[arg(long, value_name = "ID")]
    pub identity_client_id: Option<String>,
}

/// yes/no (and true/false, on/off, 1/0), as `--spot` documents.
fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "on" | "1" => Ok(true),
        "no" | "n" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("'{s}' is not yes or no")),
    }
}
