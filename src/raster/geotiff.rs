//! GeoTIFF / Cloud-Optimized GeoTIFF reader on the `tiff` crate: windows are decoded block by block (strips or
//! internal tiles), never the whole file. A window's blocks are fetched with one `read_many` (ranged GETs, nearby
//! ranges merged, on blob storage), decoded by `tiff` (none, LZW, Deflate, PackBits, ZSTD; horizontal and
//! floating-point predictors; BigTIFF; either byte order), or by `lerc-rs` for LERC blocks, and kept in a bounded
//! cache of decoded blocks, so
//! neighbouring windows do not decode a block twice. Band 1 of a multi-band file; overviews are ignored.
//! Samples the file marks as not valid are read as NaN (holes): by its internal transparency mask ([`Mask`]), else
//! GDAL's external mask `<file>.msk` (a sidecar TIFF, next to the file or blob), else an alpha band (0: not valid).
//!
//! One measured exception: f32 blocks with the floating-point predictor (what GDAL writes for float DEMs) are
//! decompressed with the crates `tiff` uses and un-predicted here (`fp32_block`), because `tiff` 0.11's predictor
//! cost more than the inflate (`benches/runs/2026-11-30-fp-predictor.md`).
//!
//! `tiff` parses the IFD through [`SparseReader`], which serves the blocks fetched for the current window from
//! memory and anything else (the header, the IFD and its tag values) from the source in 64 KiB pages.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::tags::Tag;

use super::georef::{GeoTags, Georef};
use super::{check_samples, ByteSource, Encoding, RasterError, ReadOptions, Source, SourceInfo};
use crate::tiling::Rect;

const PAGE: u64 = 64 * 1024;

/// 64 KiB pages of the file by page number, shared by every decoder of one file.
type Pages = Arc<Mutex<HashMap<u64, Arc<Vec<u8>>>>>;

/// Decoded band-1 blocks, by block index.
type Decoded = Vec<(u32, Arc<Vec<f32>>)>;

/// A `Read + Seek` over a byte source: prefetched block bytes first, else 64 KiB pages read on demand and shared
/// by every decoder of the file (the IFD is parsed once per decoder, read once).
struct SparseReader {
    src: Arc<dyn ByteSource>,
    len: u64,
    pos: u64,
    blocks: HashMap<u64, Arc<Vec<u8>>>,
    pages: Pages,
}

impl SparseReader {
    fn page(&self, n: u64) -> std::io::Result<Arc<Vec<u8>>> {
        if let Some(p) = self.pages.lock().map_err(|_| std::io::Error::other("page cache poisoned"))?.get(&n) {
            return Ok(p.clone());
        }
        let start = n * PAGE;
        let mut buf = vec![0u8; PAGE.min(self.len - start) as usize];
        self.src.read_at(start, &mut buf)?;
        let p = Arc::new(buf);
        self.pages.lock().map_err(|_| std::io::Error::other("page cache poisoned"))?.insert(n, p.clone());
        Ok(p)
    }
}

impl Read for SparseReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        // A prefetched block holding the position?
        if let Some((&start, b)) = self.blocks.iter().find(|(&s, b)| s <= self.pos && self.pos < s + b.len() as u64) {
            let at = (self.pos - start) as usize;
            let n = out.len().min(b.len() - at);
            out[..n].copy_from_slice(&b[at..at + n]);
            self.pos += n as u64;
            return Ok(n);
        }
        if !self.blocks.is_empty() {
            // Decoding a block reads nothing but its own bytes: a read past them (a decompressor filling its
            // buffer) ends there instead of fetching more of the file.
            return Ok(0);
        }
        let p = self.page(self.pos / PAGE)?;
        let at = (self.pos % PAGE) as usize;
        let n = out.len().min(p.len() - at);
        out[..n].copy_from_slice(&p[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SparseReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if p < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start of the file"));
        }
        self.pos = p as u64;
        Ok(self.pos)
    }
}

/// Decoded band-1 blocks, least recently used dropped first, within a byte budget.
struct BlockCache {
    budget: usize,
    used: usize,
    tick: u64,
    blocks: HashMap<u32, (Arc<Vec<f32>>, u64)>,
    /// Blocks a worker is fetching and decoding now (see `GeoTiffSource::read_window`).
    in_flight: HashSet<u32>,
}

impl BlockCache {
    fn get(&mut self, i: u32) -> Option<Arc<Vec<f32>>> {
        self.tick += 1;
        let t = self.tick;
        self.blocks.get_mut(&i).map(|e| {
            e.1 = t;
            e.0.clone()
        })
    }
    fn put(&mut self, i: u32, b: Arc<Vec<f32>>) {
        self.tick += 1;
        self.used += b.len() * 4;
        if let Some(old) = self.blocks.insert(i, (b, self.tick)) {
            self.used -= old.0.len() * 4;
        }
        while self.used > self.budget && self.blocks.len() > 1 {
            let Some((&k, _)) = self.blocks.iter().min_by_key(|(_, e)| e.1) else { break };
            if let Some(old) = self.blocks.remove(&k) {
                self.used -= old.0.len() * 4;
            }
        }
    }
}

/// Compression codes (TIFF 6.0 §3, Adobe and GDAL registrations) with the names we report.
fn compression_name(c: u16) -> Result<&'static str, String> {
    Ok(match c {
        1 => "none",
        5 => "lzw",
        8 | 32946 => "deflate",
        32773 => "packbits",
        50000 => "zstd",
        6 | 7 => return Err("JPEG-compressed samples are lossy and not supported for heights; re-encode with -co COMPRESS=DEFLATE".into()),
        34887 => "lerc",
        50001 => return Err("WebP compression is not supported for heights; re-encode with -co COMPRESS=DEFLATE".into()),
        34712 => return Err("JPEG 2000 compression is not supported; re-encode with -co COMPRESS=DEFLATE".into()),
        34925 => return Err("LZMA compression is not supported; re-encode with -co COMPRESS=DEFLATE or ZSTD".into()),
        c => return Err(format!("TIFF compression {c} is not supported (supported: none, LZW, Deflate, PackBits, ZSTD, LERC)")),
    })
}

/// The most bytes one block may take decoded (its samples, padding included; `tiff`'s decode buffer limit too).
const BLOCK_BYTES: usize = 1 << 30;

/// GDAL's metadata tag: XML with dataset and band items (`GDAL_METADATA`, TIFF tag 42112).
const GDAL_METADATA: u16 = 42112;

/// Band 1's `(scale, offset)` from GDAL's metadata XML: `<Item name="SCALE" sample="0" role="scale">0.1</Item>` and
/// the `offset` role (a missing one is 1 or 0). `Ok(None)` when it states neither; an error for XML or numbers that
/// do not parse.
pub(crate) fn gdal_band_scale(xml: &str) -> Result<Option<(f64, f64)>, String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml.trim_end_matches('\0'));
    let (mut scale, mut offset) = (None, None);
    // The role of the band-1 item being read, if it is one we want.
    let mut role: Option<String> = None;
    loop {
        match r.read_event().map_err(|e| format!("XML: {e}"))? {
            Event::Start(e) if e.name().as_ref() == b"Item" => {
                let attr = |k: &str| -> Result<Option<String>, String> {
                    match e.try_get_attribute(k).map_err(|e| format!("XML: {e}"))? {
                        Some(a) => Ok(Some(a.normalized_value(quick_xml::XmlVersion::default()).map_err(|e| format!("XML: {e}"))?.into_owned())),
                        None => Ok(None),
                    }
                };
                role = match (attr("sample")?.as_deref(), attr("role")?) {
                    (Some("0"), Some(r)) if r == "scale" || r == "offset" => Some(r),
                    _ => None,
                };
            }
            Event::Text(t) => {
                if let Some(k) = role.take() {
                    let s = t.decode().map_err(|e| format!("XML: {e}"))?;
                    let v: f64 = s.trim().parse().map_err(|_| format!("band 1 {k} '{}' is not a number", s.trim()))?;
                    if !v.is_finite() {
                        return Err(format!("band 1 {k} {v} is not finite"));
                    }
                    if k == "scale" {
                        scale = Some(v);
                    } else {
                        offset = Some(v);
                    }
                }
            }
            Event::End(_) => role = None,
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((scale.is_some() || offset.is_some()).then(|| (scale.unwrap_or(1.0), offset.unwrap_or(0.0))))
}

/// A compression [`GeoTiffSource::fp32_block`] undoes itself, with the crate `tiff` uses for it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Codec {
    None,
    Lzw,
    Deflate,
    Zstd,
    PackBits,
}

impl Codec {
    /// The codec of a compression by its [`compression_name`].
    fn of(name: &str) -> Option<Codec> {
        match name {
            "none" => Some(Codec::None),
            "lzw" => Some(Codec::Lzw),
            "deflate" => Some(Codec::Deflate),
            "zstd" => Some(Codec::Zstd),
            "packbits" => Some(Codec::PackBits),
            _ => None,
        }
    }

    /// Decompresses `raw` into exactly `out.len()` bytes (a block's encoded rows; bytes past them are ignored, as
    /// `tiff` ignores them). An error when the data is corrupt or ends early.
    fn decompress(self, raw: &[u8], out: &mut [u8]) -> Result<(), String> {
        let need = out.len();
        let short = |n: usize| format!("the compressed data ends after {n} of the block's {need} bytes (truncated or corrupt)");
        match self {
            Codec::None => out.copy_from_slice(raw.get(..need).ok_or_else(|| short(raw.len()))?),
            Codec::Deflate => {
                let mut z = flate2::Decompress::new(true);
                z.decompress(raw, out, flate2::FlushDecompress::Finish).map_err(|e| format!("corrupt deflate stream ({e})"))?;
                if (z.total_out() as usize) < need {
                    return Err(short(z.total_out() as usize));
                }
            }
            Codec::Lzw => {
                let mut z = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
                let (mut inp, mut at) = (raw, 0);
                while at < out.len() {
                    let r = z.decode_bytes(inp, &mut out[at..]);
                    inp = &inp[r.consumed_in..];
                    at += r.consumed_out;
                    match r.status {
                        Ok(weezl::LzwStatus::Ok) if r.consumed_in + r.consumed_out > 0 => {}
                        Ok(_) if at == out.len() => {}
                        Ok(_) => return Err(short(at)),
                        Err(e) => return Err(format!("corrupt LZW data ({e})")),
                    }
                }
            }
            Codec::Zstd => {
                use std::io::Read;
                let mut z = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| format!("ZSTD: {e}"))?;
                z.read_exact(out).map_err(|e| format!("corrupt or truncated ZSTD data ({e})"))?;
            }
            // TIFF 6.0 §9: a header byte n, then n + 1 literal bytes (n >= 0) or one byte repeated 1 - n times
            // (n in -127..=-1); -128 is skipped.
            Codec::PackBits => {
                let (mut i, mut at) = (0, 0);
                while at < need {
                    let n = *raw.get(i).ok_or_else(|| short(at))? as i8;
                    i += 1;
                    if n >= 0 {
                        let k = (n as usize + 1).min(need - at);
                        let lit = raw.get(i..i + k).ok_or_else(|| short(at))?;
                        out[at..at + k].copy_from_slice(lit);
                        (i, at) = (i + n as usize + 1, at + k);
                    } else if n != -128 {
                        let b = *raw.get(i).ok_or_else(|| short(at))?;
                        let k = ((1 - n as isize) as usize).min(need - at);
                        out[at..at + k].fill(b);
                        (i, at) = (i + 1, at + k);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Undoes the floating-point predictor (TIFF Technical Note 3) on one encoded row of f32 samples, `stride` samples
/// per pixel, and writes sample `band` of each of the row's first `out.len()` pixels (NaN where sample `alpha`,
/// if given, is 0). The row holds four planes of one byte per sample, most significant first, each byte the
/// difference from the byte `stride` before it; whatever the file's byte order.
fn fp32_row(row: &mut [u8], stride: usize, band: usize, alpha: Option<usize>, out: &mut [f32]) {
    if stride == 1 {
        // The running sum: one dependent add per byte, the loop's whole cost.
        let mut acc = 0u8;
        for b in row.iter_mut() {
            acc = acc.wrapping_add(*b);
            *b = acc;
        }
    } else {
        for k in stride..row.len() {
            row[k] = row[k].wrapping_add(row[k - stride]);
        }
    }
    let n = row.len() / 4;
    let (p0, rest) = row.split_at(n);
    let (p1, rest) = rest.split_at(n);
    let (p2, p3) = rest.split_at(n);
    if stride == 1 {
        for ((((o, &a), &b), &c), &d) in out.iter_mut().zip(p0).zip(p1).zip(p2).zip(p3) {
            *o = f32::from_bits(u32::from_be_bytes([a, b, c, d]));
        }
    } else {
        let at = |j: usize| f32::from_bits(u32::from_be_bytes([p0[j], p1[j], p2[j], p3[j]]));
        for (x, o) in out.iter_mut().enumerate() {
            *o = if alpha.is_some_and(|a| at(x * stride + a) == 0.0) { f32::NAN } else { at(x * stride + band) };
        }
    }
}

/// Decoded bytes a reader may keep to serve several passes over a raster (a pyramid's levels each read it again) from
/// one decode: a raster whose blocks fit is kept whole.
pub const MULTI_PASS_CACHE: usize = 512 << 20;

/// Bytes of decoded blocks a reader keeps (see [`GeoTiffSource::open`] and `plan_windows`, which `terrafarm info`
/// also calls to estimate memory).
/// - Before the windows are known: an eighth of the raster's f32 bytes, between 4 and 64 MiB.
/// - With tiles read in row order whose windows in flight span `rows` rows (a window's height, plus a tile's for
///   each further row of tiles the workers can be on): at least the block rows such a band touches, so that each
///   tile finds the blocks the tiles before it decoded and a pass decodes each block once. A band of `rows` rows
///   touches up to `rows / bh` block rows rounded up, plus one.
/// - Read in `passes` > 1 passes: the whole raster's blocks when they fit in [`MULTI_PASS_CACHE`].
/// - Never more than the whole raster's blocks.
fn cache_budget(w: usize, h: usize, (bw, bh): (usize, usize), rows: usize, passes: usize) -> usize {
    let block = bw.saturating_mul(bh).saturating_mul(4);
    let across = w.div_ceil(bw.max(1));
    let all = across.saturating_mul(h.div_ceil(bh.max(1))).saturating_mul(block).max(block);
    if passes > 1 && all <= MULTI_PASS_CACHE {
        return all;
    }
    let base = (w.saturating_mul(h) / 2).clamp(4 << 20, 64 << 20);
    let band = if rows == 0 { 0 } else { (rows.div_ceil(bh.max(1)) + 1).saturating_mul(across).saturating_mul(block) };
    base.max(band).min(all)
}

pub struct GeoTiffSource {
    path: PathBuf,
    src: Arc<dyn ByteSource>,
    width: usize,
    height: usize,
    block_w: usize,
    block_h: usize,
    blocks_across: usize,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    /// Samples per pixel of band 1's blocks: all of them when interleaved (chunky), 1 when stored as separate planes.
    stride: usize,
    /// The sample read from each pixel of interleaved blocks (0: band 1); a band stored as a plane of its own (the
    /// alpha reader's, see `validity`) is read from its own blocks, which start at `chunk_base`.
    band: usize,
    /// The index of the read band's first block among all the file's blocks (`offsets` start there).
    chunk_base: u32,
    /// The alpha band's sample index (ExtraSamples 1 or 2), when the file has one.
    alpha: Option<usize>,
    /// The alpha band's sample index when it is interleaved with band 1 (pixel by pixel) and is this reader's
    /// validity: each block's samples whose alpha is 0 are NaN as the block is decoded, from the same bytes.
    inline_alpha: Option<usize>,
    /// Columns, rows stored east to west, south to north: windows are read flipped ([`Georef::north_up`]).
    flip: (bool, bool),
    /// Internal tiles (else strips: the last one may hold fewer rows).
    tiled: bool,
    /// f32 samples with the floating-point predictor, in a compression [`fp32_block`] undoes itself: decoded here
    /// instead of by `tiff` (see there).
    fp32: Option<Codec>,
    /// LERC blocks, with the compression wrapped around each blob (`None`, `Deflate` or `Zstd`): decoded here
    /// ([`Self::lerc_block`]) with the crate `lerc-rs`, since `tiff` has no LERC.
    lerc: Option<Codec>,
    /// Band 1's transparency mask ([`Mask`]), when the file holds one.
    mask: Option<Mask>,
    /// Else GDAL's external mask `<file>.msk` (a TIFF of its own, band 1 the mask; with its identity), else the
    /// file's alpha band stored as a plane of its own (an interleaved one is `inline_alpha`): a source read window
    /// for window with the image, 0 meaning "not valid".
    validity: Option<(Box<GeoTiffSource>, Option<Sidecar>)>,
    info: SourceInfo,
    georef: Option<Georef>,
    nodata: Option<f64>,
    band_scale: Option<(f64, f64)>,
    pages: Pages,
    decoders: Mutex<Vec<Decoder<SparseReader>>>,
    cache: Mutex<BlockCache>,
    /// Signalled whenever decoded blocks are put in the cache or a claim on blocks is given up.
    ready: Condvar,
}

/// An internal transparency mask (TIFF 6.0 NewSubfileType 4; what GDAL writes for a per-dataset mask and the COG
/// driver for a source with a mask or alpha): one bit per sample, 0 where the sample is not valid. Its blocks are
/// laid out like the image's, block for block; samples it masks out are read as NaN, holes like no-data.
/// `tiff` 0.11 refuses to decode a transparency mask (PhotometricInterpretation 4), so its blocks are decompressed
/// with [`Codec`] and the bits read here.
#[derive(Debug)]
struct Mask {
    offsets: Vec<u64>,
    counts: Vec<u64>,
    codec: Codec,
    /// 1 (GDAL) or 8 bits per sample (any non-zero byte is valid).
    bits: usize,
}

impl Mask {
    /// Finds the full-resolution mask among the IFDs after the first and checks that it can be applied block for
    /// block: `None` when there is none; an error when there is one that cannot be read, since meshing without it
    /// would turn masked-out samples into terrain.
    fn find(d: &mut Decoder<SparseReader>, (w, h): (u32, u32), tiled: bool, (bw, bh): (usize, usize), blocks: usize, len: u64) -> Result<Option<Mask>, String> {
        let Some(first) = d.ifd_pointer() else { return Ok(None) };
        let te = |e: tiff::TiffError| format!("TIFF: {e}");
        let mut next = d.read_directory(first).map_err(te)?.next();
        let mut seen = HashSet::from([first.0]);
        while let Some(p) = next {
            if !seen.insert(p.0) || seen.len() > 4096 {
                return Err("TIFF directories form a loop or run past 4096".into());
            }
            let dir = d.read_directory(p).map_err(te)?;
            next = dir.next();
            let mut t = d.read_directory_tags(&dir);
            let mut u = |tag: Tag| t.find_tag_unsigned::<u64>(tag).map_err(te);
            let kind = u(Tag::NewSubfileType)?.unwrap_or(0);
            // Bit 2: a transparency mask; bit 0: of a reduced-resolution image (an overview's mask).
            if kind & 4 == 0 || kind & 1 != 0 || u(Tag::ImageWidth)? != Some(w as u64) || u(Tag::ImageLength)? != Some(h as u64) {
                continue;
            }
            let bits = u(Tag::BitsPerSample)?.unwrap_or(1) as usize;
            let spp = u(Tag::SamplesPerPixel)?.unwrap_or(1);
            let compression = u(Tag::Compression)?.unwrap_or(1) as u16;
            let predictor = u(Tag::Predictor)?.unwrap_or(1);
            let fill = u(Tag::FillOrder)?.unwrap_or(1);
            let layout =
                if tiled { (u(Tag::TileWidth)?, u(Tag::TileLength)?) } else { (Some(w as u64), Some(u(Tag::RowsPerStrip)?.unwrap_or(h as u64).min(h as u64))) };
            let codec = compression_name(compression).ok().and_then(Codec::of);
            let unusable = |why: String| {
                Err(format!("the file's transparency mask cannot be read ({why}); re-encode it with gdal_translate (e.g. -co COMPRESS=DEFLATE), or drop the mask with -mask none"))
            };
            let Some(codec) = codec else { return unusable(format!("TIFF compression {compression}")) };
            if !matches!(bits, 1 | 8) || spp != 1 || predictor != 1 || fill != 1 {
                return unusable(format!("{bits} bits in {spp} samples per pixel, predictor {predictor}, fill order {fill}"));
            }
            if layout != (Some(bw as u64), Some(bh as u64))
                || d.read_directory_tags(&dir).find_tag(if tiled { Tag::TileOffsets } else { Tag::StripOffsets }).map_err(te)?.is_none()
            {
                return unusable(format!("its blocks are not laid out like the image's {bw}x{bh} {}", if tiled { "tiles" } else { "strips" }));
            }
            let mut t = d.read_directory_tags(&dir);
            let (o, c) = if tiled { (Tag::TileOffsets, Tag::TileByteCounts) } else { (Tag::StripOffsets, Tag::StripByteCounts) };
            let offsets = t.find_tag_unsigned_vec::<u64>(o).map_err(te)?.unwrap_or_default();
            let counts = t.find_tag_unsigned_vec::<u64>(c).map_err(te)?.unwrap_or_default();
            if offsets.len() < blocks || counts.len() < blocks {
                return unusable(format!("it lists {} blocks, the layout needs {blocks}", offsets.len().min(counts.len())));
            }
            if let Some(i) = (0..blocks).find(|&i| offsets[i].checked_add(counts[i]).is_none_or(|end| end > len)) {
                return unusable(format!("its block {i} runs past the end of the file: truncated or corrupt"));
            }
            return Ok(Some(Mask { offsets, counts, codec, bits }));
        }
        Ok(None)
    }

    /// Sets to NaN the samples of `block` (a block of the image, `block_w` wide, its first `dw` × `dh` samples
    /// inside the image) that the mask's bytes `raw` for the same block mark as not valid. Mask rows are as wide as
    /// the image's blocks (a tile's padded width, a strip's full width), rows padded to a byte; a tile holds
    /// `rows` rows.
    fn apply(&self, raw: &[u8], block: &mut [f32], block_w: usize, (dw, dh): (usize, usize), rows: usize) -> Result<(), String> {
        let row_bytes = (block_w * self.bits).div_ceil(8);
        let mut bytes = vec![0u8; row_bytes * rows];
        self.codec.decompress(raw, &mut bytes)?;
        for (y, row) in bytes.chunks_exact(row_bytes).take(dh).enumerate() {
            let out = &mut block[y * block_w..y * block_w + dw];
            if self.bits == 8 {
                out.iter_mut().zip(row).filter(|(_, &m)| m == 0).for_each(|(v, _)| *v = f32::NAN);
            } else {
                for (x, v) in out.iter_mut().enumerate() {
                    if row[x >> 3] & (0x80 >> (x & 7)) == 0 {
                        *v = f32::NAN;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether block `i` of a block list is absent (offset and byte count 0: see [`GeoTiffSource::missing`]).
fn missing(offsets: &[u64], counts: &[u64], i: u32) -> bool {
    offsets[i as usize] == 0 || counts[i as usize] == 0
}

fn tiff_err(path: &Path, e: impl std::fmt::Display) -> RasterError {
    RasterError::format(path, format!("TIFF: {e}"))
}

impl GeoTiffSource {
    fn poisoned(&self) -> RasterError {
        RasterError::format(&self.path, "block cache poisoned by an earlier panic")
    }

    /// Fetches and decodes `ids` (claimed: marked in flight by this worker), puts them in the cache and in `have`.
    /// The claim is released however this ends (error or panic included), and waiting workers are woken.
    fn decode_claimed(&self, ids: &[u32], have: &mut HashMap<u32, Arc<Vec<f32>>>) -> Result<(), RasterError> {
        struct Claim<'a>(&'a GeoTiffSource, &'a [u32]);
        impl Drop for Claim<'_> {
            fn drop(&mut self) {
                let mut c = self.0.cache.lock().unwrap_or_else(|e| e.into_inner());
                for i in self.1 {
                    c.in_flight.remove(i);
                }
                drop(c);
                self.0.ready.notify_all();
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let _claim = Claim(self, ids);
        // One request list for every claimed block: merged into few ranged GETs on blob storage.
        // Absent blocks ([`Self::missing`]) are not fetched.
        let fetch = |offsets: &[u64], counts: &[u64], i: u32| if missing(offsets, counts, i) { 0 } else { counts[i as usize] as usize };
        let mut bufs: Vec<Vec<u8>> = ids.iter().map(|&i| vec![0u8; fetch(&self.offsets, &self.counts, i)]).collect();
        let mut mask_bufs: Vec<Vec<u8>> = match &self.mask {
            Some(m) => ids.iter().map(|&i| vec![0u8; fetch(&m.offsets, &m.counts, i)]).collect(),
            None => Vec::new(),
        };
        let mut reqs: Vec<(u64, &mut [u8])> = ids.iter().zip(bufs.iter_mut()).map(|(&i, b)| (self.offsets[i as usize], b.as_mut_slice())).collect();
        if let Some(m) = &self.mask {
            reqs.extend(ids.iter().zip(mask_bufs.iter_mut()).map(|(&i, b)| (m.offsets[i as usize], b.as_mut_slice())));
        }
        reqs.retain(|r| !r.1.is_empty());
        self.src.read_many(&mut reqs).map_err(|e| RasterError::io(&self.path, e))?;
        // Samples the mask marks as not valid become NaN before the block is shared.
        let masked = |k: usize, i: u32, mut block: Vec<f32>| -> Result<(u32, Arc<Vec<f32>>), RasterError> {
            if let Some(m) = &self.mask {
                if missing(&m.offsets, &m.counts, i) {
                    // As GDAL reads a missing mask block: 0, not valid.
                    block.fill(f32::NAN);
                } else {
                    let rows = if self.tiled { self.block_h } else { self.inside(i).1 };
                    m.apply(&mask_bufs[k], &mut block, self.block_w, self.inside(i), rows).map_err(|e| tiff_err(&self.path, format!("mask block {i}: {e}")))?;
                }
            }
            Ok((i, Arc::new(block)))
        };
        // LERC blocks and f32 blocks with the floating-point predictor are decoded here; the rest by `tiff`.
        enum Own<L, F> {
            Lerc(L),
            Fp32(F),
        }
        let decoded: Decoded = if let Some(own) = self.lerc.map(Own::Lerc).or(self.fp32.map(Own::Fp32)) {
            let block = |i: u32, b: &[u8]| match own {
                Own::Lerc(wrap) => self.lerc_block(wrap, i, b),
                Own::Fp32(codec) => self.fp32_block(codec, i, b),
            };
            ids.iter()
                .zip(&bufs)
                .enumerate()
                .map(|(k, (&i, b))| masked(k, i, if self.missing(i) { self.missing_block() } else { block(i, b)? }))
                .collect::<Result<_, RasterError>>()?
        } else {
            let mut d = match self.decoders.lock().map_err(|_| self.poisoned())?.pop() {
                Some(d) => d,
                None => Self::decoder(&self.path, &self.src, &self.pages)?,
            };
            d.inner().blocks = ids.iter().zip(bufs).map(|(&i, b)| (self.offsets[i as usize], Arc::new(b))).collect();
            let decoded: Result<Decoded, RasterError> = ids
                .iter()
                .enumerate()
                .map(|(k, &i)| masked(k, i, if self.missing(i) { self.missing_block() } else { self.decode_block(&mut d, i)? }))
                .collect();
            d.inner().blocks.clear();
            self.decoders.lock().map_err(|_| self.poisoned())?.push(d);
            decoded?
        };
        let mut c = self.cache.lock().map_err(|_| self.poisoned())?;
        for (i, b) in decoded {
            c.put(i, b.clone());
            have.insert(i, b);
        }
        Ok(())
    }

    /// Whether block `i` is absent from the file: GDAL omits blocks that hold only the no-data value (or 0) when
    /// writing with SPARSE_OK, and gives them offset and byte count 0.
    fn missing(&self, i: u32) -> bool {
        missing(&self.offsets, &self.counts, i)
    }

    /// An absent block as GDAL reads it: the no-data value, so holes here (NaN, whatever `--nodata` says), or 0 in a
    /// file that declares none.
    fn missing_block(&self) -> Vec<f32> {
        // (An absent block's alpha is 0 too: not valid.)
        vec![if self.nodata.is_some() || self.inline_alpha.is_some() { f32::NAN } else { 0.0 }; self.block_w * self.block_h]
    }

    pub fn open(path: &Path, src: Arc<dyn ByteSource>, opts: &ReadOptions) -> Result<GeoTiffSource, RasterError> {
        let mut s = Self::open_file(path, src, Pages::default(), opts, 0)?;
        s.flip = s.georef.as_mut().map_or((false, false), |g| g.north_up(s.width, s.height));
        if s.mask.is_none() {
            s.validity = Self::external_mask(path, &s, opts)?.map(|(m, sidecar)| (m, Some(sidecar)));
            if let Some((m, _)) = &s.validity {
                s.info.mask = Some(format!("external {}, {}: masked-out samples are holes", m.path.display(), m.info.sample_type));
            }
        }
        if let (None, Some(a)) = (&s.validity, s.alpha.filter(|_| s.mask.is_none())) {
            if s.stride > 1 {
                // Interleaved: the alpha samples are in band 1's own blocks (GDAL's default layout).
                s.inline_alpha = Some(a);
            } else {
                // A plane of its own, in the same file: its header pages, already read, are shared.
                let pages = s.pages.clone();
                s.validity = Some((Box::new(Self::open_file(path, s.src.clone(), pages, &ReadOptions { nodata: None, ..opts.clone() }, a)?), None));
            }
            s.info.mask = Some(format!("alpha band {}: transparent samples (alpha 0) are holes", a + 1));
        }
        Ok(s)
    }

    /// GDAL's external mask of `s` (`<path>.msk`, next to the file or blob), when there is one: it must be a TIFF of
    /// the image's size.
    fn external_mask(path: &Path, s: &GeoTiffSource, opts: &ReadOptions) -> Result<Option<(Box<GeoTiffSource>, Sidecar)>, RasterError> {
        let Some(src) = s.src.sibling(".msk").map_err(|e| RasterError::io(path, e))? else { return Ok(None) };
        let mut name = path.as_os_str().to_owned();
        name.push(".msk");
        let name = PathBuf::from(name);
        let m = Self::open_file(&name, src.clone(), Pages::default(), &ReadOptions { nodata: None, ..opts.clone() }, 0)?;
        if (m.width, m.height) != (s.width, s.height) {
            return Err(RasterError::format(&name, format!("mask of {}x{} samples for an image of {}x{}", m.width, m.height, s.width, s.height)));
        }
        Ok(Some((Box::new(m), Sidecar { name, src })))
    }

    /// Sample `band` of the file (0: band 1), with its internal mask if it has one.
    /// `pages`: the file's page cache (shared by the readers of two bands of one file).
    fn open_file(path: &Path, src: Arc<dyn ByteSource>, pages: Pages, opts: &ReadOptions, band: usize) -> Result<GeoTiffSource, RasterError> {
        let mut d = Self::decoder(path, &src, &pages)?;
        let (w, h) = d.dimensions().map_err(|e| tiff_err(path, e))?;
        check_samples(path, w as u64, h as u64, opts.max_samples)?;
        let tag_u = |d: &mut Decoder<SparseReader>, t: Tag| d.find_tag_unsigned::<u64>(t).map_err(|e| tiff_err(path, e));
        let compression = compression_name(tag_u(&mut d, Tag::Compression)?.unwrap_or(1) as u16).map_err(|m| RasterError::format(path, m))?;
        let predictor = match tag_u(&mut d, Tag::Predictor)?.unwrap_or(1) {
            1 => "none",
            2 => "horizontal",
            3 => "floating-point",
            p => return Err(RasterError::format(path, format!("TIFF predictor {p} is not supported"))),
        };
        let spp = tag_u(&mut d, Tag::SamplesPerPixel)?.unwrap_or(1).max(1) as usize;
        let planar = tag_u(&mut d, Tag::PlanarConfiguration)?.unwrap_or(1) == 2;
        let bits = d.find_tag_unsigned_vec::<u16>(Tag::BitsPerSample).map_err(|e| tiff_err(path, e))?.unwrap_or_else(|| vec![1]);
        let format = d.find_tag_unsigned_vec::<u16>(Tag::SampleFormat).map_err(|e| tiff_err(path, e))?.unwrap_or_else(|| vec![1]);
        let sample_type = match (format.first().copied().unwrap_or(1), bits.first().copied().unwrap_or(1)) {
            (1, 8) => "u8",
            (1, 16) => "u16",
            (1, 32) => "u32",
            (2, 8) => "i8",
            (2, 16) => "i16",
            (2, 32) => "i32",
            (3, 32) => "f32",
            (3, 64) => "f64",
            (f, b) => {
                let kind = match f {
                    1 => "unsigned",
                    2 => "signed",
                    3 => "float",
                    _ => "other",
                };
                return Err(RasterError::format(path, format!("{b}-bit {kind} samples are not supported (u8, u16, u32, i8, i16, i32, f32, f64 are)")));
            }
        };
        let fp32 = if (sample_type, predictor) == ("f32", "floating-point") { Codec::of(compression) } else { None };
        // LercParameters (GDAL's tag 50674): the LERC version and what wraps each blob (0 none, 1 Deflate, 2 ZSTD).
        let lerc = if compression == "lerc" {
            let p = d.find_tag_unsigned_vec::<u32>(Tag::Unknown(50674)).map_err(|e| tiff_err(path, e))?.unwrap_or_default();
            Some(match p.get(1).copied().unwrap_or(0) {
                0 => Codec::None,
                1 => Codec::Deflate,
                2 => Codec::Zstd,
                w => return Err(RasterError::format(path, format!("LERC blobs wrapped in compression {w} are not supported (none, Deflate, ZSTD are)"))),
            })
        } else {
            None
        };
        let tiled = d.find_tag(Tag::TileOffsets).map_err(|e| tiff_err(path, e))?.is_some();
        let (offsets, counts) = if tiled {
            (d.find_tag_unsigned_vec::<u64>(Tag::TileOffsets), d.find_tag_unsigned_vec::<u64>(Tag::TileByteCounts))
        } else {
            (d.find_tag_unsigned_vec::<u64>(Tag::StripOffsets), d.find_tag_unsigned_vec::<u64>(Tag::StripByteCounts))
        };
        let offsets = offsets.map_err(|e| tiff_err(path, e))?.ok_or_else(|| RasterError::format(path, "TIFF has no block offsets"))?;
        let counts = counts.map_err(|e| tiff_err(path, e))?.ok_or_else(|| RasterError::format(path, "TIFF has no block byte counts"))?;
        // Block size from the tags themselves (tiff's own accessor unwraps), checked before any arithmetic on it.
        let (bw, bh) = if tiled {
            (tag_u(&mut d, Tag::TileWidth)?.unwrap_or(0), tag_u(&mut d, Tag::TileLength)?.unwrap_or(0))
        } else {
            (w as u64, tag_u(&mut d, Tag::RowsPerStrip)?.unwrap_or(h as u64).min(h as u64))
        };
        if bw == 0 || bh == 0 || bw > 1 << 20 || bh > 1 << 24 {
            return Err(RasterError::format(path, format!("TIFF block size {bw}x{bh} is not usable")));
        }
        let (bw, bh) = (bw as usize, bh as usize);
        // A block is decoded whole (padding included, and as f32 for the cache): bound it as `tiff`'s own decode
        // buffer is bounded, so a header claiming huge tiles over a small image fails here, not in an allocation.
        // Samples per pixel in band 1's blocks.
        let stride = if planar { 1 } else { spp };
        let block_bytes = bw.saturating_mul(bh).saturating_mul(stride).saturating_mul(4);
        if block_bytes > BLOCK_BYTES {
            return Err(RasterError::format(
                path,
                format!(
                    "TIFF blocks of {bw}x{bh} samples ({} MiB decoded) are larger than terrafarm decodes at once ({} MiB); re-tile with gdal_translate -co TILED=YES",
                    block_bytes >> 20,
                    BLOCK_BYTES >> 20
                ),
            ));
        }
        let blocks_across = (w as usize).div_ceil(bw);
        let per_plane = blocks_across * (h as usize).div_ceil(bh);
        let planes = if planar { spp } else { 1 };
        if offsets.len() < per_plane * planes || counts.len() < offsets.len() {
            return Err(RasterError::format(path, format!("TIFF lists {} blocks, the layout needs {}", offsets.len().min(counts.len()), per_plane * planes)));
        }
        // ExtraSamples (TIFF 6.0 §18) names the samples past the colour ones: 1 and 2 are alpha.
        let extra = d.find_tag_unsigned_vec::<u16>(Tag::ExtraSamples).map_err(|e| tiff_err(path, e))?.unwrap_or_default();
        let alpha = extra.iter().position(|&e| matches!(e, 1 | 2)).map(|k| spp - extra.len().min(spp) + k).filter(|&a| a > 0 && a < spp);
        let chunk_base = if planar { band * per_plane } else { 0 };
        let (offsets, counts) = (offsets[chunk_base..chunk_base + per_plane].to_vec(), counts[chunk_base..chunk_base + per_plane].to_vec());
        let len = src.len();
        if let Some(i) = (0..per_plane).find(|&i| offsets[i].checked_add(counts[i]).is_none_or(|end| end > len)) {
            return Err(RasterError::format(
                path,
                format!("TIFF block {i} runs past the end of the file ({} + {} > {len} bytes): truncated or corrupt", offsets[i], counts[i]),
            ));
        }
        let mask = {
            let mut md = Self::decoder(path, &src, &pages)?;
            Mask::find(&mut md, (w, h), tiled, (bw, bh), per_plane, len).map_err(|m| RasterError::format(path, m))?
        };
        let f64s = |d: &mut Decoder<SparseReader>, t: Tag| -> Result<Option<Vec<f64>>, RasterError> {
            d.find_tag(t).map_err(|e| tiff_err(path, e))?.map(|v| v.into_f64_vec().map_err(|e| tiff_err(path, e))).transpose()
        };
        let tags = GeoTags {
            pixel_scale: f64s(&mut d, Tag::ModelPixelScaleTag)?,
            tiepoint: f64s(&mut d, Tag::ModelTiepointTag)?,
            transformation: f64s(&mut d, Tag::ModelTransformationTag)?,
            key_directory: d.find_tag_unsigned_vec::<u16>(Tag::GeoKeyDirectoryTag).map_err(|e| tiff_err(path, e))?,
            double_params: f64s(&mut d, Tag::GeoDoubleParamsTag)?,
        };
        let georef = tags.georef().map_err(|m| RasterError::format(path, m))?;
        let z_tags = tags.z_scale();
        let nodata = match d.find_tag(Tag::GdalNodata).map_err(|e| tiff_err(path, e))? {
            Some(v) => {
                let s = v.into_string().map_err(|e| tiff_err(path, e))?;
                let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
                Some(s.parse::<f64>().map_err(|_| RasterError::format(path, format!("GDAL_NODATA '{s}' is not a number")))?)
            }
            None => None,
        };
        // Band 1's scale and offset: GDAL's metadata (malformed metadata is skipped with a warning, as GDAL does), else
        // the Z scale of the georeferencing tags ([`GeoTags::z_scale`]).
        let band_scale = match d.find_tag(Tag::Unknown(GDAL_METADATA)).map_err(|e| tiff_err(path, e))? {
            Some(v) => match v.into_string().map_err(|e| e.to_string()).and_then(|s| gdal_band_scale(&s)) {
                Ok(s) => s,
                Err(m) => {
                    tracing::warn!("{}: GDAL_METADATA ignored: {m}", path.display());
                    None
                }
            },
            None => None,
        }
        .or(z_tags);
        if spp > 1 && band == 0 && !(spp == 2 && alpha.is_some()) {
            tracing::warn!("{}: {spp} bands; meshing band 1", path.display());
        }
        let info = SourceInfo {
            format: if tiled { "GeoTIFF (tiled)".into() } else { "GeoTIFF (striped)".into() },
            sample_type: sample_type.into(),
            compression: Some(format!("{compression}, predictor {predictor}")),
            blocks: Some(format!(
                "{bw}x{bh} {} ({} blocks{})",
                if tiled { "tiles" } else { "strips" },
                per_plane,
                if spp > 1 { format!(", {spp} bands") } else { String::new() }
            )),
            bigtiff: Some(Self::is_bigtiff(&src)),
            little_endian: Some(matches!(d.byte_order(), tiff::tags::ByteOrder::LittleEndian)),
            mask: mask.as_ref().map(|m| format!("internal, {}-bit, {}: masked-out samples are holes", m.bits, format!("{:?}", m.codec).to_lowercase())),
        };
        // Decoded-block cache: an eighth of the raster's f32 bytes (w·h·4 / 8), between 4 and 64 MiB, until the
        // windows' height is known ([`Source::plan_windows`]); small against the rasters this reader is for.
        let budget = cache_budget(w as usize, h as usize, (bw, bh), 0, 1);
        Ok(GeoTiffSource {
            path: path.to_path_buf(),
            src,
            width: w as usize,
            height: h as usize,
            block_w: bw,
            block_h: bh,
            blocks_across,
            offsets,
            counts,
            stride,
            band: if planar { 0 } else { band },
            chunk_base: chunk_base as u32,
            alpha,
            inline_alpha: None,
            flip: (false, false),
            tiled,
            fp32,
            lerc,
            mask,
            validity: None,
            info,
            georef,
            nodata,
            band_scale,
            pages,
            decoders: Mutex::new(vec![d]),
            cache: Mutex::new(BlockCache { budget, used: 0, tick: 0, blocks: HashMap::new(), in_flight: HashSet::new() }),
            ready: Condvar::new(),
        })
    }

    fn is_bigtiff(src: &Arc<dyn ByteSource>) -> bool {
        let mut h = [0u8; 4];
        src.read_at(0, &mut h).is_ok() && (h[2..4] == [43, 0] || h[2..4] == [0, 43])
    }

    fn decoder(path: &Path, src: &Arc<dyn ByteSource>, pages: &Pages) -> Result<Decoder<SparseReader>, RasterError> {
        let r = SparseReader { src: src.clone(), len: src.len(), pos: 0, blocks: HashMap::new(), pages: pages.clone() };
        let mut limits = Limits::default();
        limits.decoding_buffer_size = BLOCK_BYTES;
        Ok(Decoder::new(r).map_err(|e| tiff_err(path, e))?.with_limits(limits))
    }

    /// Columns and rows of block `i` (row-major over the block grid) inside the image: edge blocks are padded in
    /// tiles, short in strips.
    fn inside(&self, i: u32) -> (usize, usize) {
        let (bx, by) = (i as usize % self.blocks_across, i as usize / self.blocks_across);
        ((self.width - bx * self.block_w).min(self.block_w), (self.height - by * self.block_h).min(self.block_h))
    }

    /// [`Self::decode_block`] for f32 samples with the floating-point predictor, from the block's bytes `raw`.
    /// `tiff` 0.11 undoes that predictor a byte at a time through bounds-checked indexing and a copy of every row:
    /// it took 11% of a 4097² COG's level-0 run (`perf`), more than the inflate before it. Here the running sum
    /// and the byte planes are walked linearly, straight into the block; the decompressors are the crates `tiff`
    /// itself uses (flate2, weezl, zstd; PackBits, a few lines, is undone in [`Codec`]), so the same streams are accepted. Checked against `tiff`'s decode of
    /// GDAL-written files (tests/geotiff.rs) and in the unit tests below.
    fn fp32_block(&self, codec: Codec, i: u32, raw: &[u8]) -> Result<Vec<f32>, RasterError> {
        let (dw, dh) = self.inside(i);
        // Encoded rows: a tile is always block_w × block_h (padded at the edges); a strip is the image's width and
        // the last strip holds only the rows left.
        let stride = self.stride;
        let row_bytes = self.block_w * stride * 4;
        let rows = if self.tiled { self.block_h } else { dh };
        let mut bytes = vec![0u8; row_bytes * rows];
        codec.decompress(raw, &mut bytes).map_err(|m| tiff_err(&self.path, format!("block {i}: {m}")))?;
        let mut out = vec![f32::NAN; self.block_w * self.block_h];
        for (y, row) in bytes.chunks_exact_mut(row_bytes).take(dh).enumerate() {
            fp32_row(row, stride, self.band, self.inline_alpha, &mut out[y * self.block_w..y * self.block_w + dw]);
        }
        Ok(out)
    }

    /// [`Self::decode_block`] for LERC: `raw` is the block's LERC blob, wrapped in `wrap`. Samples the blob's own
    /// validity mask marks as not valid (GDAL writes one for a float band's NaN) are NaN. Interleaved samples are the
    /// blob's depth (or its bands).
    fn lerc_block(&self, wrap: Codec, i: u32, raw: &[u8]) -> Result<Vec<f32>, RasterError> {
        use std::io::Read;
        let (dw, dh) = self.inside(i);
        let err = |m: String| tiff_err(&self.path, format!("LERC block {i}: {m}"));
        // A blob is at most a little larger than the samples it holds: bound what the wrapper may inflate to.
        let limit = (self.block_w * self.block_h * self.stride * 8 + (64 << 10)) as u64;
        let mut unwrapped = Vec::new();
        let blob: &[u8] = match wrap {
            Codec::Deflate => {
                flate2::read::ZlibDecoder::new(raw).take(limit).read_to_end(&mut unwrapped).map_err(|e| err(format!("corrupt deflate stream ({e})")))?;
                &unwrapped
            }
            Codec::Zstd => {
                let z = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| err(format!("ZSTD: {e}")))?;
                z.take(limit).read_to_end(&mut unwrapped).map_err(|e| err(format!("corrupt ZSTD data ({e})")))?;
                &unwrapped
            }
            _ => raw,
        };
        let img = lerc::decode(blob).map_err(|e| err(e.to_string()))?;
        let rows = if self.tiled { self.block_h } else { dh };
        let (n, depth, bands) = (img.width as usize * img.height as usize, img.depth as usize, img.bands as usize);
        if (img.width as usize, img.height as usize) != (self.block_w, rows) || self.band.max(self.inline_alpha.unwrap_or(0)) >= depth.max(bands) {
            return Err(err(format!("a blob of {}x{} samples, {depth} deep, {bands} bands, for a block of {}x{rows}", img.width, img.height, self.block_w)));
        }
        let at = |p: usize, band: usize| if depth > 1 { p * depth + band } else { band * n + p };
        let valid = |band: usize| img.valid_masks.get(if bands > 1 { band } else { 0 });
        let (valid, alpha) = (valid(self.band), self.inline_alpha.map(|a| (a, valid(a))));
        let mut out = vec![f32::NAN; self.block_w * self.block_h];
        macro_rules! take {
            ($v:expr) => {{
                let v = $v;
                if v.len() < n * depth * bands {
                    return Err(err(format!("{} values decoded, {} expected", v.len(), n * depth * bands)));
                }
                for y in 0..dh {
                    for x in 0..dw {
                        let p = y * self.block_w + x;
                        // (An alpha sample the blob marks as not valid is not 0: as the alpha band read alone.)
                        let transparent = alpha.is_some_and(|(a, m)| m.is_none_or(|m| m.is_valid(p)) && v[at(p, a)] as f32 == 0.0);
                        if valid.is_none_or(|m| m.is_valid(p)) && !transparent {
                            out[p] = v[at(p, self.band)] as f32;
                        }
                    }
                }
            }};
        }
        match &img.data {
            lerc::SampleData::I8(v) => take!(v),
            lerc::SampleData::U8(v) => take!(v),
            lerc::SampleData::I16(v) => take!(v),
            lerc::SampleData::U16(v) => take!(v),
            lerc::SampleData::I32(v) => take!(v),
            lerc::SampleData::U32(v) => take!(v),
            lerc::SampleData::F32(v) => take!(v),
            lerc::SampleData::F64(v) => take!(v),
        }
        Ok(out)
    }

    /// The read band (band 1, or the alpha band of the alpha reader) of block `i` (row-major over the block grid) as
    /// f32, `block_w × block_h` (edge blocks padded).
    fn decode_block(&self, d: &mut Decoder<SparseReader>, i: u32) -> Result<Vec<f32>, RasterError> {
        let (dw, dh) = self.inside(i);
        let res = d.read_chunk(self.chunk_base + i).map_err(|e| tiff_err(&self.path, format!("block {i}: {e}")))?;
        let step = self.stride;
        let mut out = vec![f32::NAN; self.block_w * self.block_h];
        macro_rules! take {
            ($v:expr) => {{
                let v = $v;
                if v.len() < dw * dh * step {
                    return Err(RasterError::format(&self.path, format!("TIFF block {i} decoded to {} samples, expected {}", v.len(), dw * dh * step)));
                }
                for y in 0..dh {
                    let (row, o) = (&v[y * dw * step..(y + 1) * dw * step], &mut out[y * self.block_w..y * self.block_w + dw]);
                    match self.inline_alpha {
                        None => o.iter_mut().zip(row.chunks_exact(step)).for_each(|(o, p)| *o = p[self.band] as f32),
                        Some(a) => {
                            o.iter_mut().zip(row.chunks_exact(step)).for_each(|(o, p)| *o = if p[a] as f32 == 0.0 { f32::NAN } else { p[self.band] as f32 })
                        }
                    }
                }
            }};
        }
        match res {
            DecodingResult::U8(v) => take!(v),
            DecodingResult::U16(v) => take!(v),
            DecodingResult::U32(v) => take!(v),
            DecodingResult::U64(v) => take!(v),
            DecodingResult::I8(v) => take!(v),
            DecodingResult::I16(v) => take!(v),
            DecodingResult::I32(v) => take!(v),
            DecodingResult::I64(v) => take!(v),
            DecodingResult::F32(v) => take!(v),
            DecodingResult::F64(v) => take!(v),
            DecodingResult::F16(v) => take!(v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>()),
        }
        Ok(out)
    }
}

/// A sidecar file read with the input (GDAL's external mask), kept to name it in the resume key.
struct Sidecar {
    name: PathBuf,
    src: Arc<dyn ByteSource>,
}

impl Sidecar {
    /// Its blob's ETag, else the SHA-256 of its bytes: computed when asked (for the resume key, once per run), not
    /// when the input is opened on every rank.
    fn identity(&self) -> Result<String, RasterError> {
        if let Some(id) = self.src.identity() {
            return Ok(id);
        }
        use sha2::Digest;
        let d = sha2::Sha256::digest(super::read_all(&self.name, self.src.as_ref())?);
        Ok(format!("sha256:{}", d.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }
}

impl Source for GeoTiffSource {
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn plan_windows(&self, rows: usize, passes: usize) -> u64 {
        let budget = cache_budget(self.width, self.height, (self.block_w, self.block_h), rows, passes);
        if let Ok(mut c) = self.cache.lock() {
            c.budget = budget;
        }
        budget as u64 + self.validity.as_ref().map_or(0, |(m, _)| m.plan_windows(rows, passes))
    }
    fn sidecars(&self) -> Result<Vec<String>, RasterError> {
        self.validity.iter().filter_map(|(_, sidecar)| sidecar.as_ref()).map(Sidecar::identity).collect()
    }
    /// The window `rect` of the grid as meshed: of the file's grid, flipped where it is not north-up.
    fn read_window(&self, rect: Rect, out: &mut [f32]) -> Result<(), RasterError> {
        let (w, h) = (self.width, self.height);
        let (x0, x1) = if self.flip.0 { (w - rect.x1, w - rect.x0) } else { (rect.x0, rect.x1) };
        let (y0, y1) = if self.flip.1 { (h - rect.y1, h - rect.y0) } else { (rect.y0, rect.y1) };
        self.read_file_window(Rect::new(x0, y0, x1, y1), out)?;
        let rw = rect.width();
        if self.flip.1 {
            let rows = out.len() / rw;
            for r in 0..rows / 2 {
                let (top, bottom) = out.split_at_mut((rows - 1 - r) * rw);
                top[r * rw..(r + 1) * rw].swap_with_slice(&mut bottom[..rw]);
            }
        }
        if self.flip.0 {
            out.chunks_exact_mut(rw).for_each(|row| row.reverse());
        }
        Ok(())
    }
    fn windowed(&self) -> bool {
        true
    }
    fn encoding(&self) -> Encoding {
        Encoding::GeoTiff
    }
    fn georef(&self) -> Option<Georef> {
        self.georef.clone()
    }
    fn band_scale(&self) -> Option<(f64, f64)> {
        self.band_scale
    }
    fn nodata(&self) -> Option<f64> {
        self.nodata
    }
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }
}

impl GeoTiffSource {
    /// The window `rect` of the file's grid, as stored, with the samples its mask or alpha band marks as not valid
    /// read as NaN.
    fn read_file_window(&self, rect: Rect, out: &mut [f32]) -> Result<(), RasterError> {
        let (bx0, bx1) = (rect.x0 / self.block_w, (rect.x1 - 1) / self.block_w);
        let (by0, by1) = (rect.y0 / self.block_h, (rect.y1 - 1) / self.block_h);
        let ids: Vec<u32> = (by0..=by1).flat_map(|by| (bx0..=bx1).map(move |bx| (by * self.blocks_across + bx) as u32)).collect();
        let mut have: HashMap<u32, Arc<Vec<f32>>> = HashMap::new();
        // Blocks in the cache are taken; blocks another worker is decoding are waited for (neighbouring tiles need
        // the same blocks at the same time); the rest are claimed and decoded here.
        let (mut claimed, mut waiting) = (Vec::new(), Vec::new());
        {
            let mut c = self.cache.lock().map_err(|_| self.poisoned())?;
            for &i in &ids {
                if let Some(b) = c.get(i) {
                    have.insert(i, b);
                } else if c.in_flight.contains(&i) {
                    waiting.push(i);
                } else {
                    c.in_flight.insert(i);
                    claimed.push(i);
                }
            }
        }
        self.decode_claimed(&claimed, &mut have)?;
        for i in waiting {
            let mut c = self.cache.lock().map_err(|_| self.poisoned())?;
            loop {
                if let Some(b) = c.get(i) {
                    have.insert(i, b);
                    break;
                }
                if !c.in_flight.contains(&i) {
                    // Its decoder failed (or the block was already dropped again): decode it here.
                    c.in_flight.insert(i);
                    drop(c);
                    self.decode_claimed(&[i], &mut have)?;
                    break;
                }
                c = self.ready.wait(c).map_err(|_| self.poisoned())?;
            }
        }
        let w = rect.width();
        for y in rect.y0..rect.y1 {
            let by = y / self.block_h;
            let row = &mut out[(y - rect.y0) * w..(y - rect.y0 + 1) * w];
            let mut x = rect.x0;
            while x < rect.x1 {
                let bx = x / self.block_w;
                let end = ((bx + 1) * self.block_w).min(rect.x1);
                let b = &have[&((by * self.blocks_across + bx) as u32)];
                let s = (y - by * self.block_h) * self.block_w + (x - bx * self.block_w);
                row[x - rect.x0..end - rect.x0].copy_from_slice(&b[s..s + (end - x)]);
                x = end;
            }
        }
        if let Some((m, _)) = &self.validity {
            let mut valid = vec![0f32; out.len()];
            m.read_file_window(rect, &mut valid)?;
            out.iter_mut().zip(&valid).filter(|(_, &v)| v == 0.0).for_each(|(o, _)| *o = f32::NAN);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The floating-point predictor's encoder as TIFF Technical Note 3 (and libtiff's `fpDiff`) writes it: the
    /// bytes of each sample split into planes, most significant first, then each byte replaced by its difference
    /// from the byte `stride` before it.
    fn fp_encode(samples: &[f32], stride: usize) -> Vec<u8> {
        let n = samples.len();
        let mut planes = vec![0u8; 4 * n];
        for (i, v) in samples.iter().enumerate() {
            for (b, &byte) in v.to_bits().to_be_bytes().iter().enumerate() {
                planes[b * n + i] = byte;
            }
        }
        for k in (stride..4 * n).rev() {
            planes[k] = planes[k].wrapping_sub(planes[k - stride]);
        }
        planes
    }

    /// Every bit of band 1 comes back, for one and several samples per pixel (the other bands differ), rows of odd
    /// lengths, NaN, infinities, signed zeros and subnormals; an edge block writes only its pixels inside the image.
    #[test]
    fn fp32_rows_decode_what_the_predictor_encodes() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u32
        };
        for stride in [1, 2, 3] {
            for pixels in [1usize, 2, 7, 64, 257] {
                let samples: Vec<f32> = (0..pixels * stride)
                    .map(|k| match k % 9 {
                        0 => f32::NAN,
                        1 => -0.0,
                        2 => f32::from_bits(1),
                        3 => f32::NEG_INFINITY,
                        _ => f32::from_bits(next()),
                    })
                    .collect();
                for inside in [pixels, pixels.div_ceil(2)] {
                    let mut row = fp_encode(&samples, stride);
                    let mut out = vec![1.5f32; pixels];
                    fp32_row(&mut row, stride, 0, None, &mut out[..inside]);
                    for (x, v) in out.iter().enumerate() {
                        let want = if x < inside { samples[x * stride] } else { 1.5 };
                        assert_eq!(v.to_bits(), want.to_bits(), "stride {stride}, {pixels} pixels ({inside} inside), pixel {x}");
                    }
                }
            }
        }
    }

    /// Band 1's scale and offset from GDAL's metadata XML: other bands' and dataset items ignored, entities and the
    /// trailing NUL handled, bad numbers and bad XML refused.
    #[test]
    fn band_scale_from_gdal_metadata() {
        let gdal = r#"<GDALMetadata>
  <Item name="AREA_OR_POINT">Area</Item>
  <Item name="SCALE" sample="1" role="scale">7</Item>
  <Item name="OFFSET" sample="0" role="offset">-12.5</Item>
  <Item name="SCALE" sample="0" role="scale">0.100000000000000006</Item>
  <Item name="DESCRIPTION" sample="0" role="description">height &amp; depth</Item>
</GDALMetadata>
"#;
        assert_eq!(gdal_band_scale(gdal), Ok(Some((0.1, -12.5))));
        // One of the two alone; neither; dataset items only; the NUL a TIFF ASCII tag ends with.
        assert_eq!(gdal_band_scale(r#"<GDALMetadata><Item name="SCALE" sample="0" role="scale">2</Item></GDALMetadata>"#), Ok(Some((2.0, 0.0))));
        assert_eq!(gdal_band_scale("<GDALMetadata><Item name=\"OFFSET\" sample=\"0\" role=\"offset\">3</Item></GDALMetadata>\0"), Ok(Some((1.0, 3.0))));
        assert_eq!(gdal_band_scale(r#"<GDALMetadata><Item name="AREA_OR_POINT">Point</Item></GDALMetadata>"#), Ok(None));
        assert!(gdal_band_scale(r#"<GDALMetadata><Item name="SCALE" sample="0" role="scale">ten</Item></GDALMetadata>"#).unwrap_err().contains("'ten'"));
        assert!(gdal_band_scale(r#"<GDALMetadata><Item name="SCALE" sample="0" role="scale">inf</Item></GDALMetadata>"#).is_err());
        assert!(gdal_band_scale(r#"<GDALMetadata><Item sample="0" role="scale">1</Itm></GDALMetadata>"#).is_err());
    }

    /// Each codec fills exactly the bytes asked (the first ones of a longer stream), and data that ends early, or a
    /// corrupt deflate stream, is an error rather than zeros.
    #[test]
    fn decompressors_fill_the_block_or_fail() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&data).unwrap();
        let deflate = e.finish().unwrap();
        let zstd = zstd::bulk::compress(&data, 3).unwrap();
        let lzw = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8).encode(&data).unwrap();
        for (codec, z) in [(Codec::Deflate, &deflate), (Codec::Zstd, &zstd), (Codec::Lzw, &lzw), (Codec::None, &data)] {
            let mut out = vec![0u8; data.len()];
            codec.decompress(z, &mut out).unwrap();
            assert!(out == data, "{codec:?}");
            let mut head = vec![0u8; 100];
            codec.decompress(z, &mut head).unwrap();
            assert_eq!(head, data[..100], "{codec:?}: the first bytes");
            let err = codec.decompress(&z[..z.len() / 2], &mut out).unwrap_err();
            assert!(err.contains("ends after") || err.contains("truncated"), "{codec:?}: {err}");
        }
        let mut bad = deflate.clone();
        bad[10..40].fill(0xab);
        let err = Codec::Deflate.decompress(&bad, &mut vec![0u8; data.len()]).unwrap_err();
        assert!(err.contains("corrupt deflate stream"), "{err}");
    }

    /// PackBits (for masks not written by GDAL, and f32 blocks with the floating-point predictor): the example of
    /// TIFF 6.0 §9, with the no-op header -128 inserted, whole, cut short, and as literal runs of 128.
    #[test]
    fn packbits_decodes_the_tiff_specs_example() {
        let packed = [0xFE, 0xAA, 0x02, 0x80, 0x00, 0x2A, 0x80, 0xFD, 0xAA, 0x03, 0x80, 0x00, 0x2A, 0x22, 0xF7, 0xAA];
        let mut want = vec![0xAA; 3];
        want.extend([0x80, 0x00, 0x2A]);
        want.extend([0xAA; 4]);
        want.extend([0x80, 0x00, 0x2A, 0x22]);
        want.extend([0xAA; 10]);
        let mut out = vec![0u8; want.len()];
        Codec::PackBits.decompress(&packed, &mut out).unwrap();
        assert_eq!(out, want);
        let mut head = vec![0u8; 5];
        Codec::PackBits.decompress(&packed, &mut head).unwrap();
        assert_eq!(head, want[..5], "a run longer than the bytes wanted");
        let err = Codec::PackBits.decompress(&packed[..packed.len() - 1], &mut out).unwrap_err();
        assert!(err.contains("ends after 14 of the block's 24 bytes"), "{err}");
        let data: Vec<u8> = (0..300u32).map(|i| (i * 13 % 256) as u8).collect();
        let literal: Vec<u8> = data.chunks(128).flat_map(|c| std::iter::once(c.len() as u8 - 1).chain(c.iter().copied())).collect();
        let mut out = vec![0u8; data.len()];
        Codec::PackBits.decompress(&literal, &mut out).unwrap();
        assert_eq!(out, data);
    }
}
