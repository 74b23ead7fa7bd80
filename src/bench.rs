//! `terrafarm bench`: the real pipeline stages, in memory, on deterministic synthetic terrain or a given input.
//! Every stage is repeated and the best time kept (codecbench style). Bounds measured in the same run make numbers
//! from noisy machines comparable: a memset (zero fill), a fill with a non-zero byte and a memcpy of as many bytes
//! as the GLB output — zero fills are special-cased on some machines (tenfold faster), so the non-zero fill is the
//! stable in-memory yardstick — and, end to end, the whole scene written to a RAM disk through `mesh`'s pipeline
//! against one plain sequential write of the same bytes to the same place. Uses the pipeline's stages; writes only
//! to its own temporary folder on the RAM disk, removed afterwards.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;

use crate::comm::Comm;
use crate::encode;
use crate::mesh::grid::Kernel;
use crate::mesh::simplify::SimplifyParams;
use crate::mesh::{Method, Params};
use crate::pipeline::InMemory;

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub width: usize,
    pub height: usize,
    pub tile: usize,
    /// `None` = full-resolution grid.
    pub errors: Vec<Option<f32>>,
    pub threads: Vec<usize>,
    pub repeat: usize,
    pub obj: bool,
    /// Seconds the `--input` file took to open and decode (one thread, measured once).
    pub input_decode_s: Option<f64>,
    /// Also run the end-to-end row (the scene written to a RAM disk against a plain write).
    pub end_to_end: bool,
    /// Mesh whole tiles even where `mesh` would split them into pieces (the kernel alone on one tile).
    pub whole_tiles: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct StageRow {
    pub stage: String,
    pub threads: usize,
    pub max_error: Option<f32>,
    pub seconds: f64,
    pub samples_per_s: f64,
    pub triangles_per_s: f64,
    /// Output bytes per second where the stage produces bytes.
    pub mb_per_s: Option<f64>,
    /// Seconds as a multiple of a memset (zero fill) of the stage's bound bytes, measured in this run.
    pub x_memset: f64,
    /// ... of a fill of the same bytes with a non-zero value (the stable yardstick).
    pub x_fill: f64,
    /// ... of a memcpy of the same bytes.
    pub x_memcpy: f64,
}

/// The whole `mesh` pipeline writing the scene (GLB) to a RAM disk, against one plain write of the same bytes.
#[derive(Clone, Debug, Serialize)]
pub struct EndToEnd {
    pub threads: usize,
    pub max_error: Option<f32>,
    /// Where it wrote (a RAM disk where the system has one).
    pub dir: String,
    pub files: usize,
    pub bytes: u64,
    /// `mesh` of the scene: open, hash, read, halo, mesh, encode, write files and manifest.
    pub seconds: f64,
    /// One sequential write of all those bytes to one file in the same folder.
    pub write_s: f64,
    pub x_write: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub width: usize,
    pub height: usize,
    pub tile: usize,
    pub cores: usize,
    pub rows: Vec<StageRow>,
    /// Output size and the memset/fill/memcpy bounds, per (threads, max_error) configuration.
    pub bounds: Vec<Bound>,
    pub end_to_end: Vec<EndToEnd>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Bound {
    pub threads: usize,
    pub max_error: Option<f32>,
    pub triangles: usize,
    pub vertices: usize,
    /// Largest per-tile vertical error the kernel reports (0 for the grid).
    pub max_error_achieved: f32,
    pub glb_bytes: usize,
    pub memset_s: f64,
    pub fill_s: f64,
    pub memcpy_s: f64,
}

/// The method a bench row meshes with: the full grid (`None`) or simplification to `e`, as `mesh` runs it on this
/// grid (pieces in parallel when it has few tiles) unless `--whole-tiles`.
fn method_for(cfg: &BenchConfig, e: Option<f32>, grid: &crate::tiling::Grid) -> Method {
    let method = match e {
        None => Method::Grid,
        Some(max_error) => Method::Simplify(SimplifyParams { max_error, max_triangles: None, split: crate::mesh::simplify::Split::Whole, curvature: 0.0 }),
    };
    if cfg.whole_tiles {
        method
    } else {
        crate::pipeline::with_split(method, grid)
    }
}

/// Best-of-`repeat` seconds of a zero fill, a non-zero fill and a copy of `bytes` bytes over `threads` threads
/// (on the current pool), into memory touched beforehand.
fn memory_bounds(repeat: usize, threads: usize, bytes: usize) -> (f64, f64, f64) {
    let bytes = bytes.max(1);
    let chunk = bytes.div_ceil(threads).max(1);
    let mut buf = vec![1u8; bytes];
    let src = vec![7u8; bytes];
    let (memset_s, _) = best(repeat, || buf.par_chunks_mut(chunk).for_each(|c| c.fill(black_box(0))));
    let (fill_s, _) = best(repeat, || buf.par_chunks_mut(chunk).for_each(|c| c.fill(black_box(0x5A))));
    let (memcpy_s, _) = best(repeat, || buf.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| d.copy_from_slice(s)));
    (memset_s, fill_s, memcpy_s)
}

fn best<T>(repeat: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let v = black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.expect("repeat ≥ 1"))
}

/// Runs every configuration on `data` (width × height heights).
pub fn run(cfg: &BenchConfig, data: &[f32]) -> Result<BenchReport> {
    let samples = (cfg.width * cfg.height) as f64;
    let params = Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [cfg.width, cfg.height], tile: cfg.tile };
    let mut rows = Vec::new();
    let mut bounds = Vec::new();
    let mut end_to_end = Vec::new();
    // Decode: the synthetic heights as terrain-RGB pixels (built once, untimed), decoded by the kernel `mesh` uses.
    let px: Vec<u8> = data
        .iter()
        .flat_map(|&h| {
            let v = ((h as f64 + 10000.0) * 10.0).round().clamp(0.0, 16_777_215.0) as u32;
            [(v >> 16) as u8, (v >> 8) as u8, v as u8, 255]
        })
        .collect();
    let mut decoded = vec![0f32; data.len()];
    if let Some(s) = cfg.input_decode_s {
        let (ms, fs, cs) = memory_bounds(cfg.repeat, 1, data.len() * 4);
        rows.push(StageRow {
            stage: "decode (--input file, open + decode)".into(),
            threads: 1,
            max_error: None,
            seconds: s,
            samples_per_s: samples / s,
            triangles_per_s: 0.0,
            mb_per_s: None,
            x_memset: s / ms,
            x_fill: s / fs,
            x_memcpy: s / cs,
        });
    }
    for &threads in &cfg.threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        pool.install(|| -> Result<()> {
            // Decode rows are reported against the bounds for the decoded f32 bytes.
            let (dms, dfs, dcs) = memory_bounds(cfg.repeat, threads, decoded.len() * 4);
            let rows_per = (cfg.width * cfg.height.div_ceil(threads * 8)).max(cfg.width);
            for (name, f) in [
                ("decode terrain-rgb (in memory), simd", crate::raster::decode_terrain_rgb as fn(&[u8], usize, &mut [f32])),
                ("decode terrain-rgb (in memory), scalar", crate::raster::decode_terrain_rgb_scalar),
            ] {
                let (s, _) = best(cfg.repeat, || decoded.par_chunks_mut(rows_per).zip(px.par_chunks(rows_per * 4)).for_each(|(o, p)| f(p, 4, o)));
                rows.push(StageRow {
                    stage: name.into(),
                    threads,
                    max_error: None,
                    seconds: s,
                    samples_per_s: samples / s,
                    triangles_per_s: 0.0,
                    mb_per_s: Some(decoded.len() as f64 * 4.0 / s / 1e6),
                    x_memset: s / dms,
                    x_fill: s / dfs,
                    x_memcpy: s / dcs,
                });
            }
            let (halo_s, mem) = best(cfg.repeat, || InMemory::new(data, cfg.width, cfg.height, cfg.tile));
            let mem = mem?;
            for &e in &cfg.errors {
                let method = method_for(cfg, e, &mem.grid);
                let (mesh_s, tiles) = best(cfg.repeat, || mem.mesh(&params, &method));
                let tris: usize = tiles.iter().map(|(_, m)| m.triangles()).sum();
                let verts: usize = tiles.iter().map(|(_, m)| m.vertices()).sum();
                let extras = serde_json::json!({});
                let (glb_s, glb_bytes) = best(cfg.repeat, || tiles.par_iter().map(|(_, m)| encode::glb::encode(m, &extras).len()).sum::<usize>());
                // The bounds: zero fill, non-zero fill and memcpy of the GLB's byte count, over the same threads.
                let (memset_s, fill_s, memcpy_s) = memory_bounds(cfg.repeat, threads, glb_bytes);
                let achieved = tiles.iter().map(|(_, m)| m.max_error).fold(0.0f32, f32::max);
                bounds.push(Bound {
                    threads,
                    max_error: e,
                    triangles: tris,
                    vertices: verts,
                    max_error_achieved: achieved,
                    glb_bytes,
                    memset_s,
                    fill_s,
                    memcpy_s,
                });
                let row = |stage: &str, s: f64, bytes: Option<usize>| StageRow {
                    stage: stage.into(),
                    threads,
                    max_error: e,
                    seconds: s,
                    samples_per_s: samples / s,
                    triangles_per_s: tris as f64 / s,
                    mb_per_s: bytes.map(|b| b as f64 / s / 1e6),
                    x_memset: s / memset_s,
                    x_fill: s / fill_s,
                    x_memcpy: s / memcpy_s,
                };
                rows.push(row("halo", halo_s, None));
                rows.push(row("mesh", mesh_s, None));
                if e.is_none() {
                    for (name, kernel) in [("normals only, scalar", Kernel::Scalar), ("normals only, simd", Kernel::Auto)] {
                        let (s, n) = best(cfg.repeat, || mem.grid_normals(&params, kernel));
                        anyhow::ensure!(n == verts, "normals for {n} of {verts} vertices");
                        rows.push(row(name, s, None));
                    }
                }
                rows.push(row("glb-encode", glb_s, Some(glb_bytes)));
                if cfg.obj {
                    let (obj_s, obj_bytes) = best(cfg.repeat, || tiles.par_iter().map(|(_, m)| encode::obj::encode(m, params.cell, "").len()).sum::<usize>());
                    rows.push(row("obj-encode", obj_s, Some(obj_bytes)));
                }
                rows.push(row("mesh+glb (end to end in memory)", halo_s + mesh_s + glb_s, Some(glb_bytes)));
                if e.is_none() {
                    // The fused writer: grid kernel straight into each thread's reused GLB buffer (what `mesh`
                    // runs for --format glb), scalar twin and run-time-dispatched SIMD.
                    for (name, kernel) in [("grid->glb fused, scalar", Kernel::Scalar), ("grid->glb fused, simd", Kernel::Auto)] {
                        let (s, bytes) = best(cfg.repeat, || mem.grid_glb_bytes(&params, kernel));
                        anyhow::ensure!(bytes == glb_bytes, "fused GLB bytes {bytes} != mesh+encode {glb_bytes}");
                        rows.push(row(name, s, Some(bytes)));
                    }
                    let (s, kept) = best(cfg.repeat, || mem.grid_glb_tiles(&params, Kernel::Auto));
                    let bytes: usize = kept.iter().map(Vec::len).sum();
                    drop(kept);
                    anyhow::ensure!(bytes == glb_bytes, "fused GLB bytes {bytes} != mesh+encode {glb_bytes}");
                    rows.push(row("grid->glb fused, simd, all tiles kept", s, Some(bytes)));
                }
                if cfg.end_to_end {
                    end_to_end.push(scene_to_ram_disk(cfg, data, threads, e)?);
                }
            }
            Ok(())
        })?;
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    Ok(BenchReport { width: cfg.width, height: cfg.height, tile: cfg.tile, cores, rows, bounds, end_to_end })
}

/// A folder for the end-to-end row: on the RAM disk (`/dev/shm`) where there is one, so the row measures
/// terrafarm and the page cache, not a disk.
fn scratch_dir() -> std::path::PathBuf {
    let base = std::path::Path::new("/dev/shm");
    let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
    base.join(format!("terrafarm-bench-{}", std::process::id()))
}

/// The `mesh` pipeline (GLB only, on the current rayon pool) writing the scene to the RAM disk, best of `repeat`,
/// against one sequential write of the same bytes (every file of the scene, concatenated) to one file there.
fn scene_to_ram_disk(cfg: &BenchConfig, data: &[f32], threads: usize, e: Option<f32>) -> Result<EndToEnd> {
    use clap::Parser;
    use std::io::Write;
    let dir = scratch_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let res = (|| -> Result<EndToEnd> {
        let input = dir.join("bench.f32");
        std::fs::write(&input, crate::synth::f32_bytes(data))?;
        let out = dir.join("out");
        let size = format!("{}x{}", cfg.width, cfg.height);
        let tile = cfg.tile.to_string();
        let err = e.map(|e| e.to_string());
        let mut args = vec![
            "terrafarm",
            "mesh",
            input.to_str().unwrap_or_default(),
            "--out",
            out.to_str().unwrap_or_default(),
            "--size",
            &size,
            "--tile-size",
            &tile,
            "--format",
            "glb",
        ];
        if let Some(err) = &err {
            args.extend(["--max-error", err.as_str()]);
        }
        let crate::cli::Command::Mesh(m) = crate::cli::Cli::try_parse_from(args)?.command else { anyhow::bail!("bench: not a mesh command") };
        let mcfg = crate::config::MeshConfig::from_args(m)?;
        let store = crate::store::LocalStore::new(&out)?;
        let single = crate::comm::single::Single;
        let (seconds, summary) =
            best(cfg.repeat, || crate::pipeline::mesh_scene(&mcfg, crate::pipeline::open_input(&input, &mcfg.blob), &input, "bench", &single, &store, threads));
        summary?;
        let mut files = Vec::new();
        let mut stack = vec![out.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let p = entry?.path();
                if p.is_dir() {
                    stack.push(p)
                } else {
                    files.push(p)
                }
            }
        }
        let mut all = Vec::new();
        for f in &files {
            all.extend_from_slice(&std::fs::read(f)?);
        }
        let plain = dir.join("plain.bin");
        let (write_s, res) = best(cfg.repeat, || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&plain)?;
            f.write_all(&all)?;
            f.flush()
        });
        res?;
        Ok(EndToEnd {
            threads,
            max_error: e,
            dir: dir.display().to_string(),
            files: files.len(),
            bytes: all.len() as u64,
            seconds,
            write_s,
            x_write: seconds / write_s,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    res
}

/// `terrafarm bench`: flags → configuration (bad flags are [`ConfigError`](crate::config::ConfigError)s, exit 2),
/// the input (any input `mesh` reads, local or on blob storage, opened through the pipeline's open stage and
/// agreed on under MPI) or synthetic terrain, then the single-process or the distributed report.
pub fn command(a: &crate::cli::BenchArgs, comm: &dyn Comm) -> Result<()> {
    use crate::config::{parse_size, ConfigError};
    let usage = |m: String| anyhow::Error::from(ConfigError(m));
    let errors = a
        .max_error
        .split(',')
        .map(|s| match s.trim() {
            "grid" | "none" => Ok(None),
            v => v
                .parse::<f32>()
                .ok()
                .filter(|e| e.is_finite() && *e >= 0.0)
                .map(Some)
                .ok_or_else(|| usage(format!("--max-error: '{v}' is not grid or metres ≥ 0"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads: Vec<usize> = match &a.threads {
        Some(l) => l
            .split(',')
            .map(|s| s.trim().parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| usage(format!("--threads: '{s}' is not a positive count"))))
            .collect::<Result<_>>()?,
        None if cores > 1 => vec![1, cores],
        None => vec![1],
    };
    if a.tile_size < 2 {
        return Err(usage(format!("--tile-size {} must be at least 2", a.tile_size)));
    }
    let encoding: crate::raster::Encoding = a.encoding.parse().map_err(|e: String| usage(e))?;
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let (sw, sh) = parse_size(&a.synth_size)?;
    let t = Instant::now();
    let (w, h, data) = match &a.input {
        Some(p) => {
            let opts = crate::raster::ReadOptions { encoding, size, max_samples: 1 << 32, nodata: None };
            // The pipeline's open stage: every rank opens (or waits for rank 0) and all agree before going on.
            let opened = crate::pipeline::open(&crate::comm::single::Single, crate::pipeline::open_input(p, &crate::store::BlobOptions::default()), &opts, p);
            let opened = crate::comm::agree(comm, opened)?;
            let r = opened.raster.ok_or_else(|| anyhow::anyhow!("{}: not opened", p.display()))?;
            let (w, h) = (r.width(), r.height());
            let mut d = vec![0f32; w * h];
            let read = r.read_window(crate::tiling::Rect::new(0, 0, w, h), &mut d);
            crate::comm::agree(comm, read.map_err(anyhow::Error::from))?;
            tracing::info!(
                "decoded {} ({w}x{h}) in {:.3} s ({:.1} M samples/s)",
                opened.shown.display(),
                t.elapsed().as_secs_f64(),
                (w * h) as f64 / t.elapsed().as_secs_f64() / 1e6
            );
            (w, h, d)
        }
        None => (sw, sh, crate::synth::generate(sw, sh, a.seed, 1200.0)),
    };
    let input_decode_s = a.input.as_ref().map(|_| t.elapsed().as_secs_f64());
    if a.decode_only {
        let s = input_decode_s.unwrap_or_default();
        if comm.rank() == 0 {
            let doc = serde_json::json!({ "width": w, "height": h, "decode_s": s, "samples_per_s": (w * h) as f64 / s.max(1e-12) });
            println!(
                "{}",
                if a.json {
                    serde_json::to_string_pretty(&doc)?
                } else {
                    format!("decoded {w}x{h} in {s:.4} s ({:.1} M samples/s)", (w * h) as f64 / s.max(1e-12) / 1e6)
                }
            );
        }
        return Ok(());
    }
    let cfg = BenchConfig {
        width: w,
        height: h,
        tile: a.tile_size,
        errors,
        threads,
        repeat: a.repeat,
        obj: a.obj,
        input_decode_s,
        end_to_end: !a.no_end_to_end,
        whole_tiles: a.whole_tiles,
    };
    if comm.size() > 1 {
        // Under mpirun: each rank meshes its own tiles with its share of the node's cores (or --threads).
        let threads = a.threads.as_deref().and_then(|l| l.split(',').next_back()?.trim().parse().ok()).unwrap_or_else(|| comm.cores_per_rank()).max(1);
        if let Some(r) = run_distributed(comm, &cfg, &data, threads)? {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", dist_table(&r));
            }
        }
        return Ok(());
    }
    let report = run(&cfg, &data)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// A plain-text table of the report.
pub fn table(r: &BenchReport) -> String {
    let mut s = format!("terrafarm bench: {}x{} samples, tile {}, {} cores\n", r.width, r.height, r.tile, r.cores);
    s += &format!(
        "{:<40} {:>3} {:>9} {:>9} {:>10} {:>11} {:>9} {:>9} {:>7} {:>8}\n",
        "stage", "thr", "max_err", "seconds", "Msamp/s", "Mtri/s", "MB/s", "x memset", "x fill", "x memcpy"
    );
    for row in &r.rows {
        s += &format!(
            "{:<40} {:>3} {:>9} {:>9.4} {:>10.1} {:>11.2} {:>9} {:>9.2} {:>7.2} {:>8.2}\n",
            row.stage,
            row.threads,
            if row.stage.starts_with("decode") { "-".to_string() } else { row.max_error.map_or("grid".to_string(), |e| format!("{e}")) },
            row.seconds,
            row.samples_per_s / 1e6,
            row.triangles_per_s / 1e6,
            row.mb_per_s.map_or("-".to_string(), |m| format!("{m:.0}")),
            row.x_memset,
            row.x_fill,
            row.x_memcpy
        );
    }
    for b in &r.bounds {
        s += &format!(
            "bound: {} thr, max_err {}: {} triangles, {} vertices, GLB {:.1} MB; memset {:.4} s ({:.1} GB/s), fill {:.4} s ({:.1} GB/s), memcpy {:.4} s\n",
            b.threads,
            b.max_error.map_or("grid".to_string(), |e| format!("{e}")),
            b.triangles,
            b.vertices,
            b.glb_bytes as f64 / 1e6,
            b.memset_s,
            b.glb_bytes as f64 / b.memset_s / 1e9,
            b.fill_s,
            b.glb_bytes as f64 / b.fill_s / 1e9,
            b.memcpy_s
        );
    }
    for x in &r.end_to_end {
        s += &format!(
            "end to end: {} thr, max_err {}: mesh wrote {} files, {:.1} MB to {} in {:.4} s; one plain write of the same bytes {:.4} s; x write {:.2}\n",
            x.threads,
            x.max_error.map_or("grid".to_string(), |e| format!("{e}")),
            x.files,
            x.bytes as f64 / 1e6,
            x.dir,
            x.seconds,
            x.write_s,
            x.x_write
        );
    }
    s
}

/// One rank's timings for one configuration of the distributed bench.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RankRow {
    pub rank: usize,
    pub host: String,
    pub threads: usize,
    pub max_error: Option<f32>,
    pub tiles: usize,
    /// Samples this rank owns (each sample counted once over all ranks).
    pub samples: usize,
    pub triangles: usize,
    pub glb_bytes: usize,
    pub halo_bytes_sent: usize,
    pub halo_s: f64,
    pub mesh_s: f64,
    pub glb_s: f64,
    /// This rank's own time for halo + mesh + GLB.
    pub busy_s: f64,
    /// From the barrier before the halo to the barrier after the GLB encode: the job's time for this config.
    pub wall_s: f64,
}

/// Per node: what its ranks together mesh per second of job wall time.
#[derive(Clone, Debug, Serialize)]
pub struct NodeRow {
    pub host: String,
    pub max_error: Option<f32>,
    pub ranks: usize,
    pub samples_per_s: f64,
    pub triangles_per_s: f64,
    pub glb_mb_per_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DistReport {
    pub width: usize,
    pub height: usize,
    pub tile: usize,
    pub ranks: usize,
    pub per_rank: Vec<RankRow>,
    pub per_node: Vec<NodeRow>,
    /// Per configuration: the slowest rank's halo time over the job's wall time.
    pub halo_share: Vec<(Option<f32>, f64)>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node".into())
}

/// The bench under `mpirun`: every rank builds the same raster, keeps its own tiles (the real sharding), and runs
/// halo (one all-to-all through the real communicator) → mesh → GLB with `threads` threads, between barriers.
/// Rank 0 gathers every rank's timings and returns the report (others return `None`).
pub fn run_distributed(comm: &dyn Comm, cfg: &BenchConfig, data: &[f32], threads: usize) -> Result<Option<DistReport>> {
    let err = |e: crate::comm::CommError| anyhow::anyhow!(e);
    // The pipeline's in-memory tile and halo stages, sharded over the ranks as `mesh` shards them.
    let mut mem = crate::comm::agree(comm, InMemory::new_on(comm, data, cfg.width, cfg.height, cfg.tile))?;
    let me = comm.rank();
    let samples = mem.owned_samples();
    let params = Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [cfg.width, cfg.height], tile: cfg.tile };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let host = host_name();
    let mut rows = Vec::new();
    for &e in &cfg.errors {
        let method = method_for(cfg, e, &mem.grid);
        let mut best_row: Option<RankRow> = None;
        for _ in 0..cfg.repeat.max(1) {
            comm.all_ok(true).map_err(err)?; // barrier
            let t_all = Instant::now();
            let t = Instant::now();
            mem.exchange(comm)?;
            let halo_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let meshes = pool.install(|| mem.mesh(&params, &method));
            let mesh_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let extras = serde_json::json!({});
            let glb_bytes: usize =
                pool.install(|| meshes.par_iter().filter(|(_, m)| m.triangles() > 0).map(|(_, m)| encode::glb::encode(m, &extras).len()).sum());
            let glb_s = t.elapsed().as_secs_f64();
            let busy_s = t_all.elapsed().as_secs_f64();
            comm.all_ok(true).map_err(err)?; // barrier: the job is as slow as its slowest rank
            let wall_s = t_all.elapsed().as_secs_f64();
            let row = RankRow {
                rank: me,
                host: host.clone(),
                threads,
                max_error: e,
                tiles: mem.mine.len(),
                samples,
                triangles: meshes.iter().map(|(_, m)| m.triangles()).sum(),
                glb_bytes,
                halo_bytes_sent: mem.halo_bytes_sent(),
                halo_s,
                mesh_s,
                glb_s,
                busy_s,
                wall_s,
            };
            if best_row.as_ref().is_none_or(|b| row.wall_s < b.wall_s) {
                best_row = Some(row);
            }
        }
        rows.extend(best_row);
    }
    let gathered = comm.gather_bytes(&serde_json::to_vec(&rows)?).map_err(err)?;
    let Some(parts) = gathered else { return Ok(None) };
    let mut per_rank: Vec<RankRow> = Vec::new();
    for p in parts {
        per_rank.extend(serde_json::from_slice::<Vec<RankRow>>(&p)?);
    }
    let mut per_node = Vec::new();
    let mut halo_share = Vec::new();
    for &e in &cfg.errors {
        let cfg_rows: Vec<&RankRow> = per_rank.iter().filter(|r| r.max_error == e).collect();
        let wall = cfg_rows.iter().map(|r| r.wall_s).fold(0.0, f64::max).max(1e-12);
        let halo = cfg_rows.iter().map(|r| r.halo_s).fold(0.0, f64::max);
        halo_share.push((e, halo / wall));
        let mut hosts: Vec<&str> = cfg_rows.iter().map(|r| r.host.as_str()).collect();
        hosts.sort();
        hosts.dedup();
        for h in hosts {
            let on: Vec<&&RankRow> = cfg_rows.iter().filter(|r| r.host == h).collect();
            per_node.push(NodeRow {
                host: h.to_string(),
                max_error: e,
                ranks: on.len(),
                samples_per_s: on.iter().map(|r| r.samples).sum::<usize>() as f64 / wall,
                triangles_per_s: on.iter().map(|r| r.triangles).sum::<usize>() as f64 / wall,
                glb_mb_per_s: on.iter().map(|r| r.glb_bytes).sum::<usize>() as f64 / wall / 1e6,
            });
        }
    }
    per_rank.sort_by(|a, b| (a.max_error.map(f32::to_bits), a.rank).cmp(&(b.max_error.map(f32::to_bits), b.rank)));
    Ok(Some(DistReport { width: cfg.width, height: cfg.height, tile: cfg.tile, ranks: comm.size(), per_rank, per_node, halo_share }))
}

/// A plain-text table of the distributed report.
pub fn dist_table(r: &DistReport) -> String {
    let err = |e: Option<f32>| e.map_or("grid".to_string(), |e| format!("{e}"));
    let mut s = format!("terrafarm bench: {}x{} samples, tile {}, {} ranks\n", r.width, r.height, r.tile, r.ranks);
    s += &format!(
        "{:>4} {:<16} {:>3} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}\n",
        "rank", "host", "thr", "max_err", "tiles", "halo s", "mesh s", "glb s", "busy s", "wall s", "halo B sent"
    );
    for x in &r.per_rank {
        s += &format!(
            "{:>4} {:<16} {:>3} {:>8} {:>6} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>12}\n",
            x.rank,
            x.host,
            x.threads,
            err(x.max_error),
            x.tiles,
            x.halo_s,
            x.mesh_s,
            x.glb_s,
            x.busy_s,
            x.wall_s,
            x.halo_bytes_sent
        );
    }
    for n in &r.per_node {
        s += &format!(
            "node {} (max_err {}, {} ranks): {:.1} M samples/s, {:.2} M triangles/s, {:.0} MB/s GLB\n",
            n.host,
            err(n.max_error),
            n.ranks,
            n.samples_per_s / 1e6,
            n.triangles_per_s / 1e6,
            n.glb_mb_per_s
        );
    }
    for (e, share) in &r.halo_share {
        s += &format!("halo share (max_err {}): {:.3}% of the job's wall time\n", err(*e), share * 100.0);
    }
    s
}
