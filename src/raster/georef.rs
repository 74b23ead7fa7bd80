//! Georeferencing facts of an input and the ground cell size they imply: from GeoTIFF tags (ModelPixelScale +
//! ModelTiepoint or ModelTransformation, and the GeoKey directory, GeoTIFF 1.1 §7) or from an SRTM `.hgt` file
//! name. Pure arithmetic: no reading, no meshing.
//!
//! Cell sizes in ground metres: projected linear units converted to metres (every EPSG linear unit, from the unit key
//! or else the CRS code); geographic degrees through the WGS84 ellipsoid's radii of curvature at the raster's centre
//! latitude (prime vertical east–west, meridian north–south); Web Mercator scaled by its scale factor 1/cos φ at the
//! centre. Heights: the vertical CRS or unit the file declares (feet to metres, depths negated), see [`Vertical`].

use serde::{Deserialize, Serialize};

use super::epsg_units;

/// WGS84 semi-major axis (m) and first eccentricity squared.
pub(crate) const WGS84_A: f64 = 6_378_137.0;
pub(crate) const WGS84_E2: f64 = 0.006_694_379_990_141_317;

/// What kind of coordinates the raster's geotransform is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    Projected,
    Geographic,
}

/// Georeferencing of a raster, as recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Georef {
    /// EPSG code of the CRS, where the file names one.
    pub epsg: Option<u32>,
    pub model: Model,
    /// Linear unit of a projected CRS (metre, foot, us-survey-foot), or "degree".
    pub units: String,
    /// Metres per unit (projected CRS).
    pub unit_metres: f64,
    /// GDAL-style affine transform of the corner of the first sample: x = g0 + col·g1 + row·g2, y = g3 + col·g4 +
    /// row·g5 (pixel-is-area convention; a pixel-is-point file is shifted by half a cell).
    pub geotransform: [f64; 6],
    /// "area" or "point", as the file says.
    pub raster_type: String,
    /// What the file says its heights are (GeoTIFF vertical GeoKeys), when it says anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical: Option<Vertical>,
    /// How the file stores a grid that is not north-up, which the reader flips ([`Georef::north_up`]); the
    /// geotransform above is then the flipped grid's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flipped: Option<String>,
    /// The PROJ string of a user-defined projected CRS (no EPSG code: the projection's method and parameters in the
    /// GeoKeys, as GDAL writes a CRS such as ESRI:102039) that terrafarm places ([`GeoTags::user_projection`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proj: Option<String>,
}

/// The vertical reference a GeoTIFF declares: VerticalCSTypeGeoKey (an EPSG vertical CRS) and VerticalUnitsGeoKey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vertical {
    /// EPSG code of the vertical CRS, unless the file's is user-defined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsg: Option<u32>,
    /// The CRS's EPSG name, for the vertical CRSs terrafarm converts (see [`epsg_units::VERTICAL`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The height unit (metre, foot, us-survey-foot, …), or the EPSG unit code terrafarm does not know.
    pub unit: String,
    /// Metres per unit; `None` for an unknown unit.
    pub unit_metres: Option<f64>,
    /// True for a depth CRS (its axis points down: values grow below the datum).
    pub depth: bool,
}

impl Vertical {
    /// Metres of height per sample unit (negative for depths), or why it is not known.
    pub fn z_scale(&self) -> Result<f64, String> {
        let m =
            self.unit_metres.ok_or_else(|| format!("the file's height unit ({}) is not one terrafarm knows; pass --z-scale (metres per unit)", self.unit))?;
        Ok(if self.depth { -m } else { m })
    }

    /// How the file's vertical reference reads in a derivation: `vertical CRS EPSG:6360 (NAVD88 height (ftUS))`.
    pub fn describe(&self) -> String {
        match (self.epsg, &self.name) {
            (Some(e), Some(n)) => format!("vertical CRS EPSG:{e} ({n})"),
            (Some(e), None) => format!("vertical CRS EPSG:{e}"),
            _ => format!("vertical unit {}", self.unit),
        }
    }
}

/// How a run maps samples to metres of height, `factor × sample + offset` (`--z-scale`, `--z-offset`), and how it was
/// found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZScale {
    pub factor: f32,
    pub offset: f32,
    pub derived_from: String,
}

/// The cell size a run uses and how it was found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellSize {
    /// Metres along columns (east) and rows (south).
    pub metres: [f64; 2],
    pub derived_from: String,
    /// Latitude (degrees) the scale was taken at, for geographic and Web Mercator rasters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_latitude: Option<f64>,
}

/// Radii of curvature of the WGS84 ellipsoid at latitude `phi` (radians): prime vertical N, meridian M.
pub fn radii(phi: f64) -> (f64, f64) {
    let s = 1.0 - WGS84_E2 * phi.sin().powi(2);
    (WGS84_A / s.sqrt(), WGS84_A * (1.0 - WGS84_E2) / (s * s.sqrt()))
}

/// Ground metres of a geographic cell of `dlon` × `dlat` degrees centred at latitude `lat` (degrees).
pub fn degrees_to_metres(dlon: f64, dlat: f64, lat: f64) -> [f64; 2] {
    let phi = lat.to_radians();
    let (n, m) = radii(phi);
    [n * phi.cos() * dlon.abs().to_radians(), m * dlat.abs().to_radians()]
}

impl Georef {
    /// A grid stored with rows south to north (a positive pixel height, as some conversions from netCDF or arrays
    /// write) or columns east to west (a negative pixel width) would mesh mirrored. The reader flips such a grid;
    /// this rewrites the transform to the flipped grid's (north-up) and says so in `flipped`. Returns the flips
    /// (columns, rows) for a `width` × `height` grid.
    pub fn north_up(&mut self, width: usize, height: usize) -> (bool, bool) {
        let g = &mut self.geotransform;
        let flip = (g[1] < 0.0, g[5] > 0.0);
        if flip.0 {
            g[0] += g[1] * width as f64;
            g[1] = -g[1];
        }
        if flip.1 {
            g[3] += g[5] * height as f64;
            g[5] = -g[5];
        }
        self.flipped = match flip {
            (false, false) => None,
            (true, false) => Some("columns east to west: read flipped to west to east".into()),
            (false, true) => Some("rows south to north (bottom-up): read flipped to north-up".into()),
            (true, true) => Some("columns east to west and rows south to north: read flipped to north-up".into()),
        };
        flip
    }

    /// Ground cell size of a `width × height` raster with this georeferencing.
    pub fn cell_size(&self, width: usize, height: usize) -> Result<CellSize, String> {
        let g = &self.geotransform;
        let (sx, sy) = (g[1].abs(), g[5].abs());
        if !(sx > 0.0 && sy > 0.0 && sx.is_finite() && sy.is_finite()) {
            return Err(format!("the file's pixel size {sx} × {sy} is not usable; pass --cell-size"));
        }
        let centre_y = g[3] + g[5] * height as f64 / 2.0 + g[4] * width as f64 / 2.0;
        match self.model {
            Model::Geographic => {
                if !(-90.0..=90.0).contains(&centre_y) {
                    return Err(format!("centre latitude {centre_y} is outside ±90°; pass --cell-size"));
                }
                Ok(CellSize {
                    metres: degrees_to_metres(sx, sy, centre_y),
                    derived_from: format!(
                        "geographic CRS{}: {sx}° × {sy}° through the WGS84 radii of curvature at the centre latitude",
                        self.epsg.map(|e| format!(" EPSG:{e}")).unwrap_or_default()
                    ),
                    at_latitude: Some(centre_y),
                })
            }
            Model::Projected if matches!(self.epsg, Some(3857) | Some(900913) | Some(3785)) => {
                let lat = (centre_y / WGS84_A).sinh().atan().to_degrees();
                let k = 1.0 / lat.to_radians().cos();
                Ok(CellSize {
                    metres: [sx / k, sy / k],
                    derived_from: format!(
                        "Web Mercator (EPSG:{}): {sx} × {sy} m divided by the scale factor {k:.6} at the centre latitude",
                        self.epsg.unwrap_or(3857)
                    ),
                    at_latitude: Some(lat),
                })
            }
            Model::Projected => Ok(CellSize {
                metres: [sx * self.unit_metres, sy * self.unit_metres],
                derived_from: format!("projected CRS{}: {sx} × {sy} {} per cell", self.epsg.map(|e| format!(" EPSG:{e}")).unwrap_or_default(), self.units),
                at_latitude: None,
            }),
        }
    }
}

impl Georef {
    /// Longitude and latitude (degrees, WGS84) of the raster's centre, where the CRS is one terrafarm can invert
    /// ([`Georef::lon_lat`]).
    pub fn centre_lon_lat(&self, width: usize, height: usize) -> Option<[f64; 2]> {
        let [x, y] = self.centre(width, height);
        self.lon_lat(x, y)
    }

    /// The CRS coordinates of the centre of a raster of `width` × `height` samples.
    pub fn centre(&self, width: usize, height: usize) -> [f64; 2] {
        self.at(width as f64 / 2.0, height as f64 / 2.0)
    }

    /// The CRS coordinates of a point of the grid, `col` columns and `row` rows from the first sample's outer corner
    /// (a sample's centre is at +0.5, +0.5).
    pub fn at(&self, col: f64, row: f64) -> [f64; 2] {
        let g = &self.geotransform;
        [g[0] + g[1] * col + g[2] * row, g[3] + g[4] * col + g[5] * row]
    }

    /// Longitude and latitude (degrees, WGS84) of a point given in the CRS, where the CRS is one terrafarm can
    /// invert ([`Georef::to_wgs84`]); `None` for any other CRS, and for a point the projection does not reach.
    pub fn lon_lat(&self, x: f64, y: f64) -> Option<[f64; 2]> {
        self.to_wgs84(x, y)?.lon_lat(x, y)
    }

    /// The map from this CRS to WGS84 longitudes and latitudes that holds at the point (`x`, `y`) of the CRS, where
    /// the CRS is one terrafarm can invert: geographic, Web Mercator, or one of the projected CRSs of [`projection`]
    /// (transverse Mercator, as UTM and most national and state grids; Lambert conic; Albers; Lambert azimuthal;
    /// polar and oblique stereographic; Mercator) on WGS 84 or a datum within 3 m of it (ETRS89, NAD83, GDA94/2020,
    /// SIRGAS, JGD, …, whose difference from WGS 84 is left out), or a user-defined one of those ([`Georef::proj`]),
    /// or one of those methods on a datum further from WGS 84 where PROJ would shift it by a Helmert or
    /// Molodensky-Badekas transformation there, or a concatenation of them ([`Shift`]: OSGB36, Amersfoort, CH1903,
    /// LUREF, DHDN, ED50, NAD27, NTF on the Paris meridian, MGI on Ferro's, …).
    /// `None` otherwise. The datum shift is chosen at (`x`, `y`): the map of a raster's points is chosen once, at its
    /// centre.
    pub fn to_wgs84(&self, x: f64, y: f64) -> Option<ToWgs84> {
        let unit = self.unit_metres;
        match (self.model, self.epsg) {
            (Model::Geographic, _) => Some(ToWgs84::Geographic),
            (Model::Projected, Some(3857 | 900913 | 3785)) => Some(ToWgs84::WebMercator(unit)),
            (Model::Projected, Some(e)) => match projection(e) {
                Some(p) => Some(ToWgs84::Projected(Box::new(p), unit)),
                None => {
                    let (s, shift) = shifted(e, x * unit, y * unit)?;
                    Some(ToWgs84::Projected(Box::new(Projection::shifted(s, &shift)?), unit))
                }
            },
            (Model::Projected, None) => Some(ToWgs84::Projected(Box::new(Projection::new(self.proj.as_deref()?)?), unit)),
        }
    }

    /// The datum shift terrafarm applies at the point (`x`, `y`) of the CRS, where the CRS's datum is one it shifts
    /// ([`Georef::to_wgs84`]).
    pub fn shift(&self, x: f64, y: f64) -> Option<Shift> {
        match (self.model, self.epsg) {
            // (The shifted CRSs and those of `projection` are apart: see `epsg_units::SHIFTED`.)
            (Model::Projected, Some(e)) => Some(shifted(e, x * self.unit_metres, y * self.unit_metres)?.1),
            _ => None,
        }
    }

    /// Why a raster of `width` × `height` samples in this CRS is not placed on the ellipsoid ([`Georef::to_wgs84`]
    /// finds no map at its centre), in words.
    pub fn unplaced(&self, width: usize, height: usize) -> String {
        let crs = self.epsg.map_or("a user-defined CRS".to_string(), |e| format!("EPSG:{e}"));
        let [x, y] = self.centre(width, height);
        let listed = |e: u32| u16::try_from(e).is_ok_and(|e| epsg_units::SHIFTED.binary_search_by_key(&e, |t| t.0).is_ok());
        match self.epsg.filter(|&e| self.model == Model::Projected && listed(e)) {
            Some(e) => match transformation(e, x * self.unit_metres, y * self.unit_metres) {
                Some((_, k)) => format!(
                    "{crs}: PROJ would shift its datum by EPSG:{} at the raster's centre, a transformation terrafarm does not apply (it applies Helmert and Molodensky-Badekas ones and concatenations of them)",
                    epsg_units::SHIFT_OPS[k].0
                ),
                None => format!("{crs}: no transformation of its datum to WGS 84 covers the raster's centre (PROJ would apply none)"),
            },
            None => format!("{crs} is not a CRS terrafarm places on the ellipsoid (geographic, Web Mercator, or a projected CRS of the methods it inverts on WGS 84, a datum within 3 m of it, or a datum PROJ shifts to WGS 84 by Helmert or Molodensky-Badekas transformations)"),
        }
    }
}

/// A CRS's map to WGS84 longitudes and latitudes ([`Georef::to_wgs84`]).
pub enum ToWgs84 {
    Geographic,
    /// Web Mercator, in units of this many metres.
    WebMercator(f64),
    /// A projection (and a datum shift, if any), in units of this many metres.
    Projected(Box<Projection>, f64),
}

impl ToWgs84 {
    /// Longitude and latitude (degrees, WGS84) of a point given in the CRS; `None` where the projection does not
    /// reach.
    pub fn lon_lat(&self, x: f64, y: f64) -> Option<[f64; 2]> {
        let ll = match self {
            ToWgs84::Geographic => [x, y],
            ToWgs84::WebMercator(unit) => {
                let (x, y) = (x * unit, y * unit);
                [(x / WGS84_A).to_degrees(), (y / WGS84_A).sinh().atan().to_degrees()]
            }
            ToWgs84::Projected(p, unit) => p.inverse(x * unit, y * unit)?,
        };
        (ll[0].is_finite() && ll[1].is_finite() && (-90.0..=90.0).contains(&ll[1])).then_some(ll)
    }
}

/// A projected CRS terrafarm can invert: its projection, as proj4rs reads it, the same ellipsoid's geographic
/// coordinates, and a datum shift to WGS 84 where it has one ([`Projection::shifted`]).
pub struct Projection {
    proj: proj4rs::Proj,
    geographic: proj4rs::Proj,
    shift: Option<DatumShift>,
}

/// A datum's transformation to WGS 84: a longitude rotation, then Helmert or Molodensky-Badekas steps from the
/// datum's earth-centred coordinates to WGS 84's.
struct DatumShift {
    /// The datum's ellipsoid: semi-major axis (metres) and first eccentricity squared.
    a: f64,
    e2: f64,
    /// Added to the longitude (radians, from Greenwich) first ([`Shift::rotation`]).
    rotation: f64,
    steps: Vec<HelmertStep>,
}

/// One Helmert or Molodensky-Badekas step in earth-centred coordinates.
struct HelmertStep {
    /// Translations (m), rotations (radians, position vector), scale (1 + difference), pivot (m).
    t: [f64; 3],
    r: [f64; 3],
    scale: f64,
    pivot: [f64; 3],
}

impl HelmertStep {
    /// From [`Shift::steps`]' parameters.
    fn new(p: &[f64; 10]) -> HelmertStep {
        let arcsec = std::f64::consts::PI / (180.0 * 3600.0);
        HelmertStep { t: [p[0], p[1], p[2]], r: [p[3] * arcsec, p[4] * arcsec, p[5] * arcsec], scale: 1.0 + p[6] * 1e-6, pivot: [p[7], p[8], p[9]] }
    }

    /// X' = T + (1 + s)·R·(X − P) + P with the rotations linearised (PROJ's `helmert` and `molobadekas` without
    /// `+exact`).
    fn apply(&self, x: [f64; 3]) -> [f64; 3] {
        let d = [x[0] - self.pivot[0], x[1] - self.pivot[1], x[2] - self.pivot[2]];
        let [rx, ry, rz] = self.r;
        let rotated = [d[0] - rz * d[1] + ry * d[2], rz * d[0] + d[1] - rx * d[2], -ry * d[0] + rx * d[1] + d[2]];
        std::array::from_fn(|k| self.t[k] + self.scale * rotated[k] + self.pivot[k])
    }
}

impl DatumShift {
    /// WGS 84 longitude and latitude (degrees) of a longitude (from Greenwich) and latitude (radians) at height 0 on
    /// the datum's ellipsoid, as PROJ's pipeline takes it: rotated, to earth-centred coordinates, through each step
    /// (PROJ composes consecutive steps there: its pipeline drops the return to each intermediate ellipsoid), and back
    /// onto WGS 84.
    fn apply(&self, lon: f64, lat: f64) -> [f64; 2] {
        let lon = lon + self.rotation;
        let n = self.a / (1.0 - self.e2 * lat.sin().powi(2)).sqrt();
        let x = [n * lat.cos() * lon.cos(), n * lat.cos() * lon.sin(), n * (1.0 - self.e2) * lat.sin()];
        let y = self.steps.iter().fold(x, |x, step| step.apply(x));
        let [lon, lat, _] = geodetic(y);
        [lon, lat]
    }
}

impl Projection {
    /// The projection a PROJ string describes (its ellipsoid as `+ellps=` or `+a=` and `+rf=` or `+b=`; no datum
    /// shift: longitudes and latitudes on the same ellipsoid).
    pub fn new(s: &str) -> Option<Projection> {
        let proj = proj4rs::Proj::from_proj_string(s).ok()?;
        let geographic = proj4rs::Proj::from_proj_string(&format!("+proj=longlat {}", Self::ellipsoid(s)?)).ok()?;
        Some(Projection { proj, geographic, shift: None })
    }

    /// The ellipsoid's terms of a PROJ string.
    fn ellipsoid(s: &str) -> Option<String> {
        let terms: Vec<&str> =
            s.split_whitespace().filter(|t| t.starts_with("+ellps=") || t.starts_with("+a=") || t.starts_with("+rf=") || t.starts_with("+b=")).collect();
        (!terms.is_empty()).then(|| terms.join(" "))
    }

    /// The projection a PROJ string (its ellipsoid as `+a=` and `+rf=` or `+b=`, its prime meridian as `+pm=`)
    /// describes, inverted to WGS 84 through a transformation of its datum ([`Shift`]), as PROJ applies it: the point
    /// at height 0 on its ellipsoid to earth-centred coordinates, shifted, and back to WGS 84's longitude and latitude.
    pub fn shifted(s: &str, shift: &Shift) -> Option<Projection> {
        let term = |key: &str| s.split_whitespace().find_map(|t| t.strip_prefix(key)?.parse::<f64>().ok());
        let a = term("+a=")?;
        let e2 = match (term("+rf="), term("+b=")) {
            (Some(rf), _) => (2.0 - 1.0 / rf) / rf,
            (None, Some(b)) => 1.0 - (b / a).powi(2),
            (None, None) => return None,
        };
        let shift = DatumShift { a, e2, rotation: shift.rotation.to_radians(), steps: shift.steps.iter().map(HelmertStep::new).collect() };
        Some(Projection { shift: Some(shift), ..Projection::new(s)? })
    }

    /// The box in this projection's coordinates (metres: min easting, min northing, max easting, max northing) that
    /// holds an area of longitudes and latitudes on its own ellipsoid ([south, north, west, east], degrees, west ≤
    /// east), as PROJ draws an area of use in a CRS: 21 points a side projected, those the projection reaches.
    /// `None` if it reaches none.
    pub fn projected_box(&self, area: [f64; 4]) -> Option<[f64; 4]> {
        let [s, n, w, e] = area;
        let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for j in 0..=20 {
            let (lon, lat) = (w + j as f64 * (e - w) / 20.0, s + j as f64 * (n - s) / 20.0);
            for (lon, lat) in [(lon, s), (lon, n), (w, lat), (e, lat)] {
                let mut q = (lon.to_radians(), lat.to_radians(), 0.0);
                if proj4rs::transform::transform(&self.geographic, &self.proj, &mut q).is_ok() && q.0.is_finite() && q.1.is_finite() {
                    b = [b[0].min(q.0), b[1].min(q.1), b[2].max(q.0), b[3].max(q.1)];
                }
            }
        }
        (b[0] <= b[2]).then_some(b)
    }

    /// Easting and northing (metres) → longitude and latitude (degrees); `None` where the projection does not
    /// reach.
    pub fn inverse(&self, easting: f64, northing: f64) -> Option<[f64; 2]> {
        let mut p = (easting, northing, 0.0);
        proj4rs::transform::transform(&self.proj, &self.geographic, &mut p).ok()?;
        match &self.shift {
            Some(shift) => Some(shift.apply(p.0, p.1)),
            None => Some([p.0.to_degrees(), p.1.to_degrees()]),
        }
    }
}

/// The projection of an EPSG projected CRS on WGS 84 or a datum within 3 m of it ([`epsg_units::PROJECTIONS`],
/// generated from PROJ's database with the PROJ string of each; Web Mercator is inverted in [`Georef::to_wgs84`]).
pub fn projection(code: u32) -> Option<Projection> {
    let c = u16::try_from(code).ok()?;
    let i = epsg_units::PROJECTIONS.binary_search_by_key(&c, |&(code, _)| code).ok()?;
    Projection::new(epsg_units::PROJ_STRINGS[usize::from(epsg_units::PROJECTIONS[i].1)])
}

/// A transformation to WGS 84 that terrafarm applies to a projected CRS's datum ([`epsg_units::SHIFT_OPS`]): a
/// Helmert or Molodensky-Badekas one, or a concatenated operation of such steps after a longitude rotation or none
/// (from a prime meridian such as Paris, Ferro or Oslo to Greenwich, which is the CRS's PROJ string's `+pm`; or
/// Tokyo 1892 to Korean 1985's 10.405″).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Shift {
    /// EPSG code of the transformation.
    pub epsg: u16,
    /// Its accuracy (metres), as EPSG states it.
    pub accuracy: f64,
    /// A longitude rotation (degrees) beyond the one from the CRS's prime meridian to Greenwich, applied first: 0
    /// for nearly all.
    pub rotation: f64,
    /// Its Helmert or Molodensky-Badekas steps, in order: translations (metres), rotations (arc-seconds, position
    /// vector convention), scale difference (parts per million), and a Molodensky-Badekas step's pivot (metres; 0 for
    /// a Helmert one).
    pub steps: &'static [[f64; 10]],
}

impl Shift {
    /// What kind of transformation it is, in words: "Helmert", "Molodensky-Badekas", or its steps joined by " + ".
    pub fn kind(&self) -> String {
        let step = |p: &[f64; 10]| if p[7..].iter().any(|&v| v != 0.0) { "Molodensky-Badekas" } else { "Helmert" };
        let rotation = (self.rotation != 0.0).then_some("longitude rotation");
        rotation.into_iter().chain(self.steps.iter().map(step)).collect::<Vec<_>>().join(" + ")
    }
}

/// The PROJ string of an EPSG projected CRS of [`epsg_units::SHIFTED`] and the transformation to WGS 84 that PROJ
/// (9.x, `proj_trans` on the operations `proj_create_crs_to_crs` lists) applies at the point (`easting`,
/// `northing`, metres) where no grid is installed. Each candidate's area of use is drawn in the CRS's own
/// coordinates as PROJ draws it (the box holding 21 points a side of its longitude–latitude box, projected); among
/// the candidates whose box holds the point, in PROJ's order, the first is taken, then replaced by one of better
/// accuracy, or of the same accuracy in a box strictly inside, unless that one is offshore. Where no box holds the
/// point, PROJ's ballpark (no shift) if it has one, else its first candidate. `None` for the ballpark and for any
/// other CRS.
pub fn transformation(code: u32, easting: f64, northing: f64) -> Option<(&'static str, usize)> {
    let c = u16::try_from(code).ok()?;
    let i = epsg_units::SHIFTED.binary_search_by_key(&c, |t| t.0).ok()?;
    let (_, string, first, count, ballpark) = epsg_units::SHIFTED[i];
    let s = epsg_units::PROJ_STRINGS[usize::from(string)];
    let p = Projection::new(s)?;
    let list = &epsg_units::SHIFT_LISTS[usize::from(first)..usize::from(first) + usize::from(count)];
    let boxes: Vec<Option<[f64; 4]>> = list.iter().map(|&k| p.projected_box(epsg_units::SHIFT_OPS[usize::from(k)].2)).collect();
    let holds = |b: &[f64; 4]| (b[0]..=b[2]).contains(&easting) && (b[1]..=b[3]).contains(&northing);
    let inside = |a: &[f64; 4], b: &[f64; 4]| a[0] > b[0] && a[1] > b[1] && a[2] < b[2] && a[3] < b[3];
    let mut best: Option<usize> = None;
    for (j, b) in boxes.iter().enumerate() {
        let Some(b) = b.as_ref().filter(|b| holds(b)) else { continue };
        let (_, accuracy, _, offshore, _) = epsg_units::SHIFT_OPS[usize::from(list[j])];
        let better = |k: usize| {
            let kept = epsg_units::SHIFT_OPS[usize::from(list[k])].1;
            accuracy >= 0.0 && (accuracy < kept || (accuracy == kept && boxes[k].is_some_and(|bk| inside(b, &bk)))) && !offshore
        };
        if best.is_none_or(better) {
            best = Some(j);
        }
    }
    let j = match best {
        Some(j) => j,
        None if ballpark => return None,
        None => boxes.iter().position(Option::is_some)?,
    };
    Some((s, usize::from(list[j])))
}

/// The PROJ string of an EPSG projected CRS of [`epsg_units::SHIFTED`] and the Helmert or Molodensky-Badekas
/// transformation to WGS 84 that PROJ applies at the point (`easting`, `northing`, metres) where no grid is installed
/// ([`transformation`]); `None` where PROJ applies another kind of transformation or none.
pub fn shifted(code: u32, easting: f64, northing: f64) -> Option<(&'static str, Shift)> {
    let (s, k) = transformation(code, easting, northing)?;
    let (epsg, accuracy, _, _, chain) = epsg_units::SHIFT_OPS[k];
    let (rotation, steps) = chain?;
    Some((s, Shift { epsg, accuracy, rotation, steps }))
}

/// Earth-centred, earth-fixed coordinates (metres) of a WGS84 longitude, latitude (degrees) and ellipsoidal height.
pub fn ecef(lon: f64, lat: f64, h: f64) -> [f64; 3] {
    let (l, p) = (lon.to_radians(), lat.to_radians());
    let (n, _) = radii(p);
    [(n + h) * p.cos() * l.cos(), (n + h) * p.cos() * l.sin(), (n * (1.0 - WGS84_E2) + h) * p.sin()]
}

/// WGS84 longitude, latitude (degrees) and ellipsoidal height of an earth-centred position (iterated to
/// convergence; sub-millimetre for points near the surface). The height is the point's distance along the normal,
/// r·cos φ + z·sin φ − a·√(1 − e²·sin² φ), which stays well conditioned at the poles (r / cos φ − N does not: a few
/// micrometres of noise 2 m from a pole).
pub fn geodetic(p: [f64; 3]) -> [f64; 3] {
    let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
    let lon = p[1].atan2(p[0]);
    let mut lat = p[2].atan2(r * (1.0 - WGS84_E2));
    let mut h = 0.0;
    for _ in 0..8 {
        let (n, _) = radii(lat);
        let s = lat.sin();
        h = r * lat.cos() + p[2] * s - WGS84_A * (1.0 - WGS84_E2 * s * s).sqrt();
        lat = p[2].atan2(r * (1.0 - WGS84_E2 * n / (n + h)));
    }
    [lon.to_degrees(), lat.to_degrees(), h]
}

/// Name and metres per unit of an EPSG linear unit code (GeoTIFF ProjLinearUnitsGeoKey, VerticalUnitsGeoKey).
fn linear_unit(code: u16) -> Option<(&'static str, f64)> {
    epsg_units::UNITS.iter().find(|u| u.0 == code).map(|u| (u.1, u.2))
}

/// The linear unit of an EPSG projected CRS: metre unless [`epsg_units::PROJECTED`] lists it.
fn projected_unit(code: u16) -> u16 {
    epsg_units::PROJECTED.iter().find(|r| (r.0..=r.1).contains(&code)).map_or(9001, |r| r.2)
}

/// The GeoTIFF tags a reader found, raw.
#[derive(Clone, Debug, Default)]
pub struct GeoTags {
    pub pixel_scale: Option<Vec<f64>>,
    pub tiepoint: Option<Vec<f64>>,
    pub transformation: Option<Vec<f64>>,
    pub key_directory: Option<Vec<u16>>,
    pub double_params: Option<Vec<f64>>,
}

/// GeoKey ids used here (GeoTIFF 1.1, §7.5).
const GT_MODEL_TYPE: u16 = 1024;
const GT_RASTER_TYPE: u16 = 1025;
const GEOGRAPHIC_TYPE: u16 = 2048;
const PROJECTED_CS_TYPE: u16 = 3072;
const PROJ_LINEAR_UNITS: u16 = 3076;
const GEOG_GEODETIC_DATUM: u16 = 2050;
const GEOG_PRIME_MERIDIAN: u16 = 2051;
const GEOG_ANGULAR_UNITS: u16 = 2054;
const GEOG_ELLIPSOID: u16 = 2056;
const GEOG_SEMI_MAJOR_AXIS: u16 = 2057;
const GEOG_INV_FLATTENING: u16 = 2059;
const PROJ_COORD_TRANS: u16 = 3075;
const PROJ_STD_PARALLEL1: u16 = 3078;
const PROJ_STD_PARALLEL2: u16 = 3079;
const PROJ_NAT_ORIGIN_LONG: u16 = 3080;
const PROJ_NAT_ORIGIN_LAT: u16 = 3081;
const PROJ_FALSE_EASTING: u16 = 3082;
const PROJ_FALSE_NORTHING: u16 = 3083;
const PROJ_FALSE_ORIGIN_LONG: u16 = 3084;
const PROJ_FALSE_ORIGIN_LAT: u16 = 3085;
const PROJ_FALSE_ORIGIN_EASTING: u16 = 3086;
const PROJ_FALSE_ORIGIN_NORTHING: u16 = 3087;
const PROJ_CENTER_LONG: u16 = 3088;
const PROJ_CENTER_LAT: u16 = 3089;
const PROJ_SCALE_AT_NAT_ORIGIN: u16 = 3092;
const PROJ_STRAIGHT_VERT_POLE_LONG: u16 = 3095;
const VERTICAL_CS_TYPE: u16 = 4096;
const VERTICAL_UNITS: u16 = 4099;

impl GeoTags {
    /// The georeferencing these tags describe; `Ok(None)` when the file has none; an error for what terrafarm
    /// does not support (rotated or sheared transforms, unknown linear units, geocentric models).
    pub fn georef(&self) -> Result<Option<Georef>, String> {
        let raster_type = if self.key(GT_RASTER_TYPE) == Some(2) { "point" } else { "area" };
        let mut gt = if let Some(m) = &self.transformation {
            if m.len() < 16 {
                return Err("ModelTransformationTag has fewer than 16 values".into());
            }
            if m[1] != 0.0 || m[4] != 0.0 {
                return Err(
                    "the raster is rotated or sheared (ModelTransformationTag has off-diagonal terms); warp it to a north-up grid first (gdalwarp)".into()
                );
            }
            [m[3], m[0], m[1], m[7], m[4], m[5]]
        } else if let (Some(s), Some(t)) = (&self.pixel_scale, &self.tiepoint) {
            if s.len() < 2 || t.len() < 6 {
                return Err("ModelPixelScaleTag or ModelTiepointTag is too short".into());
            }
            if t.len() > 6 {
                return Err("the file has several tie points (a warped or ground-control-point raster); warp it to a regular grid first (gdalwarp)".into());
            }
            [t[3] - t[0] * s[0], s[0], 0.0, t[4] + t[1] * s[1], 0.0, -s[1]]
        } else {
            return Ok(None);
        };
        if raster_type == "point" {
            // The tie point is a sample's centre: the corner is half a cell up and left.
            gt[0] -= gt[1] / 2.0;
            gt[3] -= gt[5] / 2.0;
        }
        let model = match self.key(GT_MODEL_TYPE) {
            Some(1) => Model::Projected,
            Some(2) => Model::Geographic,
            Some(3) => return Err("geocentric (ECEF) rasters are not supported".into()),
            // No model type: a projected CRS code implies projected, a geographic one geographic.
            _ if self.key(PROJECTED_CS_TYPE).is_some() => Model::Projected,
            _ if self.key(GEOGRAPHIC_TYPE).is_some() => Model::Geographic,
            _ => return Ok(None),
        };
        let (epsg, units, unit_metres) = match model {
            Model::Geographic => (self.key(GEOGRAPHIC_TYPE).filter(|&c| c != 32767).map(u32::from), "degree".to_string(), 1.0),
            Model::Projected => {
                let epsg = self.key(PROJECTED_CS_TYPE).filter(|&c| c != 32767).map(u32::from);
                // ProjLinearUnitsGeoKey, else the unit of the CRS code (GDAL writes no unit key for a compound CRS such
                // as EPSG:2227+6360, whose horizontal part is in US survey feet), else metres.
                let code = self.key(PROJ_LINEAR_UNITS).or(epsg.map(|e| projected_unit(e as u16))).unwrap_or(9001);
                let (name, m) = linear_unit(code).ok_or_else(|| format!("projected linear unit EPSG:{code} is not one terrafarm knows; pass --cell-size"))?;
                (epsg, name.to_string(), m)
            }
        };
        let proj = if model == Model::Projected && epsg.is_none() { self.user_projection(unit_metres) } else { None };
        Ok(Some(Georef { epsg, model, units, unit_metres, geotransform: gt, raster_type: raster_type.into(), vertical: self.vertical(), flipped: None, proj }))
    }

    /// The PROJ string of a user-defined projected CRS (ProjectedCSTypeGeoKey 32767), from ProjCoordTransGeoKey and
    /// the projection's parameters, as GDAL writes them (GeoTIFF 1.1 §7.5.6; libgeotiff's keys per method):
    /// transverse Mercator, Mercator, Lambert conic (one and two standard parallels), Lambert azimuthal equal-area,
    /// Albers, polar and oblique stereographic. Only on a base terrafarm places: an EPSG geographic CRS of
    /// [`epsg_units::GEOGRAPHIC`], or a user-defined one on a datum of [`epsg_units::DATUMS`] or a user-defined
    /// datum, on the WGS 84 or GRS 1980 ellipsoid (by code, or by axis and flattening), in degrees, from Greenwich.
    /// `None` for anything else (the tileset then has no transform).
    pub fn user_projection(&self, unit_metres: f64) -> Option<String> {
        let near = match self.key(GEOGRAPHIC_TYPE) {
            // A user-defined datum on the WGS 84 or GRS 1980 ellipsoid (checked below) is taken as WGS 84, as GDAL's
            // ballpark transformation takes it: GeoKeys cannot say how it differs.
            Some(32767) | None => {
                self.key(GEOG_GEODETIC_DATUM).is_none_or(|d| d == 32767 || epsg_units::DATUMS.binary_search(&d).is_ok())
                    && self.key(GEOG_PRIME_MERIDIAN).is_none_or(|p| p == 8901)
            }
            Some(g) => epsg_units::GEOGRAPHIC.binary_search(&g).is_ok(),
        };
        // The ellipsoid: WGS 84 or GRS 1980 by code, or by its axis and flattening; an EPSG geographic CRS of the
        // table is on one of the two (0.1 mm apart), which GDAL also writes as axis and flattening.
        let by_axes = match (self.double(GEOG_SEMI_MAJOR_AXIS), self.double(GEOG_INV_FLATTENING)) {
            (Some(6_378_137.0), Some(f)) if (f - 298.257_223_563).abs() < 1e-6 => Some("WGS84"),
            (Some(6_378_137.0), Some(f)) if (f - 298.257_222_101).abs() < 1e-6 => Some("GRS80"),
            _ => None,
        };
        let ellps = match (self.key(GEOGRAPHIC_TYPE), self.key(GEOG_ELLIPSOID)) {
            (_, Some(7030)) => "WGS84",
            (_, Some(7019)) => "GRS80",
            (_, Some(e)) if e != 32767 => return None,
            (Some(g), _) if g != 32767 => by_axes.unwrap_or("WGS84"),
            _ => by_axes?,
        };
        if !near || self.key(GEOG_ANGULAR_UNITS).is_some_and(|u| u != 9102) {
            return None;
        }
        let d = |id: u16| self.double(id);
        let (fe, fn_) = (d(PROJ_FALSE_EASTING).unwrap_or(0.0) * unit_metres, d(PROJ_FALSE_NORTHING).unwrap_or(0.0) * unit_metres);
        let lat0 = d(PROJ_NAT_ORIGIN_LAT).or(d(PROJ_CENTER_LAT)).or(d(PROJ_FALSE_ORIGIN_LAT)).unwrap_or(0.0);
        let lon0 = d(PROJ_NAT_ORIGIN_LONG).or(d(PROJ_CENTER_LONG)).or(d(PROJ_FALSE_ORIGIN_LONG)).or(d(PROJ_STRAIGHT_VERT_POLE_LONG)).unwrap_or(0.0);
        let k0 = d(PROJ_SCALE_AT_NAT_ORIGIN).unwrap_or(1.0);
        let s = match self.key(PROJ_COORD_TRANS)? {
            1 => format!("+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k_0={k0} +x_0={fe} +y_0={fn_}"),
            7 => match d(PROJ_STD_PARALLEL1) {
                Some(ts) => format!("+proj=merc +lat_ts={ts} +lon_0={lon0} +x_0={fe} +y_0={fn_}"),
                None => format!("+proj=merc +lon_0={lon0} +k_0={k0} +x_0={fe} +y_0={fn_}"),
            },
            8 => {
                let (lat0, lon0) = (d(PROJ_FALSE_ORIGIN_LAT).unwrap_or(lat0), d(PROJ_FALSE_ORIGIN_LONG).unwrap_or(lon0));
                let x0 = d(PROJ_FALSE_ORIGIN_EASTING).map_or(fe, |v| v * unit_metres);
                let y0 = d(PROJ_FALSE_ORIGIN_NORTHING).map_or(fn_, |v| v * unit_metres);
                let (p1, p2) = (d(PROJ_STD_PARALLEL1)?, d(PROJ_STD_PARALLEL2)?);
                format!("+proj=lcc +lat_0={lat0} +lon_0={lon0} +lat_1={p1} +lat_2={p2} +x_0={x0} +y_0={y0}")
            }
            9 => format!("+proj=lcc +lat_1={lat0} +lat_0={lat0} +lon_0={lon0} +k_0={k0} +x_0={fe} +y_0={fn_}"),
            10 => {
                let (lat0, lon0) = (d(PROJ_CENTER_LAT).unwrap_or(lat0), d(PROJ_CENTER_LONG).unwrap_or(lon0));
                format!("+proj=laea +lat_0={lat0} +lon_0={lon0} +x_0={fe} +y_0={fn_}")
            }
            11 => {
                let (p1, p2) = (d(PROJ_STD_PARALLEL1)?, d(PROJ_STD_PARALLEL2)?);
                format!("+proj=aea +lat_0={lat0} +lon_0={lon0} +lat_1={p1} +lat_2={p2} +x_0={fe} +y_0={fn_}")
            }
            // Polar stereographic: a latitude of origin of ±90° is variant A (scale at the pole); any other is the
            // standard parallel of variant B, as GDAL writes and reads it.
            15 => {
                let lon0 = d(PROJ_STRAIGHT_VERT_POLE_LONG).unwrap_or(lon0);
                let pole = if lat0 < 0.0 { -90 } else { 90 };
                if lat0.abs() == 90.0 {
                    format!("+proj=stere +lat_0={pole} +lon_0={lon0} +k_0={k0} +x_0={fe} +y_0={fn_}")
                } else {
                    format!("+proj=stere +lat_0={pole} +lat_ts={lat0} +lon_0={lon0} +x_0={fe} +y_0={fn_}")
                }
            }
            16 => format!("+proj=sterea +lat_0={lat0} +lon_0={lon0} +k_0={k0} +x_0={fe} +y_0={fn_}"),
            _ => return None,
        };
        let s = format!("{s} +ellps={ellps}");
        Projection::new(&s).map(|_| s)
    }

    /// A GeoKey's DOUBLE value (stored in GeoDoubleParamsTag).
    fn double(&self, id: u16) -> Option<f64> {
        let d = self.key_directory.as_deref().filter(|d| d.len() >= 4)?;
        let e = d[4..].chunks_exact(4).take(d[3] as usize).find(|e| e[0] == id && e[1] == 34736)?;
        self.double_params.as_ref()?.get(usize::from(e[3])).copied().filter(|v| v.is_finite())
    }

    /// The band scale and offset of a file with a vertical reference, from ModelPixelScale's ScaleZ and the tie point's
    /// raster and model Z (GeoTIFF: Z = (K − K₀) × ScaleZ + Z₀). GDAL writes a band's scale and offset there, and not in
    /// its metadata tag, when the CRS has a vertical part; like GDAL, they are read only then, and a ScaleZ of 0 (what
    /// most writers put) says nothing.
    pub fn z_scale(&self) -> Option<(f64, f64)> {
        self.vertical()?;
        let (s, t) = (self.pixel_scale.as_ref()?, self.tiepoint.as_ref()?);
        let (sz, k0, z0) = (*s.get(2)?, *t.get(2)?, *t.get(5)?);
        (sz != 0.0 && sz.is_finite() && k0.is_finite() && z0.is_finite()).then_some((sz, z0 - k0 * sz))
    }

    /// The vertical reference of the GeoKeys, if any: the unit from VerticalUnitsGeoKey, else from the vertical CRS
    /// (metres for a CRS not in [`epsg_units::VERTICAL`]); depth from the CRS.
    fn vertical(&self) -> Option<Vertical> {
        let crs = self.key(VERTICAL_CS_TYPE).filter(|&c| c != 0 && c != 32767);
        let unit = self.key(VERTICAL_UNITS).filter(|&c| c != 0 && c != 32767);
        if crs.is_none() && unit.is_none() {
            return None;
        }
        let known = crs.and_then(|c| epsg_units::VERTICAL.iter().find(|v| v.0 == c));
        let code = unit.or(known.map(|v| v.2)).unwrap_or(9001);
        let (unit, unit_metres) = match linear_unit(code) {
            Some((n, m)) => (n.to_string(), Some(m)),
            None => (format!("EPSG unit {code}"), None),
        };
        Some(Vertical { epsg: crs.map(u32::from), name: known.map(|v| v.1.to_string()), unit, unit_metres, depth: known.is_some_and(|v| v.3) })
    }

    /// The inline SHORT value of GeoKey `id` in the GeoKey directory (keys stored in other tags have none here).
    fn key(&self, id: u16) -> Option<u16> {
        let d = self.key_directory.as_deref().filter(|d| d.len() >= 4)?;
        d[4..].chunks_exact(4).take(d[3] as usize).find(|e| e[0] == id && e[1] == 0).map(|e| e[3])
    }
}

/// Georeferencing of an SRTM `.hgt` tile from its name (`N35E138.hgt`: the south-west corner) and side length
/// (1201 samples: 3 arc-seconds; 3601: 1 arc-second). Samples are points on whole arc-seconds.
pub fn hgt_georef(file_name: &str, side: usize) -> Option<Georef> {
    let stem = file_name.split('.').next()?.to_ascii_uppercase();
    let b = stem.as_bytes();
    if b.len() != 7 || !matches!(b[0], b'N' | b'S') || !matches!(b[3], b'E' | b'W') {
        return None;
    }
    let lat: f64 = stem[1..3].parse().ok()?;
    let lon: f64 = stem[4..7].parse().ok()?;
    let lat = if b[0] == b'S' { -lat } else { lat };
    let lon = if b[3] == b'W' { -lon } else { lon };
    let step = 1.0 / (side - 1) as f64;
    // Pixel-is-point: sample (0, 0) is at (lon, lat + 1); the corner of its cell is half a step beyond.
    Some(Georef {
        epsg: Some(4326),
        model: Model::Geographic,
        units: "degree".into(),
        unit_metres: 1.0,
        geotransform: [lon - step / 2.0, step, 0.0, lat + 1.0 + step / 2.0, 0.0, -step],
        raster_type: "point".into(),
        vertical: None,
        flipped: None,
        proj: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_arcsecond_at_the_equator_and_at_60_degrees() {
        // Equator: N = a, M = a(1 − e²); 1″ east ≈ 30.92 m, north ≈ 30.72 m.
        let [e, n] = degrees_to_metres(1.0 / 3600.0, 1.0 / 3600.0, 0.0);
        assert!((e - 30.922).abs() < 1e-3 && (n - 30.715).abs() < 1e-3, "{e} {n}");
        let [e, _] = degrees_to_metres(1.0 / 3600.0, 1.0 / 3600.0, 60.0);
        assert!((e - 15.5).abs() < 0.05, "{e}");
    }

    #[test]
    fn projections_on_datums_near_wgs84() {
        // WGS 84, ETRS89, NAD83, NAD83(2011) and GDA2020 UTM zones, Lambert-93, EU-DEM's LAEA, the polar
        // stereographic grids of ArcticDEM and REMA, CONUS Albers, a NAD83 state plane in US feet; not ED50, NAD27,
        // VN-2000, GGRS87, the British, Swiss or Dutch grids (datums 100 m and more from WGS 84: shifted instead, see
        // below), Web Mercator (inverted in to_wgs84) or geographic codes.
        for code in [32633, 32760, 25832, 26910, 6339, 7856, 2154, 3035, 3413, 3031, 5070, 2227] {
            assert!(projection(code).is_some(), "EPSG:{code}");
        }
        for other in [23032, 26710, 3405, 2100, 27700, 2056, 28992, 3857, 4326, 70000] {
            assert!(projection(other).is_none(), "EPSG:{other}");
        }
        assert!(epsg_units::PROJECTIONS.windows(2).all(|w| w[0].0 < w[1].0), "sorted, for the binary search");
        // Every generated string parses.
        for (i, s) in epsg_units::PROJ_STRINGS.iter().enumerate() {
            assert!(proj4rs::Proj::from_proj_string(s).is_ok(), "{i}: {s}");
        }
    }

    /// Datums far from WGS 84 are shifted by the transformation PROJ picks at the point where no grid is installed
    /// (the integration test `tests/georef.rs` checks every CRS against GDAL): the British grid by EPSG:1314 (2 m);
    /// RD New by EPSG:4833, the first of four equal ones (the same area and accuracy) in PROJ's order (the greater
    /// name first); Swiss LV95 and Belgian Lambert 72 by theirs; Luxembourg's grid by a Molodensky-Badekas
    /// transformation (EPSG:5484). Not a point no transformation's area holds, where PROJ's list ends with a ballpark
    /// (no shift).
    #[test]
    fn datum_shifts_as_proj_chooses_them() {
        for (code, e, n, want) in [
            (27700, 530_000.0, 180_000.0, 1314),
            (28992, 120_000.0, 487_000.0, 4833),
            (2056, 2_600_000.0, 1_200_000.0, 1676),
            (31370, 150_000.0, 170_000.0, 15929),
        ] {
            let (_, shift) = shifted(code, e, n).unwrap_or_else(|| panic!("EPSG:{code} not shifted"));
            assert_eq!(shift.epsg, want, "EPSG:{code}");
        }
        let (_, luref) = shifted(2169, 77_350.0, 75_160.0).expect("LUREF shifted");
        assert_eq!(luref.epsg, 5484);
        assert!(luref.steps[0][7..].iter().all(|&p| p > 4e5), "a Molodensky-Badekas pivot: {:?}", luref.steps);
        // Two concatenated operations: Indian 1960 through WGS 72 (two Helmert steps), and NTF on the Paris meridian
        // (its rotation to Greenwich is the PROJ string's, then one Helmert step).
        let (_, indian) = shifted(3148, 764_733.0, 1_088_258.0).expect("Indian 1960 shifted");
        assert_eq!((indian.epsg, indian.steps.len(), indian.kind().as_str()), (8532, 2, "Helmert + Helmert"));
        let (s, ntf) = shifted(27572, 600_000.0, 2_428_000.0).expect("NTF (Paris) shifted");
        assert_eq!((ntf.epsg, ntf.steps.len()), (8094, 1));
        assert!(s.contains("+pm=2.33722916"), "{s}");
        // Korea's Tokyo 1892 grids: Tokyo 1892 to Korean 1985 rotates longitudes by 10.405″ first.
        let (_, korea) = shifted(5171, 200_000.0, 500_000.0).expect("Tokyo 1892 shifted");
        assert_eq!((korea.epsg, korea.kind().as_str()), (5192, "longitude rotation + Molodensky-Badekas"));
        assert!((korea.rotation * 3600.0 - 10.405).abs() < 1e-9, "{}", korea.rotation);
        assert!(shifted(3148, 554_000.0, 1_382_000.0).is_none() && shifted(27700, -5e6, -5e6).is_none());
        assert!(epsg_units::SHIFTED.windows(2).all(|w| w[0].0 < w[1].0), "sorted, for the binary search");
        // Nothing is both placed without a shift and shifted.
        assert!(epsg_units::SHIFTED.iter().all(|t| projection(t.0.into()).is_none()));
    }

    /// A user-defined Albers CRS (as GDAL writes ESRI:102039) is placed only on a base near WGS 84: an EPSG
    /// geographic CRS of the table, or a user-defined one on WGS 84's or GRS 1980's ellipsoid; not on DHDN, not on
    /// Bessel's ellipsoid, and not when the file says nothing of its base.
    #[test]
    fn user_defined_projections_need_a_base_near_wgs84() {
        let albers = |base: &[u16], axes: Option<[f64; 2]>| {
            let mut k = vec![1024, 0, 1, 1, 3072, 0, 1, 32767, 3075, 0, 1, 11];
            for (i, id) in [3078u16, 3079, 3080, 3081, 3082, 3083].into_iter().enumerate() {
                k.extend([id, 34736, 1, i as u16]);
            }
            k.extend_from_slice(base);
            let mut doubles = vec![29.5, 45.5, -96.0, 23.0, 0.0, 0.0];
            if let Some([a, f]) = axes {
                k.extend([2057, 34736, 1, 6, 2059, 34736, 1, 7]);
                doubles.extend([a, f]);
            }
            let n = (k.len() / 4) as u16;
            let mut dir = vec![1, 1, 0, n];
            dir.extend(k);
            let t = GeoTags {
                pixel_scale: Some(vec![30.0, 30.0, 0.0]),
                tiepoint: Some(vec![0.0; 6]),
                key_directory: Some(dir),
                double_params: Some(doubles),
                ..Default::default()
            };
            t.georef().unwrap().unwrap().proj
        };
        let grs80 = Some([6_378_137.0, 298.257_222_101]);
        let want = "+proj=aea +lat_0=23 +lon_0=-96 +lat_1=29.5 +lat_2=45.5 +x_0=0 +y_0=0 +ellps=GRS80";
        assert_eq!(albers(&[2048, 0, 1, 4269], grs80).as_deref(), Some(want), "NAD83, as GDAL writes ESRI:102039");
        assert_eq!(albers(&[2048, 0, 1, 4269], None).as_deref(), Some(want.replace("GRS80", "WGS84").as_str()), "NAD83 alone");
        assert_eq!(albers(&[2048, 0, 1, 32767, 2050, 0, 1, 32767], grs80).as_deref(), Some(want), "a user-defined datum on GRS 1980");
        assert_eq!(albers(&[2048, 0, 1, 32767, 2056, 0, 1, 7019], None).as_deref(), Some(want), "GRS 1980 by code");
        assert_eq!(albers(&[2048, 0, 1, 4314], None), None, "DHDN");
        assert_eq!(albers(&[2048, 0, 1, 32767, 2056, 0, 1, 7004], None), None, "Bessel 1841");
        assert_eq!(albers(&[2048, 0, 1, 32767], Some([6_377_397.155, 299.152_812_8])), None, "Bessel's axes");
        assert_eq!(albers(&[2048, 0, 1, 32767, 2050, 0, 1, 6314], grs80), None, "DHDN's datum");
        assert_eq!(albers(&[], None), None, "no base at all");
    }

    #[test]
    fn hgt_names() {
        let g = hgt_georef("N35E138.hgt", 3601).unwrap();
        let c = g.cell_size(3601, 3601).unwrap();
        assert!((c.at_latitude.unwrap() - 35.5).abs() < 1e-9);
        assert!((c.metres[0] - 25.2).abs() < 0.1 && (c.metres[1] - 30.8).abs() < 0.1, "{:?}", c.metres);
        assert_eq!(hgt_georef("S12W077.hgt", 1201).unwrap().geotransform[0], -77.0 - 1.0 / 2400.0);
        assert!(hgt_georef("dem.hgt", 1201).is_none());
    }

    /// A bottom-up, east-to-west pixel-is-point grid: the flipped grid's corner is the file's far corner, half a
    /// cell out, and a north-up grid is left as it is.
    #[test]
    fn grids_not_north_up_are_flipped_to_north_up() {
        let t = GeoTags {
            transformation: Some(vec![-10.0, 0.0, 0.0, 1000.0, 0.0, 5.0, 0.0, 2000.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]),
            key_directory: Some(vec![1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 2, 3072, 0, 1, 32633]),
            ..Default::default()
        };
        let mut g = t.georef().unwrap().unwrap();
        // Sample (0, 0) is at (1000, 2000): its cell's corner at (1005, 1997.5); x falls and y rises along the grid.
        assert_eq!(g.geotransform, [1005.0, -10.0, 0.0, 1997.5, 0.0, 5.0]);
        assert_eq!(g.north_up(30, 20), (true, true));
        // The flipped grid runs from x = 1005 - 300 = 705 east, and from y = 1997.5 + 100 = 2097.5 south.
        assert_eq!(g.geotransform, [705.0, 10.0, 0.0, 2097.5, 0.0, -5.0]);
        assert!(g.flipped.as_deref().unwrap().starts_with("columns east to west and rows south to north"));
        assert_eq!(g.north_up(30, 20), (false, false), "already north-up");
        assert_eq!(g.flipped, None);
    }

    #[test]
    fn rotated_transforms_are_refused_and_feet_converted() {
        let mut m = vec![0.0; 16];
        m[0] = 2.0;
        m[1] = 0.5;
        m[5] = -2.0;
        let t = GeoTags { transformation: Some(m), key_directory: Some(vec![1, 1, 0, 1, 1024, 0, 1, 1]), ..Default::default() };
        assert!(t.georef().unwrap_err().contains("rotated"));
        let t = GeoTags {
            pixel_scale: Some(vec![10.0, 10.0, 0.0]),
            tiepoint: Some(vec![0.0, 0.0, 0.0, 1000.0, 2000.0, 0.0]),
            key_directory: Some(vec![1, 1, 0, 3, 1024, 0, 1, 1, 3072, 0, 1, 2227, 3076, 0, 1, 9003]),
            ..Default::default()
        };
        let g = t.georef().unwrap().unwrap();
        assert_eq!(g.epsg, Some(2227));
        assert!((g.cell_size(10, 10).unwrap().metres[0] - 3.048006).abs() < 1e-6);
    }

    /// A projected CRS with these GeoKeys (after the model type), 10 units a cell.
    fn projected(keys: &[u16]) -> Georef {
        let mut d = vec![1, 1, 0, 1 + keys.len() as u16 / 4, 1024, 0, 1, 1];
        d.extend_from_slice(keys);
        let t = GeoTags {
            pixel_scale: Some(vec![10.0, 10.0, 0.0]),
            tiepoint: Some(vec![0.0, 0.0, 0.0, 1000.0, 2000.0, 0.0]),
            key_directory: Some(d),
            ..Default::default()
        };
        t.georef().unwrap().unwrap()
    }

    #[test]
    fn units_from_crs_codes_and_vertical_keys() {
        // No ProjLinearUnitsGeoKey (GDAL's compound CRSs): the unit of the code.
        for (code, unit, m) in
            [(2227, "us-survey-foot", 1200.0 / 3937.0), (2222, "foot", 0.3048), (32610, "metre", 1.0), (27700, "metre", 1.0), (32767, "metre", 1.0)]
        {
            let g = projected(&[3072, 0, 1, code]);
            assert!(g.units == unit && (g.unit_metres - m).abs() < 1e-15, "EPSG:{code}: {} {}", g.units, g.unit_metres);
            assert!(g.vertical.is_none());
        }
        // Vertical CRS codes: feet, depths, metres; a unit key wins over the CRS's unit; unknown units are an error.
        let z = |keys: &[u16]| projected(&[&[3072, 0, 1, 32610][..], keys].concat()).vertical.unwrap().z_scale().map(|z| (z * 1e12).round() / 1e12);
        assert_eq!(z(&[4096, 0, 1, 6360]), Ok(0.304800609601));
        assert_eq!(z(&[4096, 0, 1, 8228]), Ok(0.3048));
        assert_eq!(z(&[4096, 0, 1, 5866]), Ok(-1.0));
        assert_eq!(z(&[4096, 0, 1, 6358]), Ok(-0.304800609601));
        assert_eq!(z(&[4096, 0, 1, 5703]), Ok(1.0));
        assert_eq!(z(&[4096, 0, 1, 32767, 4099, 0, 1, 9002]), Ok(0.3048));
        assert_eq!(z(&[4099, 0, 1, 9003]), Ok(0.304800609601));
        assert!(z(&[4096, 0, 1, 32767, 4099, 0, 1, 9999]).unwrap_err().contains("pass --z-scale"));
        // The Z scale of the georeferencing is a band scale only with a vertical reference, and not when 0.
        let z_tags = |keys: &[u16], scale_z: f64| {
            let mut d = vec![1, 1, 0, 2 + keys.len() as u16 / 4, 1024, 0, 1, 1, 3072, 0, 1, 32610];
            d.extend_from_slice(keys);
            let t = GeoTags {
                pixel_scale: Some(vec![10.0, 10.0, scale_z]),
                tiepoint: Some(vec![0.0, 0.0, 2.0, 1000.0, 2000.0, 5.0]),
                key_directory: Some(d),
                ..Default::default()
            };
            t.z_scale()
        };
        assert_eq!(z_tags(&[4096, 0, 1, 5703], 0.5), Some((0.5, 4.0)));
        assert_eq!(z_tags(&[4096, 0, 1, 5703], 0.0), None);
        assert_eq!(z_tags(&[], 0.5), None);
        let v = projected(&[3072, 0, 1, 2227, 4096, 0, 1, 6360]).vertical.unwrap();
        assert_eq!(v.describe(), "vertical CRS EPSG:6360 (NAVD88 height (ftUS))");
        assert!(projected(&[3072, 0, 1, 2227, 4096, 0, 1, 32767]).vertical.is_none());
    }
}
