//! `terrafarm bench`: the real pipeline stages, in memory, on deterministic synthetic terrain or a given input.
//! Every stage is repeated and the best time kept (codecbench style); in the same run a memset and a memcpy of as
//! many bytes as the GLB output give a machine bound, and each stage is reported as a multiple of it, so numbers
//! from noisy machines stay comparable. Orchestrates like `app`; measures, writes nothing.

use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;

use crate::app::InMemory;
use crate::encode;
use crate::mesh::grid::Kernel;
use crate::mesh::simplify::SimplifyParams;
use crate::mesh::{Method, Params};

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
    /// Seconds as a multiple of a memset of the GLB's byte count, measured in this run.
    pub x_memset: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub width: usize,
    pub height: usize,
    pub tile: usize,
    pub cores: usize,
    pub rows: Vec<StageRow>,
    /// Output size and the memset/memcpy bound, per (threads, max_error) configuration.
    pub bounds: Vec<Bound>,
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
    pub memcpy_s: f64,
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
    let params = Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [cfg.width, cfg.height] };
    let mut rows = Vec::new();
    let mut bounds = Vec::new();
    // Decode: the synthetic heights as terrain-RGB pixels (built once, untimed), decoded by the kernel `mesh` uses.
    let px: Vec<u8> = data
        .iter()
        .flat_map(|&h| {
            let v = ((h as f64 + 10000.0) * 10.0).round().clamp(0.0, 16_777_215.0) as u32;
            [(v >> 16) as u8, (v >> 8) as u8, v as u8, 255]
        })
        .collect();
    let mut decoded = vec![0f32; data.len()];
    let memset_for = |threads: usize, bytes: usize| -> f64 {
        let mut buf = vec![1u8; bytes];
        let chunk = bytes.div_ceil(threads).max(1);
        best(cfg.repeat, || buf.par_chunks_mut(chunk).for_each(|c| c.fill(black_box(0)))).0
    };
    if let Some(s) = cfg.input_decode_s {
        rows.push(StageRow {
            stage: "decode (--input file, open + decode)".into(),
            threads: 1,
            max_error: None,
            seconds: s,
            samples_per_s: samples / s,
            triangles_per_s: 0.0,
            mb_per_s: None,
            x_memset: s / memset_for(1, data.len() * 4),
        });
    }
    for &threads in &cfg.threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        pool.install(|| -> Result<()> {
            // Decode rows are reported against a memset of the decoded f32 bytes.
            let dec_memset = memset_for(threads, decoded.len() * 4);
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
                    x_memset: s / dec_memset,
                });
            }
            let (halo_s, mem) = best(cfg.repeat, || InMemory::new(data, cfg.width, cfg.height, cfg.tile));
            let mem = mem?;
            for &e in &cfg.errors {
                let method = match e {
                    None => Method::Grid,
                    Some(max_error) => Method::Simplify(SimplifyParams { max_error, max_triangles: None }),
                };
                let (mesh_s, tiles) = best(cfg.repeat, || mem.mesh(&params, &method));
                let tris: usize = tiles.iter().map(|(_, m)| m.triangles()).sum();
                let verts: usize = tiles.iter().map(|(_, m)| m.vertices()).sum();
                let extras = serde_json::json!({});
                let (glb_s, glb_bytes) = best(cfg.repeat, || tiles.par_iter().map(|(_, m)| encode::glb::encode(m, &extras).len()).sum::<usize>());
                // The bound: memset and memcpy of the GLB's byte count, split over the same threads.
                let chunk = glb_bytes.div_ceil(threads).max(1);
                let mut buf = vec![1u8; glb_bytes];
                let (memset_s, _) = best(cfg.repeat, || buf.par_chunks_mut(chunk).for_each(|c| c.fill(black_box(0))));
                let src = vec![7u8; glb_bytes];
                let (memcpy_s, _) = best(cfg.repeat, || buf.par_chunks_mut(chunk).zip(src.par_chunks(chunk)).for_each(|(d, s)| d.copy_from_slice(s)));
                let achieved = tiles.iter().map(|(_, m)| m.max_error).fold(0.0f32, f32::max);
                bounds.push(Bound { threads, max_error: e, triangles: tris, vertices: verts, max_error_achieved: achieved, glb_bytes, memset_s, memcpy_s });
                let row = |stage: &str, s: f64, bytes: Option<usize>| StageRow {
                    stage: stage.into(),
                    threads,
                    max_error: e,
                    seconds: s,
                    samples_per_s: samples / s,
                    triangles_per_s: tris as f64 / s,
                    mb_per_s: bytes.map(|b| b as f64 / s / 1e6),
                    x_memset: s / memset_s,
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
            }
            Ok(())
        })?;
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    Ok(BenchReport { width: cfg.width, height: cfg.height, tile: cfg.tile, cores, rows, bounds })
}

/// A plain-text table of the report.
pub fn table(r: &BenchReport) -> String {
    let mut s = format!("terrafarm bench: {}x{} samples, tile {}, {} cores\n", r.width, r.height, r.tile, r.cores);
    s += &format!("{:<40} {:>3} {:>9} {:>9} {:>10} {:>11} {:>9} {:>9}\n", "stage", "thr", "max_err", "seconds", "Msamp/s", "Mtri/s", "MB/s", "x memset");
    for row in &r.rows {
        s += &format!(
            "{:<40} {:>3} {:>9} {:>9.4} {:>10.1} {:>11.2} {:>9} {:>9.2}\n",
            row.stage,
            row.threads,
            if row.stage.starts_with("decode") { "-".to_string() } else { row.max_error.map_or("grid".to_string(), |e| format!("{e}")) },
            row.seconds,
            row.samples_per_s / 1e6,
            row.triangles_per_s / 1e6,
            row.mb_per_s.map_or("-".to_string(), |m| format!("{m:.0}")),
            row.x_memset
        );
    }
    for b in &r.bounds {
        s += &format!(
            "bound: {} thr, max_err {}: {} triangles, {} vertices, GLB {:.1} MB; memset {:.4} s ({:.1} GB/s), memcpy {:.4} s\n",
            b.threads,
            b.max_error.map_or("grid".to_string(), |e| format!("{e}")),
            b.triangles,
            b.vertices,
            b.glb_bytes as f64 / 1e6,
            b.memset_s,
            b.glb_bytes as f64 / b.memset_s / 1e9,
            b.memcpy_s
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
pub fn run_distributed(comm: &dyn crate::comm::Comm, cfg: &BenchConfig, data: &[f32], threads: usize) -> Result<Option<DistReport>> {
    use rayon::prelude::*;
    let err = |e: crate::comm::CommError| anyhow::anyhow!(e);
    let grid = crate::tiling::Grid::new(cfg.width, cfg.height, cfg.tile).ok_or_else(|| anyhow::anyhow!("raster too small for tile {}", cfg.tile))?;
    let owners = crate::tiling::assign_owners(&grid, comm.size());
    let me = comm.rank();
    let mine: Vec<crate::tiling::TileId> = grid.tiles().filter(|t| owners[grid.index(*t)] == me).collect();
    let blocks: crate::halo::Blocks = mine
        .iter()
        .map(|&t| {
            let r = grid.owned_rect(t);
            (grid.index(t), (r.y0..r.y1).flat_map(|y| data[y * cfg.width + r.x0..y * cfg.width + r.x1].iter().copied()).collect())
        })
        .collect();
    let samples: usize = mine.iter().map(|&t| grid.owned_rect(t).len()).sum();
    let params = Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [cfg.width, cfg.height] };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let host = host_name();
    let mut rows = Vec::new();
    for &e in &cfg.errors {
        let method = match e {
            None => Method::Grid,
            Some(max_error) => Method::Simplify(SimplifyParams { max_error, max_triangles: None }),
        };
        let mut best_row: Option<RankRow> = None;
        for _ in 0..cfg.repeat.max(1) {
            comm.all_ok(true).map_err(err)?; // barrier
            let t_all = Instant::now();
            let t = Instant::now();
            let halo = crate::halo::exchange(&grid, &owners, comm, &blocks).map_err(err)?;
            let halo_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let meshes: Vec<crate::mesh::Mesh> = pool.install(|| {
                mine.par_iter()
                    .map_init(<(Vec<f32>, crate::mesh::simplify::Scratch)>::default, |(window, scratch), &t| {
                        halo.window(&grid, t, &blocks, window);
                        let win = crate::mesh::Window { data: window, rect: grid.halo_rect(t), tile: grid.tile_rect(t) };
                        crate::mesh::mesh_tile(&win, &params, &method, None, scratch)
                    })
                    .collect()
            });
            let mesh_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let extras = serde_json::json!({});
            let glb_bytes: usize = pool.install(|| meshes.par_iter().filter(|m| m.triangles() > 0).map(|m| encode::glb::encode(m, &extras).len()).sum());
            let glb_s = t.elapsed().as_secs_f64();
            let busy_s = t_all.elapsed().as_secs_f64();
            comm.all_ok(true).map_err(err)?; // barrier: the job is as slow as its slowest rank
            let wall_s = t_all.elapsed().as_secs_f64();
            let row = RankRow {
                rank: me,
                host: host.clone(),
                threads,
                max_error: e,
                tiles: mine.len(),
                samples,
                triangles: meshes.iter().map(|m| m.triangles()).sum(),
                glb_bytes,
                halo_bytes_sent: halo.bytes_sent,
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
    s += &format!("{:>4} {:<16} {:>3} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}\n", "rank", "host", "thr", "max_err", "tiles", "halo s", "mesh s", "glb s", "busy s", "wall s", "halo B sent");
    for x in &r.per_rank {
        s += &format!(
            "{:>4} {:<16} {:>3} {:>8} {:>6} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>12}\n",
            x.rank, x.host, x.threads, err(x.max_error), x.tiles, x.halo_s, x.mesh_s, x.glb_s, x.busy_s, x.wall_s, x.halo_bytes_sent
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
