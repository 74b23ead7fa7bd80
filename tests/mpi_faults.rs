//! Failure policy under MPI (issue #12, item 6), as a self-checking MPI program in the style of rsmpi's examples:
//! run by `cargo test --features mpi --test mpi_faults`, it starts itself under `mpirun` with a fault injected on
//! one rank (a failing byte source or store handed to the pipeline, no test hook in the binary) before each
//! collective of the pipeline, and checks that every job ends with a clear message, a non-zero exit, no manifest,
//! and within 10 s instead of hanging.
//!
//! Needs Open MPI's `mpirun` on PATH. Built only with `--features mpi` (harness = false: this file is `main`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use terrafarm::raster::ByteSource;
use terrafarm::store::{LocalStore, Store, StoreError};

/// Fails reads on one rank: every read (`all`), or only reads longer than a file signature (`big`: the hash and
/// the window reads, not the format sniffing).
struct FailingSource {
    inner: Arc<dyn ByteSource>,
    mode: String,
}

impl ByteSource for FailingSource {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if self.mode == "all" || (self.mode == "big" && buf.len() > 8) {
            return Err(std::io::Error::other("injected read failure"));
        }
        self.inner.read_at(off, buf)
    }
}

/// A local store whose `put` (after `after` successful ones) or `delete` fails on one rank, or whose `put` panics.
struct FailingStore {
    inner: LocalStore,
    mode: String,
    puts: AtomicUsize,
}

impl Store for FailingStore {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst);
        match self.mode.as_str() {
            "put" if n >= 2 => Err(StoreError::Io { path: key.into(), source: std::io::Error::other("injected write failure") }),
            "panic" if n >= 2 => panic!("injected panic while writing {key}"),
            _ => self.inner.put(key, bytes),
        }
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.inner.size(key)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        if self.mode == "delete" {
            return Err(StoreError::Io { path: key.into(), source: std::io::Error::other("injected delete failure") });
        }
        self.inner.delete(key)
    }
    fn remove_partials(&self, scene: &str) -> Result<usize, StoreError> {
        self.inner.remove_partials(scene)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// One rank of a faulty job: `TF_FAULT=<rank>:<source|store>:<mode>`, the mesh flags after the program name.
fn child() -> i32 {
    let comm = terrafarm::comm::world().expect("MPI");
    terrafarm::redact::install_panic_hook(comm.size() > 1);
    let spec = std::env::var("TF_FAULT").unwrap();
    let parts: Vec<&str> = spec.split(':').collect();
    let (rank, what, mode) = (parts[0].parse::<usize>().unwrap(), parts[1], parts[2].to_string());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = terrafarm::cli::Cli::try_parse_from(std::iter::once("terrafarm".to_string()).chain(args)).unwrap();
    let terrafarm::cli::Command::Mesh(m) = cli.command else { panic!("mesh flags expected") };
    let cfg = terrafarm::config::MeshConfig::from_args(m).unwrap();
    let mine = comm.rank() == rank;
    let input = &cfg.inputs[0];
    let opened = terrafarm::pipeline::open_input(input, &cfg.blob).map(|i| {
        if mine && what == "source" {
            terrafarm::pipeline::Input { source: Arc::new(FailingSource { inner: i.source, mode: mode.clone() }), shown: i.shown }
        } else {
            i
        }
    });
    let local = LocalStore::new(Path::new(&cfg.out)).unwrap();
    let store = FailingStore { inner: local, mode: if mine && what == "store" { mode.clone() } else { String::new() }, puts: AtomicUsize::new(0) };
    match terrafarm::pipeline::mesh_scene(&cfg, opened, input, &cfg.scene_name(0), comm.as_ref(), &store, 1) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("terrafarm: rank {}: scene failed: {e:#}", comm.rank());
            1
        }
    }
}

struct Case {
    name: &'static str,
    ranks: usize,
    fault: &'static str,
    input: PathBuf,
    extra: Vec<&'static str>,
    /// Text the job's output must hold.
    expect: &'static str,
}

fn run_case(c: &Case, dir: &Path) -> Result<(), String> {
    let out = dir.join(format!("out-{}", c.name));
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-n", &c.ranks.to_string()])
        .arg(&exe)
        .arg("mesh")
        .arg(&c.input)
        .args(["--out", out.to_str().unwrap(), "--tile-size", "64", "--scene", "s"])
        .args(&c.extra)
        .env("TF_FAULT", c.fault)
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    let t0 = Instant::now();
    let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().map_err(|e| format!("mpirun on PATH: {e}"))?;
    // Wait at most 30 s, then kill: a hang must fail the test, not the CI run.
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = t0.elapsed();
    let o = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let Some(status) = status else { return Err(format!("{}: hung (killed after 30 s):\n{text}", c.name)) };
    if status.success() {
        return Err(format!("{}: the job succeeded despite the fault:\n{text}", c.name));
    }
    if took >= Duration::from_secs(10) {
        return Err(format!("{}: took {took:?} to end (limit 10 s):\n{text}", c.name));
    }
    if !text.contains(c.expect) {
        return Err(format!("{}: output lacks '{}':\n{text}", c.name, c.expect));
    }
    if out.join("s/manifest.json").exists() {
        return Err(format!("{}: a manifest was written by a failed job", c.name));
    }
    println!("{}: ended in {:.2} s, exit {:?}", c.name, took.as_secs_f64(), status.code());
    Ok(())
}

fn main() {
    if std::env::var_os("TF_FAULT").is_some() {
        std::process::exit(child());
    }
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.f32");
    let synth = Command::new(env!("CARGO_BIN_EXE_terrafarm")).args(["synth", "--size", "300x300", raw.to_str().unwrap()]).output().unwrap();
    assert!(synth.status.success());
    let png = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png"));
    let raw_args = vec!["--size", "300x300"];
    let cases = [
        // open → agree: rank 1 cannot read the input at all.
        Case { name: "open", ranks: 3, fault: "1:source:all", input: raw.clone(), extra: raw_args.clone(), expect: "injected read failure" },
        // facts → broadcast: rank 0 fails while hashing the input; the others wait in the agreement.
        Case { name: "hash", ranks: 3, fault: "0:source:big", input: raw.clone(), extra: raw_args.clone(), expect: "injected read failure" },
        // retract → agree: rank 0 cannot retract the old manifest.
        Case { name: "retract", ranks: 3, fault: "0:store:delete", input: raw.clone(), extra: raw_args.clone(), expect: "injected delete failure" },
        // read (windowed) → agree before the halo all-to-all: rank 2's window read fails.
        Case { name: "window", ranks: 3, fault: "2:source:big", input: raw.clone(), extra: raw_args.clone(), expect: "injected read failure" },
        // read (scatter) → agree before the scatter all-to-all: rank 0's whole-PNG decode fails.
        Case { name: "scatter", ranks: 4, fault: "0:source:big", input: png.clone(), extra: vec![], expect: "injected read failure" },
        // tiles → agree before the gather: rank 1's tile writes fail.
        Case { name: "tiles", ranks: 3, fault: "1:store:put", input: raw.clone(), extra: raw_args.clone(), expect: "injected write failure" },
        // A late failure nobody can agree on (a panic on rank 1 mid-tile): the job is torn down, not left hanging.
        Case { name: "panic", ranks: 3, fault: "1:store:panic", input: raw.clone(), extra: raw_args.clone(), expect: "injected panic" },
    ];
    let mut failed = 0;
    for c in &cases {
        if let Err(e) = run_case(c, dir.path()) {
            eprintln!("FAILED {e}");
            failed += 1;
        }
    }
    println!("{} passed, {failed} failed", cases.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
