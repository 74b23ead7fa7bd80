//! Memory bounded by the tiles in flight, not by the raster (issue #11, item 6): one process meshes a raster four
//! times the bound (8193² f32, 268 MB) at `--max-error 5` with a peak RSS (the process's own VmHWM, as it logs it)
//! of at most a quarter of the raster's bytes — from raw samples, and from a tiled, compressed GeoTIFF written by
//! GDAL. A test of the bound, not a timing; the figures for larger rasters are in benches/runs.

mod common;
use common::*;
use std::process::Command;

fn peak_rss_mb(stderr: &str) -> f64 {
    let line = stderr.lines().find(|l| l.contains("peak RSS")).unwrap_or_else(|| panic!("no peak RSS line in: {stderr}"));
    line.rsplit("peak RSS").next().unwrap().trim().trim_end_matches("MB").trim().parse().unwrap()
}

#[test]
fn peak_memory_is_a_fraction_of_the_raster() {
    let d = tempfile::tempdir().unwrap();
    let (w, h) = (8193usize, 8193usize);
    let raster_mb = (w * h * 4) as f64 / (1 << 20) as f64;
    let raw = d.path().join("big.f32");
    assert!(run(&["synth", "--size", &format!("{w}x{h}"), "--seed", "3", raw.to_str().unwrap()]).status.success());
    let size = format!("{w}x{h}");
    let mesh = |input: &str, out: &str, extra: &[&str]| {
        let mut a = vec!["--log", "info", "mesh", input, "--out", out, "--scene", "s", "--max-error", "5", "--format", "glb"];
        a.extend(extra);
        let o = bin().args(&a).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        peak_rss_mb(&stderr(&o))
    };
    let out_raw = d.path().join("o-raw");
    let rss = mesh(raw.to_str().unwrap(), out_raw.to_str().unwrap(), &["--size", &size]);
    println!("raw f32 {w}x{h} ({raster_mb:.0} MiB): peak RSS {rss:.1} MiB = {:.3}x", rss / raster_mb);
    assert!(rss <= 0.25 * raster_mb, "peak RSS {rss} MiB > a quarter of the {raster_mb} MiB raster");

    if !Command::new("gdal_translate").arg("--version").output().is_ok_and(|o| o.status.success()) {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "gdal_translate is missing (CI=true)");
        eprintln!("note: gdal_translate not found; skipping the GeoTIFF half");
        return;
    }
    envi_header(d.path(), "big", w, h);
    let tif = d.path().join("big.tif");
    let o = Command::new("gdal_translate")
        .args(["-q", "-co", "TILED=YES", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=3", raw.to_str().unwrap(), tif.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(&raw).unwrap();
    let out_tif = d.path().join("o-tif");
    let rss = mesh(tif.to_str().unwrap(), out_tif.to_str().unwrap(), &["--cell-size", "1"]);
    println!("tiled GeoTIFF {w}x{h}: peak RSS {rss:.1} MiB = {:.3}x of the raster's f32 bytes", rss / raster_mb);
    assert!(rss <= 0.25 * raster_mb, "peak RSS {rss} MiB > a quarter of the {raster_mb} MiB raster");
    let tiles = |p: &std::path::Path| tree(&p.join("s/tiles")).into_iter().filter(|(k, _)| k.ends_with(".glb")).collect::<Vec<_>>();
    assert!(tiles(&out_raw) == tiles(&out_tif), "the GeoTIFF meshes differently from its raw samples");
}
