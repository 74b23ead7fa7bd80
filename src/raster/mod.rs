//! Input readers: bytes on disk → height windows (f32, NaN = no data), and the georeferencing facts of an input.
//! Formats that allow it (GeoTIFF, raw, SRTM `.hgt`, `.npy`) are read window by window, so a rank touches only the
//! samples its tiles need; PNG (and RGB-encoded TIFF) is decoded whole once. No meshing, no tiling policy here.

pub mod epsg_units;
pub mod geoid;
pub mod georef;
mod geotiff;
mod image_src;
mod raw;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::tiling::Rect;
pub use georef::{CellSize, Georef, ZScale};
pub use geotiff::GeoTiffSource;
pub use image_src::{decode_terrain_rgb, decode_terrain_rgb_scalar, decode_terrarium, decode_terrarium_scalar};
pub use raw::{npy_bytes_f32, Dtype, RawSource};

#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    #[error("{path}: {width}x{height} = {samples} samples exceeds --max-samples {max} (raise it if the input is genuine)")]
    TooLarge { path: PathBuf, width: u64, height: u64, samples: u64, max: u64 },
}

impl RasterError {
    pub(crate) fn format(path: &Path, msg: impl Into<String>) -> RasterError {
        RasterError::Format { path: path.to_path_buf(), msg: msg.into() }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> RasterError {
        RasterError::Io { path: path.to_path_buf(), source }
    }
}

/// How the input's bytes map to heights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Decide from extension and magic bytes; ambiguous inputs (RGB images) are refused.
    Auto,
    /// 8/16-bit grayscale PNG or TIFF: the sample value is the height.
    Gray,
    /// Mapbox terrain-RGB: h = (R·65536 + G·256 + B)·0.1 − 10000.
    TerrainRgb,
    /// Terrarium: h = R·256 + G + B/256 − 32768.
    Terrarium,
    /// Headerless little-endian samples; needs `--size`.
    Raw(Dtype),
    /// SRTM `.hgt`: big-endian i16, 1201² or 3601², −32768 = void.
    Hgt,
    /// NumPy `.npy`, 2-D, C order.
    Npy,
    /// GeoTIFF / COG samples (u8…f64), band 1.
    GeoTiff,
}

pub const ENCODING_CHOICES: &str = "auto, gray, terrain-rgb, terrarium, raw-f32, raw-i16, raw-u16, hgt, npy, geotiff";

impl FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Encoding::Auto,
            "gray" | "grey" => Encoding::Gray,
            "terrain-rgb" | "mapbox" => Encoding::TerrainRgb,
            "terrarium" => Encoding::Terrarium,
            "raw-f32" => Encoding::Raw(Dtype::F32),
            "raw-i16" => Encoding::Raw(Dtype::I16),
            "raw-u16" => Encoding::Raw(Dtype::U16),
            "hgt" => Encoding::Hgt,
            "npy" => Encoding::Npy,
            "geotiff" | "tiff" => Encoding::GeoTiff,
            _ => return Err(format!("unknown encoding '{s}' (choose one of: {ENCODING_CHOICES})")),
        })
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Auto => f.write_str("auto"),
            Encoding::Gray => f.write_str("gray"),
            Encoding::TerrainRgb => f.write_str("terrain-rgb"),
            Encoding::Terrarium => f.write_str("terrarium"),
            Encoding::Raw(d) => write!(f, "raw-{}", d.name()),
            Encoding::Hgt => f.write_str("hgt"),
            Encoding::Npy => f.write_str("npy"),
            Encoding::GeoTiff => f.write_str("geotiff"),
        }
    }
}

/// What the reader needs beyond the path.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub encoding: Encoding,
    /// Width × height, required for raw inputs.
    pub size: Option<(usize, usize)>,
    /// Refuse inputs whose header claims more samples than this, before allocating.
    pub max_samples: u64,
    /// Sample value meaning "no data" (becomes NaN).
    pub nodata: Option<f32>,
}

/// Random-access bytes of an input: a local file, or a blob the store module opened (ranged GETs).
pub trait ByteSource: Send + Sync {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` with the bytes at `offset..offset + buf.len()`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
    /// An identity of the content that changes whenever the bytes do, cheaper than hashing them (a blob's ETag);
    /// `None` where the bytes must be hashed.
    fn identity(&self) -> Option<String> {
        None
    }
    /// Bytes read so far, where the source counts them.
    fn fetched(&self) -> u64 {
        0
    }
    /// Several reads at once; remote sources merge nearby ranges into few requests.
    fn read_many(&self, reqs: &mut [(u64, &mut [u8])]) -> std::io::Result<()> {
        reqs.iter_mut().try_for_each(|(off, buf)| self.read_at(*off, buf))
    }
    /// The file or blob whose name is this one's with `suffix` appended (GDAL's sidecar files, such as the external
    /// mask `dem.tif.msk`): `Ok(None)` when there is none, or for a source without a name (tests' in-memory bytes).
    fn sibling(&self, _suffix: &str) -> std::io::Result<Option<Arc<dyn ByteSource>>> {
        Ok(None)
    }
}

/// A local file read with positioned reads (no shared cursor, so threads read concurrently).
pub struct FileSource {
    file: std::fs::File,
    len: u64,
    path: PathBuf,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<FileSource, RasterError> {
        let meta = std::fs::metadata(path).map_err(|e| RasterError::io(path, e))?;
        if meta.is_dir() {
            return Err(RasterError::format(path, "is a directory, not a height map"));
        }
        let file = std::fs::File::open(path).map_err(|e| RasterError::io(path, e))?;
        Ok(FileSource { file, len: meta.len(), path: path.to_path_buf() })
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn sibling(&self, suffix: &str) -> std::io::Result<Option<Arc<dyn ByteSource>>> {
        let mut p = self.path.clone().into_os_string();
        p.push(suffix);
        let p = PathBuf::from(p);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(Some(Arc::new(FileSource { file: std::fs::File::open(&p)?, len: m.len(), path: p }))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
    #[cfg(unix)]
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, off)
    }
    #[cfg(windows)]
    fn read_at(&self, mut off: u64, mut buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.file.seek_read(buf, off)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    off += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// All bytes of a source (for formats decoded whole).
pub(crate) fn read_all(path: &Path, src: &dyn ByteSource) -> Result<Vec<u8>, RasterError> {
    let n = usize::try_from(src.len()).map_err(|_| RasterError::format(path, "file too large for this platform"))?;
    let mut buf = vec![0u8; n];
    src.read_at(0, &mut buf).map_err(|e| RasterError::io(path, e))?;
    Ok(buf)
}

/// A decoder that can hand out rectangular windows of heights.
pub trait Source: Send + Sync {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// Fills `out` (row-major over `rect`) with heights, every sample of it written; NaN where the input has no data.
    fn read_window(&self, rect: Rect, out: &mut [f32]) -> Result<(), RasterError>;
    /// True when `read_window` reads only the window from storage (no whole-raster decode).
    fn windowed(&self) -> bool;
    /// The encoding actually used (after `auto` was resolved).
    fn encoding(&self) -> Encoding;
    /// Georeferencing the file itself states, if any.
    fn georef(&self) -> Option<Georef> {
        None
    }
    /// The no-data value the file itself states (GDAL_NODATA), if any.
    fn nodata(&self) -> Option<f64> {
        None
    }
    /// Band 1's scale and offset the file states (GDAL metadata: value = sample × scale + offset), if any.
    fn band_scale(&self) -> Option<(f64, f64)> {
        None
    }
    /// What `terrafarm info` reports about the file's layout.
    fn info(&self) -> SourceInfo;
    /// Identities of the sidecar files read with the input (an external mask): they change a run's output as the
    /// input's own bytes do. Each is its blob's ETag or the SHA-256 of its bytes (read now, not at open).
    fn sidecars(&self) -> Result<Vec<String>, RasterError> {
        Ok(Vec::new())
    }
    /// Sizes the reader's caches for tiles read in row order whose windows in flight span `rows` rows, in `passes`
    /// passes over the raster (a pyramid's levels each read it again), and returns the bytes of decoded samples it may
    /// then keep (0 for readers that keep none).
    fn plan_windows(&self, _rows: usize, _passes: usize) -> u64 {
        0
    }
}

/// Layout facts of an input, for `terrafarm info`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourceInfo {
    pub format: String,
    pub sample_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Block layout (strips or tiles) of formats read block by block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bigtiff: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub little_endian: Option<bool>,
    /// A transparency mask read with band 1 (its kind), whose masked-out samples are holes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
}

/// An opened input: a source plus the no-data value in force (`--nodata`, else the file's own).
pub struct Raster {
    source: Box<dyn Source>,
    nodata: Option<f32>,
    pub path: PathBuf,
    /// See [`Raster::suspect`].
    suspect: Option<f32>,
    /// Which of the once-per-input warnings ([`Report`]) were given already (see [`Raster::first_report`]).
    reported: [std::sync::atomic::AtomicBool; 2],
    /// Heights above a geoid made heights above the ellipsoid ([`Raster::to_ellipsoid`]), for 3D Tiles placed on it.
    to_ellipsoid: Option<Arc<geoid::ToEllipsoid>>,
}

/// Warnings about an input's samples that readers of many windows give once per input.
#[derive(Clone, Copy, Debug)]
pub enum Report {
    /// A finite sample beyond the meshable heights (made a hole).
    OutOfRange = 0,
    /// The [`Raster::suspect`] value, meshed as a height.
    Suspect = 1,
}

/// int16's lowest value: SRTM's void, and what int16 DEMs usually hold in voids when they do not declare it.
pub const I16_VOID: f32 = -32768.0;

impl Raster {
    pub fn width(&self) -> usize {
        self.source.width()
    }
    pub fn height(&self) -> usize {
        self.source.height()
    }
    pub fn windowed(&self) -> bool {
        self.source.windowed()
    }
    pub fn encoding(&self) -> Encoding {
        self.source.encoding()
    }
    pub fn georef(&self) -> Option<Georef> {
        self.source.georef()
    }
    /// The no-data value in force, in input units.
    pub fn nodata(&self) -> Option<f32> {
        self.nodata
    }
    /// See [`Source::band_scale`].
    pub fn band_scale(&self) -> Option<(f64, f64)> {
        self.source.band_scale()
    }
    /// See [`Source::sidecars`].
    pub fn sidecars(&self) -> Result<Vec<String>, RasterError> {
        self.source.sidecars()
    }
    /// True the first time it is called for `r` (from any thread): readers of many windows warn about a sample once.
    pub fn first_report(&self, r: Report) -> bool {
        !self.reported[r as usize].swap(true, std::sync::atomic::Ordering::Relaxed)
    }
    /// A value that likely marks voids the file does not declare, meshed as a height: [`I16_VOID`] in int16 samples
    /// when no no-data value is in force.
    pub fn suspect(&self) -> Option<f32> {
        self.suspect
    }
    pub fn info(&self) -> SourceInfo {
        self.source.info()
    }
    /// See [`Source::plan_windows`].
    pub fn plan_windows(&self, rows: usize, passes: usize) -> u64 {
        self.source.plan_windows(rows, passes)
    }
    /// From now on, [`Raster::to_ellipsoid`] adds `t`'s geoid undulation to the windows read.
    pub fn set_to_ellipsoid(&mut self, t: Arc<geoid::ToEllipsoid>) {
        self.to_ellipsoid = Some(t);
    }
    /// Heights above the ellipsoid from heights above a geoid, in a window `read_window` read, when the run asked
    /// for it ([`Raster::set_to_ellipsoid`]); otherwise nothing.
    pub fn to_ellipsoid(&self, rect: Rect, out: &mut [f32]) -> Result<(), RasterError> {
        match &self.to_ellipsoid {
            Some(t) => t.apply(rect, out).map_err(|m| RasterError::format(&self.path, m)),
            None => Ok(()),
        }
    }
    pub fn read_window(&self, rect: Rect, out: &mut [f32]) -> Result<(), RasterError> {
        debug_assert_eq!(out.len(), rect.len());
        if rect.x1 > self.width() || rect.y1 > self.height() {
            return Err(RasterError::format(&self.path, format!("window {rect:?} outside the {}x{} raster", self.width(), self.height())));
        }
        self.source.read_window(rect, out)?;
        if let Some(nd) = self.nodata {
            for v in out.iter_mut() {
                if *v == nd {
                    *v = f32::NAN;
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn check_samples(path: &Path, w: u64, h: u64, max: u64) -> Result<(), RasterError> {
    let samples = w.saturating_mul(h);
    if samples > max {
        return Err(RasterError::TooLarge { path: path.to_path_buf(), width: w, height: h, samples, max });
    }
    if w < 2 || h < 2 {
        return Err(RasterError::format(path, format!("raster is {w}x{h}; a mesh needs at least 2x2 samples")));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Image,
    Tiff,
    Npy,
    Hgt,
    Raw(Option<Dtype>),
}

fn sniff(path: &Path, head: &[u8]) -> Option<Kind> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Kind::Image);
    }
    // Classic TIFF (42) and BigTIFF (43), either byte order.
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") || head.starts_with(b"II+\0") || head.starts_with(b"MM\0+") {
        return Some(Kind::Tiff);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Some(Kind::Npy);
    }
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("hgt") => Some(Kind::Hgt),
        Some("f32") => Some(Kind::Raw(Some(Dtype::F32))),
        Some("i16") => Some(Kind::Raw(Some(Dtype::I16))),
        Some("u16") => Some(Kind::Raw(Some(Dtype::U16))),
        Some("raw") | Some("bin") => Some(Kind::Raw(None)),
        _ => None,
    }
}

/// True when `path` would be decoded whole (PNG/TIFF) rather than read window by window. Cheap: looks at the
/// encoding and the first bytes only, so ranks can agree on who decodes before anyone does.
pub fn decodes_whole(path: &Path, src: &dyn ByteSource, opts: &ReadOptions) -> bool {
    match opts.encoding {
        Encoding::Raw(_) | Encoding::Hgt | Encoding::Npy | Encoding::GeoTiff => false,
        Encoding::TerrainRgb | Encoding::Terrarium => true,
        Encoding::Gray | Encoding::Auto => sniff(path, &read_head(src).unwrap_or_default()) == Some(Kind::Image),
    }
}

/// The first bytes of the source (up to 8: enough for every magic number we sniff).
fn read_head(src: &dyn ByteSource) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; src.len().min(8) as usize];
    src.read_at(0, &mut head)?;
    Ok(head)
}

/// Opens the local file `path` for windowed reading (see [`open_source`]).
pub fn open(path: &Path, opts: &ReadOptions) -> Result<Raster, RasterError> {
    open_source(path, Arc::new(FileSource::open(path)?), opts)
}

/// Opens `src` for windowed reading, deciding the format from `opts.encoding`, the extension of `path` (the name
/// used in messages: a file path or a URL without its query) and magic bytes.
pub fn open_source(path: &Path, src: Arc<dyn ByteSource>, opts: &ReadOptions) -> Result<Raster, RasterError> {
    if src.is_empty() {
        return Err(RasterError::format(path, "file is empty (0 bytes)"));
    }
    let kind = sniff(path, &read_head(src.as_ref()).map_err(|e| RasterError::io(path, e))?);
    let ext_is_image = matches!(path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(), Some("png") | Some("tif") | Some("tiff"));
    let source: Box<dyn Source> = match (opts.encoding, kind) {
        (Encoding::Raw(d), _) => Box::new(RawSource::raw(path, src, d, opts)?),
        (Encoding::Hgt, _) | (Encoding::Auto, Some(Kind::Hgt)) => Box::new(RawSource::hgt(path, src, opts)?),
        (Encoding::Npy, _) | (Encoding::Auto, Some(Kind::Npy)) => Box::new(RawSource::npy(path, src, opts)?),
        (Encoding::Auto, Some(Kind::Raw(Some(d)))) => Box::new(RawSource::raw(path, src, d, opts)?),
        (Encoding::Auto | Encoding::Gray | Encoding::GeoTiff, Some(Kind::Tiff)) => Box::new(GeoTiffSource::open(path, src, opts)?),
        (Encoding::GeoTiff, _) => return Err(RasterError::format(path, "not a TIFF (no TIFF signature)")),
        (enc @ (Encoding::TerrainRgb | Encoding::Terrarium), Some(Kind::Tiff)) => Box::new(image_src::decode(path, &read_all(path, src.as_ref())?, enc, opts)?),
        (Encoding::Auto, Some(Kind::Raw(None))) => {
            return Err(RasterError::format(path, "headerless raw file: say its sample type with --encoding raw-f32|raw-i16|raw-u16 and its --size WxH"))
        }
        (enc, Some(Kind::Image)) => Box::new(image_src::decode(path, &read_all(path, src.as_ref())?, enc, opts)?),
        (_, _) if ext_is_image => return Err(RasterError::format(path, "extension says PNG/TIFF but the file does not start with a PNG or TIFF signature")),
        (Encoding::Gray | Encoding::TerrainRgb | Encoding::Terrarium, _) => {
            return Err(RasterError::format(path, "not a PNG or TIFF image (no image signature)"))
        }
        (Encoding::Auto, None) => {
            return Err(RasterError::format(
                path,
                format!(
                    "cannot tell the format: supported are .png .tif .tiff .hgt .npy .f32 .i16 .u16 (.raw/.bin with --encoding); encodings: {ENCODING_CHOICES}"
                ),
            ))
        }
    };
    let nodata = opts.nodata.or_else(|| source.nodata().map(|v| v as f32));
    let suspect = (nodata.is_none() && source.info().sample_type == "i16").then_some(I16_VOID);
    Ok(Raster { source, nodata, path: path.to_path_buf(), suspect, reported: Default::default(), to_ellipsoid: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_parses_and_prints() {
        for s in ENCODING_CHOICES.split(", ") {
            let e: Encoding = s.parse().unwrap();
            assert_eq!(e.to_string(), s);
        }
        assert!("bogus".parse::<Encoding>().unwrap_err().contains("terrain-rgb"));
    }
}
