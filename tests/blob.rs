//! Blob storage outputs and inputs against a real Azurite on 127.0.0.1 (issue #5): byte-equality with local
//! output, block uploads, resume after SIGKILL, retries through an emulator restart, a clean bounded failure when
//! storage dies and a resume that completes afterwards, and no credential in any output.
//! Credentials are always given explicitly (Azurite's public development key), so nothing reaches for a
//! managed-identity endpoint or any address but 127.0.0.1.

mod common;
use common::azurite::{Azurite, ACCOUNT, KEY};
use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png");
const AZURE_VARS: [&str; 8] = [
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
];

/// terrafarm with exactly the Azure settings given (none inherited from the test's environment).
fn tf(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = bin();
    c.args(args);
    for v in AZURE_VARS {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c
}

fn run_tf(args: &[&str], env: &[(&str, &str)]) -> Output {
    let o = tf(args, env).output().unwrap();
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    o
}

fn local_tree(args: &[&str]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let d = tempfile::tempdir().unwrap();
    let mut a: Vec<&str> = args.to_vec();
    let out = d.path().join("o");
    a.extend(["--out", out.to_str().unwrap()]);
    let o = run(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    tree(&out)
}

#[test]
fn blob_scene_equals_local_scene_with_block_uploads() {
    let Some(az) = Azurite::shared() else { return };
    let c = az.container("e2e");
    let cs = az.connection_string();
    // 513² with 256-cell tiles: each GLB is ~2.1 MB, so with 1 MiB blocks it goes up as several blocks.
    let args = ["mesh", SAMPLE, "--blob-block-mib", "1", "--blob-concurrency", "2"];
    let want = local_tree(&args);
    let out = format!("az://{c}/runs/a");
    let mut a = args.to_vec();
    a.extend(["--out", &out, "--json"]);
    let o = run_tf(&a, &[("AZURE_STORAGE_CONNECTION_STRING", &cs)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = az.tree(&c, "runs/a");
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    assert!(got == want, "blob output differs from local output");
    let glb = az.committed_blocks(&c, "runs/a/synth-513/tiles/0_0.glb");
    assert!(glb >= 2, "a 2 MB tile with 1 MiB blocks should be committed as blocks, got {glb}");
    assert_eq!(az.committed_blocks(&c, "runs/a/synth-513/tiles/0_0.json"), 0, "small objects go up in one Put Blob");

    // The same scene through a path-style https-less URL with an account key instead of a connection string.
    let out = format!("{}/{c}/runs/b", az.endpoint());
    let o = run_tf(&["mesh", SAMPLE, "--out", &out], &[("AZURE_STORAGE_ACCOUNT_KEY", KEY)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(az.tree(&c, "runs/b") == want);

    // And with an account SAS in the URL (no other credential): works, and the SAS is not echoed.
    let sas = az.account_sas();
    let out = format!("{}/{c}/runs/c?{sas}", az.endpoint());
    let o = run_tf(&["mesh", SAMPLE, "--out", &out, "--log", "debug"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(az.tree(&c, "runs/c") == want);
    let sig = sas.split("sig=").nth(1).unwrap();
    assert!(!stderr(&o).contains(sig) && !String::from_utf8_lossy(&o.stdout).contains(sig), "the SAS signature was printed");
}

#[test]
fn inputs_can_be_blobs_png_whole_and_raw_by_ranges() {
    let Some(az) = Azurite::shared() else { return };
    let c = az.container("input");
    let cs = az.connection_string();
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("hill.f32");
    assert!(run(&["synth", "--size", "301x257", "--seed", "5", raw.to_str().unwrap()]).status.success());
    az.put(&c, "in/synth-513.png", &std::fs::read(SAMPLE).unwrap());
    az.put(&c, "in/hill.f32", &std::fs::read(&raw).unwrap());
    for (local, blob, extra) in [
        (SAMPLE.to_string(), format!("az://{c}/in/synth-513.png"), vec![]),
        (raw.to_str().unwrap().to_string(), format!("az://{c}/in/hill.f32"), vec!["--size", "301x257", "--tile-size", "64"]),
    ] {
        let want = {
            let mut a = vec!["mesh", local.as_str(), "--max-error", "1"];
            a.extend(&extra);
            local_tree(&a)
        };
        let out = d.path().join(format!("from-blob-{}", want.len()));
        let mut a = vec!["mesh", blob.as_str(), "--max-error", "1", "--out", out.to_str().unwrap()];
        a.extend(&extra);
        let o = run_tf(&a, &[("AZURE_STORAGE_CONNECTION_STRING", &cs)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let got = tree(&out);
        // Tile files byte for byte; records equal apart from the resume key (a blob input is identified by its ETag,
        // so it is never hashed: the whole blob is not downloaded for the key).
        assert_same_scene_apart_from_input_identity(&got, &want);
        let m: serde_json::Value = serde_json::from_slice(&got[got.keys().find(|k| k.ends_with("manifest.json")).unwrap()]).unwrap();
        assert_eq!(m["input"]["path"], blob.as_str(), "the manifest names the blob");
        assert!(m["input"]["etag"].is_string() && m["input"]["sha256"].is_null(), "{}", m["input"]);
    }
}

/// A GeoTIFF whose validity is in GDAL's external mask (`dem.tif.msk`, a second blob next to it): read from blob
/// storage, the sidecar is found and applied as it is next to a local file (the local run has masked-out samples
/// as holes), and the tiles are the local run's.
#[test]
fn blob_geotiff_with_an_external_mask_equals_local() {
    let Some(az) = Azurite::shared() else { return };
    if !gdal_available() {
        return;
    }
    let (w, h) = (201usize, 157usize);
    let d = tempfile::tempdir().unwrap();
    let mut samples: Vec<f32> = (0..w * h).map(|i| 300.0 + 80.0 * ((i % w) as f32 * 0.07).sin() * ((i / w) as f32 * 0.05).cos()).collect();
    let valid: Vec<f32> = (0..w * h).map(|i| if (40..70).contains(&(i / w)) && (30..90).contains(&(i % w)) { 0.0 } else { 255.0 }).collect();
    samples.iter_mut().zip(&valid).filter(|(_, &v)| v == 0.0).for_each(|(s, _)| *s = 0.0);
    std::fs::write(d.path().join("src.f32"), samples.iter().chain(&valid).flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    std::fs::write(d.path().join("src.hdr"), format!("ENVI\nsamples = {w}\nlines = {h}\nbands = 2\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"))
        .unwrap();
    let tif = d.path().join("dem.tif");
    let src = d.path().join("src.f32");
    gdal(
        "gdal_translate",
        &["-q", "-of", "GTiff", "-b", "1", "-mask", "2", "--config", "GDAL_TIFF_INTERNAL_MASK", "NO", src.to_str().unwrap(), tif.to_str().unwrap()],
    );
    let msk = d.path().join("dem.tif.msk");
    assert!(msk.exists(), "GDAL wrote no external mask");
    let c = az.container("masked");
    az.put(&c, "in/dem.tif", &std::fs::read(&tif).unwrap());
    az.put(&c, "in/dem.tif.msk", &std::fs::read(&msk).unwrap());
    let args = ["--max-error", "1", "--tile-size", "64"];
    let want = local_tree(&[&["mesh", tif.to_str().unwrap()][..], &args].concat());
    let m: serde_json::Value = serde_json::from_slice(&want[want.keys().find(|k| k.ends_with("manifest.json")).unwrap()]).unwrap();
    let holes: u64 = m["tiles"].as_array().unwrap().iter().map(|t| t["nodata_samples"].as_u64().unwrap()).sum();
    assert!(holes >= 30 * 60, "the local run did not apply the mask: {holes} holes");
    let out = d.path().join("from-blob");
    let blob = format!("az://{c}/in/dem.tif");
    let o = run_tf(
        &[&["mesh", blob.as_str(), "--out", out.to_str().unwrap()][..], &args].concat(),
        &[("AZURE_STORAGE_CONNECTION_STRING", &az.connection_string())],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_scene_apart_from_input_identity(&tree(&out), &want);

    // With a SAS for the input blob alone, looking for the mask next to it is refused: the input is read without
    // it, with a warning (it failed outright before), and the SAS is not printed.
    let c2 = az.container("one-blob");
    az.put(&c2, "dem.tif", &std::fs::read(&tif).unwrap());
    let sas = az.blob_sas(&c2, "dem.tif");
    let (url, out2) = (format!("{}/{c2}/dem.tif?{sas}", az.endpoint()), d.path().join("one-blob"));
    let o = run_tf(&[&["mesh", url.as_str(), "--out", out2.to_str().unwrap()][..], &args].concat(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("dem.tif.msk: not allowed to look for it"), "{}", stderr(&o));
    let sig = sas.split("sig=").nth(1).unwrap();
    assert!(!stderr(&o).contains(sig) && !String::from_utf8_lossy(&o.stdout).contains(sig), "the SAS signature was printed");
}

/// Starts a long run into `out` on `az`, returns the child once at least `min_blobs` blobs are visible.
fn start_and_wait(args: &[&str], env: &[(&str, &str)], az: &Azurite, c: &str, min_blobs: usize) -> std::process::Child {
    let mut child = tf(args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if az.try_list(c).is_some_and(|l| l.len() >= min_blobs) || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Lists the container every 30 ms while the test runs and records any blob whose size is not the clean run's:
/// a half-written tile under its final name.
struct Watcher {
    stop: Arc<AtomicBool>,
    bad: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<usize>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn new(port: u16, c: &str, prefix: &str, want: &std::collections::BTreeMap<String, Vec<u8>>) -> Watcher {
        let (stop, bad, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(0)));
        let sizes: std::collections::BTreeMap<String, u64> = want.iter().map(|(k, v)| (k.clone(), v.len() as u64)).collect();
        let (s, b, n, c, prefix) = (stop.clone(), bad.clone(), seen.clone(), c.to_string(), format!("{prefix}/"));
        let az = Azurite::at(port);
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for (name, size) in az.try_list(&c).unwrap_or_default() {
                    let rel = name.strip_prefix(&prefix).unwrap_or(&name).to_string();
                    *n.lock().unwrap() += 1;
                    // The manifest differs in its `run` section, so its size is not comparable.
                    if !rel.ends_with("manifest.json") && sizes.get(&rel) != Some(&size) {
                        b.lock().unwrap().push(format!("{rel}: {size} bytes"));
                    }
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        });
        Watcher { stop, bad, seen, handle: Some(handle) }
    }

    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap();
        let bad = self.bad.lock().unwrap();
        assert!(bad.is_empty(), "blobs visible with the wrong size (partial objects under a final name): {bad:?}");
        assert!(*self.seen.lock().unwrap() > 0, "the watcher never saw a blob");
    }
}

fn big_input(d: &Path) -> String {
    let input = d.join("big.f32");
    assert!(run(&["synth", "--size", "1025x1025", "--seed", "3", input.to_str().unwrap()]).status.success());
    input.to_str().unwrap().to_string()
}

fn big_args<'a>(input: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["mesh", input, "--size", "1025x1025", "--tile-size", "64", "-j", "1", "--out", out]
}

/// A 1025² scene long enough to interrupt: its input, the clean local run's files, and a fresh container.
struct BigScene {
    _dir: tempfile::TempDir,
    input: String,
    want: std::collections::BTreeMap<String, Vec<u8>>,
    c: String,
    out: String,
    cs: String,
}

impl BigScene {
    fn new(az: &Azurite, tag: &str) -> BigScene {
        let dir = tempfile::tempdir().unwrap();
        let input = big_input(dir.path());
        let want = local_tree(&big_args(&input, "")[..8]);
        let c = az.container(tag);
        let out = format!("az://{c}/r");
        BigScene { _dir: dir, input, want, cs: az.connection_string(), c, out }
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("AZURE_STORAGE_CONNECTION_STRING", self.cs.as_str())]
    }

    /// Reruns with --resume: it must succeed, resume some tiles, and leave exactly the clean run's files.
    fn resume_completes(&self, az: &Azurite) {
        let mut a = big_args(&self.input, &self.out);
        a.extend(["--resume", "--json"]);
        let o = run_tf(&a, &self.env());
        assert!(o.status.success(), "{}", stderr(&o));
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(s["scenes"][0]["resumed_tiles"].as_u64().unwrap() > 0, "nothing was resumed: {s}");
        assert!(az.tree(&self.c, "r") == self.want, "resumed blob scene differs from a clean local run");
    }
}

#[test]
fn sigkill_then_resume_on_blob_matches_a_clean_run() {
    let Some(az) = Azurite::shared() else { return };
    let sc = BigScene::new(&az, "kill");
    let watch = Watcher::new(az.port, &sc.c, "r", &sc.want);
    let mut child = start_and_wait(&big_args(&sc.input, &sc.out), &sc.env(), &az, &sc.c, 40);
    child.kill().ok(); // SIGKILL
    child.wait().unwrap();
    assert!(!az.list(&sc.c).iter().any(|(n, _)| n.ends_with("manifest.json")), "a killed run must not have committed its manifest");
    sc.resume_completes(&az);
    watch.finish();
}

#[test]
fn retries_ride_through_an_azurite_restart() {
    let Some(mut az) = Azurite::private() else { return };
    let sc = BigScene::new(&az, "restart");
    let watch = Watcher::new(az.port, &sc.c, "r", &sc.want);
    let child = start_and_wait(&big_args(&sc.input, &sc.out), &sc.env(), &az, &sc.c, 30);
    az.stop();
    std::thread::sleep(Duration::from_millis(1500));
    az.start();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "the run should have retried through the outage:\n{err}");
    assert!(err.contains("retry"), "no retry was logged, so the outage did not hit the run:\n{err}");
    watch.finish();
    assert!(az.tree(&sc.c, "r") == sc.want, "blob scene after retries differs from a clean local run");
}

#[test]
fn dead_storage_fails_cleanly_and_resume_completes_after_restart() {
    let Some(mut az) = Azurite::private() else { return };
    let sc = BigScene::new(&az, "dead");
    let mut a = big_args(&sc.input, &sc.out);
    a.extend(["--blob-retries", "4", "--blob-retry-timeout", "3"]);
    let watch = Watcher::new(az.port, &sc.c, "r", &sc.want);
    let child = start_and_wait(&a, &sc.env(), &az, &sc.c, 30);
    let t0 = Instant::now();
    az.stop();
    let o = child.wait_with_output().unwrap();
    let waited = t0.elapsed();
    let err = stderr(&o);
    eprintln!("storage stopped → the run failed after {waited:?}");
    assert_eq!(o.status.code(), Some(1), "a run whose storage died must fail:\n{err}");
    assert!(waited < Duration::from_secs(45), "failing took {waited:?}: retries are not bounded");
    assert!(err.contains("scene 'big' failed") && err.contains("upload"), "unclear failure message:\n{err}");
    az.start();
    let blobs = az.list(&sc.c);
    assert!(!blobs.iter().any(|(n, _)| n.ends_with("manifest.json")), "a failed run must not commit its manifest");
    for (name, _) in &blobs {
        let rel = name.strip_prefix("r/").unwrap();
        assert!(az.get(&sc.c, name) == sc.want[rel], "{rel} is visible but not the clean run's bytes");
    }
    sc.resume_completes(&az);
    watch.finish();
}

/// A failing run with a fake key, and one with a fake SAS, at full log verbosity: neither secret may appear.
#[test]
fn credentials_never_appear_in_output() {
    let Some(az) = Azurite::shared() else { return };
    let c = az.container("secrets");
    let fake_key = "RkFLRUtFWWZha2VrZXlGQUtFS0VZZmFrZWtleUZBS0VLRVlmYWtla2V5RkFLRUtFWWZha2VrZXk+/w==";
    let fake_sig = "FAKESIGc2lnbmF0dXJlZmFrZXNpZ25hdHVyZQ%3D%3D";
    let sas = format!("sv=2022-11-02&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&spr=http&sig={fake_sig}");
    let cs = format!("DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={fake_key};BlobEndpoint={};", az.endpoint());
    type Case<'a> = (Vec<String>, Vec<(&'a str, String)>);
    let cases: Vec<Case> = vec![
        (vec![SAMPLE.into(), "--out".into(), format!("az://{c}/k")], vec![("AZURE_STORAGE_CONNECTION_STRING", cs.clone())]),
        (vec![SAMPLE.into(), "--out".into(), format!("{}/{c}/k", az.endpoint())], vec![("AZURE_STORAGE_ACCOUNT_KEY", fake_key.to_string())]),
        (vec![SAMPLE.into(), "--out".into(), format!("{}/{c}/s?{sas}", az.endpoint())], vec![]),
        (vec![format!("{}/{c}/in/missing.png?{sas}", az.endpoint()), "--out".into(), "target/never".into()], vec![]),
        (vec![SAMPLE.into(), "--out".into(), format!("{}/{c}/s", az.endpoint())], vec![("AZURE_STORAGE_SAS_TOKEN", sas.clone())]),
    ];
    for (args, env) in cases {
        let mut a = vec!["--log", "trace", "mesh", "--blob-retries", "1"];
        a.extend(args.iter().map(String::as_str));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let o = run_tf(&a, &env);
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert_eq!(o.status.code(), Some(1), "bad credentials must fail the run: {a:?}\n{all}");
        assert!(all.contains("terrafarm"), "no message at all: {all}");
        for secret in [fake_key, &fake_key[..40], fake_sig, "FAKESIG", "c2lnbmF0dXJlZmFrZXNpZ25hdHVyZQ"] {
            assert!(!all.contains(secret), "output of {a:?} leaks '{secret}':\n{all}");
        }
    }
    assert!(az.list(&c).is_empty(), "nothing may be written with bad credentials");
}

#[test]
fn unusable_addresses_are_clear_errors() {
    for (out, env, msg) in [
        ("az://c/p", vec![("AZURE_STORAGE_ACCOUNT_KEY", KEY)], "no storage account"),
        ("http://example.com/acct/c/p", vec![], "plain http"),
        ("az://", vec![], "no container"),
    ] {
        let o = run_tf(&["mesh", SAMPLE, "--out", out], &env);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(stderr(&o).contains(msg), "{out}: {}", stderr(&o));
    }
}

/// Issue #11: a Cloud-Optimized GeoTIFF on blob storage is meshed in place — header and the blocks it needs by
/// ranged GETs, never downloaded whole or hashed (its ETag identifies it) — to the same tiles as the local file; the
/// manifest counts the bytes read, and with one thread each block is fetched once.
#[test]
fn cog_on_blob_storage_meshes_like_the_local_file() {
    let Some(az) = Azurite::shared() else { return };
    if !std::process::Command::new("gdal_translate").arg("--version").output().is_ok_and(|o| o.status.success()) {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "gdal_translate is missing (CI=true)");
        eprintln!("note: gdal_translate not found; skipping");
        return;
    }
    let c = az.container("cog");
    let cs = az.connection_string();
    let d = tempfile::tempdir().unwrap();
    let raw = d.path().join("dem.f32");
    assert!(run(&["synth", "--size", "1025x769", "--seed", "9", raw.to_str().unwrap()]).status.success());
    envi_header(d.path(), "dem", 1025, 769);
    // With overviews (GDAL's default for a COG; terrafarm never reads them) and without.
    for overviews in ["AUTO", "NONE"] {
        let cog = d.path().join(format!("dem-{overviews}.tif"));
        let o = std::process::Command::new("gdal_translate")
            .args(["-q", "-of", "COG", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=YES", "-co", "BLOCKSIZE=256", "-co", &format!("OVERVIEWS={overviews}")])
            .args(["-a_srs", "EPSG:32633", "-a_ullr", "500000", "5000000", "510250", "4992310", raw.to_str().unwrap(), cog.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let size = std::fs::metadata(&cog).unwrap().len();
        az.put(&c, "dem/dem.tif", &std::fs::read(&cog).unwrap());
        let want = local_tree(&["mesh", cog.to_str().unwrap(), "--max-error", "2", "--tile-size", "128", "-j", "1", "--scene", "dem"]);
        let out = d.path().join(format!("from-blob-{overviews}"));
        let blob = format!("az://{c}/dem/dem.tif");
        let o = run_tf(
            &["mesh", &blob, "--max-error", "2", "--tile-size", "128", "-j", "1", "--out", out.to_str().unwrap()],
            &[("AZURE_STORAGE_CONNECTION_STRING", &cs)],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let got = tree(&out);
        assert_same_scene_apart_from_input_identity(&got, &want);
        // The manifest as written (tree() leaves out its per-run section, where the bytes fetched are).
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("dem/manifest.json")).unwrap()).unwrap();
        assert!(m["input"]["etag"].is_string() && m["input"]["sha256"].is_null(), "{}", m["input"]);
        assert_eq!(m["georef"]["epsg"], 32633);
        assert_eq!(m["cell_size"]["metres"], serde_json::json!([10.0, 10.0]));
        let fetched = m["run"]["bytes_fetched"].as_u64().unwrap();
        println!("COG (overviews {overviews}) of {size} bytes: {fetched} bytes fetched ({:.3}x)", fetched as f64 / size as f64);
        // Every full-resolution block once plus the header page (64 KiB): nothing read twice, no download
        // for a hash; without overviews that is nearly the whole file, with them the overviews stay unread.
        assert!(fetched <= size + 128 * 1024, "{fetched} bytes fetched for a {size}-byte COG");
        if overviews == "NONE" {
            assert!(fetched >= size * 95 / 100, "{fetched} bytes fetched for a {size}-byte COG without overviews");
        } else {
            assert!(fetched < size, "overviews were read: {fetched} of {size} bytes");
        }
    }
}

/// `mesh --preview` on blob output, and `render` of a blob scene: the PNGs land next to the tiles in the
/// container, through the store, equal to the local run's images.
#[test]
fn render_reads_and_writes_blob_scenes() {
    let Some(az) = Azurite::shared() else { return };
    match terrafarm::render::gpu::Gpu::new() {
        Ok(_) => {}
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("no GPU adapter under CI=true: {e:#}"),
        Err(e) => return eprintln!("note: skipping, no GPU adapter: {e:#}"),
    }
    let c = az.container("render");
    let cs = az.connection_string();
    let env = [("AZURE_STORAGE_CONNECTION_STRING", cs.as_str())];
    let out = format!("az://{c}/run");
    let o = run_tf(&["mesh", SAMPLE, "--out", &out, "--format", "glb", "--max-error", "2", "--preview"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_tf(&["render", &format!("{out}/synth-513"), "--camera", "oblique", "--style", "hypsometric"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = az.list(&c).into_iter().map(|(n, _)| n).collect();
    for want in ["run/synth-513/preview.png", "run/synth-513/renders/oblique-hypsometric.png"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let m: serde_json::Value = serde_json::from_slice(&az.get(&c, "run/synth-513/manifest.json")).unwrap();
    assert_eq!(m["preview"]["bytes"], az.get(&c, "run/synth-513/preview.png").len());

    let local = local_tree(&["mesh", SAMPLE, "--format", "glb", "--max-error", "2", "--preview"]);
    let decode = |b: &[u8]| image::load_from_memory(b).unwrap().to_rgb8().into_raw();
    assert!(decode(&local["synth-513/preview.png"]) == decode(&az.get(&c, "run/synth-513/preview.png")), "blob preview differs from the local one");
}
