//! terrafarm's inverse projections against PROJ's forward ones, through GDAL: every EPSG projected CRS terrafarm
//! places on the ellipsoid (`raster::epsg_units::PROJECTIONS`) maps GDAL-projected points of its area of use back
//! to their longitude and latitude, read through the GeoTIFF keys a file in that CRS carries (so the CRS's unit,
//! metres or feet, is taken as a file's would be); every CRS on a datum terrafarm shifts (`SHIFTED`) takes points
//! where GDAL transforms them to WGS 84 without grids; and GeoTIFFs GDAL writes in user-defined projected CRSs (no
//! EPSG code, the projection's parameters in the GeoKeys) are placed where GDAL places them.

mod common;
use common::*;

use std::io::Write;
use std::process::{Command, Stdio};

use terrafarm::raster::epsg_units;
use terrafarm::raster::georef::{self, GeoTags};

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// `code lon lat x y` lines (with `--wgs84`, `code lon lat x y lon84 lat84`) from `.ci/proj_points.py` (GDAL's
/// Python bindings) for `codes`; `None` where the bindings are missing (a failure under CI=true).
fn gdal_points(codes: &[u16], args: &[&str]) -> Option<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/proj_points.py");
    // Debian's python3-gdal (a dependency of gdal-bin) is for the system interpreter.
    let child = Command::new("/usr/bin/python3").arg(script).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(!ci(), "/usr/bin/python3 missing (CI=true): {e}");
            eprintln!("note: /usr/bin/python3 missing; skipping");
            return None;
        }
    };
    let input: String = codes.iter().map(|c| format!("{c}\n")).collect();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!ci() && err.contains("No module named 'osgeo'"), "proj_points.py failed: {err}");
        eprintln!("note: GDAL's Python bindings missing (apt-get install gdal-bin); skipping");
        return None;
    }
    Some(String::from_utf8(o.stdout).unwrap())
}

/// A GeoTIFF's tags for a north-up grid in EPSG:`code` (the CRS named by ProjectedCSTypeGeoKey alone, as GDAL
/// writes an EPSG CRS).
fn tags(code: u16) -> GeoTags {
    GeoTags {
        pixel_scale: Some(vec![1.0, 1.0, 0.0]),
        tiepoint: Some(vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        key_directory: Some(vec![1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, code]),
        ..Default::default()
    }
}

/// Every placed CRS, at 25 points over its area of use (fewer where PROJ's forward projection does not reach):
/// terrafarm's longitude and latitude within 1 mm of the point GDAL projected. Fails if a CRS's PROJ string, unit,
/// axes or formulas are wrong: a false easting in feet read as metres, a swapped axis, a polar grid turned.
#[test]
fn every_placed_crs_inverts_what_gdal_projects() {
    let codes: Vec<u16> = epsg_units::PROJECTIONS.iter().map(|&(c, _)| c).collect();
    assert!(codes.len() > 2000, "{} placed CRSs", codes.len());
    let Some(out) = gdal_points(&codes, &[]) else { return };
    let (mut points, mut worst, mut skipped) = (0usize, (0.0f64, String::new()), Vec::new());
    let mut seen = std::collections::BTreeSet::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let code: u16 = f[0].parse().unwrap();
        if f[1] == "skipped" {
            skipped.push(code);
            continue;
        }
        let [lon, lat, x, y]: [f64; 4] = std::array::from_fn(|k| f[k + 1].parse().unwrap());
        let g = tags(code).georef().unwrap().unwrap();
        let got = g.lon_lat(x, y).unwrap_or_else(|| panic!("EPSG:{code}: ({x}, {y}) not inverted"));
        let d = metres(got, [lon, lat]);
        assert!(d < 1e-3, "EPSG:{code} ({}): ({x}, {y}) → {got:?}, GDAL projected it from ({lon}, {lat}): {d} m off", g.units);
        if d > worst.0 {
            worst = (d, format!("EPSG:{code} at ({lon}, {lat})"));
        }
        points += 1;
        seen.insert(code);
    }
    println!("{points} points in {} CRSs; farthest {:.2e} m ({}); skipped by GDAL: {skipped:?}", seen.len(), worst.0, worst.1);
    let missing: Vec<u16> = codes.iter().copied().filter(|c| !seen.contains(c) && !skipped.contains(c)).collect();
    assert!(missing.is_empty(), "no point for {missing:?}");
    assert!(skipped.len() < 10, "GDAL skipped {skipped:?}");
}

/// Ground distance (metres, near enough for bounds of millimetres to metres) between two longitude, latitude pairs.
fn metres(a: [f64; 2], b: [f64; 2]) -> f64 {
    let dlon = (a[0] - b[0] + 540.0).rem_euclid(360.0) - 180.0;
    let de = dlon.to_radians() * 6_378_137.0 * b[1].to_radians().cos();
    let dn = (a[1] - b[1]).to_radians() * 6_378_137.0;
    de.hypot(dn)
}

/// Every CRS on a datum terrafarm shifts (`epsg_units::SHIFTED`: OSGB36, Amersfoort, CH1903, DHDN, ED50, NAD27, …)
/// at 25 points over its area of use, against GDAL's transformation of the same easting and northing to WGS 84
/// where no grid is installed (PROJ choosing a transformation per point): where terrafarm places a point, it is
/// within 1 mm of GDAL's; where GDAL applies no shift (no transformation's area holds the point), terrafarm does
/// not place it; where GDAL applies a transformation terrafarm does not, terrafarm's choice is that one too (none is
/// left in PROJ 9.1's database: every candidate is Helmert, Molodensky-Badekas, or a concatenation of those after a
/// longitude rotation). Fails if a transformation's parameters, units, rotation convention or
/// pivot are wrong, or if terrafarm picks another transformation than PROJ.
#[test]
fn shifted_datums_land_where_gdal_puts_them_without_grids() {
    let codes: Vec<u16> = epsg_units::SHIFTED.iter().map(|t| t.0).collect();
    assert!(codes.len() > 1000, "{} shifted CRSs", codes.len());
    let Some(out) = gdal_points(&codes, &["--wgs84"]) else { return };
    let (mut placed, mut worst) = (0usize, (0.0f64, String::new()));
    // Points terrafarm does not place, where GDAL shifts nothing (no transformation's area holds them) and where
    // GDAL applies a transformation terrafarm does not.
    let (mut unshifted, mut other) = (0usize, 0usize);
    let mut wrong = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let code: u16 = f[0].parse().unwrap();
        if f[1] == "skipped" {
            continue;
        }
        let [lon, lat, x, y, lon84, lat84]: [f64; 6] = std::array::from_fn(|k| f[k + 1].parse().unwrap());
        let g = tags(code).georef().unwrap().unwrap();
        let gdal_shifted = metres([lon84, lat84], [lon, lat]) > 1e-6;
        match g.lon_lat(x, y) {
            Some(got) => {
                let d = metres(got, [lon84, lat84]);
                if d > 1e-3 {
                    let shift = g.shift(x, y).map(|s| s.epsg);
                    wrong.push(format!(
                        "EPSG:{code} at ({lon}, {lat}) through {shift:?}: {d:.3} m off GDAL's{}",
                        if gdal_shifted { "" } else { " (GDAL shifts nothing)" }
                    ));
                }
                if d > worst.0 && d <= 1e-3 {
                    worst = (d, format!("EPSG:{code} at ({lon}, {lat})"));
                }
                placed += 1;
                seen.insert(code);
            }
            None if gdal_shifted => {
                // Not a transformation terrafarm applies (geographic offsets, a grid, ...).
                let (_, k) = georef::transformation(code.into(), x * g.unit_metres, y * g.unit_metres)
                    .unwrap_or_else(|| panic!("EPSG:{code} at ({lon}, {lat}): GDAL shifts it, terrafarm finds no transformation"));
                assert!(epsg_units::SHIFT_OPS[k].4.is_none(), "EPSG:{code} at ({lon}, {lat}): a transformation not applied");
                other += 1;
            }
            None => unshifted += 1,
        }
    }
    println!(
        "{placed} points placed in {} CRSs; farthest {:.2e} m ({}); not placed: {unshifted} that GDAL does not shift, {other} it shifts otherwise; {} wrong",
        seen.len(),
        worst.0,
        worst.1,
        wrong.len()
    );
    for w in wrong.iter() {
        println!("  {w}");
    }
    assert!(wrong.is_empty(), "{} points off GDAL's", wrong.len());
    assert!(seen.len() > 1500 && placed > 35_000, "{placed} points placed in {} CRSs", seen.len());
    // Among them, CRSs on a prime meridian other than Greenwich's (NTF on Paris's, MGI on Ferro's, NGO 1948 on
    // Oslo's, Lisbon's) and CRSs PROJ shifts by a concatenated operation (those, Indian 1960's two Helmert steps
    // through WGS 72, Tokyo 1892's rotation to Korean 1985 before its Molodensky-Badekas step).
    for code in [27572, 31253, 27393, 20790, 3148, 5171] {
        assert!(seen.contains(&code), "EPSG:{code} not placed");
    }
    assert_eq!(other, 0, "points GDAL shifts by a transformation terrafarm does not apply");
}

/// GeoTIFFs that GDAL writes in projected CRSs without an EPSG code (ProjectedCSTypeGeoKey 32767 and the method's
/// parameters in the GeoKeys, as ESRI:102039 and any custom PROJ string come out): `info` reads the projection from
/// the keys and puts the raster's centre within 1e-8° (a millimetre) of the longitude and latitude GDAL projected
/// it from, for every method terrafarm reads that way; a CRS on a datum far from WGS 84 is not placed.
#[test]
fn user_defined_projections_are_placed_as_gdal_places_them() {
    if !gdal_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // (CRS as GDAL is given it, its geographic CRS, a longitude and latitude for the raster's centre)
    let wgs = "+proj=longlat +datum=WGS84";
    let grs = "+proj=longlat +ellps=GRS80 +towgs84=0,0,0";
    let cases = [
        ("ESRI:102039", "EPSG:4269", -105.3, 39.9),
        ("+proj=lcc +lat_0=40 +lon_0=-100 +lat_1=33 +lat_2=45 +x_0=1000 +y_0=2000 +datum=WGS84 +units=us-ft", wgs, -93.1, 44.9),
        ("+proj=lcc +lat_1=46.8 +lat_0=46.8 +lon_0=2.5 +k_0=0.99987742 +x_0=600000 +y_0=2200000 +datum=WGS84", wgs, 5.6, 45.2),
        ("+proj=tmerc +lat_0=0 +lon_0=10.5 +k=0.9999 +x_0=100000 +y_0=-5000000 +ellps=GRS80 +towgs84=0,0,0", grs, 12.9, 51.3),
        ("+proj=laea +lat_0=45 +lon_0=-100 +x_0=0 +y_0=0 +datum=WGS84", wgs, -80.2, 25.8),
        ("+proj=aea +lat_0=-32 +lon_0=132 +lat_1=-18 +lat_2=-36 +x_0=0 +y_0=0 +ellps=GRS80 +towgs84=0,0,0", grs, 146.8, -19.3),
        ("+proj=stere +lat_0=90 +lat_ts=75 +lon_0=-30 +x_0=0 +y_0=0 +datum=WGS84", wgs, -51.7, 64.2),
        ("+proj=stere +lat_0=-90 +k=0.994 +lon_0=0 +x_0=2000000 +y_0=2000000 +datum=WGS84", wgs, 166.7, -77.8),
        ("+proj=merc +lon_0=20 +k=0.997 +x_0=0 +y_0=0 +datum=WGS84", wgs, 24.9, 60.2),
        ("+proj=sterea +lat_0=52.1 +lon_0=5.4 +k=0.9999 +x_0=155000 +y_0=463000 +ellps=GRS80 +towgs84=0,0,0", grs, 4.9, 52.4),
    ];
    for (i, (srs, geo, lon, lat)) in cases.into_iter().enumerate() {
        let xy = gdal_input("gdaltransform", &["-s_srs", geo, "-t_srs", srs, "-output_xy"], &format!("{lon} {lat}\n"), None);
        let [x, y]: [f64; 2] = std::array::from_fn(|k| xy.split_whitespace().nth(k).unwrap().parse().unwrap());
        let tif = d.path().join(format!("u{i}.tif"));
        let ullr = [x - 200.0, y + 150.0, x + 200.0, y - 150.0].map(|v| v.to_string());
        gdal(
            "gdal_create",
            &[
                "-q",
                "-of",
                "GTiff",
                "-outsize",
                "40",
                "30",
                "-bands",
                "1",
                "-ot",
                "Float32",
                "-burn",
                "100",
                "-a_srs",
                srs,
                "-a_ullr",
                &ullr[0],
                &ullr[1],
                &ullr[2],
                &ullr[3],
                tif.to_str().unwrap(),
            ],
        );
        let o = run(&["info", tif.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let all: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let info = &all[0];
        let g = &info["georef"];
        assert!(g["epsg"].is_null(), "{srs}: GDAL wrote an EPSG code ({}), so the keys' parameters go untested", g["epsg"]);
        let got: Vec<f64> = info["centre_lon_lat"].as_array().unwrap_or_else(|| panic!("{srs} not placed: {g}")).iter().map(|v| v.as_f64().unwrap()).collect();
        println!("{srs}: read as {}; centre ({}, {}) against GDAL's ({lon}, {lat})", g["proj"], got[0], got[1]);
        assert!((got[0] - lon).abs() < 1e-8 && (got[1] - lat).abs() < 1e-8, "{srs}: centre {got:?}, GDAL's ({lon}, {lat})");
    }
    // Bessel's ellipsoid and a datum hundreds of metres from WGS 84 (a custom grid on it): not placed.
    let tif = d.path().join("bessel.tif");
    let srs = "+proj=tmerc +lat_0=0 +lon_0=13 +k=1 +x_0=0 +y_0=0 +ellps=bessel +towgs84=598.1,73.7,418.2,0.202,0.045,-2.455,6.7";
    gdal(
        "gdal_create",
        &["-q", "-of", "GTiff", "-outsize", "4", "4", "-bands", "1", "-a_srs", srs, "-a_ullr", "0", "5500000", "400", "5499700", tif.to_str().unwrap()],
    );
    let all: serde_json::Value = serde_json::from_slice(&run(&["info", tif.to_str().unwrap(), "--json"]).stdout).unwrap();
    let info = &all[0];
    assert!(
        info["georef"]["model"] == "projected" && info["georef"]["epsg"].is_null() && info["centre_lon_lat"].is_null() && info["georef"]["proj"].is_null(),
        "{info}"
    );
}
