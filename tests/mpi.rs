//! MPI runs under `mpirun` on one host (issue #4). Built only with `--features mpi`; CI runs
//! `cargo test --release --features mpi --test mpi`, which needs Open MPI's `mpirun` on PATH.
#![cfg(feature = "mpi")]

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png");

fn mpirun(n: usize, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new("mpirun");
    c.args(["--allow-run-as-root", "--oversubscribe", "-n", &n.to_string(), env!("CARGO_BIN_EXE_terrafarm")]).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("mpirun on PATH (apt-get install openmpi-bin)");
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    o
}

/// Every tile file and the manifest (its per-run section aside) are byte-identical for 1–4 ranks and a run
/// without a launcher, on a raster whose size is not a multiple of the tile size; for the scattered (PNG) and the
/// windowed (raw) read paths; with and without simplification.
#[test]
fn outputs_do_not_depend_on_rank_count() {
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("r.f32");
    assert!(run(&["synth", "--size", "301x257", "--seed", "11", raw.to_str().unwrap()]).status.success());
    let hgt = d.path().join("N47E012.hgt");
    let h = |c: usize, r: usize| (1500.0 + 400.0 * (c as f64 / 150.0).sin() * (r as f64 / 190.0).cos()) as i16;
    std::fs::write(&hgt, (0..1201 * 1201).flat_map(|i| h(i % 1201, i / 1201).to_be_bytes()).collect::<Vec<u8>>()).unwrap();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (SAMPLE, vec!["--tile-size", "100"]),
        (SAMPLE, vec!["--tile-size", "100", "--max-error", "3"]),
        (raw.to_str().unwrap(), vec!["--size", "301x257", "--tile-size", "64", "--max-error", "1"]),
        // Levels of detail (issue #13): every level distributed like level 0, scattered (PNG) and streamed (raw),
        // with the tileset and compressed glTF.
        (SAMPLE, vec!["--tile-size", "100", "--max-error", "3", "--lod", "auto", "--format", "3dtiles"]),
        (raw.to_str().unwrap(), vec!["--size", "301x257", "--tile-size", "64", "--max-error", "1", "--lod", "2", "--format", "3dtiles", "--gltf", "meshopt"]),
        // The implicit tileset: files by depth from the root, the subtree written once by rank 0.
        (SAMPLE, vec!["--tile-size", "100", "--max-error", "3", "--lod", "auto", "--format", "3dtiles", "--tileset", "implicit"]),
        // An SRTM tile placed on the ellipsoid, its EGM96 heights made heights above it per sample on every rank.
        (hgt.to_str().unwrap(), vec!["--tile-size", "256", "--max-error", "2", "--lod", "1", "--format", "3dtiles"]),
    ];
    for (ci, (input, extra)) in cases.iter().enumerate() {
        let reference = d.path().join(format!("ref{ci}"));
        let mut args = vec!["mesh", input, "--out", reference.to_str().unwrap()];
        args.extend(extra.iter().copied());
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let want = tree(&reference);
        if input.ends_with(".hgt") {
            let m: serde_json::Value = serde_json::from_slice(&want["N47E012/manifest.json"]).unwrap();
            assert!(m["params"]["geoid"].as_str().is_some_and(|g| g.contains("egm96_15")), "the EGM96 grid from PROJ's data: {}", m["params"]);
        }
        for n in 1..=4 {
            let out = d.path().join(format!("c{ci}n{n}"));
            let mut args = vec!["mesh", input, "--out", out.to_str().unwrap(), "--threads", "1"];
            args.extend(extra.iter().copied());
            let o = mpirun(n, &args, &[]);
            assert!(o.status.success(), "n={n}: {}", stderr(&o));
            // Inputs decoded whole (the PNG) are scattered and exchange their halo; windowed ones (raw) are
            // streamed, each tile reading its own window.
            if n > 1 && input.ends_with(".png") {
                assert!(stderr(&o).contains("halo sent"), "halo exchange not logged");
            }
            assert!(tree(&out) == want, "case {ci}: output with {n} ranks differs from the single-process run");
        }
    }
}

/// Ties the MPI build to the default build: the same golden tile as tests/real_terrain.rs.
#[test]
fn fuji_golden_tile_with_three_ranks() {
    let Some(fuji) = shared("fuji.png") else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = mpirun(3, &["mesh", fuji.to_str().unwrap(), "--encoding", "terrain-rgb", "--out", out.to_str().unwrap(), "--format", "glb"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let glb = std::fs::read(out.join("fuji/tiles/1_1.glb")).unwrap();
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&glb).iter().map(|b| format!("{b:02x}")).collect();
    let golden = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real_terrain.rs")).unwrap();
    assert!(golden.contains(&hex), "3-rank fuji tile (1,1) differs from the golden single-process tile");
}

/// Issue #6: the multi-instance task's coordination and application command lines, run as Batch would run them on
/// one host (AZ_BATCH_HOST_LIST=127.0.0.1, Batch folders as temp dirs), mesh the scene with MPI.
#[test]
fn batch_multi_instance_command_lines_run_locally() {
    let d = tempfile::tempdir().unwrap();
    let (node_shared, task_shared, work) = (d.path().join("node"), d.path().join("task"), d.path().join("wd"));
    for p in [&node_shared, &work] {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::copy(env!("CARGO_BIN_EXE_terrafarm"), node_shared.join("terrafarm")).unwrap();
    let input = node_shared.join("alps.f32");
    assert!(run(&["synth", "--size", "300x260", input.to_str().unwrap()]).status.success());
    let docs = d.path().join("docs");
    let o = run(&[
        "batch",
        "render",
        "--workload",
        "mpi",
        "--nodes",
        "1",
        "--cores",
        "2",
        "--input",
        "$AZ_BATCH_NODE_SHARED_DIR/alps.f32",
        "--mesh-arg=--size",
        "--mesh-arg=300x260",
        "--mesh-arg=--tile-size",
        "--mesh-arg=64",
        "--mesh-out",
        "$AZ_BATCH_TASK_SHARED_DIR/out",
        "--out-dir",
        docs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tasks: serde_json::Value = serde_json::from_slice(&std::fs::read(docs.join("tasks.json")).unwrap()).unwrap();
    let sh = |cmd: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("AZ_BATCH_HOST_LIST", "127.0.0.1")
            .env("AZ_BATCH_NODE_SHARED_DIR", &node_shared)
            .env("AZ_BATCH_TASK_SHARED_DIR", &task_shared)
            .env("AZ_BATCH_TASK_WORKING_DIR", &work)
            .output()
            .unwrap()
    };
    let coord = sh(tasks[0]["multiInstanceSettings"]["coordinationCommandLine"].as_str().unwrap());
    assert!(coord.status.success(), "{}", stderr(&coord));
    let app = sh(tasks[0]["commandLine"].as_str().unwrap());
    assert!(app.status.success(), "{}", stderr(&app));
    assert!(stderr(&app).contains("rank 1"), "two ranks expected: {}", stderr(&app));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(task_shared.join("out/alps/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["run"]["ranks"], 2);
    assert_eq!(m["tiles"].as_array().unwrap().len(), 5 * 5);
}

/// Every rank writes its own tiles to blob storage concurrently, rank 0 the manifest (issue #5): the scene read back
/// from Azurite equals the single-process local run, for a blob input (raw, windowed by ranged reads on each rank)
/// and a blob output.
#[test]
fn ranks_write_to_blob_storage_concurrently() {
    let Some(az) = common::azurite::Azurite::shared() else { return };
    let c = az.container("mpi");
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("r.f32");
    assert!(run(&["synth", "--size", "301x257", "--seed", "11", raw.to_str().unwrap()]).status.success());
    az.put(&c, "in/r.f32", &std::fs::read(&raw).unwrap());
    let reference = d.path().join("ref");
    let o = run(&["mesh", raw.to_str().unwrap(), "--size", "301x257", "--tile-size", "64", "--out", reference.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let input = format!("az://{c}/in/r.f32");
    let out = format!("az://{c}/out");
    let cs = az.connection_string();
    let o =
        mpirun(3, &["mesh", &input, "--size", "301x257", "--tile-size", "64", "--threads", "1", "--out", &out], &[("AZURE_STORAGE_CONNECTION_STRING", &cs)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = az.tree(&c, "out");
    let want = tree(&reference);
    assert_same_scene_apart_from_input_identity(&got, &want);
    let m: serde_json::Value = serde_json::from_slice(&got["r/manifest.json"]).unwrap();
    assert!(m["input"]["etag"].is_string(), "a blob input is identified by its ETag: {}", m["input"]);
}

/// `terrafarm bench` under mpirun (issue #7): each rank meshes its own tiles after a real halo exchange; rank 0
/// reports every rank, the aggregate per node and the halo share.
#[test]
fn bench_under_mpirun_reports_ranks_nodes_and_halo_share() {
    let o = mpirun(2, &["bench", "--synth-size", "513x513", "--tile-size", "64", "--max-error", "grid", "--repeat", "1", "--threads", "1", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON report, from rank 0 only");
    assert_eq!(r["ranks"], 2);
    let ranks = r["per_rank"].as_array().unwrap();
    assert_eq!(ranks.len(), 2);
    let sum = |k: &str| ranks.iter().map(|x| x[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("tiles"), 64);
    assert_eq!(sum("samples"), 513 * 513, "owned samples partition the raster");
    assert_eq!(sum("triangles"), 512 * 512 * 2);
    assert!(ranks.iter().all(|x| x["halo_bytes_sent"].as_u64().unwrap() > 0), "both ranks send halo samples");
    let nodes = r["per_node"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["ranks"], 2);
    assert!(nodes[0]["samples_per_s"].as_f64().unwrap() > 0.0);
    let share = r["halo_share"][0][1].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.0, "halo share {share}");
}
