//! Helpers shared by the integration tests: running the binary, reading GLBs back, finding the shared terrain.
#![allow(dead_code)]

pub mod azurite;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_terrafarm"))
}

/// Runs terrafarm to completion. Under CI (`TERRAFARM_KEEP_GLB` set) every GLB a `mesh` run wrote is copied there
/// for the Khronos validator pass in `.ci/run`.
pub fn run(args: &[&str]) -> Output {
    run_with(args, None)
}

/// As [`run`], with PROJ's data (where terrafarm looks for geoid grids) in `proj_data`, and no user folder of grids.
pub fn run_with(args: &[&str], proj_data: Option<&Path>) -> Output {
    let mut c = bin();
    if let Some(d) = proj_data {
        c.env("PROJ_DATA", d).env_remove("PROJ_LIB").env("XDG_DATA_HOME", d);
    }
    let out = c.args(args).output().expect("run terrafarm");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "terrafarm panicked:\n{err}");
    if args.first() == Some(&"mesh") {
        if let Some(dir) = args.iter().position(|a| *a == "--out" || *a == "-o").and_then(|i| args.get(i + 1)) {
            keep_glbs(Path::new(dir));
        }
    }
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn keep_glbs(from: &Path) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if let Ok(dst) = std::env::var("TERRAFARM_KEEP_GLB") {
        if from.is_dir() {
            let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tag = format!("{}-{}-{n}", std::process::id(), std::thread::current().name().unwrap_or("t").replace("::", "-"));
            copy_glbs(from, &Path::new(&dst).join(tag));
        }
    }
}

fn copy_glbs(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_glbs(&p, &to.join(e.file_name()));
        } else if p.extension().is_some_and(|x| x == "glb") {
            std::fs::create_dir_all(to).unwrap();
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The shared real-terrain folder (`../shared/data` beside the repository, or `TERRAFARM_SHARED_DATA`).
/// Under CI (`CI=true`) a missing file fails the test loudly; elsewhere the test is skipped with a note.
pub fn shared(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("TERRAFARM_SHARED_DATA").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let p = dir.join(name);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("shared test data {} is missing (CI=true): tests that need real terrain must not skip", p.display());
    }
    eprintln!("note: {} not found; skipping (set CI=true to make this fatal)", p.display());
    None
}

/// A GLB read back through its JSON and BIN chunks.
#[derive(Debug)]
pub struct Glb {
    pub json: serde_json::Value,
    pub translation: [f64; 3],
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub uvs: Vec<[f32; 2]>,
    pub indices: Vec<u32>,
}

pub fn read_glb(bytes: &[u8]) -> Glb {
    assert_eq!(&bytes[0..4], b"glTF");
    let jl = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let json: serde_json::Value = serde_json::from_slice(&bytes[20..20 + jl]).unwrap();
    let bin = &bytes[28 + jl..];
    let view = |acc: usize| {
        let a = &json["accessors"][acc];
        let v = &json["bufferViews"][a["bufferView"].as_u64().unwrap() as usize];
        let off = v["byteOffset"].as_u64().unwrap_or(0) as usize;
        let len = v["byteLength"].as_u64().unwrap() as usize;
        (&bin[off..off + len], a["componentType"].as_u64().unwrap())
    };
    let f32s = |b: &[u8]| b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<f32>>();
    let prim = &json["meshes"][0]["primitives"][0];
    let (p, _) = view(prim["attributes"]["POSITION"].as_u64().unwrap() as usize);
    let (n, _) = view(prim["attributes"]["NORMAL"].as_u64().unwrap() as usize);
    let (t, _) = view(prim["attributes"]["TEXCOORD_0"].as_u64().unwrap() as usize);
    let (i, ct) = view(prim["indices"].as_u64().unwrap() as usize);
    let indices = if ct == 5123 {
        i.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32).collect()
    } else {
        i.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
    };
    let tr = &json["nodes"][0]["translation"];
    let translation = [0, 1, 2].map(|k| tr[k].as_f64().unwrap());
    Glb {
        positions: f32s(p).chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
        normals: f32s(n).chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
        uvs: f32s(t).chunks_exact(2).map(|c| [c[0], c[1]]).collect(),
        indices,
        translation,
        json,
    }
}

/// Every file under `dir`, relative path → bytes (manifest's run section removed), for byte comparisons.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                let mut bytes = std::fs::read(&p).unwrap();
                if rel.ends_with("manifest.json") {
                    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    v.as_object_mut().unwrap().remove("run");
                    bytes = serde_json::to_vec(&v).unwrap();
                }
                out.insert(rel, bytes);
            }
        }
    }
    let mut m = std::collections::BTreeMap::new();
    walk(dir, dir, &mut m);
    m
}

pub fn write_gray16_png(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u16) {
    let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(w, h, |x, y| image::Luma([f(x, y)]));
    img.save(path).unwrap();
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// A tile record (or a list of them) without its resume key: what stays equal when only the input's identity
/// differs (a blob input is identified by its ETag, a local file by its SHA-256).
pub fn without_keys(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(without_keys).collect()),
        serde_json::Value::Object(o) => serde_json::Value::Object(o.iter().filter(|(k, _)| k.as_str() != "key").map(|(k, v)| (k.clone(), v.clone())).collect()),
        v => v.clone(),
    }
}

/// Compares two scene trees file by file: tile files byte for byte, tile records and the manifest's tile list
/// without their resume keys (for runs whose inputs differ only in how they are identified).
pub fn assert_same_scene_apart_from_input_identity(got: &std::collections::BTreeMap<String, Vec<u8>>, want: &std::collections::BTreeMap<String, Vec<u8>>) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, v) in want {
        if k.ends_with(".json") {
            let (g, w): (serde_json::Value, serde_json::Value) = (serde_json::from_slice(&got[k]).unwrap(), serde_json::from_slice(v).unwrap());
            if k.ends_with("manifest.json") {
                assert_eq!(without_keys(&g["tiles"]), without_keys(&w["tiles"]), "{k}");
                assert_eq!(g["params"], w["params"], "{k}");
            } else {
                assert_eq!(without_keys(&g), without_keys(&w), "{k}");
            }
        } else {
            assert!(&got[k] == v, "{k} differs");
        }
    }
}

/// Writes the ENVI header that lets GDAL read `<dir>/<name>.f32` (raw little-endian f32, `w × h`).
pub fn envi_header(dir: &Path, name: &str, w: usize, h: usize) {
    std::fs::write(
        dir.join(format!("{name}.hdr")),
        format!("ENVI\nsamples = {w}\nlines = {h}\nbands = 1\nheader offset = 0\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"),
    )
    .unwrap();
}

/// True when GDAL's tools are installed; under CI=true their absence fails the test.
pub fn gdal_available() -> bool {
    let ok = Command::new("gdal_translate").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "gdal_translate is missing (CI=true): install gdal-bin");
        eprintln!("note: gdal_translate not found; skipping (apt-get install gdal-bin)");
    }
    ok
}

/// Runs a GDAL tool and returns its stdout; a failure fails the test.
pub fn gdal(tool: &str, args: &[&str]) -> String {
    let o = Command::new(tool).args(args).output().unwrap();
    assert!(o.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a GDAL tool with `input` on its stdin (`gdaltransform`'s points) and returns its stdout; a failure fails
/// the test. With `proj_data`, PROJ reads its data from there ([`proj_without_grids`]).
pub fn gdal_input(tool: &str, args: &[&str], input: &str, proj_data: Option<&Path>) -> String {
    use std::io::Write;
    let mut c = Command::new(tool);
    if let Some(d) = proj_data {
        c.env("PROJ_DATA", d).env("PROJ_LIB", d).env("PROJ_NETWORK", "OFF");
    }
    let mut c = c.args(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    // Written from a thread while the output is read: a long input would otherwise fill both pipes and stall.
    let mut stdin = c.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let o = c.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success(), "{tool} {args:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// A raw little-endian f32 raster with the ENVI header GDAL needs to read it.
pub fn envi(dir: &Path, name: &str, data: &[f32], w: usize, h: usize) -> PathBuf {
    let p = dir.join(format!("{name}.f32"));
    std::fs::write(&p, data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    envi_header(dir, name, w, h);
    p
}

/// A PROJ data directory holding PROJ's database and no transformation grid (a link to the `proj.db` on
/// `projinfo`'s search path), for GDAL tools to transform as they do where no grid is installed.
pub fn proj_without_grids() -> tempfile::TempDir {
    let o = Command::new("projinfo").arg("--searchpaths").output().expect("projinfo (gdal-bin)");
    let db =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| Path::new(l.trim()).join("proj.db")).find(|p| p.exists()).expect("proj.db on PROJ's search path");
    let d = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(db, d.path().join("proj.db")).unwrap();
    d
}

/// As [`proj_without_grids`], with the EGM96 geoid grid PROJ's data holds (`us_nga_egm96_15.tif` or the older
/// `egm96_15.gtx`, linked under its own name) and no other: GDAL's tools and terrafarm then convert EGM96 heights
/// (EPSG:5773) alike, and shift datums as where no horizontal grid is installed. Fails where PROJ's data has no
/// EGM96 grid (Debian's proj-data has it).
pub fn proj_with_egm96() -> (tempfile::TempDir, PathBuf) {
    let d = proj_without_grids();
    let o = Command::new("projinfo").arg("--searchpaths").output().expect("projinfo (gdal-bin)");
    let grid = String::from_utf8_lossy(&o.stdout)
        .lines()
        .flat_map(|l| ["us_nga_egm96_15.tif", "egm96_15.gtx"].map(|n| Path::new(l.trim()).join(n)))
        .find(|p| p.exists())
        .expect("the EGM96 geoid grid (us_nga_egm96_15.tif or egm96_15.gtx) on PROJ's search path: install proj-data");
    let link = d.path().join(grid.file_name().unwrap());
    std::os::unix::fs::symlink(&grid, &link).unwrap();
    (d, link)
}
