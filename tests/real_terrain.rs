//! Real terrain from ../shared/data (Mapbox terrain-RGB fixtures). Under CI=true a missing file fails loudly.

mod common;
use common::*;
use sha2::{Digest, Sha256};

fn hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn fuji_terrain_rgb_meshes_with_the_documented_height_range() {
    let Some(fuji) = shared("fuji.png") else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", fuji.to_str().unwrap(), "--encoding", "terrain-rgb", "--out", out.to_str().unwrap(), "--tile-size", "128"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("fuji/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["raster"], serde_json::json!([512, 512]));
    assert_eq!(m["tile_grid"], serde_json::json!([4, 4]));
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for t in m["tiles"].as_array().unwrap() {
        lo = lo.min(t["bounds"][0][1].as_f64().unwrap());
        hi = hi.max(t["bounds"][1][1].as_f64().unwrap());
    }
    // shared/data/README.md: 13.7–3751.0 m.
    assert!((lo - 13.7).abs() < 0.01 && (hi - 3751.0).abs() < 0.01, "height range {lo}..{hi}");
}

/// Golden file for one real tile: the exact bytes of fuji's tile (1,1) at tile size 256. A change here means the
/// mesh, the normals or the GLB layout changed; regenerate only on purpose.
#[test]
fn fuji_tile_golden() {
    let Some(fuji) = shared("fuji.png") else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", fuji.to_str().unwrap(), "--encoding", "terrain-rgb", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let glb = std::fs::read(out.join("fuji/tiles/1_1.glb")).unwrap();
    let obj = std::fs::read(out.join("fuji/tiles/1_1.obj")).unwrap();
    assert_eq!((glb.len(), hex(&glb)), (GOLDEN_GLB.0, GOLDEN_GLB.1.to_string()));
    assert_eq!((obj.len(), hex(&obj)), (GOLDEN_OBJ.0, GOLDEN_OBJ.1.to_string()));
}

const GOLDEN_GLB: (usize, &str) = (3658788, "f7b614dee5b79eca63f2212faf157498d0beee714d7b6affaef373e6be77d3e5");
const GOLDEN_OBJ: (usize, &str) = (12_350_990, "7849ab3686f3bcc3b7e345ab3b9b3f5a140ce5916a388d1c7b0c26657f26b41b");

#[test]
fn delatin_tile_meshes() {
    let Some(p) = shared("delatin_14-2625-6369.png") else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", p.to_str().unwrap(), "--encoding", "terrain-rgb", "--out", out.to_str().unwrap(), "--cell-size", "3.8", "--format", "glb", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["triangles"], 511 * 511 * 2);
}
