//! Heights above a geoid made heights above the WGS 84 ellipsoid, for 3D Tiles placed on it.
//!
//! DEMs give heights above a geoid (mean sea level): SRTM's `.hgt` and many GeoTIFFs above EGM96 (EPSG:5773), the
//! Copernicus DEM and others above EGM2008 (EPSG:3855). A tileset on the ellipsoid needs heights above the
//! ellipsoid: h = H + N, where N, the geoid's undulation, is between −107 and +85 m on Earth (about +40 m at Fuji,
//! +47 m in the Alps). Left as they are, such heights put the scene tens of metres under or over where other data on
//! the ellipsoid (CesiumJS' globe, photogrammetry, points) puts it.
//!
//! N comes from the geoid model's grid, as PROJ applies it (`vgridshift`): bilinear in longitude and latitude
//! between the grid's nodes, from the same file PROJ reads (its GTX form, `egm96_15.gtx`, or its GeoTIFF form,
//! `us_nga_egm96_15.tif`), found where PROJ looks for it ([`find`]) or given with `--geoid`.
//!
//! Every sample's N is added to its height before meshing ([`ToEllipsoid::apply`]), so the simplifier's error bound
//! holds for the heights above the ellipsoid, sample by sample. A sample's longitude and latitude (an inverse
//! projection, 0.2–1 µs) are interpolated bilinearly between exact values on a lattice of nodes about
//! [`SPACING`] metres apart: the map's second order over such a cell (about d²/8R) moves a point by under 2 mm,
//! and N by under 2 mm × the geoid's slope (under 10⁻³ in the global models), 2 µm. Within 1° of a pole, where
//! longitudes turn fast, each sample is projected exactly. Nodes are global (a node depends on its index alone),
//! so a sample two tiles share gets the same N, bit for bit, on both.

use super::georef::{Georef, ToWgs84};
use crate::tiling::Rect;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The lattice's node spacing, metres (rounded down to whole samples; at least one sample).
pub const SPACING: f64 = 250.0;

/// A geoid model terrafarm converts heights from.
pub struct Model {
    /// Its vertical CRS (EPSG) and the CRS's EPSG name.
    pub epsg: u32,
    pub name: &'static str,
    /// What `--geoid` calls it.
    pub option: &'static str,
    /// The grid files PROJ applies for it: PROJ's current GeoTIFF name first, then the older GTX one.
    pub files: &'static [&'static str],
}

/// The geoid models terrafarm converts heights from.
pub const MODELS: &[Model] = &[
    Model { epsg: 5773, name: "EGM96 height", option: "egm96", files: &["us_nga_egm96_15.tif", "egm96_15.gtx"] },
    Model { epsg: 3855, name: "EGM2008 height", option: "egm2008", files: &["us_nga_egm08_25.tif", "egm08_25.gtx"] },
];

/// The vertical CRS of SRTM's `.hgt` heights: EGM96.
pub const HGT_VERTICAL: u32 = 5773;

/// A geoid grid: undulations (metres) at nodes regularly spaced in longitude and latitude (WGS 84).
pub struct Grid {
    /// The file's name, for messages and records.
    pub name: String,
    /// Longitude and latitude (degrees) of node (0, 0), and the step to the next column and row (the latitude step
    /// is negative where rows run from the north).
    lon0: f64,
    lat0: f64,
    dlon: f64,
    dlat: f64,
    cols: usize,
    rows: usize,
    /// Undulations row by row; NaN where the grid has none.
    n: Vec<f32>,
    /// The columns go round the globe: the column after the last is the first.
    wraps: bool,
}

impl Grid {
    /// Reads a geoid grid: a GTX file (NOAA's vertical datum format, PROJ's grids before PROJ 7) or a GeoTIFF of
    /// undulations in a geographic CRS (PROJ's grids since, e.g. `us_nga_egm96_15.tif`).
    pub fn load(path: &Path) -> Result<Grid, String> {
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let is_gtx = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gtx"));
        let g = if is_gtx { Grid::gtx(&std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?, name) } else { Grid::geotiff(path, name) };
        g.map_err(|m| format!("geoid grid {}: {m}", path.display()))
    }

    /// A GTX file: a big-endian header (latitude and longitude of the south-west node, their steps, as f64; rows and
    /// columns, as i32), then the undulations as big-endian f32, row by row from the south; −88.8888 where none.
    pub fn gtx(b: &[u8], name: String) -> Result<Grid, String> {
        let f = |i: usize| f64::from_be_bytes(b[8 * i..8 * i + 8].try_into().unwrap());
        if b.len() < 40 {
            return Err("shorter than a GTX header".into());
        }
        let (lat0, lon0, dlat, dlon) = (f(0), f(1), f(2), f(3));
        let dim = |o: usize| i32::from_be_bytes(b[o..o + 4].try_into().unwrap());
        let (rows, cols) = (dim(32), dim(36));
        if rows < 2 || cols < 2 || !(dlat > 0.0 && dlon > 0.0 && lat0.is_finite() && lon0.is_finite()) {
            return Err(format!("not a GTX grid (header: {rows} rows, {cols} columns, steps {dlat}° and {dlon}°)"));
        }
        let (rows, cols) = (rows as usize, cols as usize);
        // (Rows and columns below 2³¹ each: the byte count fits in u64.)
        let want = 40 + 4 * rows as u64 * cols as u64;
        if b.len() as u64 != want {
            return Err(format!("{} bytes, not the {want} of a {rows} × {cols} GTX grid", b.len()));
        }
        let n =
            b[40..].chunks_exact(4).map(|c| f32::from_be_bytes(c.try_into().unwrap())).map(|v| if (v + 88.8888).abs() < 1e-3 { f32::NAN } else { v }).collect();
        Grid::new(name, [lon0, lat0, dlon, dlat], cols, rows, n)
    }

    /// A single-band GeoTIFF in a geographic CRS, read by terrafarm's own reader; nodes at the samples' points; the
    /// band's scale and offset applied, and its no-data samples without a value.
    fn geotiff(path: &Path, name: String) -> Result<Grid, String> {
        let opts = super::ReadOptions { encoding: super::Encoding::Auto, size: None, max_samples: 1 << 28, nodata: None };
        let r = super::open(path, &opts).map_err(|e| e.to_string())?;
        let g = r.georef().ok_or("no georeferencing")?;
        if g.model != super::georef::Model::Geographic || g.geotransform[2] != 0.0 || g.geotransform[4] != 0.0 {
            return Err("not a north-up grid in a geographic CRS".into());
        }
        let (cols, rows) = (r.width(), r.height());
        let mut n = vec![0.0; cols * rows];
        r.read_window(Rect::new(0, 0, cols, rows), &mut n).map_err(|e| e.to_string())?;
        // Grids stored as integers state their scale and offset (GDAL metadata), as PROJ reads them.
        if let Some((scale, offset)) = r.band_scale() {
            n.iter_mut().for_each(|v| *v = (*v as f64 * scale + offset) as f32);
        }
        let [lon0, lat0] = g.at(0.5, 0.5);
        Grid::new(name, [lon0, lat0, g.geotransform[1], g.geotransform[5]], cols, rows, n)
    }

    fn new(name: String, [lon0, lat0, dlon, dlat]: [f64; 4], cols: usize, rows: usize, n: Vec<f32>) -> Result<Grid, String> {
        let lat1 = lat0 + dlat * (rows - 1) as f64;
        if !(dlon > 0.0 && dlat != 0.0 && (-90.0 - 1e-9..=90.0 + 1e-9).contains(&lat0) && (-90.0 - 1e-9..=90.0 + 1e-9).contains(&lat1)) {
            return Err(format!("nodes outside the globe (latitudes {lat0}° to {lat1}°, longitude step {dlon}°)"));
        }
        let wraps = (cols as f64 * dlon - 360.0).abs() < 1e-6;
        Ok(Grid { name, lon0, lat0, dlon, dlat, cols, rows, n, wraps })
    }

    /// The undulation N (metres) at a longitude and latitude (degrees, WGS 84): bilinear between the four nodes
    /// around it, as PROJ interpolates. `None` outside the grid or next to a node without a value.
    pub fn undulation(&self, lon: f64, lat: f64) -> Option<f64> {
        let [x, y] = self.coords(lon, lat);
        self.at(x, y)
    }

    /// Grid coordinates (fractional column and row) of a longitude and latitude; a column in [0, columns) where the
    /// grid goes round the globe.
    fn coords(&self, lon: f64, lat: f64) -> [f64; 2] {
        let x = (lon - self.lon0) / self.dlon;
        [if self.wraps { x.rem_euclid(self.cols as f64) } else { x }, (lat - self.lat0) / self.dlat]
    }

    /// The undulation at grid coordinates `x`, `y` (a column up to a turn of the globe either side of [0,
    /// columns) where the grid goes round it).
    fn at(&self, x: f64, y: f64) -> Option<f64> {
        let c = self.cell(x, y)?;
        Grid::blend(c.x - c.i as f64, c.y - c.j as f64, c.v)
    }

    /// Bilinear between a cell's four values (`v`: first column and row, next column, next row, both) at fractions
    /// `fx`, `fy` of it; `None` next to a node without a value.
    fn blend(fx: f64, fy: f64, v: [f64; 4]) -> Option<f64> {
        let n = (1.0 - fy) * ((1.0 - fx) * v[0] + fx * v[1]) + fy * ((1.0 - fx) * v[2] + fx * v[3]);
        n.is_finite().then_some(n)
    }

    /// The grid cell holding grid coordinates `x`, `y`, and them within the grid ([`Cell`]); `None` outside.
    fn cell(&self, x: f64, y: f64) -> Option<Cell> {
        let (last_c, last_r) = ((self.cols - 1) as f64, (self.rows - 1) as f64);
        // A point a rounding error past the last row or column is on it.
        let snap = |v: f64, last: f64| {
            if (-1e-9..0.0).contains(&v) {
                0.0
            } else if v > last && v < last + 1e-9 {
                last
            } else {
                v
            }
        };
        // A turn of the globe in columns: a point up to one turn either side is moved into the grid (a regional
        // grid given in longitudes 0–360° read at −180–180°, or the reverse, as PROJ reads it).
        let turn = if self.wraps { self.cols as f64 } else { 360.0 / self.dlon };
        let shift = if self.wraps {
            if x < 0.0 {
                turn
            } else if x >= turn {
                -turn
            } else {
                0.0
            }
        } else if x < -1e-9 && x + turn <= last_c + 1e-9 {
            turn
        } else if x > last_c + 1e-9 && x - turn >= -1e-9 {
            -turn
        } else {
            0.0
        };
        let (xs, ys) = if self.wraps { (x + shift, snap(y, last_r)) } else { (snap(x + shift, last_c), snap(y, last_r)) };
        if !(0.0..=last_r).contains(&ys) || !(xs >= 0.0 && (self.wraps && xs < turn || xs <= last_c)) {
            return None;
        }
        // Truncation is the floor here (both ≥ 0), without a call.
        let (i, j) = ((xs as usize).min(self.cols - 1), (ys as usize).min(self.rows - 1));
        let i1 = if i + 1 < self.cols {
            i + 1
        } else if self.wraps {
            0
        } else {
            i
        };
        let j1 = (j + 1).min(self.rows - 1);
        let v = |c: usize, r: usize| self.n[r * self.cols + c] as f64;
        let snapped = ys != y || (!self.wraps && xs != x + shift);
        Some(Cell { x: xs, y: ys, shift, snapped, i, j, v: [v(i, j), v(i1, j), v(i, j1), v(i1, j1)] })
    }
}

/// A grid cell found by [`Grid::cell`]: the point's coordinates within the grid, the turn of the globe added to
/// its column (0 or ± the grid's columns), whether a coordinate was snapped onto the grid's edge, the cell's first
/// column and row, and its four values.
struct Cell {
    x: f64,
    y: f64,
    shift: f64,
    snapped: bool,
    i: usize,
    j: usize,
    v: [f64; 4],
}

/// The directories PROJ looks for grids in: those of `PROJ_DATA` (or the older `PROJ_LIB`) when set, else the usual
/// install locations; and the user's own (where PROJ keeps grids it downloaded).
pub fn search_path() -> Vec<PathBuf> {
    let env = std::env::var_os("PROJ_DATA").or_else(|| std::env::var_os("PROJ_LIB"));
    let mut dirs: Vec<PathBuf> = match env {
        Some(v) => std::env::split_paths(&v).collect(),
        None => ["/usr/share/proj", "/usr/local/share/proj"].map(PathBuf::from).to_vec(),
    };
    let user = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    dirs.extend(user.map(|u| u.join("proj")));
    dirs
}

/// The first of `names` in the first directory of [`search_path`] that holds one.
pub fn find(names: &[&str]) -> Option<PathBuf> {
    search_path().iter().flat_map(|d| names.iter().map(move |n| d.join(n))).find(|p| p.is_file())
}

/// The geoid model of a vertical CRS terrafarm converts from ([`MODELS`]).
pub fn model(vertical_epsg: u32) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.epsg == vertical_epsg)
}

/// Adds a geoid's undulation to every sample of a raster's windows ([module docs](self)).
pub struct ToEllipsoid {
    grid: Arc<Grid>,
    georef: Georef,
    to_wgs84: ToWgs84,
    /// Samples between lattice nodes.
    step: i64,
    /// Metres of height per sample unit (`--z-scale`).
    z_scale: f64,
}

impl ToEllipsoid {
    /// For a raster of `cell`-metre samples in the CRS of `g`, whose heights are `z_scale` metres per unit; `None`
    /// where terrafarm does not place the CRS on WGS 84 (no map to longitudes and latitudes at its centre).
    pub fn new(grid: Arc<Grid>, g: &Georef, raster: [usize; 2], cell: [f64; 2], z_scale: f32) -> Option<ToEllipsoid> {
        let [x, y] = g.centre(raster[0], raster[1]);
        let to_wgs84 = g.to_wgs84(x, y)?;
        let step = ((SPACING / cell[0].max(cell[1])).floor() as i64).max(1);
        Some(ToEllipsoid { grid, georef: g.clone(), to_wgs84, step, z_scale: z_scale as f64 })
    }

    pub fn grid_name(&self) -> &str {
        &self.grid.name
    }

    /// Longitude and latitude of sample (`c`, `r`), exact.
    fn lon_lat(&self, c: f64, r: f64) -> Option<[f64; 2]> {
        let [x, y] = self.georef.at(c + 0.5, r + 0.5);
        self.to_wgs84.lon_lat(x, y)
    }

    /// Adds N (in sample units) to every valid sample of `out`, the window `rect` of the raster. Fails, naming the
    /// first such sample, where a sample has no longitude and latitude or the grid has no undulation there.
    pub fn apply(&self, rect: Rect, out: &mut [f32]) -> Result<(), String> {
        let s = self.step;
        let (i0, i1) = ((rect.x0 as i64).div_euclid(s), (rect.x1 as i64 - 1).div_euclid(s) + 1);
        let (j0, j1) = ((rect.y0 as i64).div_euclid(s), (rect.y1 as i64 - 1).div_euclid(s) + 1);
        let cols = (i1 - i0 + 1) as usize;
        let nodes: Vec<Option<[f64; 2]>> =
            (j0..=j1).flat_map(|j| (i0..=i1).map(move |i| (i, j))).map(|(i, j)| self.lon_lat((i * s) as f64, (j * s) as f64)).collect();
        let fail = |c: usize, r: usize, why: &str| {
            format!("sample ({c}, {r}): {why}, so its height cannot be made one above the ellipsoid through {}", self.grid.name)
        };
        let w = rect.width();
        for r in rect.y0..rect.y1 {
            let j = (r as i64).div_euclid(s);
            let fy = (r as i64 - j * s) as f64 / s as f64;
            let row = &mut out[(r - rect.y0) * w..(r - rect.y0 + 1) * w];
            let mut c = rect.x0;
            while c < rect.x1 {
                let i = (c as i64).div_euclid(s);
                let end = (((i + 1) * s) as usize).min(rect.x1);
                let at = |di: i64, dj: i64| nodes[(j + dj - j0) as usize * cols + (i + di - i0) as usize];
                let corners = [at(0, 0), at(1, 0), at(0, 1), at(1, 1)];
                // Grid coordinates interpolated between the cell's corners, longitudes unwrapped next to its first
                // node (a cell across the antimeridian); exact within 1° of a pole or where a node has no place.
                let lerp = match corners {
                    [Some(a), Some(b), Some(c), Some(d)] if [a, b, c, d].iter().all(|p| p[1].abs() < 89.0) => {
                        let un = |p: [f64; 2]| [p[0] + 360.0 * ((a[0] - p[0]) / 360.0).round(), p[1]];
                        let (b, c, d) = (un(b), un(c), un(d));
                        let w = |p: [f64; 2], q: [f64; 2]| [p[0] + (q[0] - p[0]) * fy, p[1] + (q[1] - p[1]) * fy];
                        let (l, rt) = (self.grid.coords(w(a, c)[0], w(a, c)[1]), w(b, d));
                        // The right end in the left end's turn of the globe.
                        let rt = [l[0] + (rt[0] - w(a, c)[0]) / self.grid.dlon, (rt[1] - self.grid.lat0) / self.grid.dlat];
                        Some((l, rt))
                    }
                    _ => None,
                };
                // Where the run's two ends lie in one cell of the grid, turned alike and not snapped, so does every
                // sample between them: its four values are taken once. The arithmetic is `Grid::at`'s, operation
                // for operation (a run depends on the window, a sample's bits must not).
                let at = |l: [f64; 2], rt: [f64; 2], cc: usize| {
                    let fx = (cc as i64 - i * s) as f64 / s as f64;
                    [l[0] + (rt[0] - l[0]) * fx, l[1] + (rt[1] - l[1]) * fx]
                };
                let one_cell = lerp.and_then(|(l, rt)| {
                    let (p, q) = (at(l, rt, c), at(l, rt, end - 1));
                    let (a, b) = (self.grid.cell(p[0], p[1])?, self.grid.cell(q[0], q[1])?);
                    (!a.snapped && !b.snapped && a.shift == b.shift && (a.i, a.j) == (b.i, b.j)).then_some(a)
                });
                for cc in c..end {
                    let k = cc - rect.x0;
                    if row[k].is_nan() {
                        continue;
                    }
                    let n = match (lerp, &one_cell) {
                        (Some((l, rt)), Some(cell)) => {
                            let [x, y] = at(l, rt, cc);
                            Grid::blend(x + cell.shift - cell.i as f64, y - cell.j as f64, cell.v)
                        }
                        (Some((l, rt)), None) => {
                            let [x, y] = at(l, rt, cc);
                            self.grid.at(x, y)
                        }
                        (None, _) => {
                            let ll = self.lon_lat(cc as f64, r as f64).ok_or_else(|| fail(cc, r, "the CRS gives it no longitude and latitude"))?;
                            self.grid.undulation(ll[0], ll[1])
                        }
                    };
                    let n = n.ok_or_else(|| {
                        let ll = self.lon_lat(cc as f64, r as f64).unwrap_or([f64::NAN; 2]);
                        fail(cc, r, &format!("the geoid grid has no value at {:.6}°, {:.6}°", ll[0], ll[1]))
                    })?;
                    row[k] = (row[k] as f64 + n / self.z_scale) as f32;
                }
                c = end;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GTX grid of `rows` × `cols` nodes from (`lat0`, `lon0`) by `d` degrees, node (c, r) holding `f(c, r)`.
    fn gtx(lat0: f64, lon0: f64, d: f64, rows: usize, cols: usize, f: impl Fn(usize, usize) -> f32) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [lat0, lon0, d, d] {
            b.extend(v.to_be_bytes());
        }
        b.extend((rows as i32).to_be_bytes());
        b.extend((cols as i32).to_be_bytes());
        for r in 0..rows {
            for c in 0..cols {
                b.extend(f(c, r).to_be_bytes());
            }
        }
        b
    }

    #[test]
    fn bilinear_between_nodes_and_round_the_antimeridian() {
        // A global 1° grid (360 columns from −180°: the column after 179° is −180°'s) holding 10·c + 1000·r.
        let g = Grid::gtx(&gtx(-90.0, -180.0, 1.0, 181, 360, |c, r| (10 * c + 1000 * r) as f32), "g.gtx".into()).unwrap();
        assert!(g.wraps);
        // At a node, its value; between nodes, bilinear (exact for a bilinear function).
        assert_eq!(g.undulation(-180.0, -90.0), Some(0.0));
        assert_eq!(g.undulation(-178.0, -87.0), Some(20.0 + 3000.0));
        assert!((g.undulation(-177.25, -86.5).unwrap() - (27.5 + 3500.0)).abs() < 1e-9);
        // Longitudes in any turn of the globe.
        assert_eq!(g.undulation(182.0, -87.0), g.undulation(-178.0, -87.0));
        // Half-way between 179° (column 359) and 180° = −180° (column 0): the mean of 3590 and 0.
        let lat = 0.0;
        let base = 1000.0 * 90.0;
        assert!((g.undulation(179.5, lat).unwrap() - (base + 3590.0 / 2.0)).abs() < 1e-9);
        // The poles are the first and last rows; past them, nothing.
        assert_eq!(g.undulation(0.0, 90.0), Some(1800.0 + 180_000.0));
        assert_eq!(g.undulation(0.0, 90.5), None);
    }

    #[test]
    fn regional_grids_end_and_voids_stay_voids() {
        let g = Grid::gtx(&gtx(40.0, 10.0, 0.5, 3, 3, |c, r| if (c, r) == (2, 2) { -88.8888 } else { (c + r) as f32 }), "r.gtx".into()).unwrap();
        assert!(!g.wraps);
        assert_eq!(g.undulation(10.25, 40.25), Some(1.0));
        assert_eq!(g.undulation(9.9, 40.25), None);
        assert_eq!(g.undulation(11.1, 40.25), None);
        // Next to the void node, no value (PROJ also refuses).
        assert_eq!(g.undulation(10.75, 40.75), None);
        assert_eq!(g.undulation(10.25, 40.75), Some(2.0));
        // A grid given in longitudes 0–360° (nodes from 350°) read at −10°, as PROJ reads it.
        let g = Grid::gtx(&gtx(40.0, 350.0, 0.5, 3, 3, |c, r| (c + 10 * r) as f32), "e.gtx".into()).unwrap();
        assert_eq!(g.undulation(-9.75, 40.0), Some(0.5));
        assert_eq!(g.undulation(350.25, 40.0), Some(0.5));
        assert_eq!(g.undulation(-8.9, 40.0), None);
        // Truncated and malformed files are refused.
        let b = gtx(40.0, 10.0, 0.5, 3, 3, |_, _| 0.0);
        assert!(Grid::gtx(&b[..b.len() - 1], "t".into()).is_err());
        assert!(Grid::gtx(&b[..20], "t".into()).is_err());
        assert!(Grid::gtx(&gtx(40.0, 10.0, -0.5, 3, 3, |_, _| 0.0), "t".into()).is_err());
        // A header claiming the largest grid: refused by its size, without overflow.
        let mut huge = b[..40].to_vec();
        huge[32..40].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]);
        assert!(Grid::gtx(&huge, "h".into()).is_err());
    }
    fn georef(epsg: u32, model: super::super::georef::Model, geotransform: [f64; 6]) -> Georef {
        let units = if model == super::super::georef::Model::Geographic { "degree" } else { "metre" };
        Georef {
            epsg: Some(epsg),
            model,
            units: units.into(),
            unit_metres: 1.0,
            geotransform,
            raster_type: "area".into(),
            vertical: None,
            flipped: None,
            proj: None,
        }
    }

    #[test]
    fn every_window_gives_a_sample_the_same_bits_within_micrometres_of_the_exact_undulation() {
        use super::super::georef::Model;
        // A rough global grid: every cell's values differ, so N kinks at every grid line.
        let b = gtx(-90.0, -180.0, 0.25, 721, 1440, |c, r| ((c * 7919 + r * 104_729) % 1000) as f32 * 0.01);
        let grid = Arc::new(Grid::gtx(&b, "rough.gtx".into()).unwrap());
        let (w, h) = (500usize, 300usize);
        let cases = [
            // UTM 33 N, 30 m cells (a lattice cell every 33 samples, 0.25° grid cells crossed).
            ("utm", georef(32633, Model::Projected, [300_000.0, 30.0, 0.0, 5_209_000.0, 0.0, -30.0]), [30.0, 30.0]),
            // Geographic, across the antimeridian.
            ("antimeridian", georef(4326, Model::Geographic, [179.8, 0.001, 0.0, -16.0, 0.0, -0.001]), [107.0, 111.0]),
            // Polar stereographic over the north pole (samples within 1° of it are placed exactly).
            ("pole", georef(3413, Model::Projected, [-7_500.0, 30.0, 0.0, 4_500.0, 0.0, -30.0]), [30.0, 30.0]),
        ];
        for (name, g, cell) in cases {
            let t = ToEllipsoid::new(grid.clone(), &g, [w, h], cell, 1.0).unwrap();
            let mut whole = vec![0.0f32; w * h];
            t.apply(Rect::new(0, 0, w, h), &mut whole).unwrap();
            for rect in [
                Rect::new(0, 0, 257, 257),
                Rect::new(256, 0, 500, 257),
                Rect::new(31, 17, 97, 300),
                Rect::new(499, 299, 500, 300),
                Rect::new(100, 50, 101, 250),
            ] {
                let mut part = vec![0.0f32; rect.len()];
                t.apply(rect, &mut part).unwrap();
                for r in rect.y0..rect.y1 {
                    for c in rect.x0..rect.x1 {
                        let k = (r - rect.y0) * rect.width() + c - rect.x0;
                        assert_eq!(part[k].to_bits(), whole[r * w + c].to_bits(), "{name}: sample ({c}, {r}) in window {rect:?}");
                    }
                }
            }
            let mut worst = 0.0f64;
            for r in (0..h).step_by(7) {
                for c in (0..w).step_by(3) {
                    let [lon, lat] = t.lon_lat(c as f64, r as f64).unwrap();
                    let exact = grid.undulation(lon, lat).unwrap();
                    worst = worst.max((whole[r * w + c] as f64 - exact).abs());
                }
            }
            // f32's rounding of values up to 10 m is 0.5 µm; the lattice adds a few more.
            assert!(worst < 1e-5, "{name}: {worst} m from the exact undulation");
        }
    }
}
