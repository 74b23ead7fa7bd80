//! Azure Batch documents (issue #6; the GPU render profile, issue #14): golden files for every profile, advisor refusals, and a scene task's
//! generated command line run locally with the Batch environment simulated for one host.

mod common;
use common::*;
use std::path::Path;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/batch");

/// The documents `tests/golden/batch/regen.sh` renders must equal the committed golden files.
#[test]
fn rendered_documents_match_golden_files() {
    let d = tempfile::tempdir().unwrap();
    let script = std::fs::read_to_string(Path::new(GOLDEN).join("regen.sh")).unwrap();
    for profile in ["mpi", "scenes", "render"] {
        // Re-run the script's command for this profile, writing into the temp dir instead.
        let line = script.split("\"$bin\" batch render ").skip(1).find(|c| c.contains(&format!("tests/golden/batch/{profile}"))).unwrap();
        let cmd = line.replace("\\\n", " ").lines().next().unwrap().to_string();
        let mut args: Vec<String> = vec!["batch".into(), "render".into()];
        for tok in cmd.split_whitespace() {
            args.push(tok.trim_matches('\'').to_string());
        }
        let n = args.len();
        args[n - 1] = d.path().join(profile).to_str().unwrap().to_string();
        let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
        for f in ["pool.json", "job.json", "tasks.json"] {
            let got = std::fs::read(d.path().join(profile).join(f)).unwrap();
            let want = std::fs::read(Path::new(GOLDEN).join(profile).join(f)).unwrap();
            assert!(got == want, "{profile}/{f} differs from the golden file (regenerate deliberately with tests/golden/batch/regen.sh)");
        }
    }
}

#[test]
fn advisor_refuses_harmful_setups_with_exit_2() {
    for args in [
        vec!["batch", "plan", "--workload", "mpi", "--spot", "true"],
        vec!["batch", "plan", "--workload", "mpi", "--slots", "4"],
        vec!["batch", "plan", "--workload", "mpi", "--nodes", "101"],
        vec!["batch", "plan", "--workload", "scenes", "--windows-licenses"],
        vec!["batch", "plan", "--workload", "scenes", "--render"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("refused"), "{}", stderr(&o));
    }
    let o = run(&["batch", "plan", "--workload", "mpi", "--spot", "true", "--force", "--json"]);
    assert!(o.status.success());
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["spot"], true);
}

/// A simulated Batch node under `dir`: the node's shared folder (holding the terrafarm binary and the sample as
/// a.png) and a task working folder.
fn batch_node(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let node_shared = dir.join("shared");
    let work = dir.join("wd");
    std::fs::create_dir_all(&node_shared).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_terrafarm"), node_shared.join("terrafarm")).unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png"), node_shared.join("a.png")).unwrap();
    (node_shared, work)
}

/// A task command line as the node's shell runs it, with the Batch variables of a one-host node.
fn task_command(cmd: &str, node_shared: &Path, work: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg(cmd).env("AZ_BATCH_NODE_SHARED_DIR", node_shared).env("AZ_BATCH_TASK_WORKING_DIR", work).env("AZ_BATCH_HOST_LIST", "127.0.0.1");
    c
}

/// The scene task's command line, run as a Batch node would run it (one host, Batch variables set to temp folders),
/// meshes the scene.
#[test]
fn scene_task_command_line_runs_with_simulated_batch_environment() {
    let d = tempfile::tempdir().unwrap();
    let (node_shared, work) = batch_node(d.path());
    let docs = d.path().join("docs");
    let o = run(&[
        "batch",
        "render",
        "--workload",
        "scenes",
        "--env",
        "dev",
        "--cores",
        "2",
        "--slots",
        "2",
        "--input",
        "$AZ_BATCH_NODE_SHARED_DIR/a.png",
        "--mesh-out",
        "$AZ_BATCH_TASK_WORKING_DIR/out",
        "--mesh-arg=--max-error",
        "--mesh-arg=5",
        "--out-dir",
        docs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tasks: serde_json::Value = serde_json::from_slice(&std::fs::read(docs.join("tasks.json")).unwrap()).unwrap();
    let cmd = tasks[0]["commandLine"].as_str().unwrap();
    assert!(cmd.contains("--threads 1"), "cores × requiredSlots / slots = 1: {cmd}");
    let o = task_command(cmd, &node_shared, &work).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(work.join("out/a/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["params"]["max_error"], 5.0);
    assert_eq!(m["tiles"].as_array().unwrap().len(), 4);
}

/// The generated scene task writes its scene to blob storage through terrafarm's own blob writing, authenticated
/// with a SAS supplied at submit time (issue #6 with #5): the job document carries only the account name, the SAS
/// arrives as AZURE_STORAGE_SAS_TOKEN the way deploy/submit.sh adds it, and the scene read back from Azurite
/// equals a local run.
#[test]
fn scene_task_uploads_its_scene_to_blob_storage_with_a_submit_time_sas() {
    let Some(az) = common::azurite::Azurite::shared() else { return };
    let c = az.container("batch");
    let d = tempfile::tempdir().unwrap();
    let (node_shared, work) = batch_node(d.path());
    let docs = d.path().join("docs");
    // Path-style address: on Azure this would be az://<container>/dev with --storage-account.
    let out = format!("{}/{c}/dev", az.endpoint());
    let o = run(&[
        "batch",
        "render",
        "--workload",
        "scenes",
        "--env",
        "dev",
        "--cores",
        "2",
        "--slots",
        "2",
        "--input",
        "$AZ_BATCH_NODE_SHARED_DIR/a.png",
        "--mesh-out",
        &out,
        "--blob-auth",
        "sas",
        "--storage-account",
        common::azurite::ACCOUNT,
        "--out-dir",
        docs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let job: serde_json::Value = serde_json::from_slice(&std::fs::read(docs.join("job.json")).unwrap()).unwrap();
    let tasks: serde_json::Value = serde_json::from_slice(&std::fs::read(docs.join("tasks.json")).unwrap()).unwrap();
    let all = format!("{job}{tasks}");
    assert!(!all.contains("sig=") && !all.contains("SAS_TOKEN"), "a credential leaked into the documents: {all}");
    let mut cmd = task_command(tasks[0]["commandLine"].as_str().unwrap(), &node_shared, &work);
    for v in ["AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_SAS_TOKEN"] {
        cmd.env_remove(v);
    }
    for e in job["commonEnvironmentSettings"].as_array().unwrap() {
        cmd.env(e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
    }
    let o = cmd.env("AZURE_STORAGE_SAS_TOKEN", az.account_sas()).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let local = d.path().join("local");
    assert!(run(&["mesh", node_shared.join("a.png").to_str().unwrap(), "--out", local.to_str().unwrap()]).status.success());
    let (got, want) = (az.tree(&c, "dev"), tree(&local));
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, v) in &want {
        if !k.ends_with("manifest.json") {
            assert!(&got[k] == v, "{k} differs");
        }
    }
}
