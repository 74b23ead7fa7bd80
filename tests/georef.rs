//! terrafarm's inverse projections against PROJ's forward ones, through GDAL: every EPSG projected CRS terrafarm
//! places on the ellipsoid (`raster::epsg_units::PROJECTIONS`) maps GDAL-projected points of its area of use back
//! to their longitude and latitude, read through the GeoTIFF keys a file in that CRS carries (so the CRS's unit,
//! metres or feet, is taken as a file's would be).

use std::io::Write;
use std::process::{Command, Stdio};

use terrafarm::raster::epsg_units;
use terrafarm::raster::georef::GeoTags;

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// `code lon lat x y` lines from `.ci/proj_points.py` (GDAL's Python bindings) for `codes`; `None` where the
/// bindings are missing (a failure under CI=true).
fn gdal_points(codes: &[u16]) -> Option<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/proj_points.py");
    // Debian's python3-gdal (a dependency of gdal-bin) is for the system interpreter.
    let child = Command::new("/usr/bin/python3").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
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
    let Some(out) = gdal_points(&codes) else { return };
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
        // Metres on the ground, near enough for a bound of a millimetre.
        let dlon = (got[0] - lon + 540.0).rem_euclid(360.0) - 180.0;
        let de = dlon.to_radians() * 6_378_137.0 * lat.to_radians().cos();
        let dn = (got[1] - lat).to_radians() * 6_378_137.0;
        let d = de.hypot(dn);
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
