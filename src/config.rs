//! Flags → validated configuration. Everything a user can get wrong on the command line is caught here, before any
//! input is opened or any collective starts, and reported as a usage error (exit code 2).

use std::path::PathBuf;

use crate::cli::MeshArgs;
use crate::encode::Format;
use crate::mesh::simplify::SimplifyParams;
use crate::mesh::Method;
use crate::raster::{Encoding, ReadOptions};
use crate::store::BlobOptions;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(usize, usize), ConfigError> {
    let parse = |p: &str| p.trim().parse::<usize>().ok().filter(|&v| v > 0);
    match s.split_once(['x', 'X']).map(|(w, h)| (parse(w), parse(h))) {
        Some((Some(w), Some(h))) => Ok((w, h)),
        _ => bad(format!("size '{s}' is not WIDTHxHEIGHT with positive integers, e.g. 4097x4097")),
    }
}

/// The cell sizes terrafarm meshes, in metres: a nanometre (height maps of microscopes) to a million kilometres.
/// Outside it a tile's f32 positions or its normals' slopes stop being representable (a cell of 1e-300 m puts every
/// vertex at 0, one of 1e200 m at infinity), so such a size, given or derived from a file, is refused up front.
pub const CELL_METRES: std::ops::RangeInclusive<f64> = 1e-9..=1e9;

/// The heights terrafarm meshes, in metres after `--z-scale` and `--z-offset`: ±1e9 m, a thousand times any relief on a
/// planet. A sample beyond it is no height but a fill value the file does not declare (float DEMs mark voids with
/// -3.4028235e38, f32's lowest value) or data in other units; it becomes a hole, with a warning, as non-finite
/// samples do. With [`CELL_METRES`] and [`Z_SCALE`] this keeps every slope, and so every normal, finite.
pub const HEIGHT_METRES: f32 = 1e9;

/// Whether `h` (metres) is within ±[`HEIGHT_METRES`] (false for NaN).
#[inline]
pub fn height_in_range(h: f32) -> bool {
    (-HEIGHT_METRES..=HEIGHT_METRES).contains(&h)
}

/// The magnitudes `--z-scale` may have (it may be negative), and `--z-offset`'s bound in metres: with heights within
/// [`HEIGHT_METRES`] they keep input samples, and the differences of neighbours, finite in f32.
pub const Z_SCALE: std::ops::RangeInclusive<f32> = 1e-9..=1e9;

/// Whether both sides of a cell are within [`CELL_METRES`] (false for NaN).
pub fn cell_in_range(cell: [f64; 2]) -> bool {
    cell.iter().all(|c| CELL_METRES.contains(c))
}

/// Parses `--cell-size X` or `X,Y` (metres, positive).
pub fn parse_cell(s: &str) -> Result<[f64; 2], ConfigError> {
    let cells: Vec<f64> = s
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ConfigError(format!("--cell-size '{s}' is not X or X,Y in metres")))?;
    let cell = match cells[..] {
        [x] => [x, x],
        [x, y] => [x, y],
        _ => return bad(format!("--cell-size '{s}' is not X or X,Y in metres")),
    };
    if !cell_in_range(cell) {
        return bad(format!("--cell-size must be between {:e} and {:e} metres", CELL_METRES.start(), CELL_METRES.end()));
    }
    Ok(cell)
}

/// Validated settings of one `mesh` run.
#[derive(Clone, Debug)]
pub struct MeshConfig {
    pub inputs: Vec<PathBuf>,
    pub out: String,
    pub tile_size: usize,
    pub formats: Vec<Format>,
    /// Also write a 3D Tiles 1.1 tileset.json per scene (`--format 3dtiles`).
    pub tileset: bool,
    /// Describe the tileset's tree by implicit tiling (`--tileset implicit`): files by depth from the root.
    pub implicit: bool,
    /// Levels of detail above the tiles (`--lod`), if asked.
    pub lod: Option<Lod>,
    /// How GLB vertex data is stored (`--gltf`).
    pub gltf: crate::encode::glb::Compression,
    pub read: ReadOptions,
    /// `--cell-size`, when given (else the input's georeferencing decides).
    pub cell: Option<[f64; 2]>,
    /// `--z-scale`; `None`: from the input ([`crate::pipeline::z_scale`]).
    pub z_scale: Option<f32>,
    /// `--z-offset`; `None`: from the input ([`crate::pipeline::z_scale`]).
    pub z_offset: Option<f32>,
    pub method: Method,
    pub skirts: Option<f32>,
    /// `--geoid`: how heights above a geoid become heights above the ellipsoid in placed 3D Tiles.
    pub geoid: GeoidChoice,
    pub threads: Option<usize>,
    pub resume: bool,
    pub preview: bool,
    pub scene: Option<String>,
    pub json: bool,
    pub blob: BlobOptions,
}

/// `--geoid`: which heights become heights above the ellipsoid in 3D Tiles placed on it
/// ([`crate::pipeline::geoid_plan`]).
#[derive(Clone, Debug, PartialEq)]
pub enum GeoidChoice {
    /// Heights the input declares above a geoid terrafarm knows ([`crate::raster::geoid::MODELS`]), when PROJ's grid
    /// for it is installed.
    Auto,
    /// Heights placed as they are.
    None,
    /// Every height is above this geoid model (the EPSG code of its vertical CRS, one of
    /// [`crate::raster::geoid::MODELS`]), whatever the input declares; its grid found as with `Auto`.
    Model(u32),
    /// Every height is above the geoid of this grid file.
    File(PathBuf),
}

impl MeshConfig {
    pub fn from_args(a: MeshArgs) -> Result<MeshConfig, ConfigError> {
        let encoding: Encoding = a.encoding.parse().map_err(ConfigError)?;
        let size = a.size.as_deref().map(parse_size).transpose()?;
        let words: Vec<&str> = a.format.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        let tileset = words.iter().any(|w| w.eq_ignore_ascii_case("3dtiles"));
        let mut formats: Vec<Format> = words
            .iter()
            .filter(|w| !w.eq_ignore_ascii_case("3dtiles"))
            .map(|w| w.parse())
            .collect::<Result<_, String>>()
            .map_err(|e| ConfigError(format!("{e} (or 3dtiles)")))?;
        if tileset {
            formats.push(Format::Glb);
        }
        formats.sort();
        formats.dedup();
        if formats.is_empty() {
            return bad("--format needs at least one of glb, obj");
        }
        let cell = a.cell_size.as_deref().map(parse_cell).transpose()?;
        if !(2..=16384).contains(&a.tile_size) {
            return bad(format!("--tile-size {} is outside 2..=16384 cells", a.tile_size));
        }
        if formats.contains(&Format::Glb) && crate::encode::glb::worst_case_bytes(a.tile_size) > crate::encode::glb::MAX_GLB_BYTES {
            // Refused before anything is allocated: a full-resolution tile this size would not fit one GLB.
            return bad(format!(
                "--tile-size {}: a tile's GLB could reach {:.1} GiB, past glTF's 4 GiB limit for one GLB file; the largest tile size that fits is {} (or leave glb out of --format)",
                a.tile_size,
                crate::encode::glb::worst_case_bytes(a.tile_size) as f64 / (1u64 << 30) as f64,
                crate::encode::glb::max_tile_size()
            ));
        }
        if a.z_scale.is_some_and(|z| !Z_SCALE.contains(&z.abs())) || a.z_offset.is_some_and(|o| !height_in_range(o)) {
            return bad(format!(
                "--z-scale must be between {:e} and {:e} in magnitude (negative flips the terrain), --z-offset within ±{:e} metres",
                Z_SCALE.start(),
                Z_SCALE.end(),
                HEIGHT_METRES
            ));
        }
        if a.threads == Some(0) {
            return bad("--threads must be at least 1");
        }
        if a.scene.is_some() && a.inputs.len() > 1 {
            return bad("--scene names one scene; it cannot be used with several inputs");
        }
        if let Some(s) = &a.scene {
            if s.is_empty() || s.contains(['/', '\\']) || s == "." || s == ".." {
                return bad(format!("--scene '{s}' must be a plain name"));
            }
        }
        if a.max_error.is_some_and(|e| !(e.is_finite() && e >= 0.0)) {
            return bad("--max-error must be a finite number of metres ≥ 0");
        }
        if a.max_triangles.is_some_and(|n| n < 2) {
            return bad("--max-triangles must be at least 2 (a tile's two corner triangles)");
        }
        if a.skirts.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
            return bad("--skirts must be a positive depth in metres");
        }
        let method = match (a.max_error, a.max_triangles) {
            (None, None) => Method::Grid,
            (e, n) => {
                Method::Simplify(SimplifyParams { max_error: e.unwrap_or(0.0), max_triangles: n, split: crate::mesh::simplify::Split::Pieces, curvature: 0.0 })
            }
        };
        let implicit = match a.tileset.to_ascii_lowercase().as_str() {
            "explicit" => false,
            "implicit" => true,
            other => return bad(format!("--tileset '{other}' is not explicit or implicit")),
        };
        let model = crate::raster::geoid::MODELS.iter().find(|m| m.option == a.geoid);
        let geoid = match (a.geoid.as_str(), model) {
            ("auto", _) => GeoidChoice::Auto,
            ("none", _) => GeoidChoice::None,
            (_, Some(m)) => GeoidChoice::Model(m.epsg),
            ("", _) => return bad("--geoid needs auto, none or a grid file"),
            (f, None) => GeoidChoice::File(PathBuf::from(f)),
        };
        if matches!(geoid, GeoidChoice::File(_) | GeoidChoice::Model(_)) && !tileset {
            return bad("--geoid makes heights ones above the ellipsoid for 3D Tiles placed on it: add 3dtiles to --format");
        }
        if implicit && !tileset {
            return bad("--tileset implicit describes a 3D Tiles tileset: add 3dtiles to --format");
        }
        let lod = Lod::from_args(a.lod.as_deref(), a.lod_errors.as_deref(), a.max_error.unwrap_or(0.0))?;
        let gltf: crate::encode::glb::Compression = a.gltf.parse().map_err(ConfigError)?;
        if gltf != crate::encode::glb::Compression::Plain {
            if !formats.contains(&Format::Glb) {
                return bad("--gltf quantized/meshopt applies to GLB output: add glb (or 3dtiles) to --format");
            }
            if !a.max_error.is_some_and(|e| e > 0.0) {
                return bad("--gltf quantized/meshopt needs --max-error > 0: the quantization error is counted inside it");
            }
        }
        if a.max_samples == 0 {
            return bad("--max-samples must be positive");
        }
        if !(1..=4000).contains(&a.blob_block_mib) {
            return bad(format!("--blob-block-mib {} is outside 1..=4000 (Azure's block size limit is 4000 MiB)", a.blob_block_mib));
        }
        if !(1..=64).contains(&a.blob_concurrency) {
            return bad(format!("--blob-concurrency {} is outside 1..=64", a.blob_concurrency));
        }
        if !(a.blob_retry_timeout.is_finite() && a.blob_retry_timeout >= 0.0 && a.blob_retry_timeout <= 3600.0) {
            return bad("--blob-retry-timeout must be between 0 and 3600 seconds");
        }
        let blob = BlobOptions {
            retries: a.blob_retries,
            retry_timeout: std::time::Duration::from_secs_f64(a.blob_retry_timeout),
            block_size: a.blob_block_mib << 20,
            concurrency: a.blob_concurrency,
            ..BlobOptions::default()
        };
        Ok(MeshConfig {
            inputs: a.inputs,
            out: a.out,
            tile_size: a.tile_size,
            formats,
            tileset,
            implicit,
            lod,
            gltf,
            read: ReadOptions { encoding, size, max_samples: a.max_samples, nodata: a.nodata },
            cell,
            z_scale: a.z_scale,
            z_offset: a.z_offset,
            method,
            skirts: a.skirts,
            geoid,
            threads: a.threads,
            resume: a.resume,
            preview: a.preview,
            scene: a.scene,
            json: a.json,
            blob,
        })
    }

    /// The scene name of input `i`: `--scene`, else the file stem (of a URL's path: never its query).
    pub fn scene_name(&self, i: usize) -> String {
        self.scene.clone().unwrap_or_else(|| scene_stem(&self.inputs[i].to_string_lossy(), i))
    }
}

/// `--lod`: how many levels above the tiles (`None`: as many as it takes to cover the raster with one tile), and
/// each level's maximum error.
#[derive(Clone, Debug, PartialEq)]
pub struct Lod {
    pub levels: Option<usize>,
    /// `--lod-errors`, one per level from 1; empty: level L's error is `base × 2^L`.
    pub errors: Vec<f32>,
    /// Level 0's error (`--max-error`, 0 for full-resolution tiles).
    pub base: f32,
}

/// The most levels `--lod` takes (a tile of 256 cells at level 10 covers 262144 cells).
pub const MAX_LOD_LEVELS: usize = 10;

/// One level of detail: its tile size, its maximum error and the depth of the skirts that hide cracks where it
/// meets the levels next to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LevelSpec {
    pub level: usize,
    pub tile: usize,
    pub max_error: f32,
    pub skirt: f32,
}

impl Lod {
    pub fn from_args(lod: Option<&str>, errors: Option<&str>, base: f32) -> Result<Option<Lod>, ConfigError> {
        let Some(lod) = lod else {
            return if errors.is_some() { bad("--lod-errors needs --lod") } else { Ok(None) };
        };
        let levels = match lod.trim() {
            "auto" => None,
            n => match n.parse::<usize>() {
                Ok(n) if (1..=MAX_LOD_LEVELS).contains(&n) => Some(n),
                _ => return bad(format!("--lod {n}: give a number of levels 1..={MAX_LOD_LEVELS}, or auto")),
            },
        };
        let errors: Vec<f32> = match errors {
            Some(list) => list
                .split(',')
                .map(|e| e.trim().parse::<f32>().ok().filter(|v| v.is_finite() && *v > 0.0))
                .collect::<Option<_>>()
                .ok_or_else(|| ConfigError(format!("--lod-errors {list}: give positive metres, comma-separated")))?,
            None => Vec::new(),
        };
        if errors.is_empty() && base <= 0.0 {
            return bad("--lod needs --max-error > 0 (each level doubles it) or --lod-errors (one error per level)");
        }
        if errors.windows(2).any(|w| w[1] <= w[0]) || errors.first().is_some_and(|&e| e <= base) {
            return bad("--lod-errors must increase from level to level, starting above --max-error");
        }
        if let (Some(n), false) = (levels, errors.is_empty()) {
            if errors.len() != n {
                return bad(format!("--lod {n} needs {n} values in --lod-errors, got {}", errors.len()));
            }
        }
        if levels.is_none() && !errors.is_empty() {
            return bad("--lod auto takes no --lod-errors (its number of levels depends on the raster); give --lod N");
        }
        Ok(Some(Lod { levels, errors, base }))
    }

    /// The error of level `l` (level 0: the tiles' own).
    pub fn error(&self, l: usize) -> f32 {
        match l {
            0 => self.base,
            l if l <= self.errors.len() => self.errors[l - 1],
            l => self.base * (1u64 << l.min(40)) as f32,
        }
    }

    /// Every level from 0 for a raster whose tiles of `tile` cells form a `cols × rows` grid; `max_tile` caps the
    /// coarsest tile (a GLB must stay below 4 GiB). `auto` stops at the first level with a single tile.
    pub fn specs(&self, tile: usize, cols: usize, rows: usize, max_tile: usize) -> Result<Vec<LevelSpec>, String> {
        let needed = (0..=MAX_LOD_LEVELS).find(|&l| cols.div_ceil(1 << l) == 1 && rows.div_ceil(1 << l) == 1).unwrap_or(MAX_LOD_LEVELS);
        let top = match self.levels {
            Some(n) => n,
            None => {
                let mut n = needed.max(1);
                while n > 1 && (tile << n) > max_tile {
                    n -= 1;
                }
                n
            }
        };
        if (tile << top) > max_tile {
            return Err(format!(
                "--lod {top}: a level-{top} tile would span {} cells, past the largest tile one GLB can hold ({max_tile}); use fewer levels",
                tile << top
            ));
        }
        Ok((0..=top)
            .map(|l| LevelSpec {
                level: l,
                tile: tile << l,
                max_error: self.error(l),
                skirt: self.error(l) + if l < top { self.error(l + 1) } else { self.error(l) * 2.0 },
            })
            .collect())
    }
}

/// The default scene name of input `i`: its file stem (without a URL's query), else `scene{i}`.
pub fn scene_stem(input: &str, i: usize) -> String {
    PathBuf::from(input.split('?').next().unwrap_or_default())
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("scene{i}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lod_levels_errors_and_skirts() {
        let l = Lod::from_args(Some("auto"), None, 1.0).unwrap().unwrap();
        let s = l.specs(256, 16, 9, 8754).unwrap();
        assert_eq!(s.len(), 5);
        assert_eq!(s.iter().map(|v| (v.tile, v.max_error)).collect::<Vec<_>>(), [(256, 1.0), (512, 2.0), (1024, 4.0), (2048, 8.0), (4096, 16.0)]);
        assert_eq!((s[0].skirt, s[4].skirt), (3.0, 48.0));
        // Capped so the coarsest GLB fits: 256 << 5 = 8192 ≤ 8754 < 16384.
        assert_eq!(l.specs(256, 64, 64, 8754).unwrap().len(), 6);
        let l = Lod::from_args(Some("2"), Some("3,10"), 0.0).unwrap().unwrap();
        assert_eq!(l.specs(128, 4, 4, 8754).unwrap().iter().map(|v| v.max_error).collect::<Vec<_>>(), [0.0, 3.0, 10.0]);
        assert!(l.specs(4096, 4, 4, 8754).is_err());
        for (lod, errs, base) in [
            (Some("2"), None, 0.0),
            (Some("0"), None, 1.0),
            (Some("2"), Some("3"), 1.0),
            (Some("2"), Some("3,2"), 1.0),
            (None, Some("3"), 1.0),
            (Some("auto"), Some("3"), 1.0),
        ] {
            assert!(Lod::from_args(lod, errs, base).is_err(), "{lod:?} {errs:?} {base}");
        }
        assert_eq!(Lod::from_args(None, None, 0.0).unwrap(), None);
    }

    #[test]
    fn cell_sizes_in_range() {
        assert_eq!(parse_cell("2").unwrap(), [2.0, 2.0]);
        assert_eq!(parse_cell("0.5, 30").unwrap(), [0.5, 30.0]);
        assert_eq!(parse_cell("1e-9,1e9").unwrap(), [1e-9, 1e9]);
        for s in ["0", "-1", "1,0", "nan", "inf", "1e-300", "1e200", "1,2e9", "5e-10", "1,2,3", "a"] {
            assert!(parse_cell(s).is_err(), "{s}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4097x2049").unwrap(), (4097, 2049));
        assert!(parse_size("4097").is_err());
        assert!(parse_size("0x5").is_err());
        assert!(parse_size("ax5").is_err());
    }
}
