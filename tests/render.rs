//! Rendering with the WGSL shaders on wgpu (issue #14), on whatever Vulkan adapter the machine has (lavapipe, the
//! software driver from Debian's mesa-vulkan-drivers, in CI). Without an adapter these tests are skipped with a
//! note, except under CI=true, where they fail.

mod common;
use common::*;
use std::path::{Path, PathBuf};

use terrafarm::mesh::{grid::mesh_grid, Params, Window};
use terrafarm::raster::{self, Encoding, ReadOptions};
use terrafarm::render::{compute, gpu::Gpu};
use terrafarm::tiling::Rect;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The GPU, or `None` (skip) outside CI when there is none.
fn gpu() -> Option<Gpu> {
    match Gpu::new() {
        Ok(g) => Some(g),
        Err(e) if ci() => panic!("no GPU adapter under CI=true (install mesa-vulkan-drivers): {e:#}"),
        Err(e) => {
            eprintln!("note: skipping, no GPU adapter: {e:#}");
            None
        }
    }
}

/// Fuji's heights (terrain-RGB decoded by terrafarm), row-major.
fn fuji() -> Option<(usize, usize, Vec<f32>)> {
    let p = shared("fuji.png")?;
    let r = raster::open(&p, &ReadOptions { encoding: Encoding::TerrainRgb, size: None, max_samples: 1 << 32, nodata: None }).unwrap();
    let (w, h) = (r.width(), r.height());
    let mut out = vec![0f32; w * h];
    r.read_window(Rect::new(0, 0, w, h), &mut out).unwrap();
    Some((w, h, out))
}

fn read_png(p: &Path) -> (u32, u32, Vec<u8>) {
    let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).to_rgb8();
    (img.width(), img.height(), img.into_raw())
}

/// Pearson correlation of two equally long series.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

fn mesh(input: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec!["mesh", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--format", "glb"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "mesh {extra:?}: {}", stderr(&o));
    out.join(input.file_stem().unwrap())
}

fn render(scene: &Path, png: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["render", scene.to_str().unwrap(), "--output", png.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "render {extra:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The top-down hillshade of real terrain against `gdaldem hillshade -az 315 -alt 45` on the same heights, pixel
/// for pixel: the render is the raster's size, one pixel centre on each sample.
#[test]
fn top_down_hillshade_correlates_with_gdaldem() {
    let Some(_gpu) = gpu() else { return };
    let Some((w, h, z)) = fuji() else { return };
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let raw = envi(d.path(), "fuji", &z, w, h);
    // North up, 1 m cells: without a geotransform GDAL would take rows as running north (a positive y step) and
    // light the mirror image.
    let north_up = d.path().join("fuji.tif");
    let (ws, hs_) = (w.to_string(), h.to_string());
    gdal("gdal_translate", &["-q", "-a_ullr", "0", &hs_, &ws, "0", raw.to_str().unwrap(), north_up.to_str().unwrap()]);
    let hs = d.path().join("hs.tif");
    gdal("gdaldem", &["hillshade", "-az", "315", "-alt", "45", "-compute_edges", "-q", north_up.to_str().unwrap(), hs.to_str().unwrap()]);
    let hs_raw = d.path().join("hs.raw");
    gdal("gdal_translate", &["-q", "-of", "ENVI", hs.to_str().unwrap(), hs_raw.to_str().unwrap()]);
    let gdal_px: Vec<u8> = std::fs::read(&hs_raw).unwrap();
    assert_eq!(gdal_px.len(), w * h);

    let size = format!("{w}x{h}");
    // The full grid is the comparison the issue asks for (≥ 0.95); a mesh simplified to 1 m keeps most of the
    // shading (0.95 measured on lavapipe) but interpolates normals over larger triangles, so it is held to 0.90.
    for (label, extra, floor) in [("full grid", vec![], 0.95), ("simplified to 1 m", vec!["--max-error", "1"], 0.90)] {
        let mut args = vec!["--size", size.as_str(), "--encoding", "raw-f32", "--cell-size", "1"];
        args.extend(extra.iter().copied());
        let scene = mesh(&raw, &d.path().join(label.replace(' ', "_")), &args);
        let png = d.path().join(format!("{}.png", label.replace(' ', "_")));
        let rep = render(&scene, &png, &["--camera", "top", "--style", "hillshade"]);
        let (pw, ph, px) = read_png(&png);
        assert_eq!((pw as usize, ph as usize), (w, h), "{rep}");
        // Every pixel but the outermost ring (where the two tools' edge rules differ).
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                a.push(px[(y * w + x) * 3] as f64);
                b.push(gdal_px[y * w + x] as f64);
            }
        }
        let r = correlation(&a, &b);
        println!("fuji {w}x{h} at 1 m cells, {label}: luminance correlation with gdaldem hillshade = {r:.4}");
        assert!(r >= floor, "{label}: correlation {r:.4} < {floor}");
    }
}

/// The compute shader against its CPU twin, the pipeline's grid kernel, on real terrain with a void, at a
/// non-dyadic cell size and a z scale: X and Z bit-identical (they are the CPU's exact values), heights within
/// 1 ulp (a fused multiply-add is allowed), normals within 4 ulp per component (WGSL's division and square root are
/// within 2.5 and 2 ulp of the correctly rounded result, where Rust's are exact).
#[test]
fn gpu_grid_vertices_match_the_cpu_kernel() {
    let Some(gpu) = gpu() else { return };
    let Some((w, h, mut z)) = fuji() else { return };
    for y in 100..140 {
        for x in 200..260 {
            z[y * w + x] = f32::NAN;
        }
    }
    let p = Params { cell: [0.7, 1.3], z_scale: 1.5, z_offset: -20.0, raster: [w, h], tile: 256 };
    let mut worst = [0u32; 3];
    let mut compared = 0usize;
    for tile in [Rect::new(0, 0, 257, 257), Rect::new(128, 64, 385, 321), Rect::new(256, 256, w, h)] {
        let rect = Rect::new(tile.x0.saturating_sub(1), tile.y0.saturating_sub(1), (tile.x1 + 1).min(w), (tile.y1 + 1).min(h));
        let data: Vec<f32> = (rect.y0..rect.y1).flat_map(|y| z[y * w + rect.x0..y * w + rect.x1].to_vec()).collect();
        let win = Window { data: &data, rect, tile };
        let cpu = mesh_grid(&win, &p);
        let g = compute::grid_vertices(&gpu, &win, &p).unwrap();
        assert_eq!(g.positions.len(), tile.width() * tile.height());
        for (k, [x, y]) in cpu.grid.iter().enumerate() {
            let i = (*y as usize - tile.y0) * tile.width() + (*x as usize - tile.x0);
            let (cp, gp, cn, gn) = (cpu.positions[k], g.positions[i], cpu.normals[k], g.normals[i]);
            assert_eq!((cp[0].to_bits(), cp[2].to_bits()), (gp[0].to_bits(), gp[2].to_bits()), "X/Z at {x},{y}");
            worst[0] = worst[0].max(compute::ulps(cp[1], gp[1]));
            for c in 0..3 {
                worst[1 + (c != 1) as usize] = worst[1 + (c != 1) as usize].max(compute::ulps(cn[c], gn[c]));
            }
            compared += 1;
        }
        assert!(cpu.nodata_samples == 0 || cpu.vertices() < tile.width() * tile.height());
    }
    println!("{compared} vertices on {}: worst ulp distance: height {}, normal Y {}, normal X/Z {}", gpu.adapter, worst[0], worst[1], worst[2]);
    assert!(worst[0] <= 1, "heights differ by {} ulp", worst[0]);
    assert!(worst[1] <= 4 && worst[2] <= 4, "normals differ by {:?} ulp", &worst[1..]);
}

fn differing(a: &[u8], b: &[u8]) -> f64 {
    a.chunks(3).zip(b.chunks(3)).filter(|(p, q)| p != q).count() as f64 / (a.len() / 3) as f64
}

/// A wireframe of a simplified scene is not blank, not the full grid's, and not the plain surface.
#[test]
fn wireframe_shows_where_the_simplifier_put_its_triangles() {
    let Some(_gpu) = gpu() else { return };
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("t.png");
    let o = run(&["synth", "--size", "257x257", "--relief", "120", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let grid = mesh(&input, &d.path().join("grid"), &["--tile-size", "128"]);
    let simple = mesh(&input, &d.path().join("simple"), &["--tile-size", "128", "--max-error", "4"]);
    let img = |scene: &Path, name: &str, extra: &[&str]| {
        let png = d.path().join(name);
        render(scene, &png, &[&["--size", "768x768"], extra].concat());
        read_png(&png).2
    };
    let (gw, sw, s) = (img(&grid, "gw.png", &["--wireframe"]), img(&simple, "sw.png", &["--wireframe"]), img(&simple, "s.png", &[]));
    let dark = |px: &[u8]| px.chunks(3).filter(|p| p.iter().all(|&c| c < 30)).count() as f64 / (px.len() / 3) as f64;
    println!(
        "dark (edge) pixels: grid {:.3}, simplified {:.3}; simplified wire vs grid wire differ in {:.3}, vs plain surface {:.3}",
        dark(&gw),
        dark(&sw),
        differing(&sw, &gw),
        differing(&sw, &s)
    );
    assert!(dark(&sw) > 0.01, "no edges drawn");
    assert!(dark(&gw) > dark(&sw) * 1.5, "the full grid should show far more edges than the simplified mesh");
    assert!(differing(&sw, &gw) > 0.05 && differing(&sw, &s) > 0.01);
}

/// A scene streamed through the frame in many small batches renders exactly like one uploaded whole, and the
/// oblique and hypsometric views render something other than the background.
#[test]
fn streamed_batches_render_the_same_image_and_views_are_not_blank() {
    let Some(_gpu) = gpu() else { return };
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("t.png");
    assert!(run(&["synth", "--size", "513x385", "--relief", "300", input.to_str().unwrap()]).status.success());
    let scene = mesh(&input, &d.path().join("o"), &["--tile-size", "64", "--cell-size", "4"]);
    for cam in ["top", "oblique", "30,60"] {
        let (a, b) = (d.path().join("whole.png"), d.path().join("streamed.png"));
        let whole = render(&scene, &a, &["--camera", cam, "--style", "hypsometric"]);
        let streamed = render(&scene, &b, &["--camera", cam, "--style", "hypsometric", "--gpu-budget-mib", "1"]);
        let (sw, ss) = (&whole[0]["stats"], &streamed[0]["stats"]);
        assert_eq!(sw["batches"], 1);
        assert!(ss["batches"].as_u64().unwrap() > 4, "{ss}");
        assert!(ss["gpu_peak_bytes"].as_u64() < sw["gpu_peak_bytes"].as_u64(), "{ss} vs {sw}");
        let (pa, pb) = (read_png(&a).2, read_png(&b).2);
        assert!(pa == pb, "{cam}: streamed render differs in {:.4} of the pixels", differing(&pa, &pb));
        let background = pa.chunks(3).filter(|p| *p == pa[..3].to_vec().as_slice()).count() as f64 / (pa.len() / 3) as f64;
        let colours: std::collections::HashSet<&[u8]> = pa.chunks(3).collect();
        println!("{cam}: {} colours, {:.2} background-coloured", colours.len(), background);
        assert!(colours.len() > 100 && background < 0.9, "{cam}: looks blank");
    }
}

/// `mesh --preview` writes the top-down hillshade beside the tiles, lists it in the manifest, and it is the same
/// image `render` makes.
#[test]
fn mesh_preview_is_listed_and_equals_render() {
    let Some(_gpu) = gpu() else { return };
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("p.png");
    assert!(run(&["synth", "--size", "300x200", input.to_str().unwrap()]).status.success());
    let scene = mesh(&input, &d.path().join("o"), &["--preview", "--tile-size", "100"]);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(scene.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["preview"]["name"], "preview.png", "{}", m["preview"]);
    let bytes = std::fs::read(scene.join("preview.png")).unwrap();
    assert_eq!(m["preview"]["bytes"], bytes.len());
    render(&scene, &d.path().join("r.png"), &[]);
    assert_eq!(read_png(&scene.join("preview.png")), read_png(&d.path().join("r.png")));
    let (w, h, _) = read_png(&scene.join("preview.png"));
    assert_eq!((w, h), (300, 200));
}

/// No adapter: a clear error naming what to install, exit code 1. Needs no GPU (the Vulkan loader is pointed at
/// a driver list that does not exist).
#[test]
fn no_adapter_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("p.png");
    assert!(run(&["synth", "--size", "65x65", input.to_str().unwrap()]).status.success());
    let scene = mesh(&input, &d.path().join("o"), &[]);
    let none = d.path().join("none.json");
    let o = bin()
        .args(["render", scene.to_str().unwrap()])
        .env("VK_ICD_FILENAMES", &none)
        .env("VK_DRIVER_FILES", &none)
        .env("VK_ADD_DRIVER_FILES", &none)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no GPU adapter") && err.contains("mesa-vulkan-drivers"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!scene.join("renders").exists());
    // Usage errors stay usage errors (2), before any adapter is looked for.
    for bad in [&["--style", "sepia"][..], &["--camera", "side"], &["--size", "0x10"], &["--frames", "0"]] {
        let o = bin().arg("render").arg(&scene).args(bad).env("VK_ICD_FILENAMES", &none).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
    let o = run(&["render", d.path().join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("manifest.json not found"), "{}", stderr(&o));
    // A scene written as OBJ only: what to run instead, before any adapter is looked for.
    let obj = d.path().join("obj");
    assert!(run(&["mesh", input.to_str().unwrap(), "--out", obj.to_str().unwrap(), "--format", "obj"]).status.success());
    let o = bin().arg("render").arg(obj.join("p")).env("VK_ICD_FILENAMES", &none).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--format glb"), "{}", stderr(&o));
}

/// Quantized and meshopt-compressed scenes render too (`mesh --preview` included): the same picture as the
/// quantized one, whatever the vertex order meshopt chose.
#[test]
fn compressed_scenes_render_like_quantized_ones() {
    let Some(_gpu) = gpu() else { return };
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("c.png");
    assert!(run(&["synth", "--size", "257x193", "--relief", "200", input.to_str().unwrap()]).status.success());
    let q = mesh(&input, &d.path().join("q"), &["--max-error", "2", "--gltf", "quantized", "--tile-size", "64", "--preview"]);
    let m = mesh(&input, &d.path().join("m"), &["--max-error", "2", "--gltf", "meshopt", "--tile-size", "64", "--preview"]);
    let (a, b) = (read_png(&q.join("preview.png")).2, read_png(&m.join("preview.png")).2);
    let lum = |px: &[u8]| px.chunks(3).map(|p| p[0] as f64).collect::<Vec<f64>>();
    let r = correlation(&lum(&a), &lum(&b));
    println!("meshopt vs quantized preview: correlation {r:.5}, {:.4} of pixels differ", differing(&a, &b));
    assert!(r > 0.99, "{r}");
}
