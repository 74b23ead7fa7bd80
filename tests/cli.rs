//! Runs the binary the way a user does (issue #2: the single-node pipeline).

mod common;
use common::*;
use std::path::Path;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png");

#[test]
fn readme_sample_command_meshes_four_tiles() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["tiles"], 4);
    assert_eq!(summary["triangles"], 512 * 512 * 2);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("synth-513/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["raster"], serde_json::json!([513, 513]));
    assert_eq!(m["tiles"].as_array().unwrap().len(), 4);
    assert_eq!(m["input"]["encoding"], "gray");
    assert_eq!(m["input"]["sha256"].as_str().unwrap().len(), 64);
    for t in m["tiles"].as_array().unwrap() {
        for f in t["files"].as_array().unwrap() {
            let p = out.join("synth-513").join(f["name"].as_str().unwrap());
            assert_eq!(std::fs::metadata(&p).unwrap().len(), f["bytes"].as_u64().unwrap());
        }
    }
}

/// Border vertices of neighbouring tiles: same world position and bit-identical normal, in GLB and in OBJ.
#[test]
fn seams_are_bit_identical_between_tiles() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--tile-size", "100", "--cell-size", "0.7,1.3", "--z-scale", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tiles = out.join("synth-513/tiles");
    // (global col,row) → (world y bits, normal bits) from every tile; conflicting entries are cracks.
    let mut seen: std::collections::HashMap<(u32, u32), (u32, [u32; 3], String)> = Default::default();
    let mut shared = 0;
    for e in std::fs::read_dir(&tiles).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "glb") {
            continue;
        }
        let g = read_glb(&std::fs::read(&p).unwrap());
        for (pos, n) in g.positions.iter().zip(&g.normals) {
            let col = ((g.translation[0] + pos[0] as f64) / 0.7).round() as u32;
            let row = ((g.translation[2] + pos[2] as f64) / 1.3).round() as u32;
            let v = (pos[1].to_bits(), n.map(f32::to_bits), p.display().to_string());
            if let Some(prev) = seen.get(&(col, row)) {
                shared += 1;
                assert_eq!((prev.0, prev.1), (v.0, v.1), "crack at sample ({col},{row}) between {} and {}", prev.2, v.2);
            } else {
                seen.insert((col, row), v);
            }
        }
    }
    assert_eq!(seen.len(), 513 * 513);
    // 6x6 tiles: 5 interior lines each way of 513 samples, minus the 25 four-way corners counted thrice.
    assert!(shared > 2 * 5 * 513, "only {shared} shared border vertices seen");

    // OBJ: the text of a shared vertex is identical in both tiles.
    let mut lines: std::collections::HashMap<String, String> = Default::default();
    let mut dup = 0;
    for e in std::fs::read_dir(&tiles).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "obj") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let vs: Vec<&str> = text.lines().filter(|l| l.starts_with("v ")).collect();
        let ns: Vec<&str> = text.lines().filter(|l| l.starts_with("vn ")).collect();
        for (v, n) in vs.iter().zip(&ns) {
            let xz: Vec<&str> = v.split(' ').collect();
            let k = format!("{} {}", xz[1], xz[3]);
            let val = format!("{v}|{n}");
            match lines.get(&k) {
                Some(prev) => {
                    dup += 1;
                    assert_eq!(prev, &val, "OBJ seam mismatch at {k}");
                }
                None => {
                    lines.insert(k, val);
                }
            }
        }
    }
    assert_eq!(dup, shared);
}

#[test]
fn output_does_not_depend_on_thread_count() {
    let d = tempfile::tempdir().unwrap();
    let mut trees = Vec::new();
    for j in ["1", "2", "3"] {
        let out = d.path().join(format!("j{j}"));
        let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--tile-size", "64", "-j", j]);
        assert!(o.status.success(), "{}", stderr(&o));
        trees.push(tree(&out));
    }
    assert_eq!(trees[0].len(), 64 * 3 + 1);
    assert!(trees[0] == trees[1] && trees[1] == trees[2]);
}

#[test]
fn obj_parses_back_and_matches_glb() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--tile-size", "128", "--cell-size", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = out.join("synth-513/tiles");
    let (models, _) = tobj::load_obj(t.join("1_2.obj"), &tobj::LoadOptions { single_index: true, triangulate: false, ..Default::default() }).unwrap();
    let m = &models[0].mesh;
    let g = read_glb(&std::fs::read(t.join("1_2.glb")).unwrap());
    assert_eq!(m.indices.len(), g.indices.len(), "same triangle count");
    // tobj renumbers vertices by first use, so compare every triangle corner's attributes.
    for (k, (&oi, &gi)) in m.indices.iter().zip(&g.indices).enumerate() {
        let (oi, gi) = (oi as usize, gi as usize);
        let p = g.positions[gi];
        let world = [g.translation[0] + p[0] as f64, p[1] as f64, g.translation[2] + p[2] as f64];
        for c in 0..3 {
            assert!(m.positions[3 * oi + c] as f64 == world[c], "corner {k}: OBJ {:?} vs GLB {world:?}", &m.positions[3 * oi..3 * oi + 3]);
            assert!(m.normals[3 * oi + c] == g.normals[gi][c], "corner {k}: normal");
        }
        assert!(m.texcoords[2 * oi] == g.uvs[gi][0] && m.texcoords[2 * oi + 1] == 1.0 - g.uvs[gi][1], "corner {k}: uv");
    }
}

#[test]
fn resume_after_sigkill_gives_identical_output() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("big.f32");
    let o = run(&["synth", "--size", "1025x1025", "--seed", "3", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let clean = d.path().join("clean");
    let args = |out: &Path| -> Vec<String> {
        ["mesh", input.to_str().unwrap(), "--size", "1025x1025", "--out", out.to_str().unwrap(), "--tile-size", "64", "-j", "1"].map(String::from).to_vec()
    };
    assert!(run(&args(&clean).iter().map(String::as_str).collect::<Vec<_>>()).status.success());

    let crashed = d.path().join("crashed");
    let mut child = bin().args(args(&crashed)).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Kill once some tiles exist, whatever the machine's speed.
    let t0 = std::time::Instant::now();
    while t0.elapsed().as_secs() < 20 {
        let n = std::fs::read_dir(crashed.join("big/tiles")).map(|r| r.count()).unwrap_or(0);
        if n > 30 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().ok(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(!crashed.join("big/manifest.json").exists() || tree(&crashed) == tree(&clean));
    // A partial file a crash could leave must be swept, not mistaken for a tile.
    std::fs::create_dir_all(crashed.join("big/tiles")).unwrap();
    std::fs::write(crashed.join("big/tiles/.3_3.glb.99.0.tfpart"), b"half a tile").unwrap();

    let mut a = args(&crashed);
    a.extend(["--resume".into(), "--json".into()]);
    let o = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(s["scenes"][0]["resumed_tiles"].as_u64().unwrap() > 0, "nothing was resumed: {s}");
    assert_eq!(tree(&crashed), tree(&clean));
}

#[test]
fn resume_redoes_tiles_whose_parameters_changed() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--z-scale", "2"]);
    assert!(o.status.success());
    let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--z-scale", "3", "--resume", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["scenes"][0]["resumed_tiles"], 0);
    let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--z-scale", "3", "--resume", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["scenes"][0]["resumed_tiles"], 4);
}

#[test]
fn a_failing_scene_does_not_stop_the_others() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("empty.png");
    std::fs::write(&bad, b"").unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", bad.to_str().unwrap(), SAMPLE, "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.join("synth-513/manifest.json").exists());
    assert!(!out.join("empty").exists());
    assert!(stderr(&o).contains("empty.png"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["mesh", SAMPLE, "--tile-size", "1"],
        vec!["mesh", SAMPLE, "--format", "stl"],
        vec!["mesh", SAMPLE, "--cell-size", "-1"],
        vec!["mesh", SAMPLE, "--encoding", "jpeg"],
        vec!["mesh", SAMPLE, SAMPLE],
        vec!["mesh"],
        vec!["frobnicate"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn help_explains_every_flag_with_units() {
    let o = run(&["mesh", "--help"]);
    let h = String::from_utf8_lossy(&o.stdout);
    for flag in ["--tile-size", "--cell-size", "--z-scale", "--z-offset", "--nodata", "--max-samples", "--threads", "--resume", "--encoding", "--format"] {
        assert!(h.contains(flag), "{flag} missing from help");
    }
    assert!(h.contains("metres"));
}

/// Issue #3: `--max-error` through the binary; the manifest records requested and achieved error per tile, and
/// the simplified GLBs (with skirts) go through the glTF validator in CI like every other.
#[test]
fn simplified_scene_records_error_bounds() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--max-error", "10", "--skirts", "10", "--tile-size", "128"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("synth-513/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["params"]["max_error"], 10.0);
    assert_eq!(m["params"]["skirts"], 10.0);
    let tris = m["totals"]["triangles"].as_u64().unwrap();
    assert!(tris < 512 * 512 * 2 / 4, "simplification removed little: {tris}");
    for t in m["tiles"].as_array().unwrap() {
        assert_eq!(t["max_error_requested"], 10.0);
        let e = t["max_error"].as_f64().unwrap();
        assert!((0.0..=10.0).contains(&e), "{e}");
    }
}

/// `--format glb` on a full-resolution scene takes the fused grid→GLB writer (issue #7); its GLB files and tile
/// records equal those of the mesh-then-encode path that `--format glb,obj` takes.
#[test]
fn glb_only_fused_path_matches_mesh_then_encode() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("fused"), d.path().join("classic"));
    let o = run(&["mesh", SAMPLE, "--out", a.to_str().unwrap(), "--format", "glb", "--tile-size", "100", "--cell-size", "0.7,1.3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["mesh", SAMPLE, "--out", b.to_str().unwrap(), "--format", "glb,obj", "--tile-size", "100", "--cell-size", "0.7,1.3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (ta, tb) = (tree(&a), tree(&b));
    let glbs: Vec<&String> = ta.keys().filter(|k| k.ends_with(".glb")).collect();
    assert_eq!(glbs.len(), 36);
    for k in glbs {
        assert!(ta[k] == tb[k], "{k} differs between the fused and the classic path");
    }
    let strip = |bytes: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        v["files"] = serde_json::Value::Null;
        v["key"] = serde_json::Value::Null;
        v
    };
    assert_eq!(strip(&ta["synth-513/tiles/2_3.json"]), strip(&tb["synth-513/tiles/2_3.json"]));
}

/// `terrafarm bench --json` (issue #7) reports every stage, for 1 and 2 threads, against a memset, a non-zero fill
/// and a memcpy measured in the same run (issue #12, item 11), and end to end: the scene written through `mesh`'s
/// pipeline to a RAM disk against one plain write of the same bytes. The fused writer's byte count is checked
/// against mesh + encode inside the bench.
#[test]
fn bench_reports_every_stage_against_memset() {
    let o = run(&["bench", "--synth-size", "129x129", "--tile-size", "32", "--max-error", "grid,2", "--threads", "1,2", "--repeat", "1", "--obj", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = r["rows"].as_array().unwrap();
    for stage in [
        "decode terrain-rgb (in memory), simd",
        "decode terrain-rgb (in memory), scalar",
        "halo",
        "mesh",
        "normals only, simd",
        "glb-encode",
        "obj-encode",
        "grid->glb fused, simd",
        "grid->glb fused, scalar",
    ] {
        for threads in [1, 2] {
            let row = rows.iter().find(|x| x["stage"] == stage && x["threads"] == threads).unwrap_or_else(|| panic!("no {stage} row for {threads} thread(s)"));
            assert!(row["seconds"].as_f64().unwrap() > 0.0, "{row}");
            for k in ["x_memset", "x_fill", "x_memcpy"] {
                assert!(row[k].as_f64().unwrap() > 0.0, "{k}: {row}");
            }
        }
    }
    let b = &r["bounds"][0];
    assert_eq!(b["triangles"], 128 * 128 * 2);
    assert!(b["memset_s"].as_f64().unwrap() > 0.0 && b["fill_s"].as_f64().unwrap() > 0.0 && b["memcpy_s"].as_f64().unwrap() > 0.0);
    let e2e = r["end_to_end"].as_array().unwrap();
    assert_eq!(e2e.len(), 4, "one end-to-end row per (threads, max error)");
    for x in e2e {
        // 16 tiles: a GLB and a record each, plus the manifest, all counted in the plain write's bytes.
        assert_eq!(x["files"], 33, "{x}");
        assert!(x["bytes"].as_u64().unwrap() > 0 && x["write_s"].as_f64().unwrap() > 0.0 && x["x_write"].as_f64().unwrap() > 0.0, "{x}");
    }
    let grid = e2e.iter().find(|x| x["max_error"].is_null()).unwrap();
    assert!(grid["bytes"].as_u64().unwrap() > b["glb_bytes"].as_u64().unwrap(), "the GLBs plus records and manifest: {grid}");
}

/// Issue #15: a scene of fewer than four tiles has each tile meshed as pieces in parallel (so one tile keeps every
/// core busy): the one tile of the sample at `--tile-size 512` holds the cut lines' ends and centre (sample 256
/// along both axes, 1 m cells), and the output is the same on one and two threads.
#[test]
fn a_scene_of_one_tile_is_meshed_in_pieces() {
    let d = tempfile::tempdir().unwrap();
    let mut trees = Vec::new();
    for j in ["1", "2"] {
        let out = d.path().join(format!("j{j}"));
        let o = run(&["mesh", SAMPLE, "--out", out.to_str().unwrap(), "--tile-size", "512", "--max-error", "100", "-j", j]);
        assert!(o.status.success(), "{}", stderr(&o));
        trees.push(tree(&out));
    }
    assert!(trees[0] == trees[1], "output depends on thread count");
    let glb = trees[0].iter().find(|(k, _)| k.ends_with(".glb")).map(|(_, v)| read_glb(v)).unwrap();
    let has = |x: f32, z: f32| glb.positions.iter().any(|p| (p[0] - x).abs() < 1e-3 && (p[2] - z).abs() < 1e-3);
    for (x, z) in [(256.0, 0.0), (256.0, 512.0), (0.0, 256.0), (512.0, 256.0), (256.0, 256.0)] {
        assert!(has(x, z), "no vertex at sample ({x}, {z}): the tile was not cut");
    }
}
