//! The orchestrator: reads like the pipeline, read → tile → halo → mesh → encode → store, with one timed span per
//! stage. The only module that knows every other one; kernels and encoders stay pure, the store does the writing.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::cli::{BatchCommand, BatchTraits, BenchArgs, Cli, Command, MeshArgs, SynthArgs};
use crate::comm::Comm;
use crate::config::{parse_size, MeshConfig};
use crate::encode::{self, Format};
use crate::halo::{self, Blocks, Halo};
use crate::manifest::{FileRecord, InputRecord, Manifest, ParamsRecord, RunRecord, Timings, TileRecord, Totals};
use crate::mesh::{self, simplify, Method, Params, Window};
use crate::raster;
use crate::store::{self, LocalStore, Store};
use crate::tiling::{self, Grid, TileId};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Runs one command; returns the process exit code.
pub fn run(cli: Cli, comm: &dyn Comm) -> u8 {
    match cli.command {
        Command::Mesh(a) => mesh_command(a, comm),
        Command::Batch(c) => batch_command(&c),
        Command::Bench(a) => match bench_command(&a, comm) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                error!("{e:#}");
                EXIT_FAIL
            }
        },
        Command::Synth(a) => match synth_command(&a) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                error!("{e:#}");
                EXIT_FAIL
            }
        },
    }
}

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
    pub seconds: f64,
    pub timings: Timings,
}

fn mesh_command(args: MeshArgs, comm: &dyn Comm) -> u8 {
    let cfg = match MeshConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("terrafarm: usage error: {e}");
            return EXIT_USAGE;
        }
    };
    let names: Vec<String> = (0..cfg.inputs.len()).map(|i| cfg.scene_name(i)).collect();
    if let Some(dup) = names.iter().enumerate().find_map(|(i, n)| names[..i].contains(n).then_some(n)) {
        eprintln!("terrafarm: usage error: two inputs would both be scene '{dup}'; rename one or mesh them in separate runs");
        return EXIT_USAGE;
    }
    let store = match store::open(&cfg.out, &cfg.blob) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("terrafarm: error: output {}", crate::redact::redact(&e.to_string()));
            return EXIT_FAIL;
        }
    };
    let threads = cfg.threads.unwrap_or_else(|| comm.cores_per_rank()).max(1);
    // One global pool: the main thread keeps making the MPI calls, rayon workers do the tile work.
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global() {
        warn!("thread pool already set up ({e}); --threads may not apply");
    }
    let started = Instant::now();
    let mut summaries = Vec::new();
    for (i, input) in cfg.inputs.iter().enumerate() {
        let scene = &names[i];
        let t0 = Instant::now();
        let res = mesh_scene(&cfg, input, scene, comm, store.as_ref(), threads);
        summaries.push(match res {
            Ok(s) => s,
            Err(e) => {
                let msg = crate::redact::redact(&format!("{e:#}"));
                error!("scene '{scene}' failed: {msg}");
                SceneSummary {
                    scene: scene.clone(),
                    ok: false,
                    error: Some(msg),
                    tiles: 0,
                    resumed_tiles: 0,
                    vertices: 0,
                    triangles: 0,
                    bytes: 0,
                    seconds: t0.elapsed().as_secs_f64(),
                    timings: Timings::default(),
                }
            }
        });
    }
    let failed = summaries.iter().filter(|s| !s.ok).count();
    if comm.rank() == 0 {
        print_summary(&cfg, &summaries, started.elapsed(), threads, comm.size());
    }
    if let Some(kb) = peak_rss_kb() {
        info!("rank {}: peak RSS {:.1} MB", comm.rank(), kb as f64 / 1024.0);
    }
    if failed > 0 {
        EXIT_FAIL
    } else {
        EXIT_OK
    }
}

fn print_summary(cfg: &MeshConfig, s: &[SceneSummary], wall: Duration, threads: usize, ranks: usize) {
    let secs = wall.as_secs_f64();
    let tiles: usize = s.iter().map(|x| x.tiles).sum();
    let tris: usize = s.iter().map(|x| x.triangles).sum();
    let bytes: u64 = s.iter().map(|x| x.bytes).sum();
    let failed = s.iter().filter(|x| !x.ok).count();
    if cfg.json {
        let doc = json!({
            "scenes": s, "failed": failed, "tiles": tiles, "triangles": tris, "bytes": bytes,
            "seconds": secs, "triangles_per_s": tris as f64 / secs.max(1e-9), "ranks": ranks, "threads_per_rank": threads,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!(
            "terrafarm: {} scene(s), {failed} failed, {tiles} tiles, {tris} triangles, {secs:.2} s, {:.2} M triangles/s, {:.1} MB written",
            s.len(),
            tris as f64 / secs.max(1e-9) / 1e6,
            bytes as f64 / 1e6
        );
        let sum = |f: fn(&Timings) -> f64| s.iter().map(|x| f(&x.timings)).sum::<f64>();
        println!(
            "terrafarm: phases (rank 0): read {:.2} s, halo {:.3} s, mesh {:.2} s, encode {:.2} s, write {:.2} s (mesh/encode/write in thread-seconds over {threads} threads)",
            sum(|t| t.read_s),
            sum(|t| t.halo_s),
            sum(|t| t.mesh_s),
            sum(|t| t.encode_s),
            sum(|t| t.write_s)
        );
    }
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// What rank 0 learns about the input and every rank needs.
#[derive(serde::Serialize, serde::Deserialize)]
struct InputFacts {
    width: usize,
    height: usize,
    sha256: String,
    bytes: u64,
    encoding: String,
    windowed: bool,
}

fn sha256_source(name: &Path, src: &dyn raster::ByteSource) -> Result<(String, u64)> {
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
    Ok((hex(&h.finalize()), n))
}

/// The input's bytes (a local file, or a blob through the store) and the name to show for it (never a SAS).
fn open_input(input: &Path, cfg: &MeshConfig) -> Result<(Arc<dyn raster::ByteSource>, PathBuf)> {
    let s = input.to_string_lossy();
    if store::is_remote(&s) {
        let (src, shown) = store::open_input(&s, &cfg.blob)?;
        Ok((src, PathBuf::from(shown)))
    } else {
        Ok((Arc::new(raster::FileSource::open(input)?), input.to_path_buf()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tile_key(scene: &str, t: TileId) -> String {
    format!("{scene}/tiles/{}_{}", t.col, t.row)
}

/// Everything a tile worker needs, shared read-only across threads.
struct SceneCtx<'a> {
    scene: &'a str,
    grid: Grid,
    params: Params,
    method: Method,
    skirts: Option<f32>,
    formats: &'a [Format],
    key: &'a str,
    blocks: &'a Blocks,
    halo: &'a Halo,
    store: &'a dyn Store,
}

#[derive(Default, Clone, Copy)]
struct StageTimes {
    mesh: Duration,
    encode: Duration,
    write: Duration,
}

/// Per-thread buffers reused from tile to tile: the halo window, the simplifier's scratch, and the GLB bytes.
type TileScratch = (Vec<f32>, simplify::Scratch, Vec<u8>);

fn tile_extras(t: TileId, requested: Option<f32>, achieved: f32) -> serde_json::Value {
    json!({ "terrafarm": { "tile": [t.col, t.row], "max_error_requested": requested, "max_error": achieved } })
}

/// A full-resolution tile without holes, written straight into GLB bytes (no intermediate mesh): the grid kernel
/// fills the GLB's buffer views in place. Same bytes as meshing then encoding (tests/simd.rs).
pub fn grid_glb_into(win: &Window, params: &Params, extras: &serde_json::Value, out: &mut Vec<u8>, kernel: mesh::grid::Kernel) -> Option<mesh::grid::GridPlan> {
    let plan = mesh::grid::plan_with(win, params, kernel)?;
    encode::glb::encode_into(out, &plan, extras, |s| mesh::grid::fill(win, params, s, kernel));
    Some(plan)
}

fn process_tile(cx: &SceneCtx, t: TileId, scratch: &mut TileScratch) -> Result<(TileRecord, StageTimes)> {
    let mut times = StageTimes::default();
    cx.halo.window(&cx.grid, t, cx.blocks, &mut scratch.0);
    let win = Window { data: &scratch.0, rect: cx.grid.halo_rect(t), tile: cx.grid.tile_rect(t) };
    let base = tile_key(cx.scene, t);
    let bounds = |origin: [f64; 3], min: [f32; 3], max: [f32; 3]| {
        [0, 1].map(|k| {
            let b = if k == 0 { min } else { max };
            [origin[0] + b[0] as f64, origin[1] + b[1] as f64, origin[2] + b[2] as f64]
        })
    };

    // GLB only, full resolution: mesh and encode in one pass into the reused buffer.
    if matches!(cx.method, Method::Grid) && cx.skirts.is_none() && cx.formats == [Format::Glb] {
        let t0 = Instant::now();
        if let Some(plan) = grid_glb_into(&win, &cx.params, &tile_extras(t, None, 0.0), &mut scratch.2, mesh::grid::Kernel::Auto) {
            times.encode = t0.elapsed();
            let name = format!("tiles/{}_{}.glb", t.col, t.row);
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
    let m = mesh::mesh_tile(&win, &cx.params, &cx.method, cx.skirts, &mut scratch.1);
    times.mesh = t0.elapsed();

    let mut rec = TileRecord {
        col: t.col,
        row: t.row,
        files: Vec::new(),
        vertices: m.vertices(),
        triangles: m.triangles(),
        nodata_samples: m.nodata_samples,
        bounds: bounds(m.origin, m.min, m.max),
        max_error_requested: requested_error(&cx.method),
        max_error: m.max_error,
        key: cx.key.to_string(),
    };
    if m.triangles() > 0 {
        for &f in cx.formats {
            let t1 = Instant::now();
            let bytes = match f {
                Format::Glb => encode::glb::encode(&m, &tile_extras(t, requested_error(&cx.method), m.max_error)),
                Format::Obj => encode::obj::encode(&m, cx.params.cell, &format!("terrafarm {} tile {} {}", env!("CARGO_PKG_VERSION"), t.col, t.row)),
            };
            times.encode += t1.elapsed();
            let t2 = Instant::now();
            let name = format!("tiles/{}_{}.{}", t.col, t.row, f.ext());
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

fn requested_error(m: &Method) -> Option<f32> {
    match m {
        Method::Grid => None,
        Method::Simplify(sp) => Some(sp.max_error),
    }
}

/// A tile finished by an earlier run with the same key, whose files are all still there at their recorded sizes.
fn resumable(store: &dyn Store, scene: &str, t: TileId, key: &str) -> Option<TileRecord> {
    let bytes = store.get(&format!("{}.json", tile_key(scene, t))).ok()??;
    let rec: TileRecord = serde_json::from_slice(&bytes).ok()?;
    let complete = rec.key == key
        && (rec.col, rec.row) == (t.col, t.row)
        && rec.files.iter().all(|f| store.size(&format!("{scene}/{}", f.name)).ok().flatten() == Some(f.bytes));
    complete.then_some(rec)
}

/// Collective: returns Ok only when every rank's `res` is Ok, so no rank enters the next collective alone.
fn agree<T>(comm: &dyn Comm, res: Result<T>) -> Result<T> {
    let all = comm.all_ok(res.is_ok()).map_err(|e| anyhow!(e))?;
    match res {
        Err(e) => Err(e),
        Ok(_) if !all => bail!("another rank failed (see its message)"),
        Ok(v) => Ok(v),
    }
}

fn mesh_scene(cfg: &MeshConfig, input: &Path, scene: &str, comm: &dyn Comm, store: &dyn Store, threads: usize) -> Result<SceneSummary> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let me = comm.rank();

    // read: open, check, and fix everything that every rank can check alone before the first collective.
    let t = Instant::now();
    // Formats decoded whole (PNG/TIFF) are decoded once, by rank 0, and scattered; windowed formats are opened by
    // every rank, each reading only its own tiles' samples.
    let source = open_input(input, cfg);
    let shown = source.as_ref().map_or_else(|_| PathBuf::from(crate::redact::url_for_display(&input.to_string_lossy())), |s| s.1.clone());
    let input = shown.as_path();
    let scatter = comm.size() > 1 && source.as_ref().is_ok_and(|(src, name)| raster::decodes_whole(name, src.as_ref(), &cfg.read));
    let opened = (|| -> Result<Option<(raster::Raster, Arc<dyn raster::ByteSource>)>> {
        let (src, name) = source?;
        if scatter && me != 0 {
            return Ok(None);
        }
        Ok(Some((raster::open_source(&name, src.clone(), &cfg.read)?, src)))
    })();
    let opened = agree(comm, opened)?;
    let (raster, src) = opened.unzip();
    let facts = (|| -> Result<Option<Vec<u8>>> {
        let Some((r, src)) = raster.as_ref().zip(src.as_ref()).filter(|_| me == 0) else { return Ok(None) };
        let (sha256, bytes) = sha256_source(input, src.as_ref())?;
        let f = InputFacts { width: r.width(), height: r.height(), sha256, bytes, encoding: r.encoding().to_string(), windowed: r.windowed() };
        Ok(Some(serde_json::to_vec(&f)?))
    })();
    let facts = agree(comm, facts)?;
    let facts: InputFacts = serde_json::from_slice(&comm.broadcast_bytes(facts).map_err(|e| anyhow!(e))?)?;
    let grid = Grid::new(facts.width, facts.height, cfg.tile_size).ok_or_else(|| anyhow!("{}: raster too small to mesh", input.display()))?;
    let InputFacts { sha256: sha, bytes: input_bytes, encoding, windowed, .. } = facts;
    let params = Params { cell: cfg.cell, z_scale: cfg.z_scale, z_offset: cfg.z_offset, raster: [grid.width, grid.height] };
    let params_rec = ParamsRecord {
        cell_size: cfg.cell,
        tile_size: cfg.tile_size,
        z_scale: cfg.z_scale,
        z_offset: cfg.z_offset,
        nodata: cfg.read.nodata,
        max_error: requested_error(&cfg.method),
        max_triangles: match cfg.method {
            Method::Simplify(sp) => sp.max_triangles,
            Method::Grid => None,
        },
        skirts: cfg.skirts,
        formats: cfg.formats.clone(),
    };
    let key = hex(&Sha256::digest(serde_json::to_vec(&json!({ "terrafarm": env!("CARGO_PKG_VERSION"), "input": sha, "params": params_rec }))?));

    // tile: which tiles are ours, and which of them an earlier run already finished.
    let owners = tiling::assign_owners(&grid, comm.size());
    let mine: Vec<TileId> = grid.tiles().filter(|t| owners[grid.index(*t)] == me).collect();
    // The manifest is the scene's "done" marker: rank 0 retracts it until this run has finished, and sweeps the
    // temporaries a killed run left. Agreed on, so a failure here cannot leave the other ranks in a collective.
    let retracted = (|| -> Result<()> {
        if me == 0 {
            store.delete(&format!("{scene}/manifest.json"))?;
            let swept = store.remove_partials(scene)?;
            if swept > 0 {
                warn!("scene '{scene}': removed {swept} partial file(s) left by an interrupted run");
            }
        }
        Ok(())
    })();
    agree(comm, retracted)?;
    let mut done: Vec<TileRecord> = Vec::new();
    let mut todo: Vec<TileId> = Vec::new();
    for &t in &mine {
        match cfg.resume.then(|| resumable(store, scene, t, &key)).flatten() {
            Some(rec) => done.push(rec),
            None => todo.push(t),
        }
    }
    let resumed = done.len();

    // read the samples our tiles own (windowed where the format allows).
    let read_block = |t: TileId| -> Result<(usize, Vec<f32>)> {
        let r = grid.owned_rect(t);
        let mut b = vec![0f32; r.len()];
        let raster = raster.as_ref().ok_or_else(|| anyhow!("rank {me} has no reader"))?;
        if std::env::var("TERRAFARM_TEST_FAIL_READ_RANK").is_ok_and(|v| v == me.to_string()) {
            // Test hook (tests/mpi.rs): simulates an unreadable window on one rank.
            bail!("{}: rank {me}, tile ({}, {}): window unreadable (TERRAFARM_TEST_FAIL_READ_RANK)", input.display(), t.col, t.row);
        }
        raster.read_window(r, &mut b).with_context(|| format!("rank {me}, tile ({}, {})", t.col, t.row))?;
        Ok((grid.index(t), b))
    };
    let blocks: Blocks = if !scatter {
        agree(comm, mine.par_iter().map(|&t| read_block(t)).collect())?
    } else {
        // Rank 0 decoded the whole raster: it keeps its tiles and sends every other rank its tiles' samples, in
        // tile-index order, through one all-to-all (after every rank knows the decode went well).
        let decoded = (|| -> Result<(Blocks, Vec<Vec<f32>>)> {
            let mut per_rank: Vec<Vec<f32>> = vec![Vec::new(); comm.size()];
            let mut own = Blocks::new();
            if me == 0 {
                for t in grid.tiles() {
                    let (i, b) = read_block(t)?;
                    match owners[i] {
                        0 => drop(own.insert(i, b)),
                        r => per_rank[r].extend_from_slice(&b),
                    }
                }
            }
            Ok((own, per_rank))
        })();
        let (own, per_rank) = agree(comm, decoded)?;
        let counts: Vec<usize> = per_rank.iter().map(Vec::len).collect();
        let (recv, _) = comm.all_to_all_v(&per_rank.concat(), &counts).map_err(|e| anyhow!(e))?;
        if me == 0 {
            own
        } else {
            let mut at = 0;
            mine.iter()
                .map(|&t| {
                    let n = grid.owned_rect(t).len();
                    at += n;
                    (grid.index(t), recv[at - n..at].to_vec())
                })
                .collect()
        }
    };
    let valid: usize = blocks.values().map(|b| b.iter().filter(|h| !h.is_nan()).count()).sum();
    drop(raster);
    drop(src);
    if comm.all_ok(valid == 0).map_err(|e| anyhow!(e))? {
        bail!("{}: no valid height samples (every sample is NaN or --nodata)", input.display());
    }
    timings.read_s = t.elapsed().as_secs_f64();

    // halo: one all-to-all brings every border sample our tiles need from other ranks.
    let t = Instant::now();
    let halo = halo::exchange(&grid, &owners, comm, &blocks)?;
    timings.halo_s = t.elapsed().as_secs_f64();
    if comm.size() > 1 {
        info!("rank {me}: halo sent {} B, received {} B", halo.bytes_sent, halo.bytes_received);
    }

    // mesh → encode → store, tile-parallel.
    let cx = SceneCtx { scene, grid, params, method: cfg.method, skirts: cfg.skirts, formats: &cfg.formats, key: &key, blocks: &blocks, halo: &halo, store };
    let bar = (me == 0 && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(todo.len() as u64);
        b.set_style(indicatif::ProgressStyle::with_template("{prefix} {bar:40} {pos}/{len} tiles {elapsed}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
        b.set_prefix(scene.to_string());
        b
    });
    // After the first failure (storage gone, retries exhausted) the remaining tiles are not attempted: each would
    // only wait out its own retries before failing the same way.
    let failed = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<Option<Result<(TileRecord, StageTimes)>>> = todo
        .par_iter()
        .map_init(Default::default, |scratch, &t| {
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                return None;
            }
            let r = process_tile(&cx, t, scratch).with_context(|| format!("rank {me}, tile ({}, {})", t.col, t.row));
            if r.is_err() {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
            Some(r)
        })
        .collect();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let tiles_done = (|| -> Result<Vec<TileRecord>> {
        let mut recs = done;
        let skipped = results.iter().filter(|r| r.is_none()).count();
        for r in results.into_iter().flatten() {
            let (rec, st) = r.map_err(|e| if skipped > 0 { e.context(format!("{skipped} more tile(s) not attempted")) } else { e })?;
            timings.mesh_s += st.mesh.as_secs_f64();
            timings.encode_s += st.encode.as_secs_f64();
            timings.write_s += st.write.as_secs_f64();
            recs.push(rec);
        }
        Ok(recs)
    })();
    let recs = agree(comm, tiles_done)?;

    // Rank 0 gathers every rank's tile records and commits the manifest last.
    let gathered = comm.gather_bytes(&serde_json::to_vec(&recs)?).map_err(|e| anyhow!(e))?;
    timings.total_s = started.elapsed().as_secs_f64();
    let mut summary = SceneSummary {
        scene: scene.to_string(),
        ok: true,
        error: None,
        tiles: mine.len(),
        resumed_tiles: resumed,
        vertices: 0,
        triangles: 0,
        bytes: 0,
        seconds: timings.total_s,
        timings: timings.clone(),
    };
    if let Some(parts) = gathered {
        let mut tiles: Vec<TileRecord> = Vec::with_capacity(grid.count());
        for p in parts {
            tiles.extend(serde_json::from_slice::<Vec<TileRecord>>(&p)?);
        }
        tiles.sort_by_key(|r| (r.row, r.col));
        let totals = Totals::of(&tiles);
        let manifest = Manifest {
            terrafarm: env!("CARGO_PKG_VERSION").to_string(),
            scene: scene.to_string(),
            input: InputRecord {
                path: input.display().to_string(),
                bytes: input_bytes,
                sha256: sha,
                encoding,
                windowed,
            },
            raster: [grid.width, grid.height],
            tile_grid: [grid.cols, grid.rows],
            params: params_rec,
            key: key.clone(),
            tiles,
            totals: totals.clone(),
            run: RunRecord { ranks: comm.size(), threads_per_rank: threads, resumed_tiles: resumed, timings: timings.clone() },
        };
        store.put(&format!("{scene}/manifest.json"), &serde_json::to_vec_pretty(&manifest)?)?;
        summary.tiles = totals.tiles;
        summary.vertices = totals.vertices;
        summary.triangles = totals.triangles;
        summary.bytes = totals.bytes;
        info!(
            "scene '{scene}': {} tiles ({resumed} resumed), {} triangles, {:.1} MB in {:.2} s → {}",
            totals.tiles,
            totals.triangles,
            totals.bytes as f64 / 1e6,
            timings.total_s,
            store.describe()
        );
    }
    Ok(summary)
}

fn batch_traits(a: &BatchTraits) -> crate::batch::Traits {
    crate::batch::Traits {
        workload: a.workload,
        env: a.env,
        os: a.os,
        custom_vnet: a.custom_vnet,
        windows_licenses: a.windows_licenses,
        inter_node: a.inter_node,
        spot: a.spot,
        nodes: a.nodes,
        vm_size: a.vm_size.clone(),
        cores: a.cores,
        slots: a.slots,
        force: a.force,
    }
}

fn batch_command(c: &BatchCommand) -> u8 {
    let a = match c {
        BatchCommand::Plan(t) | BatchCommand::Render(crate::cli::BatchRender { traits: t, .. }) => t,
    };
    let plan = match crate::batch::advise(&batch_traits(a)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("terrafarm: refused: {e}");
            return EXIT_USAGE;
        }
    };
    let res = (|| -> Result<()> {
        match c {
            BatchCommand::Plan(_) if a.json => println!("{}", serde_json::to_string_pretty(&plan)?),
            BatchCommand::Plan(_) => {
                println!(
                    "{:?} mode, {} {} node(s) of {} ({} cores), {} slot(s) per node, inter-node communication {}",
                    plan.allocation_mode,
                    plan.nodes,
                    if plan.spot { "Spot" } else { "dedicated" },
                    plan.vm_size,
                    plan.cores,
                    plan.task_slots_per_node,
                    if plan.inter_node_communication { "on" } else { "off" }
                );
                for r in &plan.reasons {
                    println!("- {r}");
                }
            }
            BatchCommand::Render(r) => {
                let spec = crate::batch::RenderSpec {
                    pool_id: r.pool_id.clone(),
                    job_id: r.job_id.clone(),
                    inputs: r.inputs.clone(),
                    out: r.mesh_out.clone(),
                    mesh_args: r.mesh_args.clone(),
                    autoscale: r.autoscale,
                    storage_account: r.storage_account.clone(),
                    blob_auth: r.blob_auth,
                    identity_client_id: r.identity_client_id.clone(),
                };
                let store = LocalStore::new(&r.out_dir)?;
                let pretty = |v: &serde_json::Value| -> Result<Vec<u8>> { Ok([serde_json::to_vec_pretty(v)?, b"\n".to_vec()].concat()) };
                store.put("pool.json", &pretty(&crate::batch::pool(&plan, &spec)?)?)?;
                store.put("job.json", &pretty(&crate::batch::job(&plan, &spec)?)?)?;
                store.put("tasks.json", &pretty(&serde_json::Value::Array(crate::batch::tasks(&plan, &spec)?))?)?;
                info!("wrote pool.json, job.json, tasks.json to {}", r.out_dir.display());
            }
        }
        Ok(())
    })();
    match res {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("terrafarm: error: {e:#}");
            EXIT_FAIL
        }
    }
}

fn bench_command(a: &BenchArgs, comm: &dyn Comm) -> Result<()> {
    let errors = a
        .max_error
        .split(',')
        .map(|s| match s.trim() {
            "grid" | "none" => Ok(None),
            v => v.parse::<f32>().ok().filter(|e| e.is_finite() && *e >= 0.0).map(Some).ok_or_else(|| anyhow!("--max-error: '{v}' is not grid or metres ≥ 0")),
        })
        .collect::<Result<Vec<_>>>()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads: Vec<usize> = match &a.threads {
        Some(l) => l.split(',').map(|s| s.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| anyhow!("--threads: '{s}' is not a positive count"))).collect::<Result<_>>()?,
        None if cores > 1 => vec![1, cores],
        None => vec![1],
    };
    let t = Instant::now();
    let (w, h, data) = match &a.input {
        Some(p) => {
            let opts = raster::ReadOptions {
                encoding: a.encoding.parse().map_err(|e: String| anyhow!(e))?,
                size: a.input_size.as_deref().map(parse_size).transpose()?,
                max_samples: 1 << 32,
                nodata: None,
            };
            let r = raster::open(p, &opts)?;
            let (w, h) = (r.width(), r.height());
            let mut d = vec![0f32; w * h];
            r.read_window(crate::tiling::Rect::new(0, 0, w, h), &mut d)?;
            info!("decoded {} ({w}x{h}) in {:.3} s ({:.1} M samples/s)", p.display(), t.elapsed().as_secs_f64(), (w * h) as f64 / t.elapsed().as_secs_f64() / 1e6);
            (w, h, d)
        }
        None => {
            let (w, h) = parse_size(&a.size)?;
            (w, h, crate::synth::generate(w, h, a.seed, 1200.0))
        }
    };
    let input_decode_s = a.input.as_ref().map(|_| t.elapsed().as_secs_f64());
    let cfg = crate::bench::BenchConfig { width: w, height: h, tile: a.tile_size, errors, threads, repeat: a.repeat, obj: a.obj, input_decode_s };
    if comm.size() > 1 {
        // Under mpirun: each rank meshes its own tiles with its share of the node's cores (or --threads).
        let threads = a.threads.as_deref().and_then(|l| l.split(',').next_back()?.trim().parse().ok()).unwrap_or_else(|| comm.cores_per_rank()).max(1);
        if let Some(r) = crate::bench::run_distributed(comm, &cfg, &data, threads)? {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", crate::bench::dist_table(&r));
            }
        }
        return Ok(());
    }
    let report = crate::bench::run(&cfg, &data)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::bench::table(&report));
    }
    Ok(())
}

fn synth_command(a: &SynthArgs) -> Result<()> {
    let (w, h) = parse_size(&a.size)?;
    if w < 2 || h < 2 {
        bail!("--size {w}x{h}: need at least 2x2");
    }
    if !(a.relief.is_finite() && a.relief > 0.0) {
        bail!("--relief must be positive");
    }
    let ext = a.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let heights = crate::synth::generate(w, h, a.seed, a.relief);
    let bytes = match ext.as_str() {
        "png" => crate::synth::png_bytes(w, h, &heights)?,
        "f32" => crate::synth::f32_bytes(&heights),
        "npy" => raster::npy_bytes_f32(w, h, &heights),
        _ => bail!("{}: output must end in .png, .f32 or .npy", a.output.display()),
    };
    let dir = a.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = a.output.file_name().and_then(|n| n.to_str()).ok_or_else(|| anyhow!("{}: bad file name", a.output.display()))?;
    LocalStore::new(dir)?.put(name, &bytes)?;
    info!("wrote {} ({w}x{h}, seed {}, {} bytes)", a.output.display(), a.seed, bytes.len());
    Ok(())
}

/// A raster in memory cut into tiles with its halo exchanged (single process): the tile and halo stages, ready to
/// mesh. What `bench` and the tests drive.
pub struct InMemory {
    pub grid: Grid,
    blocks: Blocks,
    halo: Halo,
}

impl InMemory {
    pub fn new(data: &[f32], width: usize, height: usize, tile: usize) -> Result<InMemory> {
        let grid = Grid::new(width, height, tile).ok_or_else(|| anyhow!("raster {width}x{height} with tile {tile} cannot be meshed"))?;
        if data.len() != width * height {
            bail!("raster data has {} samples, expected {width}x{height}", data.len());
        }
        let owners = tiling::assign_owners(&grid, 1);
        let blocks: Blocks = grid
            .tiles()
            .map(|t| {
                let r = grid.owned_rect(t);
                let b: Vec<f32> = (r.y0..r.y1).flat_map(|y| data[y * width + r.x0..y * width + r.x1].iter().copied()).collect();
                (grid.index(t), b)
            })
            .collect();
        let halo = halo::exchange(&grid, &owners, &crate::comm::single::Single, &blocks)?;
        Ok(InMemory { grid, blocks, halo })
    }

    /// Meshes every tile in parallel on the current rayon pool; row-major tile order.
    /// Full-resolution GLB bytes of every tile through the fused grid writer, each thread reusing one output
    /// buffer (as the pipeline does before handing the bytes to the store); returns the total bytes. Tiles with
    /// holes fall back to mesh + encode.
    pub fn grid_glb_bytes(&self, params: &Params, kernel: mesh::grid::Kernel) -> usize {
        let tiles: Vec<TileId> = self.grid.tiles().collect();
        tiles.par_iter().map_init(<TileScratch>::default, |sc, &t| self.grid_glb_tile(t, params, kernel, sc)).sum()
    }

    /// As [`Self::grid_glb_bytes`], but every tile gets its own fresh buffer and all are kept: the whole output
    /// resident in memory at once (first-touch page faults included).
    pub fn grid_glb_tiles(&self, params: &Params, kernel: mesh::grid::Kernel) -> Vec<Vec<u8>> {
        let tiles: Vec<TileId> = self.grid.tiles().collect();
        tiles
            .par_iter()
            .map_init(<TileScratch>::default, |sc, &t| {
                self.grid_glb_tile(t, params, kernel, sc);
                std::mem::take(&mut sc.2)
            })
            .collect()
    }

    /// Tile `t` with its halo, assembled into `buf`.
    fn window<'a>(&self, t: TileId, buf: &'a mut Vec<f32>) -> Window<'a> {
        self.halo.window(&self.grid, t, &self.blocks, buf);
        Window { data: buf, rect: self.grid.halo_rect(t), tile: self.grid.tile_rect(t) }
    }

    /// Normals only, every hole-free tile (the normal kernel alone); returns how many were computed.
    pub fn grid_normals(&self, params: &Params, kernel: mesh::grid::Kernel) -> usize {
        let tiles: Vec<TileId> = self.grid.tiles().collect();
        tiles
            .par_iter()
            .map_init(<(Vec<f32>, Vec<[f32; 3]>)>::default, |(window, out), &t| {
                let win = self.window(t, window);
                mesh::grid::normals(&win, params, kernel, out);
                out.len()
            })
            .sum()
    }

    fn grid_glb_tile(&self, t: TileId, params: &Params, kernel: mesh::grid::Kernel, (window, scratch, out): &mut TileScratch) -> usize {
        let win = self.window(t, window);
        let extras = json!({});
        if grid_glb_into(&win, params, &extras, out, kernel).is_none() {
            *out = encode::glb::encode(&mesh::mesh_tile(&win, params, &Method::Grid, None, scratch), &extras);
        }
        out.len()
    }

    pub fn mesh(&self, params: &Params, method: &Method) -> Vec<(TileId, mesh::Mesh)> {
        let tiles: Vec<TileId> = self.grid.tiles().collect();
        tiles
            .par_iter()
            .map_init(<(Vec<f32>, simplify::Scratch)>::default, |(window, scratch), &t| {
                let win = self.window(t, window);
                (t, mesh::mesh_tile(&win, params, method, None, scratch))
            })
            .collect()
    }
}

/// read → tile → halo → mesh on a raster already in memory, single process.
pub fn mesh_in_memory(data: &[f32], width: usize, height: usize, tile: usize, params: &Params, method: &Method) -> Result<Vec<(TileId, mesh::Mesh)>> {
    Ok(InMemory::new(data, width, height, tile)?.mesh(params, method))
}
