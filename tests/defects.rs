//! Regression tests for the defects of issue #12, each run through the binary as a user would (items 6 and 11 are
//! in tests/mpi_faults.rs and tests/cli.rs). Each test names the item it guards.

mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png");

/// (global column, row) → world position bits (translation + local, in f64 as a viewer adds them), from every GLB
/// under `tiles`; panics on two different positions for one sample. Returns how many samples were shared.
fn world_seams(tiles: &Path, cell: [f64; 2]) -> usize {
    let mut seen: HashMap<(i64, i64), ([u64; 3], String)> = HashMap::new();
    let mut shared = 0;
    let mut differ = Vec::new();
    for e in std::fs::read_dir(tiles).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "glb") {
            continue;
        }
        let g = read_glb(&std::fs::read(&p).unwrap());
        for pos in &g.positions {
            let w = [g.translation[0] + pos[0] as f64, g.translation[1] + pos[1] as f64, g.translation[2] + pos[2] as f64];
            let key = ((w[0] / cell[0]).round() as i64, (w[2] / cell[1]).round() as i64);
            let v = w.map(f64::to_bits);
            match seen.get(&key) {
                Some(prev) => {
                    shared += 1;
                    if prev.0 != v {
                        differ.push(format!("{key:?}: {:?} in {} vs {:?} in {}", prev.0.map(f64::from_bits), prev.1, w, p.display()));
                    }
                }
                None => {
                    seen.insert(key, (v, p.display().to_string()));
                }
            }
        }
    }
    assert!(differ.is_empty(), "{} shared vertices differ in world position, e.g. {}", differ.len(), differ[0]);
    shared
}

/// Item 1: world-space seams hold bit for bit at non-dyadic cell sizes — 0.7 m and a cell derived from degrees
/// (1 arc-second east–west at 35.36° N on the WGS84 ellipsoid) — for full grids and simplified tiles.
#[test]
fn world_positions_meet_exactly_at_non_dyadic_cells() {
    let d = tempfile::tempdir().unwrap();
    let lat = 35.36f64.to_radians();
    let (a, e2) = (6_378_137.0f64, 0.006_694_379_990_14f64);
    let arcsec_ew = a * lat.cos() / (1.0 - e2 * lat.sin().powi(2)).sqrt() * (1.0f64 / 3600.0).to_radians();
    for (i, cell) in [[0.7, 0.7], [arcsec_ew, 30.87]].into_iter().enumerate() {
        for extra in [vec![], vec!["--max-error", "2"]] {
            let out = d.path().join(format!("o{i}-{}", extra.len()));
            let cs = format!("{},{}", cell[0], cell[1]);
            let mut args = vec!["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--tile-size", "64", "--format", "glb", "--cell-size", &cs];
            args.extend(extra.iter().copied());
            let o = run(&args);
            assert!(o.status.success(), "{}", stderr(&o));
            let shared = world_seams(&out.join("synth-513/tiles"), cell);
            // 8×8 tiles: every one of the 112 shared borders holds at least its two end samples.
            assert!(shared >= 112, "cell {cell:?} {extra:?}: only {shared} shared vertices");
        }
    }
}

fn rgb_png(path: &Path) {
    let img = image::RgbImage::from_fn(129, 97, |x, y| image::Rgb([1, (x * 2) as u8, (y * 2) as u8]));
    img.save(path).unwrap();
}

fn resumed(o: &std::process::Output) -> u64 {
    assert!(o.status.success(), "{}", stderr(o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    s["scenes"][0]["resumed_tiles"].as_u64().unwrap()
}

/// Item 2: `--resume` reuses a tile only when the encoding, the raster size and the output format version match
/// too, not just the input bytes and flags.
#[test]
fn resume_key_covers_encoding_size_and_format_version() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = out.to_str().unwrap();
    // Encoding: terrain-RGB tiles are not reused for a Terrarium run of the same file.
    let png = d.path().join("rgb.png");
    rgb_png(&png);
    let p = png.to_str().unwrap();
    assert_eq!(resumed(&run(&["mesh", p, "--encoding", "terrain-rgb", "--out", o, "--tile-size", "64", "--resume", "--json"])), 0);
    assert_eq!(resumed(&run(&["mesh", p, "--encoding", "terrain-rgb", "--out", o, "--tile-size", "64", "--resume", "--json"])), 4);
    assert_eq!(resumed(&run(&["mesh", p, "--encoding", "terrarium", "--out", o, "--tile-size", "64", "--resume", "--json"])), 0);
    let fresh = d.path().join("fresh");
    assert!(run(&["mesh", p, "--encoding", "terrarium", "--out", fresh.to_str().unwrap(), "--tile-size", "64"]).status.success());
    assert!(tree(&out.join("rgb/tiles")) == tree(&fresh.join("rgb/tiles")), "resumed run differs from a fresh terrarium run");

    // Size: the same raw bytes read as 256x512 are not the tiles of 512x256.
    let raw = d.path().join("r.f32");
    std::fs::write(&raw, (0..256 * 512).flat_map(|i| ((i % 977) as f32).to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let r = raw.to_str().unwrap();
    assert_eq!(resumed(&run(&["mesh", r, "--size", "512x256", "--out", o, "--tile-size", "128", "--resume", "--json"])), 0);
    assert_eq!(resumed(&run(&["mesh", r, "--size", "512x256", "--out", o, "--tile-size", "128", "--resume", "--json"])), 8);
    assert_eq!(resumed(&run(&["mesh", r, "--size", "256x512", "--out", o, "--tile-size", "128", "--resume", "--json"])), 0);

    // Format version: tile records as a binary of the previous output format version would have keyed them for
    // this very input and these parameters are not reused.
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("r/manifest.json")).unwrap()).unwrap();
    let facts = terrafarm::pipeline::InputFacts {
        width: 256,
        height: 512,
        content_id: format!("sha256:{}", m["input"]["sha256"].as_str().unwrap()),
        bytes: m["input"]["bytes"].as_u64().unwrap(),
        encoding: m["input"]["encoding"].as_str().unwrap().into(),
        windowed: true,
        georef: None,
        cell: serde_json::from_value(m["cell_size"].clone()).unwrap(),
        z_scale: serde_json::from_value(m["z_scale"].clone()).unwrap(),
        sidecars: Vec::new(),
    };
    let params: terrafarm::manifest::ParamsRecord = serde_json::from_value(m["params"].clone()).unwrap();
    let now = terrafarm::pipeline::output_key(terrafarm::pipeline::OUTPUT_FORMAT_VERSION, &facts, &params).unwrap();
    assert_eq!(m["key"], now.as_str(), "the key is the one output_key computes");
    let older = terrafarm::pipeline::output_key(terrafarm::pipeline::OUTPUT_FORMAT_VERSION - 1, &facts, &params).unwrap();
    for e in std::fs::read_dir(out.join("r/tiles")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(e.path()).unwrap().replace(&now, &older);
            std::fs::write(e.path(), text).unwrap();
        }
    }
    assert_eq!(resumed(&run(&["mesh", r, "--size", "256x512", "--out", o, "--tile-size", "128", "--resume", "--json"])), 0);
}

fn npy_f8(w: usize, h: usize, v: impl Fn(usize) -> f64) -> Vec<u8> {
    let header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({h}, {w}), }}");
    let mut hd = header.into_bytes();
    while (10 + hd.len() + 1) % 64 != 0 {
        hd.push(b' ');
    }
    hd.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(hd.len() as u16).to_le_bytes());
    out.extend_from_slice(&hd);
    for i in 0..w * h {
        out.extend_from_slice(&v(i).to_le_bytes());
    }
    out
}

/// Every accessor min/max in the GLB is a finite number.
fn finite_bounds(glb: &[u8]) {
    let g = read_glb(glb);
    for a in g.json["accessors"].as_array().unwrap() {
        for k in ["min", "max"] {
            if let Some(v) = a.get(k) {
                assert!(v.as_array().unwrap().iter().all(|x| x.as_f64().is_some_and(f64::is_finite)), "{k} = {v}");
            }
        }
    }
    assert!(g.positions.iter().flatten().chain(g.normals.iter().flatten()).all(|v| v.is_finite()));
}

/// Item 3: infinite heights (raw f32, f8 `.npy`) and heights that overflow after `--z-scale` are holes, exactly like
/// NaN: the run succeeds and every GLB has finite bounds (CI runs the Khronos validator over them too).
#[test]
fn infinite_heights_are_holes() {
    let d = tempfile::tempdir().unwrap();
    let (w, h) = (70usize, 50usize);
    let special = |i: usize| match i % 97 {
        3 => Some(f64::INFINITY),
        50 => Some(f64::NEG_INFINITY),
        _ => None,
    };
    let raw = d.path().join("inf.f32");
    std::fs::write(&raw, (0..w * h).flat_map(|i| (special(i).unwrap_or((i % 31) as f64) as f32).to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let npy = d.path().join("inf8.npy");
    std::fs::write(&npy, npy_f8(w, h, |i| special(i).unwrap_or((i % 31) as f64))).unwrap();
    let big = d.path().join("big.f32");
    std::fs::write(&big, (0..w * h).flat_map(|i| (if i % 97 == 3 { 3.0e38f32 } else { (i % 31) as f32 }).to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let holes_per_raster = (0..w * h).filter(|i| special(*i).is_some()).count();
    for (input, extra) in [(&raw, vec!["--size", "70x50"]), (&npy, vec![]), (&big, vec!["--size", "70x50", "--z-scale", "10"])] {
        for simplify in [vec![], vec!["--max-error", "1"]] {
            let out = d.path().join(format!("o-{}-{}", input.file_name().unwrap().to_str().unwrap(), simplify.len()));
            let mut args = vec!["mesh", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--tile-size", "32"];
            args.extend(extra.iter().copied());
            args.extend(simplify.iter().copied());
            let o = run(&args);
            assert!(o.status.success(), "{input:?}: {}", stderr(&o));
            let scene = out.join(input.file_stem().unwrap());
            let m: serde_json::Value = serde_json::from_slice(&std::fs::read(scene.join("manifest.json")).unwrap()).unwrap();
            let nodata: u64 = m["tiles"].as_array().unwrap().iter().map(|t| t["nodata_samples"].as_u64().unwrap()).sum();
            let expect = if input == &big { (0..w * h).filter(|i| i % 97 == 3).count() } else { holes_per_raster };
            assert!(nodata >= expect as u64, "{input:?}: {nodata} no-data samples counted, {expect} expected at least");
            for e in std::fs::read_dir(scene.join("tiles")).unwrap().flatten() {
                if e.path().extension().is_some_and(|x| x == "glb") {
                    finite_bounds(&std::fs::read(e.path()).unwrap());
                }
            }
        }
    }
}

/// After #12 (found by fuzzing): a float DEM whose voids hold -3.4028235e38 without declaring it (no no-data tag) meshed
/// to spikes 3e38 m deep with infinite slopes, and its GLBs failed the glTF validator (non-unit normals). Heights beyond
/// ±1e9 m are now holes, with one warning naming the value and `--nodata`: the tiles are those of a run that declares
/// it. `info` shows the value in exponent form with the same advice, and `--z-scale`/`--z-offset` are bounded so that
/// no height within the bound can overflow a slope. int16's -32768, undeclared, stays a height but is warned about.
#[test]
fn undeclared_fill_values_are_holes_with_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let (w, h) = (70usize, 50usize);
    let fill = d.path().join("fill.f32");
    let heights = |i: usize| if i % 89 == 5 || (20..24).contains(&(i / w)) && (10..30).contains(&(i % w)) { f32::MIN } else { 300.0 + ((i * 7) % 53) as f32 };
    std::fs::write(&fill, (0..w * h).flat_map(|i| heights(i).to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let f = fill.to_str().unwrap();
    let mesh = |out: &str, extra: &[&str]| {
        let out = d.path().join(out);
        let mut args = vec!["mesh", f, "--size", "70x50", "--out", out.to_str().unwrap(), "--tile-size", "32", "--format", "glb,obj"];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        (tree(&out.join("fill/tiles")), stderr(&o))
    };
    for extra in [&[][..], &["--max-error", "0.5"]] {
        let (got, err) = mesh(&format!("u{}", extra.len()), extra);
        let warnings = err.matches("beyond ±1e9 m").count();
        assert_eq!(warnings, 1, "one warning per input: {err}");
        assert!(err.contains("-3.4028235e38") && err.contains("--nodata -3.4028235e38"), "{err}");
        let (want, err) = mesh(&format!("d{}", extra.len()), &[extra, &["--nodata", "-3.4028235e38"]].concat());
        assert!(!err.contains("beyond ±1e9 m"), "{err}");
        // The tiles' own records differ (their key covers --nodata); the meshes do not.
        let meshes = |t: &std::collections::BTreeMap<String, Vec<u8>>| t.clone().into_iter().filter(|(n, _)| !n.ends_with(".json")).collect::<Vec<_>>();
        assert!(meshes(&got) == meshes(&want) && meshes(&got).len() == 12, "undeclared fill meshed unlike the declared no-data");
        for (name, bytes) in &got {
            if name.ends_with(".glb") {
                finite_bounds(bytes);
                let g = read_glb(bytes);
                assert!(g.positions.iter().all(|p| (300.0..353.0).contains(&(g.translation[1] + p[1] as f64))), "{name}: a vertex outside the valid heights");
                assert!(g.normals.iter().all(|n| (n.iter().map(|c| c * c).sum::<f32>() - 1.0).abs() < 1e-5), "{name}");
            }
        }
    }
    // Out of range after scaling: 300..353 × 3e6 passes 1e9 m from 333.4 up.
    let (got, _) = mesh("scaled", &["--z-scale", "3e6", "--nodata", "-3.4028235e38"]);
    let tops = got
        .iter()
        .filter(|(n, _)| n.ends_with(".glb"))
        .flat_map(|(_, b)| {
            let g = read_glb(b);
            g.positions.into_iter().map(move |p| g.translation[1] + p[1] as f64)
        })
        .fold(f64::MIN, f64::max);
    assert!(tops > 0.9e9 && tops <= 1e9, "highest vertex {tops}");
    let o = run(&["info", f, "--size", "70x50"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("values: -3.4028235e38 .. 352") && text.contains("pass --nodata -3.4028235e38"), "{text}");
    for bad in [["--z-scale", "1e-10"], ["--z-scale", "-2e9"], ["--z-offset", "1.5e9"], ["--z-offset", "nan"]] {
        let o = run(&["mesh", f, "--size", "70x50", "--out", d.path().join("x").to_str().unwrap(), bad[0], bad[1]]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--z-scale must be between 1e-9 and 1e9"), "{}", stderr(&o));
    }
    assert!(!d.path().join("x").exists());

    // int16's -32768 (SRTM's void) undeclared is a valid height, so it is meshed, but with one warning and a note in
    // `info`; declared, it is a hole and nothing is said.
    let i16_path = d.path().join("void.i16");
    std::fs::write(&i16_path, (0..w * h).flat_map(|i| (if i % 89 == 5 { i16::MIN } else { 300 + (i % 53) as i16 }).to_le_bytes()).collect::<Vec<u8>>())
        .unwrap();
    let p = i16_path.to_str().unwrap();
    for (extra, warned) in [(&[][..], true), (&["--nodata", "-32768"][..], false)] {
        let out = d.path().join(format!("i16-{warned}"));
        let o = run(&[&["mesh", p, "--size", "70x50", "--out", out.to_str().unwrap(), "--tile-size", "32"][..], extra].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stderr(&o).matches("samples of -32768 (int16's lowest value").count(), warned as usize, "{}", stderr(&o));
        assert_eq!(stderr(&o).contains("pass --nodata -32768"), warned, "{}", stderr(&o));
    }
    let o = run(&["info", p, "--size", "70x50"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("-32768: int16's lowest value") && text.contains("pass --nodata -32768"), "{text}");
}

/// Item 4: `--max-triangles` is a hard cap on every tile, and neighbouring tiles still meet exactly.
#[test]
fn max_triangles_is_a_hard_cap_with_seams() {
    let d = tempfile::tempdir().unwrap();
    for cap in ["400", "37", "2"] {
        let out = d.path().join(format!("o{cap}"));
        let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--tile-size", "128", "--format", "glb", "--max-error", "0.1", "--max-triangles", cap]);
        assert!(o.status.success(), "{}", stderr(&o));
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("synth-513/manifest.json")).unwrap()).unwrap();
        let cap: u64 = cap.parse().unwrap();
        for t in m["tiles"].as_array().unwrap() {
            let n = t["triangles"].as_u64().unwrap();
            assert!(n <= cap, "tile ({}, {}) has {n} triangles, cap {cap}", t["col"], t["row"]);
            assert!(cap < 10 || n + 2 > cap / 2, "tile ({}, {}) stopped far below the cap: {n} of {cap}", t["col"], t["row"]);
        }
        let tiles = out.join("synth-513/tiles");
        world_seams(&tiles, [1.0, 1.0]);
        // No T-junctions: a vertex on a shared border line is a vertex of both tiles.
        let mut on_line: HashMap<(usize, i64, i64), Vec<Vec<i64>>> = HashMap::new();
        for e in std::fs::read_dir(&tiles).unwrap().flatten() {
            if e.path().extension().is_none_or(|x| x != "glb") {
                continue;
            }
            let g = read_glb(&std::fs::read(e.path()).unwrap());
            let pts: Vec<[i64; 2]> = g.positions.iter().map(|p| [(g.translation[0] + p[0] as f64) as i64, (g.translation[2] + p[2] as f64) as i64]).collect();
            let (x0, z0) = (g.translation[0] as i64, g.translation[2] as i64);
            for (axis, line) in [(0usize, x0), (0, x0 + 128), (1, z0), (1, z0 + 128)] {
                if line == 0 || line == 512 {
                    continue;
                }
                let mut v: Vec<i64> = pts.iter().filter(|p| p[axis] == line).map(|p| p[1 - axis]).collect();
                v.sort();
                v.dedup();
                let along = if axis == 0 { z0 } else { x0 };
                on_line.entry((axis, line, along)).or_default().push(v);
            }
        }
        assert_eq!(on_line.len(), 2 * 3 * 4, "shared border segments of a 4x4 tiling");
        for (seg, sides) in on_line {
            assert_eq!(sides.len(), 2, "{seg:?}");
            assert_eq!(sides[0], sides[1], "border vertices differ between the two tiles of {seg:?} (cap {cap})");
        }
    }
}

/// Item 5: a tile size whose GLB could pass 4 GiB is refused up front (exit 2, before any allocation), naming the
/// limit and the largest tile size that fits.
#[test]
fn tiles_too_big_for_one_glb_are_refused_up_front() {
    let d = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let o = run(&["mesh", SAMPLE, "--out", d.path().join("o").to_str().unwrap(), "--tile-size", "16384"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let max = terrafarm::encode::glb::max_tile_size();
    assert!(stderr(&o).contains("4 GiB") && stderr(&o).contains(&max.to_string()), "{}", stderr(&o));
    assert!((8000..9000).contains(&max), "largest tile size {max}");
    assert!(t0.elapsed().as_secs() < 5);
    assert!(!d.path().join("o").exists(), "nothing written");
    // The largest size that fits is accepted; OBJ-only output has no such limit.
    assert!(terrafarm::encode::glb::worst_case_bytes(max) <= u32::MAX as u64 && terrafarm::encode::glb::worst_case_bytes(max + 1) > u32::MAX as u64);
}

/// Item 7: a single process inside a Slurm allocation (`sbatch -n 4`: SLURM_NTASKS and PMI_SIZE set for the whole
/// allocation) runs; one of several processes started by a launcher is still refused by a build without MPI.
#[test]
fn slurm_allocation_variables_do_not_refuse_a_single_run() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = bin()
        .args(["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--format", "glb"])
        .envs([("SLURM_NTASKS", "4"), ("SLURM_NPROCS", "4"), ("SLURM_JOB_ID", "4242"), ("PMI_SIZE", "4"), ("SLURM_PROCID", "0")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("synth-513/manifest.json").exists());
    if !cfg!(feature = "mpi") {
        let o =
            bin().args(["mesh", SAMPLE, "--out", out.to_str().unwrap()]).envs([("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_RANK", "1")]).output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("launched as one of 4 processes"), "{}", stderr(&o));
    }
}

const FAKE_JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJzdG9yYWdlIn0.ZmFrZS1zaWduYXR1cmUtZm9yLXRlc3Rz";

/// Item 9: a bearer token reaching an error message, and a panic message carrying secrets, are never printed.
#[test]
fn bearer_tokens_and_panic_messages_are_redacted() {
    // An error message that quotes a token (here through the input's name) goes through the redactor.
    let o = run(&["mesh", &format!("/nonexistent/Bearer {FAKE_JWT}.f32"), "--out", "/nonexistent-out", "--size", "4x4"]);
    assert!(!o.status.success());
    let text = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    assert!(!text.contains("ZmFrZS1zaWduYXR1cmU") && text.contains("REDACTED"), "{text}");
    // A panic: the hook terrafarm installs prints the message redacted.
    let me = std::env::current_exe().unwrap();
    let o = std::process::Command::new(me).args(["--exact", "panic_child", "--nocapture", "--test-threads", "1"]).env("TF_PANIC_CHILD", "1").output().unwrap();
    let text = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    assert!(text.contains("internal error (panic)"), "{text}");
    assert!(!text.contains("ZmFrZS1zaWduYXR1cmU") && !text.contains("NOTAREALSIG"), "{text}");
}

/// Runs only as the child of the test above: panics through terrafarm's panic hook.
#[test]
fn panic_child() {
    if std::env::var_os("TF_PANIC_CHILD").is_none() {
        return;
    }
    terrafarm::redact::install_panic_hook(false);
    panic!("request to https://acct.blob.core.windows.net/c/x?sv=1&sig=NOTAREALSIG%3D failed with Authorization: Bearer {FAKE_JWT}");
}

/// Item 10: usage errors of `synth` and `bench` exit 2 as documented; `--spot` takes yes/no; an explicit `--log`
/// wins over RUST_LOG; `bench --size` means the raw input's size, as for `mesh`.
#[test]
fn usage_errors_spot_log_and_bench_size() {
    for args in [
        vec!["synth", "--size", "1x9", "x.png"],
        vec!["synth", "--size", "9x9", "x.txt"],
        vec!["synth", "--relief=-1", "x.png"],
        vec!["bench", "--max-error", "fast"],
        vec!["bench", "--threads", "0"],
        vec!["bench", "--tile-size", "1"],
        vec!["bench", "--synth-size", "bad"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("usage error"), "{args:?}: {}", stderr(&o));
    }
    let d = tempfile::tempdir().unwrap();
    for (v, spot) in [("yes", true), ("no", false), ("true", true)] {
        let o = run(&["batch", "plan", "--workload", "scenes", "--env", "dev", "--spot", v, "--json"]);
        assert!(o.status.success(), "--spot {v}: {}", stderr(&o));
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(p["spot"], spot, "--spot {v}");
    }
    assert_eq!(run(&["batch", "plan", "--workload", "scenes", "--spot", "maybe"]).status.code(), Some(2));
    let o = bin()
        .args(["--log", "info", "mesh", SAMPLE, "--out", d.path().join("o").to_str().unwrap(), "--format", "glb"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(o.status.success() && stderr(&o).contains("scene 'synth-513'"), "--log info lost to RUST_LOG: {}", stderr(&o));
    let raw = d.path().join("b.f32");
    assert!(run(&["synth", "--size", "65x33", raw.to_str().unwrap()]).status.success());
    let o = run(&[
        "bench",
        "--input",
        raw.to_str().unwrap(),
        "--size",
        "65x33",
        "--tile-size",
        "16",
        "--max-error",
        "grid",
        "--threads",
        "1",
        "--repeat",
        "1",
        "--no-end-to-end",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(65), Some(33)));
    // --decode-only: just the input's open + decode time (what benches/geotiff.sh compares with gdal_translate).
    let o = run(&["bench", "--input", raw.to_str().unwrap(), "--size", "65x33", "--decode-only", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["decode_s"].as_f64().unwrap() > 0.0 && r["width"] == 65, "{r}");
}
