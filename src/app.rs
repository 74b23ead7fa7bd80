//! Dispatches commands: validated configuration in, the command's module (pipeline, bench, synth, batch) does the
//! work, an exit code out (0 ok, 1 failed, 2 usage). Holds no stage of its own.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use tracing::{error, info, warn};

use crate::cli::{BatchCommand, BatchTraits, Cli, Command, MeshArgs};
use crate::comm::Comm;
use crate::config::{ConfigError, MeshConfig};
use crate::manifest::Timings;
use crate::pipeline::{self, SceneSummary};
use crate::store::{self, LocalStore, Store};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Runs one command; returns the process exit code.
pub fn run(cli: Cli, comm: &dyn Comm) -> u8 {
    match cli.command {
        Command::Mesh(a) => mesh_command(a, comm),
        Command::Batch(c) => batch_command(&c),
        Command::Bench(a) => exit_code(crate::bench::command(&a, comm)),
        Command::Synth(a) => exit_code(crate::synth::command(&a)),
        Command::Info(a) => exit_code(crate::info::command(&a)),
        Command::Render(a) => exit_code(crate::render::command(&a)),
    }
}

/// 0 on success; 2 for a usage error (a [`ConfigError`] anywhere in the chain); 1 otherwise.
fn exit_code(res: Result<()>) -> u8 {
    match res {
        Ok(()) => EXIT_OK,
        Err(e) if e.chain().any(|c| c.downcast_ref::<ConfigError>().is_some()) => {
            eprintln!("terrafarm: usage error: {}", crate::redact::redact(&format!("{e:#}")));
            EXIT_USAGE
        }
        Err(e) => {
            error!("{}", crate::redact::redact(&format!("{e:#}")));
            EXIT_FAIL
        }
    }
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
    let summaries = pipeline::mesh_scenes(&cfg, &names, comm, store.as_ref(), threads);
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
            "terrafarm: phases (rank 0): read {:.2} s, halo {:.3} s, mesh {:.2} s, encode {:.2} s, write {:.2} s (mesh/encode/write, and the reads of a streamed input, in thread-seconds over {threads} threads)",
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
        render: a.render,
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
            eprintln!("terrafarm: refused: {}", crate::redact::redact(&e.to_string()));
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
            eprintln!("terrafarm: error: {}", crate::redact::redact(&format!("{e:#}")));
            EXIT_FAIL
        }
    }
}
