//! `terrafarm info`: what an input is (format, sample type, compression, block layout, georeferencing, cell size
//! and how it was derived, no-data, a value range sampled from a few windows) and what meshing it would take (tile
//! grid, output bytes per format at full resolution, peak memory). Reads headers and a few windows only; writes
//! nothing.

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::cli::InfoArgs;
use crate::config::{parse_cell, parse_size, ConfigError};
use crate::pipeline::GeoidPlan;
use crate::raster::georef::Shift;
use crate::raster::{self, CellSize, Georef, ReadOptions, SourceInfo, ZScale};
use crate::tiling::{Grid, Rect};

#[derive(Serialize)]
struct EstimatedBytes {
    glb: u64,
    obj: u64,
}

#[derive(Serialize)]
struct Report {
    input: String,
    bytes: u64,
    #[serde(flatten)]
    source: SourceInfo,
    encoding: String,
    width: usize,
    height: usize,
    georef: Option<Georef>,
    /// Longitude and latitude (degrees, WGS84) of the raster's centre where its CRS is one terrafarm places on the
    /// ellipsoid (the 3D Tiles root transform puts the scene there); `None` otherwise.
    centre_lon_lat: Option<[f64; 2]>,
    /// The Helmert or Molodensky-Badekas transformation of the CRS's datum to WGS 84 that places the centre, where
    /// its datum is one terrafarm shifts.
    #[serde(skip_serializing_if = "Option::is_none")]
    datum_shift: Option<Shift>,
    /// What `mesh --format 3dtiles` (`--geoid auto`) does with the heights of a placed raster: the geoid grid whose
    /// undulations make them heights above the ellipsoid, or why they are placed as they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    geoid: Option<GeoidReport>,
    cell_size: CellSize,
    /// The z-scale and z-offset `mesh` would use without `--z-scale`/`--z-offset`, unless the file cannot say (then the
    /// error: an unknown height unit, a band scale out of bounds).
    z_scale: Option<ZScale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    z_scale_error: Option<String>,
    nodata: Option<f32>,
    /// The value `mesh` warns about when it meets it ([`raster::Raster::suspect`]).
    #[serde(skip)]
    suspect: Option<f32>,
    /// Min and max of the valid samples in the windows read (`windows_sampled` of them).
    value_range: Option<[f32; 2]>,
    windows_sampled: usize,
    tile_size: usize,
    tile_grid: [usize; 2],
    /// Full-resolution output (simplification makes it smaller).
    estimated_bytes: EstimatedBytes,
    /// Whether `mesh` streams tile windows from the input (memory bounded by the tiles in flight) or decodes the
    /// whole raster first.
    streamed: bool,
    estimated_peak_memory_bytes: u64,
}

#[derive(Serialize)]
struct GeoidReport {
    /// What the heights are above, and the grid file `mesh` would read.
    #[serde(skip_serializing_if = "Option::is_none")]
    above: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grid: Option<String>,
    /// The geoid's undulation at the raster's centre (metres): what its heights there gain; or why the grid could not
    /// be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    undulation_at_centre: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grid_error: Option<String>,
    /// Why heights the file declares above a geoid would be placed as they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_converted: Option<String>,
}

/// Up to 16 windows spread over the raster, each at most 256² samples.
fn sample_windows(w: usize, h: usize) -> Vec<Rect> {
    let n = 4usize;
    let (ww, wh) = (w.min(256), h.min(256));
    let mut out = Vec::new();
    for j in 0..n {
        for i in 0..n {
            let x0 = (w - ww) * i / (n - 1);
            let y0 = (h - wh) * j / (n - 1);
            let r = Rect::new(x0, y0, x0 + ww, y0 + wh);
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

fn describe(a: &InfoArgs, input: &std::path::Path, threads: usize) -> Result<Report> {
    let opts = ReadOptions {
        encoding: a.encoding.parse().map_err(ConfigError)?,
        size: a.size.as_deref().map(parse_size).transpose()?,
        max_samples: 1 << 40,
        nodata: a.nodata,
    };
    let cell = a.cell_size.as_deref().map(parse_cell).transpose()?;
    let inp = crate::pipeline::open_input(input, &crate::store::BlobOptions::default())?;
    let r = raster::open_source(&inp.shown, inp.source.clone(), &opts)?;
    let (w, h) = (r.width(), r.height());
    let georef = r.georef();
    let cell_size = crate::pipeline::cell_size(cell, georef.as_ref(), w, h, &inp.shown)?;
    let (z_scale, z_scale_error) = match crate::pipeline::z_scale((None, None), georef.as_ref(), r.band_scale(), &inp.shown) {
        Ok((z, _)) => (Some(z), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let windows = sample_windows(w, h);
    let mut range: Option<[f32; 2]> = None;
    let mut buf = Vec::new();
    for rect in &windows {
        buf.clear();
        buf.resize(rect.len(), 0.0);
        r.read_window(*rect, &mut buf)?;
        for &v in buf.iter().filter(|v| v.is_finite()) {
            range = Some(range.map_or([v, v], |[lo, hi]| [lo.min(v), hi.max(v)]));
        }
    }
    if !(2..=16384).contains(&a.tile_size) {
        return Err(ConfigError(format!("--tile-size {} is outside 2..=16384 cells", a.tile_size)).into());
    }
    let grid = Grid::new(w, h, a.tile_size).ok_or_else(|| anyhow!("{}: raster too small to mesh", inp.shown.display()))?;
    let (mut glb, mut obj) = (0u64, 0u64);
    for t in grid.tiles() {
        let tr = grid.tile_rect(t);
        let (v, tris) = (tr.len() as u64, 2 * (tr.width() as u64 - 1) * (tr.height() as u64 - 1));
        let index = if v <= 65535 { 2 } else { 4 };
        glb += v * 32 + tris * 3 * index + 1500;
        // OBJ text: about 110 bytes per vertex (v, vn, vt lines) and 35 per face line, measured on terrafarm's output.
        obj += v * 110 + tris * 35;
    }
    let streamed = r.windowed();
    let tile_window = (a.tile_size as u64 + 3).pow(2);
    // Per thread in flight: the window (f32), the mesh (positions, normals, UVs, grid coordinates, indices: about
    // 48 bytes a vertex) and the GLB bytes (about 56 a vertex); plus the GeoTIFF block cache, plus what is decoded
    // whole.
    let per_thread = tile_window * (4 + 48 + 56);
    let whole = if streamed { 0 } else { (w * h) as u64 * 4 * 2 };
    let cache = r.plan_windows(crate::pipeline::in_flight_rows(&grid, threads), 1);
    Ok(Report {
        input: inp.shown.display().to_string(),
        bytes: inp.source.len(),
        source: r.info(),
        encoding: r.encoding().to_string(),
        width: w,
        height: h,
        centre_lon_lat: georef.as_ref().and_then(|g| g.centre_lon_lat(w, h)),
        datum_shift: georef.as_ref().and_then(|g| {
            let [x, y] = g.centre(w, h);
            g.shift(x, y)
        }),
        geoid: georef.as_ref().and_then(|g| Some((g, g.centre_lon_lat(w, h)?))).and_then(|(g, [lon, lat])| {
            match crate::pipeline::geoid_plan(&crate::config::GeoidChoice::Auto, Some(g), &r.encoding().to_string()) {
                GeoidPlan::Grid(p, above) => {
                    let n = crate::raster::geoid::Grid::load(&p).and_then(|grid| grid.undulation(lon, lat).ok_or_else(|| "no value at the centre".into()));
                    Some(GeoidReport {
                        above: Some(above),
                        grid: Some(p.display().to_string()),
                        undulation_at_centre: n.as_ref().ok().copied(),
                        grid_error: n.err(),
                        not_converted: None,
                    })
                }
                GeoidPlan::AsTheyAre(why) => {
                    why.map(|w| GeoidReport { above: None, grid: None, undulation_at_centre: None, grid_error: None, not_converted: Some(w) })
                }
            }
        }),
        georef,
        cell_size,
        z_scale,
        z_scale_error,
        nodata: r.nodata(),
        suspect: r.suspect(),
        value_range: range,
        windows_sampled: windows.len(),
        tile_size: a.tile_size,
        tile_grid: [grid.cols, grid.rows],
        estimated_bytes: EstimatedBytes { glb, obj },
        streamed,
        estimated_peak_memory_bytes: per_thread * threads as u64 + whole + cache + (16 << 20),
    })
}

/// A sample value as text: plain decimals for heights, exponent form for fill values such as -3.4028235e38 (whose
/// plain decimals run to 39 digits).
fn value(v: f32) -> String {
    if v != 0.0 && !(1e-4..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

fn text(r: &Report) -> String {
    let mut s = format!("{}: {} ({} bytes)\n", r.input, r.source.format, r.bytes);
    s += &format!("  size: {} x {} samples of {}, encoding {}\n", r.width, r.height, r.source.sample_type, r.encoding);
    if let Some(c) = &r.source.compression {
        s += &format!("  compression: {c}\n");
    }
    if let Some(b) = &r.source.blocks {
        s += &format!("  layout: {b}{}\n", if r.source.bigtiff == Some(true) { ", BigTIFF" } else { "" });
    }
    match &r.georef {
        Some(g) => {
            s += &format!(
                "  CRS: {} ({:?}, {}), geotransform {:?}\n",
                g.epsg.map_or_else(|| g.proj.as_ref().map_or("unknown".into(), |p| format!("user-defined, {p}")), |e| format!("EPSG:{e}")),
                g.model,
                g.units,
                g.geotransform
            )
        }
        None => s += "  CRS: none\n",
    }
    match (&r.georef, r.centre_lon_lat) {
        (Some(_), Some([lon, lat])) => {
            s += &format!("  3D Tiles placement: the raster's centre at longitude {lon:.6}°, latitude {lat:.6}° (WGS84)");
            if let Some(t) = &r.datum_shift {
                s += &format!(", the datum shifted by EPSG:{} ({}, accurate to {} m)", t.epsg, t.kind(), t.accuracy);
            }
            s += "\n";
        }
        (Some(g), None) => s += &format!("  3D Tiles placement: none ({}; a tileset stays in its own frame)\n", g.unplaced(r.width, r.height)),
        (None, _) => {}
    }
    match &r.geoid {
        Some(GeoidReport { above: Some(a), grid: Some(g), undulation_at_centre, grid_error, .. }) => {
            s += &format!("  3D Tiles heights: above {a}, made heights above the ellipsoid through {g}");
            match (undulation_at_centre, grid_error) {
                (Some(n), _) => s += &format!(" (N = {n:.3} m at the centre)\n"),
                (None, Some(e)) => s += &format!(" ({e})\n"),
                _ => s += "\n",
            }
        }
        Some(GeoidReport { not_converted: Some(w), .. }) => s += &format!("  3D Tiles heights: {w}\n"),
        _ => {}
    }
    if let Some(f) = r.georef.as_ref().and_then(|g| g.flipped.as_ref()) {
        s += &format!("  stored: {f}\n");
    }
    s += &format!("  cell size: {} m x {} m ({})\n", r.cell_size.metres[0], r.cell_size.metres[1], r.cell_size.derived_from);
    match (&r.z_scale, &r.z_scale_error) {
        (Some(z), _) => s += &format!("  z-scale: {}, z-offset {} m ({})\n", z.factor, z.offset, z.derived_from),
        (None, e) => s += &format!("  z-scale: unknown ({})\n", e.as_deref().unwrap_or_default()),
    }
    s += &format!("  no-data: {}\n", r.nodata.map_or("none".into(), value));
    if let Some(m) = &r.source.mask {
        s += &format!("  mask: {m}\n");
    }
    match r.value_range {
        Some([lo, hi]) => {
            s += &format!("  values: {} .. {} (in {} sampled windows)\n", value(lo), value(hi), r.windows_sampled);
            let max = crate::config::HEIGHT_METRES;
            let (z, o) = r.z_scale.as_ref().map_or((1.0, 0.0), |z| (z.factor, z.offset));
            let ends = if lo == hi { vec![lo] } else { vec![lo, hi] };
            if r.suspect == Some(lo) {
                s += &format!(
                    "  {lo}: int16's lowest value, the usual void of SRTM-like DEMs, meshed as a height since the file declares no no-data value; if it marks voids, pass --nodata {lo}\n"
                );
            }
            for v in ends.into_iter().filter(|v| !crate::config::height_in_range(v * z + o)) {
                s += &format!(
                    "  {}: beyond ±{max:e} m at z-scale {z} and z-offset {o}, so a hole when meshed; if it marks voids, pass --nodata {}\n",
                    value(v),
                    value(v)
                );
            }
        }
        None => s += &format!("  values: no valid sample in {} sampled windows\n", r.windows_sampled),
    }
    s += &format!(
        "  mesh with --tile-size {}: {} x {} tiles; full resolution about {:.1} MB of GLB, {:.1} MB of OBJ; {} peak memory about {:.0} MB\n",
        r.tile_size,
        r.tile_grid[0],
        r.tile_grid[1],
        r.estimated_bytes.glb as f64 / 1e6,
        r.estimated_bytes.obj as f64 / 1e6,
        if r.streamed { "tiles streamed from the input," } else { "decoded whole," },
        r.estimated_peak_memory_bytes as f64 / 1e6
    );
    s
}

/// `terrafarm info INPUT...`: one report per input; a failing input does not stop the others (exit 1 at the end).
pub fn command(a: &InfoArgs) -> Result<()> {
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    let mut reports = Vec::new();
    let mut failed = 0;
    for input in &a.inputs {
        match describe(a, input, threads) {
            Ok(r) => reports.push(r),
            Err(e) if e.chain().any(|c| c.downcast_ref::<ConfigError>().is_some()) => return Err(e),
            Err(e) => {
                failed += 1;
                tracing::error!("{}", crate::redact::redact(&format!("{e:#}")));
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            print!("{}", text(r));
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} input(s) could not be read", a.inputs.len());
    }
    Ok(())
}
