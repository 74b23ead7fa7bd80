//! Levels of detail and 3D Tiles (issue #13): every level's error bound re-measured against the full-resolution
//! samples, exact seams within each level, the official CesiumGS 3D Tiles validator on every tileset written here,
//! the tree's consistency (errors falling, volumes nested and holding their content), the root transform against
//! GDAL's own projection maths, resume per tile per level, and thread-count invariance.

mod common;
use common::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

const W: usize = 301;
const H: usize = 233;
const CELL: f64 = 2.0;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// A deterministic raw f32 raster (terrafarm's synthetic terrain) and its heights.
fn raster(dir: &Path) -> (PathBuf, Vec<f32>) {
    let p = dir.join("t.f32");
    let o = run(&["synth", "--size", &format!("{W}x{H}"), "--relief", "400", "--seed", "3", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b = std::fs::read(&p).unwrap();
    (p, b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

fn mesh(input: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    mesh_with(input, out, extra, None)
}

/// As [`mesh`], with PROJ's data (where terrafarm finds geoid grids) in `proj_data`.
fn mesh_with(input: &Path, out: &Path, extra: &[&str], proj_data: Option<&Path>) -> serde_json::Value {
    let mut a = vec!["mesh", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    a.extend_from_slice(extra);
    let o = run_with(&a, proj_data);
    assert!(o.status.success(), "{}", stderr(&o));
    let scene = out.join(input.file_stem().unwrap());
    serde_json::from_slice(&std::fs::read(scene.join("manifest.json")).unwrap()).unwrap()
}

const LOD_ARGS: [&str; 12] = ["--size", "301x233", "--cell-size", "2", "--max-error", "1", "--lod", "auto", "--tile-size", "32", "--format", "3dtiles"];

/// Every level's folder, requested error and achieved error, level 0 first.
fn levels(m: &serde_json::Value) -> Vec<(String, f64, f64)> {
    let mut v = vec![(
        "tiles".to_string(),
        m["params"]["max_error"].as_f64().unwrap(),
        m["tiles"].as_array().unwrap().iter().map(|t| t["max_error"].as_f64().unwrap()).fold(0.0, f64::max),
    )];
    for l in m["levels"].as_array().unwrap() {
        v.push((l["dir"].as_str().unwrap().to_string(), l["max_error_requested"].as_f64().unwrap(), l["max_error"].as_f64().unwrap()));
    }
    v
}

/// World positions (glTF frame) of a GLB's vertices.
fn world(g: &Glb) -> Vec<[f64; 3]> {
    g.positions.iter().map(|p| [g.translation[0] + p[0] as f64, g.translation[1] + p[1] as f64, g.translation[2] + p[2] as f64]).collect()
}

fn glbs(dir: &Path) -> Vec<(String, Glb)> {
    let mut v: Vec<(String, Glb)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "glb"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), read_glb(&std::fs::read(e.path()).unwrap())))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Largest |mesh − sample| over the samples under the tile's surface triangles (skirts, vertical, are skipped),
/// and those samples.
fn remeasure(g: &Glb, z: &[f32]) -> (f64, HashSet<(i64, i64)>) {
    let w = world(g);
    let s: Vec<[i64; 2]> = w.iter().map(|p| [(p[0] / CELL).round() as i64, (p[2] / CELL).round() as i64]).collect();
    let mut worst = 0.0f64;
    let mut covered = HashSet::new();
    for t in g.indices.chunks_exact(3) {
        let (a, b, c) = (t[0] as usize, t[1] as usize, t[2] as usize);
        let area = (s[b][0] - s[a][0]) * (s[c][1] - s[a][1]) - (s[b][1] - s[a][1]) * (s[c][0] - s[a][0]);
        if area == 0 {
            continue; // a skirt quad's triangle
        }
        let (x0, x1) = (s[a][0].min(s[b][0]).min(s[c][0]), s[a][0].max(s[b][0]).max(s[c][0]));
        let (y0, y1) = (s[a][1].min(s[b][1]).min(s[c][1]), s[a][1].max(s[b][1]).max(s[c][1]));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let e = |p: [i64; 2], q: [i64; 2]| (q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]);
                let (w0, w1, w2) = (e(s[b], s[c]), e(s[c], s[a]), e(s[a], s[b]));
                let inside = (w0 <= 0 && w1 <= 0 && w2 <= 0) || (w0 >= 0 && w1 >= 0 && w2 >= 0);
                if !inside {
                    continue;
                }
                let zi = (w0 as f64 * w[a][1] + w1 as f64 * w[b][1] + w2 as f64 * w[c][1]) / area as f64;
                worst = worst.max((zi - z[y as usize * W + x as usize] as f64).abs());
                covered.insert((x, y));
            }
        }
    }
    (worst, covered)
}

/// Each level: the error bound holds against the full-resolution samples (re-measured here, and equal to what the
/// manifest records), the level covers every sample, and tiles of the level meet exactly along their seams.
#[test]
fn every_level_meets_its_error_bound_with_exact_seams() {
    let d = tempfile::tempdir().unwrap();
    let (input, z) = raster(d.path());
    let m = mesh(&input, &d.path().join("o"), &LOD_ARGS);
    let scene = d.path().join("o/t");
    let lv = levels(&m);
    // 10×8 tiles of 32 cells: levels of 32, 64, 128, 256, 512 cells; the last is one tile.
    assert_eq!(lv.len(), 5, "{lv:?}");
    assert_eq!(m["levels"][3]["tile_grid"], serde_json::json!([1, 1]));
    for (l, (dir, requested, recorded)) in lv.iter().enumerate() {
        assert_eq!(*requested, 2f64.powi(l as i32), "level {l} error doubles");
        let mut worst = 0.0f64;
        let mut covered = HashSet::new();
        let mut surface: HashMap<(i64, i64), (u64, String)> = HashMap::new();
        let mut shared = 0;
        for (name, g) in glbs(&scene.join(dir)) {
            let (e, c) = remeasure(&g, &z);
            worst = worst.max(e);
            covered.extend(c);
            // The surface vertex of each (x, z) in this tile: the highest (skirts hang below).
            let mut top: HashMap<(i64, i64), f64> = HashMap::new();
            for p in world(&g) {
                let k = ((p[0] / CELL).round() as i64, (p[2] / CELL).round() as i64);
                let y = top.entry(k).or_insert(f64::NEG_INFINITY);
                *y = y.max(p[1]);
            }
            for (k, y) in top {
                match surface.get(&k) {
                    Some((prev, other)) => {
                        shared += 1;
                        assert_eq!(*prev, y.to_bits(), "level {l}: vertex {k:?} differs between {other} and {name}");
                    }
                    None => drop(surface.insert(k, (y.to_bits(), name.clone()))),
                }
            }
        }
        println!("level {l} ({dir}): requested {requested} m, recorded {recorded:.4} m, re-measured {worst:.4} m, {shared} shared seam vertices");
        assert!(worst <= requested + 1e-4, "level {l}: error {worst} over {requested}");
        assert!((worst - recorded).abs() <= 1e-3, "level {l}: re-measured {worst} vs recorded {recorded}");
        assert_eq!(covered.len(), W * H, "level {l} leaves samples uncovered");
        if l + 1 < lv.len() {
            assert!(shared > 0, "level {l} has more than one tile, so it has seams");
        }
    }
}

fn validator() -> Option<PathBuf> {
    let p = std::env::var_os("TERRAFARM_3DTILES_VALIDATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/3d-tiles-validator/build/main.js"));
    if p.exists() {
        return Some(p);
    }
    assert!(!ci(), "3D Tiles validator missing at {} (CI=true): .ci/run installs it from ../shared/tools", p.display());
    eprintln!("note: {} not found; skipping (see .ci/run)", p.display());
    None
}

/// The official validator's report on a tileset: errors and warnings must both be zero.
fn validate(tileset: &Path, validator: &Path) {
    let report = tileset.with_file_name("report.json");
    let o = std::process::Command::new("node")
        .arg(validator)
        .args(["--tilesetFile", tileset.to_str().unwrap(), "--reportFile", report.to_str().unwrap()])
        .output()
        .expect("node");
    assert!(o.status.success(), "validator crashed: {}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    println!("{}: {} errors, {} warnings, {} infos", tileset.display(), r["numErrors"], r["numWarnings"], r["numInfos"]);
    assert_eq!((r["numErrors"].as_u64(), r["numWarnings"].as_u64()), (Some(0), Some(0)), "{}", serde_json::to_string_pretty(&r["issues"]).unwrap());
}

/// The raster as a GeoTIFF in `srs`, written by GDAL into `dir`, with its south-west corner at easting `e0` and
/// northing `n0` (in the CRS's unit; a cell is `CELL` of them).
fn projected_tif(dir: &Path, raw: &Path, srs: &str, e0: f64, n0: f64) -> PathBuf {
    projected_tif_cells(dir, raw, srs, e0, n0, [CELL, CELL])
}

/// As [`projected_tif`], with cells of `cell` CRS units (x, y).
fn projected_tif_cells(dir: &Path, raw: &Path, srs: &str, e0: f64, n0: f64, cell: [f64; 2]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let tif = dir.join("utm.tif");
    let ullr = [e0.to_string(), (n0 + H as f64 * cell[1]).to_string(), (e0 + W as f64 * cell[0]).to_string(), n0.to_string()];
    envi_header(raw.parent().unwrap(), raw.file_stem().unwrap().to_str().unwrap(), W, H);
    gdal("gdal_translate", &["-q", "-a_srs", srs, "-a_ullr", &ullr[0], &ullr[1], &ullr[2], &ullr[3], raw.to_str().unwrap(), tif.to_str().unwrap()]);
    tif
}

/// `gdaltransform` with `args` on `points` (one per line), as it transforms where no horizontal grid is installed
/// (with the EGM96 geoid grid: [`proj_with_egm96`]): the coordinates it prints, per point.
fn gdaltransform(args: &[&str], points: &str) -> Vec<Vec<f64>> {
    let (grids, _) = proj_with_egm96();
    gdal_input("gdaltransform", args, points, Some(grids.path())).lines().map(|l| l.split_whitespace().take(3).map(|v| v.parse().unwrap()).collect()).collect()
}

/// Where GDAL puts samples (column, row, height) of a raster in `srs` whose south-west corner is at `corner` with
/// cells of `cell` CRS units: earth-centred (EPSG:4978) positions, without grids. Through EPSG:4979: to a
/// geocentric CRS PROJ applies the first transformation it lists, everywhere; to a geographic one it picks one per
/// point, as GDAL does to WGS 84 and as terrafarm does (for S-JTSK in Prague a 1 m transformation rather than the
/// listed-first 6 m one, 9.9 m apart).
fn gdal_ecef(srs: &str, corner: (f64, f64), cell: [f64; 2], samples: &[(usize, usize, f64)]) -> Vec<Vec<f64>> {
    let input: String = samples
        .iter()
        .map(|&(c, r, _)| format!("{} {} 0\n", corner.0 + (c as f64 + 0.5) * cell[0], corner.1 + (H - r) as f64 * cell[1] - 0.5 * cell[1]))
        .collect();
    let geo = gdaltransform(&["-s_srs", srs, "-t_srs", "EPSG:4979"], &input);
    assert_eq!(geo.len(), samples.len(), "gdaltransform: {geo:?}");
    // A compound CRS's heights are above its geoid: height 0 there is the undulation N above the ellipsoid.
    let n = |p: &Vec<f64>| if srs.contains('+') { p[2] } else { 0.0 };
    let geographic: String = geo.iter().zip(samples).map(|(p, s)| format!("{} {} {}\n", p[0], p[1], s.2 + n(p))).collect();
    let want = gdaltransform(&["-s_srs", "EPSG:4979", "-t_srs", "EPSG:4978"], &geographic);
    assert_eq!(want.len(), samples.len(), "gdaltransform: {want:?}");
    want
}

/// A tileset frame position (x, y, z) placed by the root transform `t`.
fn place(t: &[f64], q: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|r| t[r] * q[0] + t[4 + r] * q[1] + t[8 + r] * q[2] + t[12 + r])
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|k| a[k] * b[k]).sum()
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// The tileset frame position of a GLB's vertex (glTF Y-up turned Z-up).
fn frame(w: [f64; 3]) -> [f64; 3] {
    [w[0], -w[2], w[1]]
}

/// Every content vertex of the GLBs in `dir`, placed by the root transform `t` (earth-centred).
fn content_ecef(dir: &Path, t: &[f64]) -> Vec<[f64; 3]> {
    glbs(dir).iter().flat_map(|(_, g)| world(g)).map(|w| place(t, frame(w))).collect()
}

/// UTM zone 33 N 200 km west of the zone's central meridian, where grid north is 1.9° from true north.
const UTM_CORNER: (f64, f64) = (300_000.0, 5_200_000.0);

type Aabb = ([f64; 3], [f64; 3]);

fn aabb(b: &serde_json::Value) -> Aabb {
    let v: Vec<f64> = b["box"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(v[4] == 0.0 && v[5] == 0.0 && v[6] == 0.0 && v[8] == 0.0 && v[9] == 0.0 && v[10] == 0.0, "boxes are axis-aligned");
    // (A half-axis may point either way: an implicit root's y axis points south, its z axis down.)
    let h = [v[3].abs(), v[7].abs(), v[11].abs()];
    ([v[0] - h[0], v[1] - h[1], v[2] - h[2]], [v[0] + h[0], v[1] + h[1], v[2] + h[2]])
}

fn inside(a: &Aabb, b: &Aabb, tol: f64) -> bool {
    (0..3).all(|k| a.0[k] >= b.0[k] - tol && a.1[k] <= b.1[k] + tol)
}

/// Walks the tree: geometric error falls strictly from parent to child, a child's box lies in its parent's, each
/// content's vertices (glTF Y-up turned Z-up) lie in its tile's box. Returns the content URIs.
fn walk(scene: &Path, t: &serde_json::Value, parent: Option<(f64, Aabb)>, uris: &mut Vec<String>) {
    let e = t["geometricError"].as_f64().unwrap();
    let b = aabb(&t["boundingVolume"]);
    assert_eq!(t["refine"], "REPLACE");
    if let Some((pe, pb)) = parent {
        assert!(e < pe, "geometric error {e} not below its parent's {pe}");
        assert!(inside(&b, &pb, 1e-6), "box {b:?} outside its parent's {pb:?}");
    }
    if let Some(uri) = t["content"]["uri"].as_str() {
        let g = read_glb(&std::fs::read(scene.join(uri)).unwrap());
        for p in world(&g) {
            let q = frame(p);
            assert!(inside(&(q, q), &b, 1e-3), "{uri}: vertex {q:?} outside its box {b:?}");
        }
        uris.push(uri.to_string());
    }
    for c in t["children"].as_array().into_iter().flatten() {
        walk(scene, c, Some((e, b)), uris);
    }
}

/// Every tileset written here is valid for the official validator, its tree is consistent and lists every tile of
/// every level once; a GeoTIFF in UTM, off its zone's central meridian, gets a root transform that puts the
/// raster's centre and corners where GDAL does.
#[test]
fn tilesets_are_valid_consistent_and_placed_on_the_ellipsoid() {
    let d = tempfile::tempdir().unwrap();
    let (input, z) = raster(d.path());
    let m = mesh(&input, &d.path().join("o"), &LOD_ARGS);
    let scene = d.path().join("o/t");
    let ts: serde_json::Value = serde_json::from_slice(&std::fs::read(scene.join("tileset.json")).unwrap()).unwrap();
    assert_eq!(m["tileset"], "tileset.json");
    assert_eq!(ts["asset"]["version"], "1.1");
    assert!(ts["root"]["transform"].is_null(), "no CRS, no transform");
    let mut uris = Vec::new();
    walk(&scene, &ts["root"], Some((ts["geometricError"].as_f64().unwrap() + 1e-9, aabb(&ts["root"]["boundingVolume"]))), &mut uris);
    uris.sort();
    assert_eq!(uris, glb_names(&m), "every GLB of every level exactly once");
    let v = validator();
    if let Some(v) = &v {
        validate(&scene.join("tileset.json"), v);
    }

    // GeoTIFFs written by GDAL from the same heights, in the projected CRSs real DEMs come in: UTM zone 33 N 200 km
    // off its central meridian, on WGS 84 and on ETRS89 (EPSG:25833, what European survey DEMs come in; within a
    // metre of WGS 84, and GDAL takes the two as one here); Lambert-93 (France's RGE ALTI) near Paris; EU-DEM's
    // Lambert azimuthal equal-area grid; a NAD83 state plane in US survey feet (California zone 3, Oakland);
    // ArcticDEM's polar stereographic grid, across the north pole; and a user-defined CRS (CONUS Albers).
    if !gdal_available() {
        return;
    }
    let crss = [
        ("EPSG:32633", "g", UTM_CORNER),
        ("EPSG:25833", "etrs", UTM_CORNER),
        ("EPSG:2154", "l93", (650_000.0, 6_860_000.0)),
        ("EPSG:3035", "laea", (4_000_000.0, 3_000_000.0)),
        ("EPSG:2227", "ftus", (6_050_000.0, 2_118_000.0)),
        ("EPSG:3413", "pole", (-200.0, -150.0)),
        // USGS's CONUS Albers as ESRI names it: no EPSG code, so GDAL writes the projection's parameters as GeoKeys.
        ("ESRI:102039", "esri", (-790_000.0, 1_880_000.0)),
        // Datums far from WGS 84, shifted by the transformation PROJ applies there where no grid is installed:
        // the British National Grid (OSGB36, EPSG:1314) in London, and the Dutch RD New (Amersfoort, Bessel's
        // ellipsoid, oblique stereographic; EPSG:4833, the first of four equal ones in PROJ's order) in Amsterdam.
        ("EPSG:27700", "bng", (530_000.0, 180_000.0)),
        ("EPSG:28992", "rd", (120_000.0, 487_000.0)),
        // Luxembourg's grid (LUREF), shifted by a Molodensky-Badekas transformation (EPSG:5484); the Czech S-JTSK
        // Krovak grid (easting and northing negative) in Prague.
        ("EPSG:2169", "luref", (77_000.0, 75_000.0)),
        ("EPSG:5514", "krovak", (-743_000.0, -1_044_000.0)),
        // France's former Lambert II étendu (NTF, longitudes from the Paris meridian) in Paris, shifted by EPSG:8094,
        // a concatenated operation (the rotation to Greenwich, then a Helmert one); Indian 1960 in southern Vietnam,
        // shifted by EPSG:8532, two Helmert steps (through WGS 72) composed as PROJ composes them.
        ("EPSG:27572", "ntf", (600_000.0, 2_428_000.0)),
        ("EPSG:3148", "indian", (764_000.0, 1_088_000.0)),
    ];
    for (srs, out, (e0, n0)) in crss {
        let tif = projected_tif(&d.path().join(out), &input, srs, e0, n0);
        let m = mesh(&tif, &d.path().join(out).join("o"), &["--max-error", "1", "--lod", "2", "--tile-size", "64", "--format", "3dtiles"]);
        let scene = d.path().join(out).join("o/utm");
        let ts: serde_json::Value = serde_json::from_slice(&std::fs::read(scene.join("tileset.json")).unwrap()).unwrap();
        let t: Vec<f64> = ts["root"]["transform"].as_array().expect("a transform for a projected raster").iter().map(|x| x.as_f64().unwrap()).collect();
        // The mesh's metres per CRS unit (a US survey foot in EPSG:2227).
        let cell = m["params"]["cell_size"][0].as_f64().unwrap();
        // The root transform puts the centre sample's place on the ellipsoid where GDAL does (to EPSG:4978, at
        // height 0), within 1 cm; and the content's vertices of the centre and the four corners lie where GDAL puts
        // those samples at their heights, within 1 cm (the tangent plane alone is 1.1 cm off 380 m from the centre
        // here; `wide_rasters_are_placed_vertex_by_vertex` has rasters where it is hundreds of metres off). Grid
        // north is turned from true north here (UTM's meridian convergence, Lambert's, the polar grid's), and the
        // grid scaled by the projection's factor.
        let samples = [((W - 1) / 2, (H - 1) / 2), (0, 0), (W - 1, 0), (0, H - 1), (W - 1, H - 1)];
        let want = gdal_ecef(srs, (e0, n0), [CELL, CELL], &samples.map(|(c, r)| (c, r, 0.0)));
        let (x, y) = (samples[0].0 as f64 * cell, -(samples[0].1 as f64) * cell);
        let got = place(&t, [x, y, 0.0]);
        let dist = (0..3).map(|k| (got[k] - want[0][k]).powi(2)).sum::<f64>().sqrt();
        println!("{srs} centre: the root transform's {got:?}, GDAL's {:?}, {dist:.4} m apart", want[0]);
        assert!(dist < 0.01, "{srs}: the root transform puts the centre {dist} m from where GDAL does");
        let want = gdal_ecef(srs, (e0, n0), [CELL, CELL], &samples.iter().map(|&(c, r)| (c, r, z[r * W + c] as f64)).collect::<Vec<_>>());
        let vertices = content_ecef(&scene.join("tiles"), &t);
        for (&(c, r), want) in samples.iter().zip(&want) {
            let dist = vertices.iter().map(|v| (0..3).map(|k| (v[k] - want[k]).powi(2)).sum::<f64>().sqrt()).fold(f64::INFINITY, f64::min);
            println!("{srs} sample ({c}, {r}): its vertex {dist:.4} m from GDAL's place");
            assert!(dist < 0.01, "{srs}: sample ({c}, {r}) has no vertex within 1 cm of GDAL's place ({dist} m)");
        }
        // Up is the ellipsoid's unit normal, square to the tangent plane that the grid's columns and rows span.
        let col = |c: usize| [t[4 * c], t[4 * c + 1], t[4 * c + 2]];
        assert!((dot(col(2), col(2)) - 1.0).abs() < 1e-12 && dot(col(0), col(2)).abs() < 1e-9 && dot(col(1), col(2)).abs() < 1e-9);
        assert_eq!(m["levels"].as_array().unwrap().len(), 2);
        // Regions (absolute, EPSG:4979): every content vertex, placed by the root transform, lies inside its tile's
        // region, and each child's region inside its parent's.
        let regions = check_regions(&scene, &ts["root"], &t, None);
        assert!(regions > 0);
        // `info` says where the raster will be placed: its centre, as GDAL puts it (within 1e-8°, a millimetre).
        let o = run(&["info", tif.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let info = &info[0];
        let centre = format!("{} {}\n", e0 + W as f64 * CELL / 2.0, n0 + H as f64 * CELL / 2.0);
        let want = gdaltransform(&["-s_srs", srs, "-t_srs", "EPSG:4326", "-output_xy"], &centre);
        let got: Vec<f64> = info["centre_lon_lat"].as_array().expect("a placed centre").iter().map(|v| v.as_f64().unwrap()).collect();
        assert!((got[0] - want[0][0]).abs() < 1e-8 && (got[1] - want[0][1]).abs() < 1e-8, "{srs}: info's centre {got:?}, GDAL's {want:?}");
        let shift = match srs {
            "EPSG:27572" => Some((8094, 1)),
            "EPSG:3148" => Some((8532, 2)),
            "EPSG:27700" => Some((1314, 1)),
            _ => None,
        };
        if let Some((epsg, steps)) = shift {
            assert_eq!(info["datum_shift"]["epsg"], epsg, "{srs}");
            assert_eq!(info["datum_shift"]["steps"].as_array().unwrap().len(), steps, "{srs}");
        }
        if let Some(v) = &v {
            validate(&scene.join("tileset.json"), v);
        }
    }
    // Indian 1960 in Cambodia is not placed: no transformation of its datum to WGS 84 has an area of use there, and
    // PROJ would apply none (a ballpark). No transform, and the run and `info` say so.
    let tif = projected_tif(&d.path().join("indian-kh"), &input, "EPSG:3148", 554_000.0, 1_382_000.0);
    let out = d.path().join("indian-kh/o");
    let o = run(&["mesh", tif.to_str().unwrap(), "--out", out.to_str().unwrap(), "--max-error", "1", "--format", "3dtiles"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ts: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("utm/tileset.json")).unwrap()).unwrap();
    assert!(ts["root"]["transform"].is_null());
    let why = "EPSG:3148: no transformation of its datum to WGS 84 covers the raster's centre";
    assert!(stderr(&o).contains(why), "{}", stderr(&o));
    let o = run(&["info", tif.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("3D Tiles placement: none ({why}")), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Rasters too wide for one tangent plane: the test raster with 500 m cells in UTM 33 N (150 × 116 km; the
/// tangent plane at the centre is 690 m off at the corners) and with 0.005° cells at 60° N (1.5° × 1.2°), as 3D
/// Tiles with plain and with quantized GLB. Each vertex lies where GDAL puts its sample: the corners' and the
/// centre's within 1 cm; and against GDAL's places of every third sample of every third row, at their heights,
/// each level's mesh is within the error it records (measured along the frame's z, up at the centre, at most 1.2°
/// from the local vertical here), which is within the requested one.
#[test]
fn wide_rasters_are_placed_vertex_by_vertex() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (input, z) = raster(d.path());
    // And the same with heights above EGM96 (compound CRSs, as GDAL writes them: VerticalCSTypeGeoKey 5773): GDAL
    // adds the geoid's undulation (41–47 m over the UTM raster, 20–24 m over the geographic one), and so must
    // terrafarm, sample by sample, for each level to stay within its error of GDAL's places.
    let cases = [
        ("EPSG:32633", "utm", UTM_CORNER, [500.0, 500.0]),
        ("EPSG:4326", "geo", (10.0, 59.5), [0.005, 0.005]),
        ("EPSG:32633+5773", "utm-egm96", UTM_CORNER, [500.0, 500.0]),
        ("EPSG:4326+5773", "geo-egm96", (10.0, 59.5), [0.005, 0.005]),
    ];
    let (grids, grid) = proj_with_egm96();
    for (srs, name, corner, cell) in cases {
        let tif = projected_tif_cells(&d.path().join(name), &input, srs, corner.0, corner.1, cell);
        let mut samples: Vec<(usize, usize, f64)> = Vec::new();
        for r in (0..H).step_by(3).chain([H - 1]) {
            for c in (0..W).step_by(3).chain([W - 1]) {
                samples.push((c, r, z[r * W + c] as f64));
            }
        }
        let (c0, r0) = ((W - 1) / 2, (H - 1) / 2);
        samples.push((c0, r0, z[r0 * W + c0] as f64));
        let want = gdal_ecef(srs, corner, cell, &samples);
        for gltf in ["plain", "quantized"] {
            let out = d.path().join(name).join(gltf);
            let m = mesh_with(&tif, &out, &["--max-error", "1", "--lod", "2", "--tile-size", "64", "--format", "3dtiles", "--gltf", gltf], Some(grids.path()));
            assert_eq!(m["params"]["placed"], true);
            let geoid = srs.contains('+').then(|| grid.file_name().unwrap().to_str().unwrap());
            assert_eq!(m["params"]["geoid"].as_str(), geoid, "{srs}");
            let scene = out.join("utm");
            let ts: serde_json::Value = serde_json::from_slice(&std::fs::read(scene.join("tileset.json")).unwrap()).unwrap();
            let t: Vec<f64> = ts["root"]["transform"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            // Frame ← earth-centred (the inverse of t's linear part by cofactors).
            let col = |c: usize| [t[4 * c], t[4 * c + 1], t[4 * c + 2]];
            let det = dot(col(0), cross(col(1), col(2)));
            let rows = [cross(col(1), col(2)), cross(col(2), col(0)), cross(col(0), col(1))];
            let unplace = |e: &[f64]| -> [f64; 3] { rows.map(|r| dot(r, [e[0] - t[12], e[1] - t[13], e[2] - t[14]]) / det) };
            let decoded = |path: &Path| {
                let g = terrafarm::encode::glb::decode(&std::fs::read(path).unwrap()).unwrap();
                let v: Vec<[f64; 3]> = g.positions.iter().map(|p| frame(std::array::from_fn(|k| g.translation[k] + p[k] as f64))).collect();
                (v, g.indices)
            };
            // The corners' and the centre's vertices, against GDAL; and where the tangent plane alone put them.
            let level0: Vec<[f64; 3]> = std::fs::read_dir(scene.join("tiles"))
                .unwrap()
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "glb"))
                .flat_map(|e| decoded(&e.path()).0)
                .map(|v| place(&t, v))
                .collect();
            let cw = m["params"]["cell_size"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<_>>();
            for (c, r) in [(0, 0), (W - 1, 0), (0, H - 1), (W - 1, H - 1), (c0, r0)] {
                let k = samples.iter().position(|s| (s.0, s.1) == (c, r)).unwrap();
                let dist = |p: [f64; 3]| (0..3).map(|i| (p[i] - want[k][i]).powi(2)).sum::<f64>().sqrt();
                let got = level0.iter().map(|&v| dist(v)).fold(f64::INFINITY, f64::min);
                let flat = dist(place(&t, [c as f64 * cw[0], -(r as f64) * cw[1], samples[k].2]));
                println!("{srs} {gltf} sample ({c}, {r}): its vertex {got:.4} m from GDAL's place (the tangent plane: {flat:.1} m)");
                // Quantized vertices are rounded to level 0's steps (0.5, 0.125 and 0.5 m in UTM here).
                let steps = terrafarm::encode::glb::quant_steps(64, [cw[0], cw[1]], 1.0);
                let bound = 0.01 + if gltf == "plain" { 0.0 } else { 0.5 * steps.iter().map(|s| s * s).sum::<f64>().sqrt() };
                assert!(got < bound, "{srs} {gltf}: sample ({c}, {r}) has no vertex within {bound} m of GDAL's place ({got} m)");
                if (c, r) != (c0, r0) {
                    assert!(flat > 100.0, "{flat}: a raster wide enough that the plane is far off");
                }
            }
            // Each level's error against GDAL's places of the samples.
            let mut lv = vec![("tiles".to_string(), 64usize, m["tiles"].clone(), 1.0)];
            for l in m["levels"].as_array().unwrap() {
                lv.push((
                    l["dir"].as_str().unwrap().into(),
                    l["tile_size"].as_u64().unwrap() as usize,
                    l["tiles"].clone(),
                    l["max_error_requested"].as_f64().unwrap(),
                ));
            }
            let places: Vec<[f64; 3]> = want.iter().map(|e| unplace(e)).collect();
            for (dir, size, tiles, requested) in lv {
                let (mut worst, mut recorded) = (0.0f64, 0.0f64);
                for tr in tiles.as_array().unwrap() {
                    recorded = recorded.max(tr["max_error"].as_f64().unwrap());
                    let (col, row) = (tr["col"].as_u64().unwrap() as usize, tr["row"].as_u64().unwrap() as usize);
                    let (v, idx) = decoded(&scene.join(&dir).join(format!("{col}_{row}.glb")));
                    // The surface triangles with their plan boxes. A skirt has two corners at one sample (a border
                    // vertex and the one hanging below it along the local vertical, then rounded: a step apart at
                    // most in plan).
                    let near = |p: [f64; 3], q: [f64; 3]| (p[0] - q[0]).hypot(p[1] - q[1]) < 0.1 * cw[0].min(cw[1]);
                    let surface: Vec<([[f64; 3]; 3], [f64; 4])> = idx
                        .chunks_exact(3)
                        .map(|t| [t[0], t[1], t[2]].map(|i| v[i as usize]))
                        .filter(|[a, b, c]| !(near(*a, *b) || near(*b, *c) || near(*c, *a)))
                        .map(|t| {
                            (
                                t,
                                [0, 1]
                                    .map(|k| t.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min))
                                    .into_iter()
                                    .chain([0, 1].map(|k| t.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max)))
                                    .collect::<Vec<_>>()
                                    .try_into()
                                    .unwrap(),
                            )
                        })
                        .collect();
                    // How far a place may miss every triangle of the tile: on the tile's edge, by the chord of the
                    // curved edge (up to 7 cm over the geographic raster's 18 km sides) and by what the vertices
                    // are off (up to half a quantization step).
                    let steps = terrafarm::encode::glb::quant_steps(size, [cw[0], cw[1]], requested as f32);
                    let slack = 0.5 + if gltf == "plain" { 0.0 } else { 0.5 * steps[0].hypot(steps[2]) };
                    for (k, s) in samples.iter().enumerate() {
                        if s.0 < col * size || s.0 > (col + 1) * size || s.1 < row * size || s.1 > (row + 1) * size {
                            continue;
                        }
                        // The triangle the sample's place lies in, or the one it is least outside of.
                        let p = places[k];
                        let (mut inside, mut height) = (f64::NEG_INFINITY, 0.0);
                        for ([a, b, c], bb) in &surface {
                            if p[0] < bb[0] - slack || p[1] < bb[1] - slack || p[0] > bb[2] + slack || p[1] > bb[3] + slack {
                                continue;
                            }
                            let area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
                            let w1 = ((p[0] - a[0]) * (c[1] - a[1]) - (p[1] - a[1]) * (c[0] - a[0])) / area;
                            let w2 = ((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])) / area;
                            // How far inside the triangle (metres to its nearest side; negative outside).
                            let side = |w: f64, p: &[f64; 3], q: &[f64; 3]| w * area.abs() / (p[0] - q[0]).hypot(p[1] - q[1]);
                            let least = side(1.0 - w1 - w2, b, c).min(side(w1, c, a)).min(side(w2, a, b));
                            if least > inside {
                                (inside, height) = (least, a[2] + w1 * (b[2] - a[2]) + w2 * (c[2] - a[2]));
                            }
                        }
                        assert!(inside > -slack, "{srs} {gltf} {dir}: sample {s:?} under no triangle of tile ({col}, {row}) ({inside} m out)");
                        worst = worst.max((height - p[2]).abs());
                    }
                }
                println!("{srs} {gltf} {dir}: requested {requested} m, recorded {recorded:.4} m, against GDAL's places {worst:.4} m");
                assert!(recorded <= requested + 1e-6, "{srs} {gltf} {dir}: recorded {recorded} over the requested {requested}");
                assert!(worst <= recorded * 1.001 + 1e-3, "{srs} {gltf} {dir}: {worst} m from GDAL's places, over the recorded {recorded}");
            }
            if let Some(v) = validator() {
                validate(&scene.join("tileset.json"), &v);
            }
        }
    }
}

/// The distance from each of `want` (earth-centred places) to the nearest content vertex of level 0 of the 3D Tiles
/// scene `scene`.
fn nearest_vertices(scene: &Path, want: &[Vec<f64>]) -> Vec<f64> {
    let ts: serde_json::Value = serde_json::from_slice(&std::fs::read(scene.join("tileset.json")).unwrap()).unwrap();
    let t: Vec<f64> = ts["root"]["transform"].as_array().expect("a placed tileset").iter().map(|x| x.as_f64().unwrap()).collect();
    let vertices = content_ecef(&scene.join("tiles"), &t);
    want.iter().map(|w| vertices.iter().map(|v| (0..3).map(|k| (v[k] - w[k]).powi(2)).sum::<f64>().sqrt()).fold(f64::INFINITY, f64::min)).collect()
}

/// Heights above EGM96 in 3D Tiles: made heights above the ellipsoid by the grid PROJ uses, found where PROJ looks
/// (its GTX or its GeoTIFF form) or given with `--geoid`; SRTM's `.hgt` taken as EGM96; placed as they are, with a
/// warning, where no grid is found, and with `--geoid none`. GDAL's places (`gdaltransform` from the compound CRS,
/// the same grid) are the reference.
#[test]
fn heights_above_a_geoid_are_placed_where_gdal_puts_them() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (input, z) = raster(d.path());
    let (grids, grid) = proj_with_egm96();
    let no_grids = proj_without_grids();
    let srs = "EPSG:32633+5773";
    let tif = projected_tif(&d.path().join("c"), &input, srs, UTM_CORNER.0, UTM_CORNER.1);
    // The corners of the 64-cell tiles (every mesh keeps them as vertices).
    let corners: Vec<usize> = (0..W).step_by(64).chain([W - 1]).collect();
    let samples: Vec<(usize, usize)> = (0..H).step_by(64).chain([H - 1]).flat_map(|r| corners.iter().map(move |&c| (c, r))).collect();
    let want = gdal_ecef(srs, UTM_CORNER, [CELL, CELL], &samples.iter().map(|&(c, r)| (c, r, z[r * W + c] as f64)).collect::<Vec<_>>());
    let args = ["--max-error", "1", "--tile-size", "64", "--format", "3dtiles"];
    let scene = |out: &str| d.path().join(out).join("utm");
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();

    // Found in PROJ's data: every sample's vertex where GDAL puts it, within 1 cm (the undulation is 46–47 m here).
    let m = mesh_with(&tif, &d.path().join("auto"), &args, Some(grids.path()));
    assert_eq!(m["params"]["geoid"].as_str(), Some(name(&grid).as_str()));
    for (s, dist) in samples.iter().zip(nearest_vertices(&scene("auto"), &want)) {
        println!("{srs} sample {s:?}: its vertex {dist:.4} m from GDAL's place");
        assert!(dist < 0.01, "{srs}: sample {s:?} has no vertex within 1 cm of GDAL's place ({dist} m)");
    }
    let o = run_with(&["info", tif.to_str().unwrap()], Some(grids.path()));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("3D Tiles heights: above EGM96 height (EPSG:5773), made heights above the ellipsoid through"), "{text}");
    // And the undulation at the centre, as GDAL finds it there (height 0 above EGM96, above the ellipsoid).
    let o = run_with(&["info", tif.to_str().unwrap(), "--json"], Some(grids.path()));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let [lon, lat] = [0, 1].map(|k| info[0]["centre_lon_lat"][k].as_f64().unwrap());
    let gdal_n = gdaltransform(&["-s_srs", "EPSG:4326+5773", "-t_srs", "EPSG:4979"], &format!("{lon} {lat} 0\n"))[0][2];
    let n = info[0]["geoid"]["undulation_at_centre"].as_f64().unwrap();
    assert!((n - gdal_n).abs() < 1e-6 && n > 40.0, "info's N {n} m, GDAL's {gdal_n}");

    // EGM2008 heights (EPSG:3855) over a geoid that kinks every 40 m: a grid written here under the GTX name PROJ
    // gives EGM2008's (`egm08_25.gtx`), 0.0004° between nodes around the raster, each node 0–10 m at random. GDAL
    // reads the same file; every tile corner's vertex where GDAL puts it.
    let rough = proj_without_grids();
    let (lat0, lon0, step, rows, cols) = (46.9f64, 12.3f64, 0.0004f64, 150usize, 300usize);
    let mut b: Vec<u8> = [lat0, lon0, step, step].iter().flat_map(|v| v.to_be_bytes()).collect();
    b.extend((rows as i32).to_be_bytes());
    b.extend((cols as i32).to_be_bytes());
    b.extend((0..rows * cols).flat_map(|k| (((k * 7919 + k / cols * 104_729) % 1000) as f32 * 0.01).to_be_bytes()));
    std::fs::write(rough.path().join("egm08_25.gtx"), b).unwrap();
    let srs08 = "EPSG:32633+3855";
    let tif08 = projected_tif(&d.path().join("c08"), &input, srs08, UTM_CORNER.0, UTM_CORNER.1);
    let gdal_data = rough.path();
    let input08: String = samples
        .iter()
        .map(|&(c, r)| format!("{} {} {}\n", UTM_CORNER.0 + (c as f64 + 0.5) * CELL, UTM_CORNER.1 + (H - r) as f64 * CELL - 0.5 * CELL, z[r * W + c]))
        .collect();
    let geo = gdal_input("gdaltransform", &["-s_srs", srs08, "-t_srs", "EPSG:4979"], &input08, Some(gdal_data));
    let want08 = gdal_input("gdaltransform", &["-s_srs", "EPSG:4979", "-t_srs", "EPSG:4978"], &geo, Some(gdal_data));
    let want08: Vec<Vec<f64>> = want08.lines().map(|l| l.split_whitespace().take(3).map(|v| v.parse().unwrap()).collect()).collect();
    let m = mesh_with(&tif08, &d.path().join("egm08"), &args, Some(rough.path()));
    assert_eq!(m["params"]["geoid"], "egm08_25.gtx");
    let dists = nearest_vertices(&d.path().join("egm08/utm"), &want08);
    println!("EGM2008 (rough grid): tile corners' vertices {:.4} m from GDAL's places at most", dists.iter().fold(0.0f64, |a, &b| a.max(b)));
    for (s, dist) in samples.iter().zip(dists) {
        // Within 2 mm: a sample's place is interpolated between exact ones 250 m apart, at most about 1 mm off, and
        // this geoid's slopes (up to 0.25) are a thousand times the real ones (nodes 1 km apart: 2.7 mm).
        assert!(dist < 0.002, "{srs08}: sample {s:?} has no vertex within 2 mm of GDAL's place ({dist} m)");
    }

    // `--geoid egm2008` on a raster that declares no vertical CRS (as the Copernicus DEM's GeoTIFFs): the same
    // places; and an error, not a fallback, where the grid is not found.
    let plain = projected_tif(&d.path().join("p"), &input, "EPSG:32633", UTM_CORNER.0, UTM_CORNER.1);
    let m = mesh_with(&plain, &d.path().join("named"), &[&args[..], &["--geoid", "egm2008"]].concat(), Some(rough.path()));
    assert_eq!(m["params"]["geoid"], "egm08_25.gtx");
    for dist in nearest_vertices(&d.path().join("named/utm"), &want08) {
        assert!(dist < 0.002, "--geoid egm2008: {dist} m from GDAL's place");
    }
    let out = d.path().join("named-missing");
    let o =
        run_with(&[&["mesh", plain.to_str().unwrap(), "--out", out.to_str().unwrap()][..], &args[..], &["--geoid", "egm2008"]].concat(), Some(no_grids.path()));
    assert!(!o.status.success() && stderr(&o).contains("neither us_nga_egm08_25.tif nor egm08_25.gtx"), "{}", stderr(&o));
    assert!(!out.join("utm/manifest.json").exists());

    // `--geoid none`: placed as they are, where GDAL puts the samples of the CRS without its vertical part: the
    // undulation below the places above.
    let m = mesh_with(&tif, &d.path().join("none"), &[&args[..], &["--geoid", "none"]].concat(), Some(grids.path()));
    assert!(m["params"]["geoid"].is_null());
    let flat = gdal_ecef("EPSG:32633", UTM_CORNER, [CELL, CELL], &samples.iter().map(|&(c, r)| (c, r, z[r * W + c] as f64)).collect::<Vec<_>>());
    for ((dist, a), b) in nearest_vertices(&scene("none"), &flat).into_iter().zip(&want).zip(&flat) {
        let n = (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt();
        assert!(dist < 0.01 && (40.0..50.0).contains(&n), "{dist} m from GDAL's place without the geoid, {n} m from the one with it");
    }

    // No grid in PROJ's data: placed as they are, and the run and `info` say why.
    let out = d.path().join("missing");
    let o = run_with(&[&["mesh", tif.to_str().unwrap(), "--out", out.to_str().unwrap()][..], &args[..]].concat(), Some(no_grids.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let why = "heights above EGM96 height (EPSG:5773) are placed as heights above the WGS 84 ellipsoid, off by the geoid's undulation (up to ±100 m): neither us_nga_egm96_15.tif nor egm96_15.gtx is in PROJ's grid folders";
    assert!(stderr(&o).contains(why), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(scene("missing").join("manifest.json")).unwrap()).unwrap();
    assert!(m["params"]["geoid"].is_null() && m["params"]["placed"] == true);
    let o = run_with(&["info", tif.to_str().unwrap(), "--json"], Some(no_grids.path()));
    let info: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(info[0]["geoid"]["not_converted"].as_str().unwrap().starts_with(why), "{}", info[0]["geoid"]);

    // Heights above a geoid terrafarm has no model of (NAVD88, as USGS 3DEP tiles declare it): placed as they are,
    // and the run says so.
    let navd = projected_tif(&d.path().join("navd"), &input, "EPSG:26910+5703", 560_000.0, 4_180_000.0);
    let out = d.path().join("navd/o");
    let o = run_with(&[&["mesh", navd.to_str().unwrap(), "--out", out.to_str().unwrap()][..], &args[..]].concat(), Some(grids.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("heights in the file's vertical CRS EPSG:5703"), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("utm/manifest.json")).unwrap()).unwrap();
    assert!(m["params"]["geoid"].is_null() && m["params"]["placed"] == true);

    // The grid's other form, written by GDAL from PROJ's (GeoTIFF from GTX, or GTX from GeoTIFF), found under the
    // name PROJ gives that form: the same places.
    let other = proj_without_grids();
    let (other_name, driver) = if name(&grid).ends_with(".gtx") { ("us_nga_egm96_15.tif", "GTiff") } else { ("egm96_15.gtx", "GTX") };
    gdal("gdal_translate", &["-q", "-of", driver, grid.to_str().unwrap(), other.path().join(other_name).to_str().unwrap()]);
    let m = mesh_with(&tif, &d.path().join("other"), &args, Some(other.path()));
    assert_eq!(m["params"]["geoid"], other_name);
    for dist in nearest_vertices(&scene("other"), &want) {
        assert!(dist < 0.01, "{other_name}: {dist} m from GDAL's place");
    }

    // `--geoid FILE` on a raster that declares no vertical CRS: its heights taken as above that geoid.
    let m = mesh_with(&plain, &d.path().join("file"), &[&args[..], &["--geoid", grid.to_str().unwrap()]].concat(), Some(no_grids.path()));
    assert_eq!(m["params"]["geoid"].as_str(), Some(name(&grid).as_str()));
    for dist in nearest_vertices(&scene("file"), &want) {
        assert!(dist < 0.01, "--geoid FILE: {dist} m from GDAL's place");
    }
    // A file that is not a grid, and --geoid without 3D Tiles: clear errors, nothing written.
    let out = d.path().join("bad");
    let o = run_with(
        &["mesh", plain.to_str().unwrap(), "--out", out.to_str().unwrap(), "--format", "3dtiles", "--geoid", input.to_str().unwrap()],
        Some(no_grids.path()),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("geoid grid") && !stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(!out.join("utm/tileset.json").exists() && !out.join("utm/manifest.json").exists());
    let o = run(&["mesh", plain.to_str().unwrap(), "--out", out.to_str().unwrap(), "--geoid", grid.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("add 3dtiles to --format"), "{}", stderr(&o));

    // SRTM's .hgt heights are above EGM96: a 1201² tile (3 arc-seconds) named for its south-west corner at 47° N,
    // 12° E, against GDAL's places of its points from EPSG:4326+5773.
    let hgt = d.path().join("N47E012.hgt");
    let side = 1201usize;
    let h = |c: usize, r: usize| (1500.0 + 400.0 * ((c as f64) / 150.0).sin() * ((r as f64) / 190.0).cos()).round() as i16;
    let bytes: Vec<u8> = (0..side * side).flat_map(|i| h(i % side, i / side).to_be_bytes()).collect();
    std::fs::write(&hgt, bytes).unwrap();
    let out = d.path().join("hgt");
    let m = mesh_with(&hgt, &out, &["--max-error", "1", "--format", "3dtiles"], Some(grids.path()));
    assert_eq!(m["params"]["geoid"].as_str(), Some(name(&grid).as_str()));
    // Tiles' corners (256-cell tiles), which every mesh keeps as vertices.
    let points = [(512, 768), (0, 0), (1200, 0), (0, 1200), (1200, 1200)];
    let input: String = points.iter().map(|&(c, r)| format!("{} {} {}\n", 12.0 + c as f64 / 1200.0, 48.0 - r as f64 / 1200.0, h(c, r))).collect();
    let geo = gdaltransform(&["-s_srs", "EPSG:4326+5773", "-t_srs", "EPSG:4979"], &input);
    let want = gdaltransform(&["-s_srs", "EPSG:4979", "-t_srs", "EPSG:4978"], &geo.iter().map(|p| format!("{} {} {}\n", p[0], p[1], p[2])).collect::<String>());
    for (p, dist) in points.iter().zip(nearest_vertices(&out.join("N47E012"), &want)) {
        println!(".hgt sample {p:?}: its vertex {dist:.4} m from GDAL's place");
        assert!(dist < 0.01, ".hgt sample {p:?}: {dist} m from GDAL's place");
    }
}

/// Every GLB a manifest lists (level 0 and every level above), by name.
fn glb_names(m: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = m["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .chain(m["levels"].as_array().unwrap().iter().flat_map(|l| l["tiles"].as_array().unwrap()))
        .flat_map(|t| t["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()))
        .filter(|n| n.ends_with(".glb"))
        .collect();
    v.sort();
    v
}

/// Expands an implicit tileset into the explicit one with CesiumGS's 3d-tiles-tools (`.ci/tools/expand-implicit.mjs`).
fn expand_implicit(tools: &Path, validator: &Path, tileset: &Path) -> PathBuf {
    let out = tileset.with_file_name("expanded.json");
    let pkg = validator.parent().and_then(Path::parent).unwrap(); // build/main.js → the package
    let o = std::process::Command::new("node").arg(tools.join("expand-implicit.mjs")).arg(pkg).arg(tileset).arg(&out).output().expect("node");
    println!("3d-tiles-tools expansion of {}: {}", tileset.display(), String::from_utf8_lossy(&o.stdout).trim());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// `--tileset implicit` (3D Tiles implicit tiling): the official validator accepts it (and reads every content
/// through the template and the subtree's bits); CesiumGS's 3d-tiles-tools expand it into a tree that lists exactly
/// the manifest's GLBs, whose derived boxes hold their contents and nest, with geometric error falling; the files,
/// laid out by depth from the root, are the explicit run's byte for byte. A 10×8 grid of tiles (top level 4: a
/// 16×16 quadtree, partly available) exercises the availability bitstreams. One content bit set for a tile past
/// the raster makes the validator fail, so the bits are read, not assumed.
#[test]
fn implicit_tileset_expands_to_the_explicit_tree() {
    let d = tempfile::tempdir().unwrap();
    let (input, _) = raster(d.path());
    let me = mesh(&input, &d.path().join("e"), &LOD_ARGS);
    let mut args = LOD_ARGS.to_vec();
    args.extend(["--tileset", "implicit"]);
    let mi = mesh(&input, &d.path().join("i"), &args);
    let (se, si) = (d.path().join("e/t"), d.path().join("i/t"));
    let top = mi["levels"].as_array().unwrap().len();
    assert_eq!(top, 4, "10×8 tiles of 32 cells: levels up to one tile");
    let dirs: Vec<&str> = mi["levels"].as_array().unwrap().iter().map(|l| l["dir"].as_str().unwrap()).collect();
    assert_eq!(dirs, ["content/3", "content/2", "content/1", "content/0"]);
    // The same meshes, byte for byte: level L's tile (c, r) is content/{top − L}/c_r.glb.
    let (ge, gi) = (glb_names(&me), glb_names(&mi));
    assert_eq!(ge.len(), gi.len());
    let moved = |name: &str| -> String {
        let (dir, file) = name.rsplit_once('/').unwrap();
        let level = if dir == "tiles" { 0 } else { dir.trim_start_matches("lod/").parse::<usize>().unwrap() };
        format!("content/{}/{file}", top - level)
    };
    let mut want: Vec<String> = ge.iter().map(|n| moved(n)).collect();
    want.sort();
    assert_eq!(want, gi);
    for n in &ge {
        assert!(std::fs::read(se.join(n)).unwrap() == std::fs::read(si.join(moved(n))).unwrap(), "{n} differs from {}", moved(n));
    }
    assert_eq!(mi["subtrees"], serde_json::json!(["subtrees/0/0/0.subtree"]), "the manifest lists the subtree");
    assert!(me.get("subtrees").is_none());
    let ts: serde_json::Value = serde_json::from_slice(&std::fs::read(si.join("tileset.json")).unwrap()).unwrap();
    let it = &ts["root"]["children"][0]["implicitTiling"];
    assert_eq!((it["subdivisionScheme"].as_str(), it["availableLevels"].as_u64()), (Some("QUADTREE"), Some(5)));

    let Some(v) = validator() else { return };
    validate(&si.join("tileset.json"), &v);
    let Some(tools) = node_tools() else { return };
    let expanded = expand_implicit(&tools, &v, &si.join("tileset.json"));
    let ex: serde_json::Value = serde_json::from_slice(&std::fs::read(&expanded).unwrap()).unwrap();
    // From the quadtree's root down, boxes nest; the explicit root above it holds the scene's own (smaller) box,
    // which must hold every content.
    let (root, quad) = (&ex["root"], &ex["root"]["children"][0]);
    assert_eq!(root["children"].as_array().unwrap().len(), 1);
    let mut uris = Vec::new();
    walk(&si, quad, Some((root["geometricError"].as_f64().unwrap(), aabb(&quad["boundingVolume"]))), &mut uris);
    let scene_box = aabb(&root["boundingVolume"]);
    for u in &uris {
        for p in world(&read_glb(&std::fs::read(si.join(u)).unwrap())) {
            assert!(inside(&(frame(p), frame(p)), &scene_box, 1e-3), "{u}: a vertex outside the root's box");
        }
    }
    uris.sort();
    assert_eq!(uris, gi, "the available contents are exactly the GLBs written");
    independent_read(&tools, &expanded, &d.path().join("read"));

    // A content bit for the last tile of the deepest level (past the raster): the validator must object.
    let sub = si.join("subtrees/0/0/0.subtree");
    let mut b = std::fs::read(&sub).unwrap();
    assert_eq!(&b[..4], b"subt");
    let js = u64::from_le_bytes(b[8..16].try_into().unwrap()) as usize;
    let j: serde_json::Value = serde_json::from_slice(&b[24..24 + js]).unwrap();
    let view = &j["bufferViews"][j["contentAvailability"][0]["bitstream"].as_u64().unwrap() as usize];
    let bit = ((1usize << (2 * (top + 1))) - 1) / 3 - 1; // the last tile of level `top`: Morton (15, 15)
    let at = 24 + js + view["byteOffset"].as_u64().unwrap() as usize + bit / 8;
    assert_eq!(b[at] & (1 << (bit % 8)), 0, "that tile is past the raster");
    b[at] |= 1 << (bit % 8);
    std::fs::write(&sub, &b).unwrap();
    let report = si.join("report-mutated.json");
    let o = std::process::Command::new("node")
        .arg(&v)
        .args(["--tilesetFile", si.join("tileset.json").to_str().unwrap(), "--reportFile", report.to_str().unwrap()])
        .output()
        .expect("node");
    assert!(o.status.success());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    println!("with a content bit past the raster: {} errors", r["numErrors"]);
    assert!(r["numErrors"].as_u64().unwrap() > 0, "the validator must read the availability bits");
}

/// `--tileset implicit` is refused without 3dtiles, and for a scene whose levels stop below one tile.
#[test]
fn implicit_tileset_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    let (input, _) = raster(d.path());
    let o = run(&["mesh", input.to_str().unwrap(), "--out", d.path().join("a").to_str().unwrap(), "--size", "301x233", "--tileset", "implicit"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("add 3dtiles to --format"), "{}", stderr(&o));
    let out_b = d.path().join("b");
    let mut args = vec!["mesh", input.to_str().unwrap(), "--out", out_b.to_str().unwrap()];
    args.extend(["--size", "301x233", "--max-error", "1", "--lod", "2", "--tile-size", "32", "--format", "3dtiles", "--tileset", "implicit"]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("needs levels up to one tile over the raster"), "{}", stderr(&o));
    assert!(!d.path().join("b/t/manifest.json").exists());
}

/// WGS84 geodetic longitude, latitude (radians) and height of an earth-centred point: Bowring's closed form
/// (written here independently of terrafarm's own conversion).
fn bowring(p: [f64; 3]) -> [f64; 3] {
    let (a, f) = (6_378_137.0f64, 1.0 / 298.257_223_563);
    let b = a * (1.0 - f);
    let (e2, ep2) = (f * (2.0 - f), (a * a - b * b) / (b * b));
    let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
    let th = (p[2] * a).atan2(r * b);
    let lat = (p[2] + ep2 * b * th.sin().powi(3)).atan2(r - e2 * a * th.cos().powi(3));
    let n = a / (1.0 - e2 * lat.sin().powi(2)).sqrt();
    [p[1].atan2(p[0]), lat, r / lat.cos() - n]
}

/// How far east of `west` a longitude lies, in [0, 2π); a region's span, read eastward from west to east (3D
/// Tiles reads west > east as crossing ±π).
fn east_of(lon: f64, west: f64) -> f64 {
    (lon - west).rem_euclid(std::f64::consts::TAU)
}
fn span(r: &[f64; 6]) -> f64 {
    if r[2] >= r[0] {
        r[2] - r[0]
    } else {
        r[2] - r[0] + std::f64::consts::TAU
    }
}

fn check_regions(scene: &Path, tile: &serde_json::Value, t: &[f64], parent: Option<[f64; 6]>) -> usize {
    let reg: Vec<f64> = tile["boundingVolume"]["region"].as_array().expect("a region beside the box").iter().map(|x| x.as_f64().unwrap()).collect();
    let reg: [f64; 6] = reg.try_into().unwrap();
    let pi = std::f64::consts::PI;
    assert!(reg[0].abs() <= pi && reg[2].abs() <= pi && reg[1].abs() <= pi / 2.0 && reg[3].abs() <= pi / 2.0, "{reg:?}");
    if let Some(p) = parent {
        assert!(
            (span(&p) >= std::f64::consts::TAU || east_of(reg[0], p[0]) + span(&reg) <= span(&p))
                && reg[1] >= p[1]
                && reg[3] <= p[3]
                && reg[4] >= p[4] - 1e-6
                && reg[5] <= p[5] + 1e-6,
            "region {reg:?} outside its parent's {p:?}"
        );
    }
    let mut n = 1;
    if let Some(uri) = tile["content"]["uri"].as_str() {
        let g = read_glb(&std::fs::read(scene.join(uri)).unwrap());
        for w in world(&g) {
            let [lon, lat, h] = bowring(place(t, frame(w)));
            assert!(
                east_of(lon, reg[0]) <= span(&reg) && lat >= reg[1] && lat <= reg[3] && h >= reg[4] - 1e-4 && h <= reg[5] + 1e-4,
                "{uri}: ({lon}, {lat}, {h}) outside {reg:?}"
            );
        }
    }
    for c in tile["children"].as_array().into_iter().flatten() {
        n += check_regions(scene, c, t, Some(reg));
    }
    n
}

/// A geographic DEM across the antimeridian (WGS84, 179.4° to 180.6° east, as GDAL writes longitudes past 180°):
/// the root region crosses ±π (west > east, both within ±π, as the validator requires), every content vertex lies
/// in its tile's region read eastward, children's regions lie in their parents', and the official validator
/// accepts the explicit and the implicit tileset. The tiles' north edges cross the scene's centre meridian away
/// from their midpoints, where a region taken from corners and midpoints misses the edges' highest latitudes.
#[test]
fn regions_across_the_antimeridian() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (raw, _) = raster(d.path());
    envi_header(d.path(), raw.file_stem().unwrap().to_str().unwrap(), W, H);
    let tif = d.path().join("pacific.tif");
    gdal("gdal_translate", &["-q", "-a_srs", "EPSG:4326", "-a_ullr", "179.4", "52.2", "180.6", "51.3", raw.to_str().unwrap(), tif.to_str().unwrap()]);
    let v = validator();
    for (dir, extra) in [("e", None), ("i", Some("implicit"))] {
        let mut args = vec!["--max-error", "1", "--lod", "auto", "--tile-size", "32", "--format", "3dtiles"];
        if let Some(x) = extra {
            args.extend(["--tileset", x]);
        }
        mesh(&tif, &d.path().join(dir), &args);
        let scene = d.path().join(dir).join("pacific");
        let ts: serde_json::Value = serde_json::from_slice(&std::fs::read(scene.join("tileset.json")).unwrap()).unwrap();
        let t: Vec<f64> = ts["root"]["transform"].as_array().expect("a geographic raster is placed").iter().map(|x| x.as_f64().unwrap()).collect();
        let root = &ts["root"]["boundingVolume"]["region"];
        let (w, e) = (root[0].as_f64().unwrap(), root[2].as_f64().unwrap());
        println!("{dir}: root region west {:.6}°, east {:.6}°", w.to_degrees(), e.to_degrees());
        assert!(w > 3.13 && e < -3.13, "the root region crosses the antimeridian: {root}");
        if extra.is_none() {
            assert!(check_regions(&scene, &ts["root"], &t, None) > 100);
        }
        if let Some(v) = &v {
            validate(&scene.join("tileset.json"), v);
        }
    }
}

/// A level tile lost after a run is the only one remade by `--resume`, and the result equals a fresh run; one
/// thread and two give the same bytes.
#[test]
fn levels_resume_per_tile_and_do_not_depend_on_threads() {
    let d = tempfile::tempdir().unwrap();
    let (input, _) = raster(d.path());
    let one = d.path().join("one");
    let mut a = LOD_ARGS.to_vec();
    a.extend(["-j", "1"]);
    mesh(&input, &one, &a);
    let two = d.path().join("two");
    let mut a = LOD_ARGS.to_vec();
    a.extend(["-j", "2", "--json", "--resume"]);
    mesh(&input, &two, &a);
    assert!(tree(&one) == tree(&two), "1 and 2 threads differ");
    std::fs::remove_file(two.join("t/lod/2/1_0.glb")).unwrap();
    let mut args = vec!["mesh", input.to_str().unwrap(), "--out", two.to_str().unwrap()];
    args.extend(a.iter().copied());
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(one.join("t/manifest.json")).unwrap()).unwrap();
    let total = m["tiles"].as_array().unwrap().len() + m["levels"].as_array().unwrap().iter().map(|l| l["tiles"].as_array().unwrap().len()).sum::<usize>();
    assert_eq!(s["scenes"][0]["resumed_tiles"].as_u64(), Some(total as u64 - 1), "only the lost tile is remade");
    assert!(tree(&one) == tree(&two), "resumed run differs from a fresh one");
}

#[test]
fn lod_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    let (input, _) = raster(d.path());
    let i = input.to_str().unwrap();
    let x = d.path().join("x");
    for bad in [
        vec!["--lod", "2"],
        vec!["--lod", "0", "--max-error", "1"],
        vec!["--lod", "2", "--max-error", "1", "--lod-errors", "3"],
        vec!["--lod-errors", "3", "--max-error", "1"],
        vec!["--format", "3dtile"],
    ] {
        let mut a = vec!["mesh", i, "--size", "301x233", "--out", x.to_str().unwrap()];
        a.extend(bad.iter().copied());
        let o = run(&a);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}

/// The node tools under `.ci/tools` (glTF-Transform, meshoptimizer, CesiumJS, puppeteer-core), installed by
/// `npm install` there; required under CI=true.
fn node_tools() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/tools");
    if dir.join("node_modules/@gltf-transform/core").exists() {
        return Some(dir);
    }
    assert!(!ci(), "node tools missing under .ci/tools (CI=true): run npm install there");
    eprintln!("note: .ci/tools/node_modules not installed; skipping");
    None
}

/// Runs the independent reader on a tileset: its own checks must pass; returns each content's triangles (world
/// positions, glTF frame) and the folder of re-encoded GLBs.
fn independent_read(tools: &Path, tileset: &Path, out: &Path) -> HashMap<String, Vec<[f64; 9]>> {
    let o = std::process::Command::new("node").arg(tools.join("read-tileset.mjs")).arg(tileset).arg(out).output().expect("node");
    println!("independent reader on {}: {}", tileset.display(), String::from_utf8_lossy(&o.stdout).trim());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: HashMap<String, Vec<Vec<f64>>> = serde_json::from_slice(&std::fs::read(out.join("decoded.json")).unwrap()).unwrap();
    v.into_iter().map(|(k, t)| (k, t.into_iter().map(|x| x.try_into().unwrap()).collect())).collect()
}

/// A triangle with its corners rotated to start at the smallest (winding kept): the same triangle compares equal
/// whatever corner an encoder listed first.
fn canonical(t: &[f64; 9]) -> [u64; 9] {
    let c = |i: usize| [t[3 * i], t[3 * i + 1], t[3 * i + 2]];
    let first = (0..3).min_by(|&a, &b| c(a).partial_cmp(&c(b)).unwrap()).unwrap();
    std::array::from_fn(|k| t[(3 * first + k) % 9].to_bits())
}

/// Largest |surface − sample| over the samples under a tile's triangles (world positions; vertical ones skipped).
fn remeasure_world(tris: &[[f64; 9]], z: &[f32]) -> f64 {
    let mut worst = 0.0f64;
    for t in tris {
        let (a, b, c) = ([t[0], t[1], t[2]], [t[3], t[4], t[5]], [t[6], t[7], t[8]]);
        let area = (b[0] - a[0]) * (c[2] - a[2]) - (b[2] - a[2]) * (c[0] - a[0]);
        if area.abs() < 1e-9 {
            continue;
        }
        let (x0, x1) = ((a[0].min(b[0]).min(c[0]) / CELL).ceil() as i64, (a[0].max(b[0]).max(c[0]) / CELL).floor() as i64);
        let (y0, y1) = ((a[2].min(b[2]).min(c[2]) / CELL).ceil() as i64, (a[2].max(b[2]).max(c[2]) / CELL).floor() as i64);
        for y in y0.max(0)..=y1.min(H as i64 - 1) {
            for x in x0.max(0)..=x1.min(W as i64 - 1) {
                let (px, pz) = (x as f64 * CELL, y as f64 * CELL);
                let e = |p: [f64; 3], q: [f64; 3]| (q[0] - p[0]) * (pz - p[2]) - (q[2] - p[2]) * (px - p[0]);
                let (w0, w1, w2) = (e(b, c), e(c, a), e(a, b));
                let tol = area.abs() * 1e-12;
                if (w0 >= -tol && w1 >= -tol && w2 >= -tol) || (w0 <= tol && w1 <= tol && w2 <= tol) {
                    let zi = (w0 * a[1] + w1 * b[1] + w2 * c[1]) / area;
                    worst = worst.max((zi - z[y as usize * W + x as usize] as f64).abs());
                }
            }
        }
    }
    worst
}

/// Quantized and meshopt-compressed tiles, read by an independent decoder (glTF-Transform with meshoptimizer's
/// decoder): the same triangles in both; equal to the plain mesh made with the same error budget within half a
/// quantization step; every level's error (quantization included) within the requested bound; seams exact after
/// quantization; the decoded meshopt content clean for the Khronos validator; and the bytes per triangle.
#[test]
fn compact_gltf_decodes_to_the_same_mesh_in_an_independent_reader() {
    let Some(tools) = node_tools() else { return };
    let d = tempfile::tempdir().unwrap();
    let (input, z) = raster(d.path());
    let base = ["--size", "301x233", "--cell-size", "2", "--lod", "2", "--tile-size", "32", "--format", "3dtiles", "--skirts", "100"];
    let run_with = |name: &str, extra: &[&str]| {
        let out = d.path().join(name);
        let m = mesh(&input, &out, &[&base[..], extra].concat());
        (m, out.join("t"))
    };
    let (mq, q) = run_with("q", &["--max-error", "1", "--gltf", "quantized"]);
    let (mm, mo) = run_with("m", &["--max-error", "1", "--gltf", "meshopt"]);
    // The plain mesh with the budget the quantized run simplified to: the error less half of each level's height step.
    let step = terrafarm::encode::glb::quant_steps(32, [CELL, CELL], 1.0);
    let budget = 1.0 - step[1] / 2.0;
    let (mp, p) = run_with("p", &["--max-error", &budget.to_string()]);
    let dq = independent_read(&tools, &q.join("tileset.json"), &d.path().join("read-q"));
    let dm = independent_read(&tools, &mo.join("tileset.json"), &d.path().join("read-m"));
    assert_eq!(dq.len(), dm.len());
    for (uri, tq) in &dq {
        let mut a: Vec<[u64; 9]> = tq.iter().map(canonical).collect();
        let mut b: Vec<[u64; 9]> = dm[uri].iter().map(canonical).collect();
        a.sort();
        b.sort();
        assert!(a == b, "{uri}: meshopt and quantized decode to different triangles");
    }
    // Quantized against plain, tile by tile, vertex by vertex (same simplifier run, same order).
    let mut worst = [0.0f64; 3];
    for (uri, tq) in &dq {
        let g = read_glb(&std::fs::read(p.join(uri)).unwrap());
        let w = world(&g);
        let plain: Vec<[f64; 3]> = g.indices.iter().map(|&i| w[i as usize]).collect();
        assert_eq!(plain.len(), tq.len() * 3, "{uri}: triangle counts differ");
        for (k, t) in tq.iter().enumerate() {
            for c in 0..3 {
                for a in 0..3 {
                    worst[a] = worst[a].max((t[3 * c + a] - plain[3 * k + c][a]).abs());
                }
            }
        }
    }
    println!(
        "quantized vs plain at the same budget: largest difference X {} m, Y {} m, Z {} m (half steps at level 0: {:?})",
        worst[0],
        worst[1],
        worst[2],
        step.map(|s| s / 2.0)
    );
    // Level L's steps are 2^L times level 0's in Y, and grow with the tile in X/Z: the coarsest level bounds all.
    let top = terrafarm::encode::glb::quant_steps(32 << 2, [CELL, CELL], 4.0);
    for a in 0..3 {
        assert!(worst[a] <= top[a] / 2.0 + 1e-9, "axis {a}: {} over half a step {}", worst[a], top[a] / 2.0);
    }
    // Error bound per level, quantization included, and seams exact after quantization.
    for (l, (dir, requested, recorded)) in levels(&mq).iter().enumerate() {
        let mut level_worst = 0.0f64;
        let mut surface: HashMap<(i64, i64), u64> = HashMap::new();
        for (uri, tris) in dq.iter().filter(|(u, _)| u.starts_with(&format!("{dir}/"))) {
            level_worst = level_worst.max(remeasure_world(tris, &z));
            let mut top: HashMap<(i64, i64), f64> = HashMap::new();
            for t in tris {
                for c in 0..3 {
                    let k = ((t[3 * c] / CELL * 1024.0).round() as i64, (t[3 * c + 2] / CELL * 1024.0).round() as i64);
                    let y = top.entry(k).or_insert(f64::NEG_INFINITY);
                    *y = y.max(t[3 * c + 1]);
                }
            }
            for (k, y) in top {
                if let Some(prev) = surface.insert(k, y.to_bits()) {
                    assert_eq!(prev, y.to_bits(), "level {l}: seam vertex {k:?} differs ({uri})");
                }
            }
        }
        println!("quantized level {l}: requested {requested} m, recorded {recorded:.4} m, re-measured {level_worst:.4} m");
        assert!(level_worst <= requested + 1e-6, "level {l}: {level_worst} over {requested}");
        assert!((level_worst - recorded).abs() < 1e-3, "level {l}: re-measured {level_worst} vs recorded {recorded}");
    }
    // The decoded meshopt content passes the Khronos validator (which cannot look inside EXT_meshopt_compression).
    let o = std::process::Command::new("node")
        .arg(tools.join("../validate-glb.mjs"))
        .arg(d.path().join("read-m/glb"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    if let Some(v) = validator() {
        validate(&q.join("tileset.json"), &v);
        validate(&mo.join("tileset.json"), &v);
    }
    let bytes = |m: &serde_json::Value| {
        let t = m["totals"]["bytes"].as_u64().unwrap() + m["levels"].as_array().unwrap().iter().map(|l| l["totals"]["bytes"].as_u64().unwrap()).sum::<u64>();
        let n = m["totals"]["triangles"].as_u64().unwrap()
            + m["levels"].as_array().unwrap().iter().map(|l| l["totals"]["triangles"].as_u64().unwrap()).sum::<u64>();
        t as f64 / n as f64
    };
    println!("bytes per triangle: plain {:.2}, quantized {:.2}, meshopt {:.2}", bytes(&mp), bytes(&mq), bytes(&mm));
    assert!(bytes(&mm) < bytes(&mq) && bytes(&mq) < bytes(&mp));
}

/// A real client: CesiumJS in headless Chromium loads a georeferenced, meshopt-compressed pyramid from a server on
/// 127.0.0.1, every tile the view needs (all of them, at a screen-space error of 1) loads without a failure, and the
/// frame is not blank; once as an explicit tree, once as an implicit one (subtree and template). The screenshots
/// are kept in target/ci-artifacts.
#[test]
fn cesiumjs_loads_every_tile_of_a_georeferenced_compressed_tileset() {
    let Some(tools) = node_tools() else { return };
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        assert!(!ci(), "{chromium} missing (CI=true): apt-get install chromium");
        return eprintln!("note: {chromium} not found; skipping");
    }
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (input, _) = raster(d.path());
    let tif = projected_tif(d.path(), &input, "EPSG:32633", UTM_CORNER.0, UTM_CORNER.1);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    // The explicit tree (two levels above the tiles), then the implicit one (levels up to one tile).
    for (out, extra, png) in
        [("o", &["--lod", "2"][..], "cesium-utm-meshopt.png"), ("i", &["--lod", "auto", "--tileset", "implicit"][..], "cesium-utm-implicit.png")]
    {
        let mut args = vec!["--max-error", "1", "--tile-size", "64", "--format", "3dtiles", "--gltf", "meshopt"];
        args.extend_from_slice(extra);
        let m = mesh(&tif, &d.path().join(out), &args);
        let tiles = m["tiles"].as_array().unwrap().len() + m["levels"].as_array().unwrap().iter().map(|l| l["tiles"].as_array().unwrap().len()).sum::<usize>();
        let shot = shots.join(png);
        let o = std::process::Command::new("node")
            .arg(tools.join("cesium-check.mjs"))
            .arg(d.path().join(out).join("utm"))
            .arg(&shot)
            .env("CHROMIUM", &chromium)
            .output()
            .expect("node");
        let stdout = String::from_utf8_lossy(&o.stdout);
        println!("CesiumJS, {extra:?}: {} (screenshot {})", stdout.trim(), shot.display());
        assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        // CesiumJS counts the subtree of an implicit tree as one more load (the content of the tile declaring it).
        let implicit = extra.contains(&"implicit");
        assert_eq!(r["loaded"].as_u64(), Some((tiles + usize::from(implicit)) as u64), "every tile of every level loaded");
    }
}
