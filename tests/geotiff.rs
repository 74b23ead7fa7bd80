//! GeoTIFF / COG input (issue #11), on fixtures written by GDAL itself (`gdal_translate`, `gdalinfo` from Debian's
//! `gdal-bin`): the writer and the reference decoder are independent of terrafarm's reader. Every sample type,
//! compression, predictor and layout meshes byte-identical to the same samples exported by GDAL as raw f32;
//! derived cell sizes equal those computed here from gdalinfo's numbers; no-data tags are honoured; bad files
//! fail cleanly. Without GDAL the tests are skipped with a note, except under CI=true where they fail.

mod common;
use common::*;
use std::path::Path;

const W: usize = 301;
const H: usize = 257;

/// Deterministic terrain, 0..1200 m.
fn heights(w: usize, h: usize) -> Vec<f32> {
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            600.0 + 400.0 * (x * 0.05).sin() * (y * 0.037).cos() + 150.0 * ((x + 2.0 * y) * 0.011).sin() + (i % 7) as f32 * 0.25
        })
        .collect()
}

/// GLB and OBJ files of a scene's tiles, by name.
fn tile_files(scene: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(&scene.join("tiles")).into_iter().filter(|(k, _)| !k.ends_with(".json")).collect()
}

/// Every (type, creation options, extra) variant: sample types, compressions, predictors, strips and tiles,
/// BigTIFF, big-endian, COG, a second band (pixel- and band-interleaved).
fn variants() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("u8-none-strips", vec!["-ot", "Byte", "-scale", "0", "1200", "0", "255"]),
        ("u16-lzw-pred2", vec!["-ot", "UInt16", "-co", "COMPRESS=LZW", "-co", "PREDICTOR=2"]),
        (
            "i16-deflate-pred2-tiled",
            vec!["-ot", "Int16", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=2", "-co", "TILED=YES", "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=32"],
        ),
        ("i16-packbits-bigendian", vec!["-ot", "Int16", "-co", "COMPRESS=PACKBITS", "-co", "ENDIANNESS=BIG"]),
        ("u32-zstd", vec!["-ot", "UInt32", "-co", "COMPRESS=ZSTD"]),
        ("i32-lzw-tiled", vec!["-ot", "Int32", "-co", "COMPRESS=LZW", "-co", "TILED=YES", "-co", "BLOCKXSIZE=128", "-co", "BLOCKYSIZE=64"]),
        ("f32-none", vec!["-ot", "Float32"]),
        (
            "f32-deflate-pred3-tiled",
            vec!["-ot", "Float32", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=3", "-co", "TILED=YES", "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=32"],
        ),
        ("f32-zstd-pred3-bigtiff", vec!["-ot", "Float32", "-co", "COMPRESS=ZSTD", "-co", "PREDICTOR=3", "-co", "BIGTIFF=YES", "-co", "TILED=YES"]),
        ("f32-lzw-bigendian-strips", vec!["-ot", "Float32", "-co", "COMPRESS=LZW", "-co", "ENDIANNESS=BIG", "-co", "BLOCKYSIZE=7"]),
        // (Not big-endian: GDAL 3.6's own round trip of a big-endian float32 file with PREDICTOR=3 gives values up to
        // ±3.4e38, which terrafarm decodes alike, and whose slopes no normal holds.)
        ("f32-lzw-pred3-strips", vec!["-ot", "Float32", "-co", "COMPRESS=LZW", "-co", "PREDICTOR=3", "-co", "BLOCKYSIZE=7"]),
        ("f64-lzw-pred3", vec!["-ot", "Float64", "-co", "COMPRESS=LZW", "-co", "PREDICTOR=3"]),
        (
            "f32-packbits-pred3-tiled",
            vec!["-ot", "Float32", "-co", "COMPRESS=PACKBITS", "-co", "PREDICTOR=3", "-co", "TILED=YES", "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=64"],
        ),
        ("f64-deflate-pred2", vec!["-ot", "Float64", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=2"]),
        ("cog-f32-deflate-pred3", vec!["-of", "COG", "-ot", "Float32", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=YES", "-co", "BLOCKSIZE=128"]),
        ("two-bands-pixel", vec!["-ot", "Float32", "-b", "1", "-b", "1", "-co", "INTERLEAVE=PIXEL", "-co", "COMPRESS=DEFLATE"]),
        ("two-bands-band-tiled", vec!["-ot", "Int16", "-b", "1", "-b", "1", "-co", "INTERLEAVE=BAND", "-co", "TILED=YES"]),
        (
            "two-bands-pixel-f32-zstd-pred3-tiled",
            vec!["-ot", "Float32", "-b", "1", "-b", "1", "-co", "INTERLEAVE=PIXEL", "-co", "COMPRESS=ZSTD", "-co", "PREDICTOR=3", "-co", "TILED=YES"],
        ),
        (
            "two-bands-band-f32-deflate-pred3-strips",
            vec!["-ot", "Float32", "-b", "1", "-b", "1", "-co", "INTERLEAVE=BAND", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=3", "-co", "BLOCKYSIZE=10"],
        ),
    ]
}

/// Writes `src` as the GeoTIFF `tif` with gdal_translate and `args` (GTiff unless they name a format).
fn gdal_write(src: &Path, tif: &Path, args: &[&str]) {
    let mut a = vec!["-q"];
    if !args.contains(&"-of") {
        a.extend(["-of", "GTiff"]);
    }
    a.extend(args);
    a.extend([src.to_str().unwrap(), tif.to_str().unwrap()]);
    gdal("gdal_translate", &a);
}

/// GDAL's own decode of band `band` of `tif` ("mask": its validity) as raw f32 in `out`: the reference samples.
fn gdal_decode(tif: &Path, band: &str, out: &Path) {
    gdal("gdal_translate", &["-q", "-b", band, "-ot", "Float32", "-of", "ENVI", tif.to_str().unwrap(), out.to_str().unwrap()]);
}

/// Meshes the GeoTIFF `tif` and the raw f32 `reference` (W × H, with `raw_args` such as `--nodata`) alike, at full
/// resolution and simplified (64-cell tiles, 2.5 m cells, GLB and OBJ): both must succeed and give the same tile
/// files, `tiles` of them unless 0 (then at least one). Returns each GeoTIFF run's output folder and stderr.
fn meshes_like_raw(dir: &Path, name: &str, tif: &Path, reference: &Path, raw_args: &[&str], tiles: usize) -> Vec<(std::path::PathBuf, String)> {
    let size = format!("{W}x{H}");
    let common = ["--tile-size", "64", "--cell-size", "2.5", "--scene", "s"];
    let mut runs = Vec::new();
    for extra in [&[][..], &["--max-error", "1.5"]] {
        let (o1, o2) = (dir.join(format!("{name}-{}-tif", extra.len())), dir.join(format!("{name}-{}-raw", extra.len())));
        let o = run(&[&["mesh", tif.to_str().unwrap(), "--out", o1.to_str().unwrap()][..], &common, extra].concat());
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let r = run(&[
            &["mesh", reference.to_str().unwrap(), "--encoding", "raw-f32", "--size", &size, "--out", o2.to_str().unwrap()][..],
            &common,
            raw_args,
            extra,
        ]
        .concat());
        assert!(r.status.success(), "{name} reference: {}", stderr(&r));
        let (got, want) = (tile_files(&o1.join("s")), tile_files(&o2.join("s")));
        if tiles > 0 {
            assert_eq!(got.len(), tiles, "{name}: tile files");
        }
        assert!(!got.is_empty() && got == want, "{name} {extra:?}: tiles differ from the same samples read raw");
        runs.push((o1, stderr(&o)));
    }
    runs
}

/// Issue #11, items 1–2: each GDAL-written GeoTIFF meshes to exactly the bytes of the same samples given as raw
/// f32 (GDAL's own decode of that file), at full resolution and simplified.
#[test]
fn every_type_compression_predictor_and_layout_meshes_like_raw() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = envi(d.path(), "src", &heights(W, H), W, H);
    for (name, args) in variants() {
        let tif = d.path().join(format!("{name}.tif"));
        gdal_write(&src, &tif, &args);
        // GDAL's own decode of the file, band 1, as raw f32: the reference samples.
        let reference = d.path().join(format!("{name}-ref.f32"));
        gdal_decode(&tif, "1", &reference);
        for (_, err) in meshes_like_raw(d.path(), name, &tif, &reference, &[], 5 * 4 * 2) {
            if name.starts_with("two-bands") {
                assert!(err.contains("2 bands; meshing band 1"), "{name}: {err}");
            }
        }
    }
}

fn gdalinfo(p: &Path) -> serde_json::Value {
    serde_json::from_str(&gdal("gdalinfo", &["-json", p.to_str().unwrap()])).unwrap()
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("s/manifest.json")).unwrap()).unwrap()
}

/// Issue #11, item 3: with no --cell-size the cell size in ground metres comes from the file, computed here
/// independently from gdalinfo's geotransform: projected metres as they are, US survey feet converted,
/// geographic degrees through the WGS84 radii of curvature at the centre latitude, Web Mercator divided by its
/// scale factor. The manifest records CRS and geotransform as GDAL reads them.
#[test]
fn cell_size_from_georeferencing_matches_gdalinfo() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = envi(d.path(), "src", &heights(W, H), W, H);
    let (a, e2) = (6_378_137.0f64, 0.006_694_379_990_141_317f64);
    type Expect = Box<dyn Fn(&[f64]) -> [f64; 2]>;
    let cases: Vec<(&str, Vec<&str>, Expect)> = vec![
        ("utm", vec!["-a_srs", "EPSG:32654", "-a_ullr", "300000", "4000000", "309030", "3992290"], Box::new(|g: &[f64]| [g[1].abs(), g[5].abs()])),
        (
            "usft",
            vec!["-a_srs", "EPSG:2227", "-a_ullr", "6000000", "2000000", "6003010", "1997430"],
            Box::new(|g: &[f64]| [g[1].abs() * 1200.0 / 3937.0, g[5].abs() * 1200.0 / 3937.0]),
        ),
        (
            "wgs84",
            vec!["-a_srs", "EPSG:4326", "-a_ullr", "138.0", "35.5", "138.0836", "35.4286"],
            Box::new(move |g: &[f64]| {
                let phi = (g[3] + g[5] * H as f64 / 2.0).to_radians();
                let s = 1.0 - e2 * phi.sin().powi(2);
                let (n, m) = (a / s.sqrt(), a * (1.0 - e2) / s.powf(1.5));
                [n * phi.cos() * g[1].abs().to_radians(), m * g[5].abs().to_radians()]
            }),
        ),
        (
            "webmercator",
            vec!["-a_srs", "EPSG:3857", "-a_ullr", "15362000", "4227000", "15371030", "4219290"],
            Box::new(move |g: &[f64]| {
                let lat = ((g[3] + g[5] * H as f64 / 2.0) / a).sinh().atan();
                [g[1].abs() * lat.cos(), g[5].abs() * lat.cos()]
            }),
        ),
    ];
    for (name, args, expect) in cases {
        let tif = d.path().join(format!("{name}.tif"));
        let mut a = vec!["-q", "-ot", "Float32", "-co", "COMPRESS=DEFLATE"];
        a.extend(&args);
        a.extend([src.to_str().unwrap(), tif.to_str().unwrap()]);
        gdal("gdal_translate", &a);
        let info = gdalinfo(&tif);
        let gt: Vec<f64> = info["geoTransform"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let want = expect(&gt);
        let out = d.path().join(format!("o-{name}"));
        let o = run(&["mesh", tif.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scene", "s", "--format", "glb"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let m = manifest(&out);
        let got: Vec<f64> = m["cell_size"]["metres"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        for k in 0..2 {
            assert!((got[k] - want[k]).abs() <= want[k] * 1e-9, "{name}: cell {got:?}, from gdalinfo {want:?} ({})", m["cell_size"]);
        }
        assert_eq!(m["params"]["cell_size"], m["cell_size"]["metres"], "{name}: the mesh used the derived cell");
        let mgt: Vec<f64> = m["georef"]["geotransform"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        for k in 0..6 {
            assert!((mgt[k] - gt[k]).abs() <= gt[k].abs() * 1e-12 + 1e-12, "{name}: geotransform {mgt:?} vs gdalinfo {gt:?}");
        }
        let epsg = info["coordinateSystem"]["wkt"].as_str().unwrap().rsplit("ID[\"EPSG\",").next().unwrap().trim_end_matches([']', '\n']).to_string();
        assert_eq!(m["georef"]["epsg"].to_string(), epsg, "{name}: EPSG code");
        // The second tile's origin sits 256 derived cells east of the first.
        let g = read_glb(&std::fs::read(out.join("s/tiles/1_0.glb")).unwrap());
        assert!((g.translation[0] - 256.0 * want[0]).abs() < 1e-3, "{name}: tile (1,0) at x {}", g.translation[0]);
    }
}

/// The first `LENGTHUNIT["name",factor]` after `from` in a WKT2 string: (name, metres per unit).
fn wkt_unit(wkt: &str, from: &str) -> (String, f64) {
    let at = wkt.find(from).unwrap_or_else(|| panic!("no {from} in {wkt}"));
    let u = &wkt[at..][wkt[at..].find("LENGTHUNIT[\"").unwrap() + 12..];
    let (name, rest) = u.split_once("\",").unwrap();
    (name.to_string(), rest[..rest.find([']', ',']).unwrap()].parse().unwrap())
}

/// Heights in the units the file declares: the vertical CRS of a compound CRS (EPSG:2227+6360, NAVD88 height in US
/// survey feet), a user-defined vertical unit (VerticalUnitsGeoKey), a depth CRS (MLLW depth: values grow
/// downwards). The expected z-scale and cell size are read here from gdalinfo's WKT (the unit factors and the
/// vertical axis direction GDAL reports), and the scene must mesh to the same bytes as the same samples read raw
/// with those numbers given explicitly. GDAL writes no ProjLinearUnitsGeoKey for a compound CRS, so the horizontal
/// US survey feet must come from the CRS code: before, such a file meshed with 10 ftUS cells taken as 10 m. A
/// projected CRS in feet with no vertical unit keeps z-scale 1, with a warning that says what to pass.
#[test]
fn heights_in_the_files_vertical_units() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = envi(d.path(), "src", &heights(W, H), W, H);
    let local_ft = r#"COMPD_CS["UTM 10N + local height ft",PROJCS["WGS 84 / UTM zone 10N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",-123],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],AUTHORITY["EPSG","32610"]],VERT_CS["local height ft",VERT_DATUM["local",2005],UNIT["foot",0.3048,AUTHORITY["EPSG","9002"]],AXIS["Up",UP]]]"#;
    let utm = ["-a_ullr", "500000", "4000000", "509030", "3992290"];
    let ca = ["-a_ullr", "6000000", "2000000", "6003010", "1997430"];
    let scaled: &[&str] = &["-a_scale", "0.1", "-a_offset", "5"];
    // (name, CRS, corners, more gdal_translate options): a band scale and offset go to GDAL's metadata tag, or, when
    // the CRS has a vertical part, to the Z scale and tie point of the georeferencing.
    let cases: Vec<(&str, &str, [&str; 5], &[&str])> = vec![
        ("navd88-ftus", "EPSG:2227+6360", ca, &[]),
        ("local-ft", local_ft, utm, &[]),
        ("mllw-depth", "EPSG:32610+5866", utm, &[]),
        ("navd88-m", "EPSG:32610+5703", utm, &[]),
        ("ftus-no-vertical", "EPSG:2227", ca, &[]),
        ("scaled-metadata", "EPSG:32610", utm, scaled),
        ("scaled-navd88-ftus", "EPSG:2227+6360", ca, scaled),
        ("scaled-mllw-depth", "EPSG:32610+5866", utm, scaled),
    ];
    let size = format!("{W}x{H}");
    for (name, srs, ullr, more) in cases {
        let tif = d.path().join(format!("{name}.tif"));
        let mut a = vec!["-q", "-ot", "Float32", "-a_srs", srs];
        a.extend(ullr);
        a.extend(more);
        a.extend([src.to_str().unwrap(), tif.to_str().unwrap()]);
        gdal("gdal_translate", &a);
        let info = gdalinfo(&tif);
        let wkt = info["coordinateSystem"]["wkt"].as_str().unwrap();
        let gt: Vec<f64> = info["geoTransform"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let (_, h_unit) = wkt_unit(wkt, "CS[Cartesian");
        let cell = [gt[1].abs() * h_unit, gt[5].abs() * h_unit];
        let unit = match wkt.find("VERTCRS[") {
            Some(v) => {
                let (_, m) = wkt_unit(wkt, "VERTCRS[");
                let down = wkt[v..].contains("\",down");
                if down {
                    -m
                } else {
                    m
                }
            }
            None => 1.0,
        };
        let band = &info["bands"][0];
        let (scale, offset) = (band["scale"].as_f64().unwrap_or(1.0), band["offset"].as_f64().unwrap_or(0.0));
        assert_eq!((scale, offset), if more.is_empty() { (1.0, 0.0) } else { (0.1, 5.0) }, "{name}: GDAL's band scale");
        let (z, zo) = (scale * unit, offset * unit + 0.0);
        let out = d.path().join(format!("o-{name}"));
        let o = run(&["mesh", tif.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scene", "s", "--max-error", "0.5"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let m = manifest(&out);
        assert_eq!(m["params"]["z_scale"].as_f64().unwrap() as f32, z as f32, "{name}: z-scale ({})", m["z_scale"]);
        assert_eq!(m["params"]["z_offset"].as_f64().unwrap() as f32, zo as f32, "{name}: z-offset ({})", m["z_scale"]);
        for k in 0..2 {
            let got = m["cell_size"]["metres"][k].as_f64().unwrap();
            assert!((got - cell[k]).abs() <= cell[k] * 1e-12, "{name}: cell {got} m, gdalinfo says {} m", cell[k]);
        }
        let warned = stderr(&o).contains("if the heights are in us-survey-foot too, pass --z-scale 0.3048006");
        assert_eq!(warned, name == "ftus-no-vertical", "{name}: {}", stderr(&o));
        let want_dir = d.path().join(format!("r-{name}"));
        let (cs, zs, zos) = (format!("{},{}", cell[0], cell[1]), format!("{}", z as f32), format!("{}", zo as f32));
        let o = run(&[
            "mesh",
            src.to_str().unwrap(),
            "--size",
            &size,
            "--out",
            want_dir.to_str().unwrap(),
            "--scene",
            "s",
            "--max-error",
            "0.5",
            "--cell-size",
            &cs,
            "--z-scale",
            &zs,
            "--z-offset",
            &zos,
        ]);
        assert!(o.status.success(), "{name} raw: {}", stderr(&o));
        let (got, want) = (tile_files(&out.join("s")), tile_files(&want_dir.join("s")));
        assert!(got == want && !got.is_empty(), "{name}: tiles differ from the raw samples meshed with --cell-size {cs} --z-scale {zs} --z-offset {zos}");
        if z < 0.0 {
            // Depths became heights below the datum.
            let g = read_glb(&got["0_0.glb"]);
            assert!(g.positions.iter().all(|p| g.translation[1] + (p[1] as f64) < 0.0), "{name}: a depth above the datum");
        }
    }
    // A height unit terrafarm does not know (VerticalUnitsGeoKey 9999): `mesh` refuses it unless --z-scale says,
    // `info` reports it and goes on.
    let mut b = std::fs::read(d.path().join("local-ft.tif")).unwrap();
    let key: Vec<u8> = [4099u16, 0, 1, 9002].iter().flat_map(|v| v.to_le_bytes()).collect();
    let at = b.windows(8).position(|w| w == key.as_slice()).expect("VerticalUnitsGeoKey = foot");
    b[at + 6..at + 8].copy_from_slice(&9999u16.to_le_bytes());
    let bad = d.path().join("bad-unit.tif");
    std::fs::write(&bad, b).unwrap();
    let out = d.path().join("o-bad");
    let o = run(&["mesh", bad.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("height unit (EPSG unit 9999) is not one terrafarm knows; pass --z-scale"), "{}", stderr(&o));
    assert!(!out.join("bad-unit").exists());
    let o = run(&["mesh", bad.to_str().unwrap(), "--out", out.to_str().unwrap(), "--z-scale", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["info", bad.to_str().unwrap()]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("z-scale: unknown ("), "{}", stderr(&o));
}

/// Issue #11, item 4: the GDAL_NODATA tag makes holes; `--nodata` overrides it.
#[test]
fn nodata_tag_is_honoured_and_overridden() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut h = heights(W, H);
    let mut voids = 0;
    for y in 100..130 {
        for x in 40..100 {
            h[y * W + x] = -9999.0;
            voids += 1;
        }
    }
    let src = envi(d.path(), "src", &h, W, H);
    let tif = d.path().join("nd.tif");
    gdal("gdal_translate", &["-q", "-ot", "Float32", "-a_nodata", "-9999", "-co", "COMPRESS=LZW", src.to_str().unwrap(), tif.to_str().unwrap()]);
    assert_eq!(gdalinfo(&tif)["bands"][0]["noDataValue"], -9999.0);
    let out = d.path().join("o");
    let o = run(&["mesh", tif.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scene", "s", "--tile-size", "128", "--format", "glb"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let nodata: u64 = manifest(&out)["tiles"].as_array().unwrap().iter().map(|t| t["nodata_samples"].as_u64().unwrap()).sum();
    assert!(nodata >= voids, "{nodata} no-data samples counted, {voids} in the file");
    let out2 = d.path().join("o2");
    let o =
        run(&["mesh", tif.to_str().unwrap(), "--out", out2.to_str().unwrap(), "--scene", "s", "--tile-size", "128", "--format", "glb", "--nodata", "12345"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let nodata: u64 = manifest(&out2)["tiles"].as_array().unwrap().iter().map(|t| t["nodata_samples"].as_u64().unwrap()).sum();
    assert_eq!(nodata, 0, "--nodata 12345 replaces the file's -9999");
}

/// Issue #11, item 3: an SRTM `.hgt` gets its cell size from its name and size (1″ at 35.5° N here).
#[test]
fn hgt_cell_size_from_its_name() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("N35E138.hgt");
    std::fs::write(&p, (0..3601 * 3601).flat_map(|i: u32| ((i % 977) as i16).to_be_bytes()).collect::<Vec<u8>>()).unwrap();
    let out = d.path().join("o");
    let o = run(&["mesh", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scene", "s", "--tile-size", "1200", "--format", "glb", "--max-error", "50"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = manifest(&out);
    let c = &m["cell_size"];
    assert_eq!(c["at_latitude"], 35.5);
    let (ew, ns) = (c["metres"][0].as_f64().unwrap(), c["metres"][1].as_f64().unwrap());
    assert!((ew - 25.19).abs() < 0.02 && (ns - 30.82).abs() < 0.02, "{c}");
    assert_eq!(m["georef"]["epsg"], 4326);
}

fn fails_cleanly(input: &Path, expect: &str) {
    let out = input.with_extension("out");
    let o = run(&["mesh", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scene", "s"]);
    assert_eq!(o.status.code(), Some(1), "{}: {}", input.display(), stderr(&o));
    assert!(stderr(&o).contains(expect), "{}: expected '{expect}' in: {}", input.display(), stderr(&o));
    assert!(!out.join("s/manifest.json").exists());
    let files = if out.exists() { tree(&out).len() } else { 0 };
    assert_eq!(files, 0, "{}: files left behind", input.display());
}

/// A minimal little-endian TIFF: one IFD of (tag, type, count, value) entries.
fn tiny_tiff(entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
    let mut b = b"II*\0\x08\0\0\0".to_vec();
    b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for &(tag, ty, count, value) in entries {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&value.to_le_bytes());
    }
    b.extend_from_slice(&[0; 4]);
    b
}

/// Issue #11: bad GeoTIFFs give a clear message and exit 1, no panic, nothing written.
#[test]
fn bad_geotiffs_fail_cleanly() {
    let d = tempfile::tempdir().unwrap();
    // A "bomb": 10⁶ × 10⁶ samples claimed in 30 bytes of IFD.
    let bomb = d.path().join("bomb.tif");
    std::fs::write(
        &bomb,
        tiny_tiff(&[(256, 4, 1, 1_000_000), (257, 4, 1, 1_000_000), (258, 3, 1, 32), (262, 3, 1, 1), (273, 4, 1, 8), (279, 4, 1, 4), (339, 3, 1, 3)]),
    )
    .unwrap();
    fails_cleanly(&bomb, "exceeds --max-samples");
    // A small image claiming tiles of 2²⁰ × 2²⁰ f32 samples (4 TiB each), Deflate with the floating-point predictor:
    // refused from its header, not by a failed allocation (found by mutating GeoTIFFs).
    let huge_tiles = d.path().join("huge-tiles.tif");
    std::fs::write(
        &huge_tiles,
        tiny_tiff(&[
            (256, 4, 1, 16),
            (257, 4, 1, 16),
            (258, 3, 1, 32),
            (259, 3, 1, 8),
            (262, 3, 1, 1),
            (317, 3, 1, 3),
            (322, 4, 1, 1 << 20),
            (323, 4, 1, 1 << 20),
            (324, 4, 1, 8),
            (325, 4, 1, 4),
            (339, 3, 1, 3),
        ]),
    )
    .unwrap();
    fails_cleanly(&huge_tiles, "larger than terrafarm decodes at once");
    // A corrupt IFD: the first IFD offset points past the end.
    let corrupt = d.path().join("corrupt.tif");
    std::fs::write(&corrupt, b"II*\0\xff\xff\xff\x0f0123456789").unwrap();
    fails_cleanly(&corrupt, "TIFF");
    // A strip whose offset lies past the end of the file.
    let past = d.path().join("past.tif");
    std::fs::write(
        &past,
        tiny_tiff(&[
            (256, 4, 1, 16),
            (257, 4, 1, 16),
            (258, 3, 1, 32),
            (262, 3, 1, 1),
            (273, 4, 1, 1_000_000),
            (278, 4, 1, 16),
            (279, 4, 1, 1024),
            (339, 3, 1, 3),
        ]),
    )
    .unwrap();
    fails_cleanly(&past, "past the end");
    // Tiles of width 0.
    let zero = d.path().join("zero.tif");
    std::fs::write(
        &zero,
        tiny_tiff(&[
            (256, 4, 1, 16),
            (257, 4, 1, 16),
            (258, 3, 1, 32),
            (262, 3, 1, 1),
            (322, 4, 1, 0),
            (323, 4, 1, 16),
            (324, 4, 1, 8),
            (325, 4, 1, 4),
            (339, 3, 1, 3),
        ]),
    )
    .unwrap();
    fails_cleanly(&zero, "TIFF");
    if !gdal_available() {
        return;
    }
    let src = envi(d.path(), "src", &heights(W, H), W, H);
    let good = d.path().join("good.tif");
    gdal("gdal_translate", &["-q", "-ot", "Float32", "-co", "COMPRESS=DEFLATE", "-co", "TILED=YES", src.to_str().unwrap(), good.to_str().unwrap()]);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = d.path().join("truncated.tif");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    fails_cleanly(&truncated, "truncated");
    // A georeferenced file whose pixel size is positive and finite but puts every vertex at 0 or at infinity (found
    // by mutating GeoTIFFs: the first wrote all-zero positions, the second failed only after writing its tiles).
    for (name, pixel) in [("tiny", 1e-300f64), ("huge", 1e200)] {
        let p = d.path().join(format!("{name}.tif"));
        let (x1, y1) = (format!("{:e}", pixel * W as f64), format!("{:e}", -pixel * H as f64));
        gdal("gdal_translate", &["-q", "-a_srs", "EPSG:32633", "-a_ullr", "0", "0", &x1, &y1, good.to_str().unwrap(), p.to_str().unwrap()]);
        fails_cleanly(&p, "m, outside 1e-9 to 1e9 m; pass --cell-size");
    }
    // Lossy JPEG is refused (LERC, refused before, is read: `lerc_blocks_mesh_like_gdals_decode`).
    let jpeg = d.path().join("JPEG.tif");
    gdal("gdal_translate", &["-q", "-ot", "Byte", "-scale", "0", "1200", "0", "255", "-co", "COMPRESS=JPEG", src.to_str().unwrap(), jpeg.to_str().unwrap()]);
    fails_cleanly(&jpeg, "JPEG");
}

/// Issue #11, item 7: `terrafarm info` reports format, layout, georeferencing and estimates, as text and JSON.
#[test]
fn info_reports_layout_georeferencing_and_estimates() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = envi(d.path(), "src", &heights(W, H), W, H);
    let tif = d.path().join("i.tif");
    gdal(
        "gdal_translate",
        &[
            "-q",
            "-ot",
            "Float32",
            "-co",
            "COMPRESS=DEFLATE",
            "-co",
            "PREDICTOR=3",
            "-co",
            "TILED=YES",
            "-a_nodata",
            "-9999",
            "-a_srs",
            "EPSG:32654",
            "-a_ullr",
            "300000",
            "4000000",
            "309030",
            "3992290",
            src.to_str().unwrap(),
            tif.to_str().unwrap(),
        ],
    );
    let o = run(&["info", tif.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let i = &v[0];
    assert_eq!((i["width"].as_u64(), i["height"].as_u64()), (Some(W as u64), Some(H as u64)));
    assert_eq!(i["sample_type"], "f32");
    assert!(i["compression"].as_str().unwrap().contains("deflate, predictor floating-point"), "{i}");
    assert!(i["blocks"].as_str().unwrap().contains("256x256 tiles"), "{i}");
    assert_eq!(i["georef"]["epsg"], 32654);
    assert_eq!(i["cell_size"]["metres"][0], 30.0);
    assert_eq!(i["nodata"], -9999.0);
    let (lo, hi) = (i["value_range"][0].as_f64().unwrap(), i["value_range"][1].as_f64().unwrap());
    assert!(lo >= 0.0 && hi <= 1200.0 && lo < hi, "{i}");
    assert_eq!(i["tile_grid"], serde_json::json!([2, 1]));
    assert!(i["estimated_bytes"]["glb"].as_u64().unwrap() > 0 && i["estimated_peak_memory_bytes"].as_u64().unwrap() > 0, "{i}");
    let text = run(&["info", tif.to_str().unwrap()]);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("EPSG:32654") && t.contains("30 m") && t.contains("deflate"), "{t}");
}

/// Each block of a tiled GeoTIFF is fetched and decoded once per run, on two threads: tiles are handed out in row
/// order from one shared front, the reader keeps the block rows a row of tile windows touches (plus one), a block
/// another worker is decoding is waited for rather than decoded twice, and a pyramid (whose levels each read the
/// raster again) keeps the whole raster's blocks when they fit. The local file is also hashed once for the output
/// key, so the bytes read are at most twice the file (and its header pages); before, neighbouring tiles on two
/// threads decoded the same blocks over and over (about 4× per level on a 4097² COG).
#[test]
fn tiled_geotiff_blocks_are_decoded_once_per_run() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let n = 2049;
    let src = envi(d.path(), "src", &heights(n, n), n, n);
    let tif = d.path().join("t.tif");
    let args = ["-q", "-ot", "Float32", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=3", "-co", "TILED=YES", "-co", "BLOCKXSIZE=128", "-co", "BLOCKYSIZE=128"];
    gdal("gdal_translate", &[&args[..], &[src.to_str().unwrap(), tif.to_str().unwrap()]].concat());
    let size = std::fs::metadata(&tif).unwrap().len();
    for (label, extra) in
        [("level 0, 128-cell tiles", vec!["--tile-size", "128", "--format", "obj"]), ("a pyramid", vec!["--lod", "auto", "--format", "3dtiles"])]
    {
        let out = d.path().join(label.replace([' ', ','], "-"));
        let mut a = vec!["mesh", tif.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scene", "s", "--cell-size", "1", "--max-error", "5", "-j", "2"];
        a.extend(&extra);
        let o = run(&a);
        assert!(o.status.success(), "{label}: {}", stderr(&o));
        let fetched = manifest(&out)["run"]["bytes_fetched"].as_u64().unwrap();
        println!("{label}: {fetched} bytes read from a {size}-byte GeoTIFF ({:.2}x)", fetched as f64 / size as f64);
        assert!(fetched <= 2 * size + 256 * 1024, "{label}: {fetched} bytes read from a {size}-byte GeoTIFF: blocks decoded more than once");
    }
    // Corrupt blocks: the worker that claimed a block gives its claim up when the decode fails, so the workers
    // waiting for it try it themselves and fail the same way; the run ends with a clean error, nothing hangs.
    let mut bytes = std::fs::read(&tif).unwrap();
    let len = bytes.len();
    for k in 1..10 {
        bytes[len * k / 10..len * k / 10 + 4000].fill(0xAB);
    }
    let bad = d.path().join("bad.tif");
    std::fs::write(&bad, &bytes).unwrap();
    let out = d.path().join("bad-out");
    let o = run(&["mesh", bad.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scene", "s", "--tile-size", "128", "--cell-size", "1", "-j", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("corrupt deflate stream"), "{}", stderr(&o));
    assert!(!out.join("s/manifest.json").exists());
}

/// Reads a raw little-endian f32 file.
fn read_f32(p: &Path) -> Vec<f32> {
    std::fs::read(p).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Validity from the file rather than a no-data value: GDAL's internal masks (tiles, strips, a COG with its
/// overviews' masks), GDAL's external `.msk` and an alpha band (pixel- and band-interleaved). The masked-out samples
/// hold 0 in band 1, as masked products do; meshed, they must be holes. The reference is GDAL's own decode of band
/// 1 and of its validity (`-b mask`; band 2 itself for the alpha band, since GDAL does not take a Float32 alpha band
/// as a mask), written as raw f32 with NaN where not valid: every scene must equal it byte for byte. Then the
/// external mask's part in the resume key, and a mask of the wrong size.
#[test]
fn masks_and_alpha_bands_are_holes() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (mut h, mut valid) = (heights(W, H), vec![255f32; W * H]);
    for y in 0..H {
        for x in 0..W {
            if (90..130).contains(&y) && (40..100).contains(&x) || y < 3 || (x + y) % 97 == 0 {
                (h[y * W + x], valid[y * W + x]) = (0.0, 0.0);
            }
        }
    }
    let masked = valid.iter().filter(|&&v| v == 0.0).count();
    // Band 1 the heights, band 2 the validity (0 or 255).
    let src = d.path().join("src.f32");
    std::fs::write(&src, h.iter().chain(&valid).flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    std::fs::write(
        d.path().join("src.hdr"),
        format!("ENVI\nsamples = {W}\nlines = {H}\nbands = 2\nheader offset = 0\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"),
    )
    .unwrap();
    let internal = ["--config", "GDAL_TIFF_INTERNAL_MASK", "YES"];
    let mask = ["-b", "1", "-mask", "2"];
    let alpha = ["-b", "1", "-b", "2", "-colorinterp_2", "alpha"];
    let pixel = ["-co", "INTERLEAVE=PIXEL"];
    let tiles = |x: &'static str| ["-co", "TILED=YES", "-co", x, "-co", "BLOCKYSIZE=64"];
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "mask-tiled-f32-deflate-pred3",
            [
                &mask[..],
                &["-ot", "Float32", "-co", "TILED=YES", "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=32", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=3"],
                &internal,
            ]
            .concat(),
            "mask: internal, 1-bit",
        ),
        ("mask-strips-i16-lzw", [&mask[..], &["-ot", "Int16", "-co", "COMPRESS=LZW", "-co", "BLOCKYSIZE=7"], &internal].concat(), "mask: internal, 1-bit"),
        (
            "mask-tiled-packbits-bigendian",
            [
                &mask[..],
                &["-ot", "Float32", "-co", "COMPRESS=PACKBITS", "-co", "ENDIANNESS=BIG", "-co", "TILED=YES", "-co", "BLOCKXSIZE=32", "-co", "BLOCKYSIZE=32"],
                &internal,
            ]
            .concat(),
            "mask: internal, 1-bit",
        ),
        ("mask-cog", [&mask[..], &["-of", "COG", "-ot", "Float32", "-co", "BLOCKSIZE=128", "-co", "COMPRESS=LZW"]].concat(), "mask: internal, 1-bit"),
        ("mask-external", [&mask[..], &["-ot", "Float32", "-co", "COMPRESS=DEFLATE", "--config", "GDAL_TIFF_INTERNAL_MASK", "NO"]].concat(), "mask: external"),
        (
            "alpha-pixel-f32-zstd-pred3-tiled",
            [&alpha[..], &pixel, &["-ot", "Float32", "-co", "COMPRESS=ZSTD", "-co", "PREDICTOR=3"], &tiles("BLOCKXSIZE=64")].concat(),
            "mask: alpha band 2",
        ),
        ("alpha-pixel-i16-lzw-strips", [&alpha[..], &pixel, &["-ot", "Int16", "-co", "COMPRESS=LZW", "-co", "BLOCKYSIZE=9"]].concat(), "mask: alpha band 2"),
        (
            "alpha-pixel-f32-lerc-tiled",
            [&alpha[..], &pixel, &["-ot", "Float32", "-co", "COMPRESS=LERC", "-co", "MAX_Z_ERROR=0"], &tiles("BLOCKXSIZE=128")].concat(),
            "mask: alpha band 2",
        ),
        (
            "alpha-band-i16-deflate-strips",
            [&alpha[..], &["-ot", "Int16", "-co", "INTERLEAVE=BAND", "-co", "COMPRESS=DEFLATE", "-co", "BLOCKYSIZE=10"]].concat(),
            "mask: alpha band 2",
        ),
        (
            "alpha-band-f32-pred3-tiled",
            [&alpha[..], &["-ot", "Float32", "-co", "INTERLEAVE=BAND", "-co", "COMPRESS=LZW", "-co", "PREDICTOR=3", "-co", "TILED=YES"]].concat(),
            "mask: alpha band 2",
        ),
    ];
    for (name, args, shown) in &cases {
        let tif = d.path().join(format!("{name}.tif"));
        gdal_write(&src, &tif, args);
        assert_eq!(d.path().join(format!("{name}.tif.msk")).exists(), name.contains("external"), "{name}: GDAL's mask is not where the case says");
        // GDAL's decode of band 1 and of the validity.
        let (hp, vp) = (d.path().join(format!("{name}-h.f32")), d.path().join(format!("{name}-v.f32")));
        gdal_decode(&tif, "1", &hp);
        let vband = if name.starts_with("alpha") { "2" } else { "mask" };
        gdal_decode(&tif, vband, &vp);
        let reference: Vec<f32> = read_f32(&hp).iter().zip(read_f32(&vp)).map(|(&h, v)| if v == 0.0 { f32::NAN } else { h }).collect();
        assert_eq!(reference.iter().filter(|v| v.is_nan()).count(), masked, "{name}: GDAL's validity is not the one written");
        let raw = d.path().join(format!("{name}-ref.f32"));
        std::fs::write(&raw, reference.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();

        let o = run(&["info", tif.to_str().unwrap()]);
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains(shown), "{name}: {}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        let size = std::fs::metadata(&tif).unwrap().len();
        for (out, err) in meshes_like_raw(d.path(), name, &tif, &raw, &[], 5 * 4 * 2) {
            assert!(!err.contains("bands; meshing band 1"), "{name}: the alpha band is not a second height band: {err}");
            let holes: u64 = manifest(&out)["tiles"].as_array().unwrap().iter().map(|t| t["nodata_samples"].as_u64().unwrap()).sum();
            assert!(holes >= masked as u64, "{name}: {holes} no-data samples counted, {masked} masked");
            // The file is read once for the output key and once for its blocks: an interleaved alpha band comes
            // from the blocks' own bytes, not from a second pass over them.
            let fetched = manifest(&out)["run"]["bytes_fetched"].as_u64().unwrap();
            if name.starts_with("alpha-pixel") {
                assert!(fetched <= 2 * size + 64 * 1024, "{name}: {fetched} bytes read from a {size}-byte file");
            }
        }
    }

    // The external mask is part of the input: without it the tiles are redone (and hold the zeros as heights).
    let tif = d.path().join("mask-external.tif");
    let msk = d.path().join("mask-external.tif.msk");
    let out = d.path().join("resume");
    let mesh = |extra: &[&str]| {
        let mut a = vec!["mesh", tif.to_str().unwrap(), "--out", out.to_str().unwrap(), "--tile-size", "64", "--cell-size", "2.5", "--scene", "s", "--json"];
        a.extend(extra);
        run(&a)
    };
    assert!(mesh(&[]).status.success());
    let kept = std::fs::read(&msk).unwrap();
    std::fs::remove_file(&msk).unwrap();
    let o = mesh(&["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["scenes"][0]["resumed_tiles"], 0, "tiles meshed with the mask were resumed without it");
    assert_eq!(manifest(&out)["tiles"].as_array().unwrap().iter().map(|t| t["nodata_samples"].as_u64().unwrap()).sum::<u64>(), 0);
    std::fs::write(&msk, &kept).unwrap();
    let o = mesh(&["--resume"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["scenes"][0]["resumed_tiles"], 0, "tiles meshed without the mask were resumed with it");
    let o = mesh(&["--resume"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["scenes"][0]["resumed_tiles"], 20, "the same file and mask: every tile resumed");

    // A mask that does not fit the image is an error, not a guess.
    gdal("gdal_translate", &["-q", "-outsize", "50%", "50%", d.path().join("mask-cog.tif").to_str().unwrap(), d.path().join("half.tif").to_str().unwrap()]);
    std::fs::copy(d.path().join("half.tif"), &msk).unwrap();
    fails_cleanly(&tif, "mask of 150x128 samples for an image of 301x257");
}

/// Offsets and byte counts of the blocks of a classic little-endian TIFF's first IFD (tiles, else strips).
fn block_byte_counts(tif: &Path) -> Vec<(u32, u32)> {
    let b = std::fs::read(tif).unwrap();
    assert_eq!(&b[..4], b"II*\0", "a classic little-endian TIFF");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let ifd = u32_at(4) as usize;
    let tag = |want: usize| -> Option<Vec<u32>> {
        (0..u16_at(ifd)).map(|k| ifd + 2 + 12 * k).find(|&e| u16_at(e) == want).map(|e| {
            let (ty, n) = (u16_at(e + 2), u32_at(e + 4) as usize);
            let size = if ty == 3 { 2 } else { 4 };
            let at = if n * size <= 4 { e + 8 } else { u32_at(e + 8) as usize };
            (0..n).map(|k| if ty == 3 { u16_at(at + 2 * k) as u32 } else { u32_at(at + 4 * k) }).collect()
        })
    };
    let (offsets, counts) = match (tag(324), tag(325)) {
        (Some(o), Some(c)) => (o, c),
        _ => (tag(273).unwrap(), tag(279).unwrap()),
    };
    offsets.into_iter().zip(counts).collect()
}

/// Sparse files (GDAL's SPARSE_OK): blocks holding only the no-data value, or 0 where there is none, are left out
/// of the file (offset and byte count 0), and GDAL reads them as that value. They failed as corrupt before. Each
/// case must have absent blocks and mesh as GDAL's own decode of it: no-data blocks as holes, zero blocks as 0 m,
/// masked-out blocks as holes.
#[test]
fn sparse_blocks_read_as_gdal_reads_them() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let base = heights(W, H);
    // Whole 64-sample blocks (tiles at the lower left, strips at the bottom) of -9999, or of 0, or masked out (by a
    // mask or an interleaved alpha band, whose absent blocks are transparent).
    let in_void = |i: usize| i % W < 128 && i / W >= 64 || i / W >= 192;
    let with = |fill: f32| -> Vec<f32> { base.iter().enumerate().map(|(i, &v)| if in_void(i) { fill } else { v }).collect() };
    let src_nodata = envi(d.path(), "nodata", &with(-9999.0), W, H);
    let src_zero = envi(d.path(), "zero", &with(0.0), W, H);
    let src_masked = d.path().join("masked.f32");
    let valid: Vec<f32> = (0..W * H).map(|i| if in_void(i) { 0.0 } else { 255.0 }).collect();
    std::fs::write(&src_masked, with(0.0).iter().chain(&valid).flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    std::fs::write(
        d.path().join("masked.hdr"),
        format!("ENVI\nsamples = {W}\nlines = {H}\nbands = 2\nheader offset = 0\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"),
    )
    .unwrap();
    let tiles = ["-co", "TILED=YES", "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=64"];
    let sparse = ["-co", "SPARSE_OK=TRUE"];
    let cases: Vec<(&str, &Path, Vec<&str>, Option<&str>)> = vec![
        (
            "f32-nodata-deflate-pred3-tiled",
            &src_nodata,
            [&["-ot", "Float32", "-a_nodata", "-9999", "-co", "COMPRESS=DEFLATE", "-co", "PREDICTOR=3"][..], &tiles, &sparse].concat(),
            Some("-9999"),
        ),
        ("i16-zero-lzw-tiled", &src_zero, [&["-ot", "Int16", "-co", "COMPRESS=LZW"][..], &tiles, &sparse].concat(), None),
        ("f32-nodata-strips", &src_nodata, [&["-ot", "Float32", "-a_nodata", "-9999", "-co", "BLOCKYSIZE=64"][..], &sparse].concat(), Some("-9999")),
        (
            "f32-masked-tiled",
            &src_masked,
            [&["-b", "1", "-mask", "2", "-ot", "Float32", "-co", "COMPRESS=DEFLATE", "--config", "GDAL_TIFF_INTERNAL_MASK", "YES"][..], &tiles, &sparse]
                .concat(),
            None,
        ),
        (
            "f32-alpha-pixel-tiled",
            &src_masked,
            [&["-b", "1", "-b", "2", "-colorinterp_2", "alpha", "-ot", "Float32", "-co", "INTERLEAVE=PIXEL", "-co", "COMPRESS=ZSTD"][..], &tiles, &sparse]
                .concat(),
            None,
        ),
    ];
    for (name, src, args, nodata) in &cases {
        let tif = d.path().join(format!("{name}.tif"));
        let mut a: Vec<&str> = vec!["-q", "-of", "GTiff"];
        a.extend(args);
        a.extend([src.to_str().unwrap(), tif.to_str().unwrap()]);
        gdal("gdal_translate", &a);
        let absent = block_byte_counts(&tif).iter().filter(|&&(o, c)| o == 0 && c == 0).count();
        assert!(absent >= 2, "{name}: GDAL left out {absent} blocks");
        // GDAL's decode, with masked-out samples as NaN.
        let hp = d.path().join(format!("{name}-h.f32"));
        gdal_decode(&tif, "1", &hp);
        let mut reference = read_f32(&hp);
        if name.contains("masked") || name.contains("alpha") {
            let vp = d.path().join(format!("{name}-v.f32"));
            gdal_decode(&tif, if name.contains("alpha") { "2" } else { "mask" }, &vp);
            reference.iter_mut().zip(read_f32(&vp)).filter(|(_, v)| *v == 0.0).for_each(|(h, _)| *h = f32::NAN);
        }
        let raw = d.path().join(format!("{name}-ref.f32"));
        std::fs::write(&raw, reference.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
        meshes_like_raw(d.path(), name, &tif, &raw, &nodata.map_or(vec![], |v| vec!["--nodata", v]), 0);
    }
}

/// Grids not stored north-up: rows south to north (a positive pixel height), columns east to west, and both. They
/// meshed mirrored before. Each must mesh byte-identical to GDAL's own north-up copy of it (`gdalwarp`, nearest
/// neighbour on the same grid: the same samples, rearranged), and the manifest's geotransform must be that copy's
/// as `gdalinfo` reads it; `info` says how the file stores its grid.
#[test]
fn grids_not_stored_north_up_are_flipped() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = envi(d.path(), "src", &heights(W, H), W, H);
    let (west, east, south, north) = ("500000", "530100", "3974300", "4000000");
    for (name, ullr, stored) in [
        ("bottom-up", [west, south, east, north], "rows south to north"),
        ("east-to-west", [east, north, west, south], "columns east to west"),
        ("both", [east, south, west, north], "columns east to west and rows south to north"),
    ] {
        let tif = d.path().join(format!("{name}.tif"));
        let mut a = vec!["-q", "-of", "GTiff", "-a_srs", "EPSG:32633", "-a_ullr"];
        a.extend(ullr);
        a.extend(["-co", "TILED=YES", "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=32", src.to_str().unwrap(), tif.to_str().unwrap()]);
        gdal("gdal_translate", &a);
        let gt = gdalinfo(&tif)["geoTransform"].clone();
        assert!(gt[1].as_f64().unwrap() < 0.0 || gt[5].as_f64().unwrap() > 0.0, "{name}: GDAL wrote a north-up file: {gt}");
        let north_up = d.path().join(format!("{name}-north-up.tif"));
        gdal("gdalwarp", &["-q", "-r", "near", tif.to_str().unwrap(), north_up.to_str().unwrap()]);
        let want_gt = gdalinfo(&north_up)["geoTransform"].clone();
        assert_eq!(gdalinfo(&north_up)["size"], serde_json::json!([W, H]), "{name}: gdalwarp changed the grid");

        let o = run(&["info", tif.to_str().unwrap()]);
        assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("stored: {stored}")), "{name}: {}", String::from_utf8_lossy(&o.stdout));
        for extra in [vec![], vec!["--max-error", "1.5"]] {
            let (o1, o2) = (d.path().join(format!("{name}-{}", extra.len())), d.path().join(format!("{name}-{}-nu", extra.len())));
            for (input, out) in [(&tif, &o1), (&north_up, &o2)] {
                let mut a = vec!["mesh", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--tile-size", "64", "--scene", "s"];
                a.extend(&extra);
                let o = run(&a);
                assert!(o.status.success(), "{name}: {}", stderr(&o));
            }
            let (got, want) = (tile_files(&o1.join("s")), tile_files(&o2.join("s")));
            assert_eq!(got.len(), 5 * 4 * 2, "{name}: 5 x 4 tiles, GLB and OBJ");
            assert!(got == want, "{name} {extra:?}: tiles differ from GDAL's north-up copy");
            let m = manifest(&o1);
            assert_eq!(m["georef"]["geotransform"], want_gt, "{name}: the manifest's geotransform is not the north-up grid's");
            assert!(m["georef"]["flipped"].as_str().is_some_and(|f| f.starts_with(stored)), "{name}: {}", m["georef"]);
        }
    }
}

/// LERC (GDAL's COMPRESS=LERC, LERC_DEFLATE, LERC_ZSTD; lossless and lossy MAX_Z_ERROR; tiles, strips, a COG, two
/// interleaved bands) meshes byte-identical to GDAL's own decode of the file as raw f32. The float heights have a
/// void of NaN, which GDAL carries in each blob's validity mask: it must stay a hole. Refused before.
#[test]
fn lerc_blocks_mesh_like_gdals_decode() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut h = heights(W, H);
    for y in 100..130 {
        for x in 40..100 {
            h[y * W + x] = f32::NAN;
        }
    }
    let src = envi(d.path(), "src", &h, W, H);
    // GDAL 3.6 cannot read back its own pixel-interleaved LERC of NaN voids (lerc_decode fails): those cases get
    // the heights without the void.
    let whole = envi(d.path(), "whole", &heights(W, H), W, H);
    for (name, args) in [
        (
            "lerc-f32-lossless-tiled",
            vec!["-ot", "Float32", "-co", "COMPRESS=LERC", "-co", "MAX_Z_ERROR=0", "-co", "TILED=YES", "-co", "BLOCKXSIZE=64", "-co", "BLOCKYSIZE=32"],
        ),
        ("lerc-deflate-f32-lossy-strips", vec!["-ot", "Float32", "-co", "COMPRESS=LERC_DEFLATE", "-co", "MAX_Z_ERROR=0.25", "-co", "BLOCKYSIZE=7"]),
        ("lerc-zstd-i16-tiled", vec!["-ot", "Int16", "-a_nodata", "-32768", "-co", "COMPRESS=LERC_ZSTD", "-co", "TILED=YES"]),
        ("lerc-cog", vec!["-of", "COG", "-ot", "Float32", "-co", "COMPRESS=LERC", "-co", "MAX_Z_ERROR=0.1", "-co", "BLOCKSIZE=128"]),
        ("lerc-two-bands-pixel", vec!["-ot", "Float32", "-b", "1", "-b", "1", "-co", "INTERLEAVE=PIXEL", "-co", "COMPRESS=LERC_DEFLATE", "-co", "TILED=YES"]),
        ("lerc-two-bands-band", vec!["-ot", "Float32", "-b", "1", "-b", "1", "-co", "INTERLEAVE=BAND", "-co", "COMPRESS=LERC_ZSTD", "-co", "MAX_Z_ERROR=0.5"]),
    ] {
        let src = if name.contains("two-bands") { &whole } else { &src };
        let tif = d.path().join(format!("{name}.tif"));
        gdal_write(src, &tif, &args);
        assert!(gdalinfo(&tif)["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"].as_str().unwrap().starts_with("LERC"), "{name}: not LERC");
        let reference = d.path().join(format!("{name}-ref.f32"));
        gdal_decode(&tif, "1", &reference);
        if !name.contains("two-bands") && !name.contains("i16") {
            assert_eq!(read_f32(&reference).iter().filter(|v| v.is_nan()).count(), 30 * 60, "{name}: GDAL's decode lost the void");
        }
        meshes_like_raw(d.path(), name, &tif, &reference, if name.contains("i16") { &["--nodata", "-32768"] } else { &[] }, 5 * 4 * 2);
    }
    // A damaged blob (bytes flipped in the middle of the file, among the blocks) is a clean error: exit 1, the
    // block named, no manifest (tiles meshed before it stay, for --resume).
    let mut b = std::fs::read(d.path().join("lerc-f32-lossless-tiled.tif")).unwrap();
    let at = b.len() / 2;
    b[at..at + 32].iter_mut().for_each(|v| *v ^= 0x5a);
    let bad = d.path().join("damaged.tif");
    std::fs::write(&bad, &b).unwrap();
    let out = d.path().join("damaged-out");
    let o = run(&["mesh", bad.to_str().unwrap(), "--out", out.to_str().unwrap(), "--scene", "s", "--tile-size", "64"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("LERC block") && stderr(&o).contains("checksum"), "{}", stderr(&o));
    assert!(!out.join("s/manifest.json").exists());
}
