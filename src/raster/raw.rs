//! Fixed-layout rasters read window by window with positioned reads (no whole-file load): headerless raw samples,
//! SRTM `.hgt`, and `.npy`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{check_samples, ByteSource, Encoding, Georef, RasterError, ReadOptions, Source, SourceInfo};
use crate::tiling::Rect;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    U8,
    I16,
    U16,
    I32,
    F32,
    F64,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "u8",
            Dtype::I16 => "i16",
            Dtype::U16 => "u16",
            Dtype::I32 => "i32",
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

pub struct RawSource {
    file: Arc<dyn ByteSource>,
    path: PathBuf,
    width: usize,
    height: usize,
    dtype: Dtype,
    big_endian: bool,
    offset: u64,
    /// A sample value that means "void" in the format itself (SRTM's −32768).
    void: Option<f32>,
    encoding: Encoding,
    /// What the file's name tells (SRTM `.hgt`).
    georef: Option<Georef>,
}

fn decode_row(bytes: &[u8], dtype: Dtype, big: bool, out: &mut [f32]) {
    macro_rules! conv {
        ($t:ty, $n:expr) => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact($n)) {
                let a: [u8; $n] = c.try_into().unwrap();
                *o = if big { <$t>::from_be_bytes(a) } else { <$t>::from_le_bytes(a) } as f32;
            }
        };
    }
    match dtype {
        Dtype::U8 => out.iter_mut().zip(bytes).for_each(|(o, &b)| *o = b as f32),
        Dtype::I16 => conv!(i16, 2),
        Dtype::U16 => conv!(u16, 2),
        Dtype::I32 => conv!(i32, 4),
        Dtype::F32 => conv!(f32, 4),
        Dtype::F64 => conv!(f64, 8),
    }
}

/// Decodes `n` samples of `dtype` (at most 4 bytes each) stored at the end of `bytes` (`n * 4` bytes long) into
/// native f32 over the whole of `bytes`, front to back, a chunk at a time through the stack. In place is safe:
/// the f32s of samples `..j` end at byte `4j`, never past where sample `j`'s source bytes start
/// (`n * (4 - size) + j * size`).
fn widen_in_place(bytes: &mut [u8], n: usize, dtype: Dtype, big: bool) {
    const CHUNK: usize = 256;
    let bs = dtype.size();
    debug_assert!(bs <= 4 && bytes.len() == n * 4);
    if dtype == Dtype::F32 && big == cfg!(target_endian = "big") {
        return;
    }
    let start = n * (4 - bs);
    let (mut raw, mut wide) = ([0u8; 4 * CHUNK], [0f32; CHUNK]);
    for j in (0..n).step_by(CHUNK) {
        let k = CHUNK.min(n - j);
        raw[..k * bs].copy_from_slice(&bytes[start + j * bs..start + (j + k) * bs]);
        decode_row(&raw[..k * bs], dtype, big, &mut wide[..k]);
        bytes[4 * j..4 * (j + k)].copy_from_slice(bytemuck::cast_slice(&wide[..k]));
    }
}

impl Source for RawSource {
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn read_window(&self, rect: Rect, out: &mut [f32]) -> Result<(), RasterError> {
        let bs = self.dtype.size();
        let row_bytes = rect.width() * bs;
        let row_at = |y: usize| self.offset + ((y * self.width + rect.x0) * bs) as u64;
        // One request list for the whole window: a local file does one positioned read per row, a blob merges the
        // rows into a few ranged GETs.
        // Samples of at most 4 bytes are read into the end of `out` itself and widened in place from the front: no
        // second buffer, and native f32 (most .npy) needs no decoding at all. f64 goes through a byte buffer.
        let n = rect.len();
        let mut f64_bytes = Vec::new();
        let region: &mut [u8] = if bs <= 4 {
            &mut bytemuck::cast_slice_mut(out)[n * (4 - bs)..]
        } else {
            f64_bytes.resize(n * bs, 0);
            &mut f64_bytes
        };
        let mut reqs: Vec<(u64, &mut [u8])> = region.chunks_exact_mut(row_bytes).zip(rect.y0..rect.y1).map(|(buf, y)| (row_at(y), buf)).collect();
        self.file.read_many(&mut reqs).map_err(|e| RasterError::io(&self.path, e))?;
        if bs <= 4 {
            widen_in_place(bytemuck::cast_slice_mut(out), n, self.dtype, self.big_endian);
        } else {
            decode_row(&f64_bytes, self.dtype, self.big_endian, out);
        }
        if let Some(v) = self.void {
            out.iter_mut().filter(|x| **x == v).for_each(|x| *x = f32::NAN);
        }
        Ok(())
    }
    fn windowed(&self) -> bool {
        true
    }
    fn encoding(&self) -> Encoding {
        self.encoding
    }
    fn georef(&self) -> Option<Georef> {
        self.georef.clone()
    }
    fn info(&self) -> SourceInfo {
        let format = match self.encoding {
            Encoding::Hgt => "SRTM .hgt",
            Encoding::Npy => ".npy",
            _ => "raw samples",
        };
        SourceInfo {
            format: format.into(),
            sample_type: self.dtype.name().into(),
            compression: Some("none".into()),
            blocks: Some(format!("rows of {} samples, data at byte {}", self.width, self.offset)),
            bigtiff: None,
            little_endian: Some(!self.big_endian),
            mask: None,
        }
    }
}

impl RawSource {
    /// Headerless little-endian samples of `--size W×H`.
    pub fn raw(path: &Path, file: Arc<dyn ByteSource>, dtype: Dtype, opts: &ReadOptions) -> Result<RawSource, RasterError> {
        let Some((w, h)) = opts.size else {
            return Err(RasterError::format(path, format!("raw {} input needs --size WxH", dtype.name())));
        };
        check_samples(path, w as u64, h as u64, opts.max_samples)?;
        let len = file.len();
        let want = (w as u64) * (h as u64) * dtype.size() as u64;
        if len != want {
            return Err(RasterError::format(path, format!("file has {len} bytes but --size {w}x{h} of {} needs {want}", dtype.name())));
        }
        Ok(RawSource {
            file,
            path: path.to_path_buf(),
            width: w,
            height: h,
            dtype,
            big_endian: false,
            offset: 0,
            void: None,
            encoding: Encoding::Raw(dtype),
            georef: None,
        })
    }

    /// SRTM `.hgt`: square, big-endian i16, size from the file length (1201² = SRTM3, 3601² = SRTM1).
    pub fn hgt(path: &Path, file: Arc<dyn ByteSource>, opts: &ReadOptions) -> Result<RawSource, RasterError> {
        let len = file.len();
        let side = match len {
            2_884_802 => 1201,
            25_934_402 => 3601,
            _ => return Err(RasterError::format(path, format!("{len} bytes is not an SRTM .hgt size (1201² or 3601² big-endian i16)"))),
        };
        check_samples(path, side, side, opts.max_samples)?;
        let side = side as usize;
        Ok(RawSource {
            file,
            path: path.to_path_buf(),
            width: side,
            height: side,
            dtype: Dtype::I16,
            big_endian: true,
            offset: 0,
            void: Some(super::I16_VOID),
            encoding: Encoding::Hgt,
            georef: path.file_name().and_then(|n| n.to_str()).and_then(|n| super::georef::hgt_georef(n, side)),
        })
    }

    /// NumPy `.npy` (format 1.0–3.0): 2-D, C order, u1/i2/u2/i4/f4/f8 of either byte order.
    pub fn npy(path: &Path, file: Arc<dyn ByteSource>, opts: &ReadOptions) -> Result<RawSource, RasterError> {
        let len = file.len();
        let bad = |m: &str| RasterError::format(path, format!("not a readable .npy: {m}"));
        let mut pre = [0u8; 12];
        if len < 12 {
            return Err(bad("file shorter than the .npy preamble"));
        }
        file.read_at(0, &mut pre).map_err(|e| RasterError::io(path, e))?;
        if &pre[..6] != b"\x93NUMPY" {
            return Err(bad("missing \\x93NUMPY magic"));
        }
        let (hlen, start) = match pre[6] {
            1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10u64),
            2 | 3 => (u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64, 12u64),
            v => return Err(bad(&format!("unsupported format version {v}"))),
        };
        if start + hlen > len || hlen > 1 << 20 {
            return Err(bad("header length runs past the end of the file"));
        }
        let mut hb = vec![0u8; hlen as usize];
        file.read_at(start, &mut hb).map_err(|e| RasterError::io(path, e))?;
        let header = std::str::from_utf8(&hb).map_err(|_| bad("header is not ASCII"))?;
        let NpyHeader { descr, fortran_order, shape } = parse_npy_header(header).map_err(|m| bad(&m))?;
        if fortran_order {
            return Err(bad("Fortran-order arrays are not supported (save with np.ascontiguousarray)"));
        }
        let [h, w] = shape[..] else {
            return Err(bad(&format!("array has shape {shape:?}; a height map must be 2-D")));
        };
        let descr = descr.as_str();
        let (order, code) = descr.split_at(1);
        let big_endian = match order {
            ">" => true,
            "<" | "|" | "=" => false,
            _ => return Err(bad(&format!("dtype '{descr}'"))),
        };
        let dtype = match code {
            "u1" => Dtype::U8,
            "i2" => Dtype::I16,
            "u2" => Dtype::U16,
            "i4" => Dtype::I32,
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            _ => return Err(bad(&format!("dtype '{descr}' is not one of u1 i2 u2 i4 f4 f8"))),
        };
        check_samples(path, w, h, opts.max_samples)?;
        let offset = start + hlen;
        let want = offset + w * h * dtype.size() as u64;
        if len < want {
            return Err(bad(&format!("truncated: {len} bytes, shape ({h}, {w}) of {descr} needs {want}")));
        }
        Ok(RawSource {
            file,
            path: path.to_path_buf(),
            width: w as usize,
            height: h as usize,
            dtype,
            big_endian,
            offset,
            void: None,
            encoding: Encoding::Npy,
            georef: None,
        })
    }
}

/// The three fields of a `.npy` header.
#[derive(Debug, PartialEq)]
struct NpyHeader {
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

/// Parses a `.npy` header exactly as NumPy's format spec writes it: a Python dict literal with exactly the keys
/// 'descr' (a string), 'fortran_order' (True or False) and 'shape' (a tuple of integers), any order, optional
/// trailing comma, whitespace, and the newline/space padding. Anything else is refused, as NumPy refuses it.
fn parse_npy_header(h: &str) -> Result<NpyHeader, String> {
    let b = h.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b'\n') {
            *i += 1;
        }
    };
    let expect = |i: &mut usize, c: u8| -> Result<(), String> {
        ws(i);
        if b.get(*i) == Some(&c) {
            *i += 1;
            Ok(())
        } else {
            Err(format!("header: expected '{}' at byte {}", c as char, *i))
        }
    };
    let string = |i: &mut usize| -> Result<String, String> {
        ws(i);
        let q = *b.get(*i).ok_or("header: unexpected end")?;
        if q != b'\'' && q != b'"' {
            return Err(format!("header: expected a string at byte {}", *i));
        }
        let end = h[*i + 1..].find(q as char).ok_or("header: unterminated string")? + *i + 1;
        let s = h[*i + 1..end].to_string();
        *i = end + 1;
        Ok(s)
    };
    expect(&mut i, b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        ws(&mut i);
        if b.get(i) == Some(&b'}') {
            i += 1;
            break;
        }
        let key = string(&mut i)?;
        expect(&mut i, b':')?;
        ws(&mut i);
        match key.as_str() {
            "descr" if descr.is_none() => descr = Some(string(&mut i)?),
            "fortran_order" if fortran.is_none() => {
                fortran = Some(if h[i..].starts_with("True") {
                    i += 4;
                    true
                } else if h[i..].starts_with("False") {
                    i += 5;
                    false
                } else {
                    return Err(format!("header: 'fortran_order' must be True or False, at byte {i}"));
                })
            }
            "shape" if shape.is_none() => {
                expect(&mut i, b'(')?;
                let mut dims = Vec::new();
                loop {
                    ws(&mut i);
                    if b.get(i) == Some(&b')') {
                        i += 1;
                        break;
                    }
                    let start = i;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    dims.push(h[start..i].parse::<u64>().map_err(|_| format!("header: bad 'shape' entry at byte {start}"))?);
                    ws(&mut i);
                    match b.get(i) {
                        Some(b',') => i += 1,
                        Some(b')') => {}
                        _ => return Err(format!("header: bad 'shape' at byte {i}")),
                    }
                }
                shape = Some(dims);
            }
            k => return Err(format!("header: unexpected or repeated key '{k}'")),
        }
        ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            _ => return Err(format!("header: expected ',' or '}}' at byte {i}")),
        }
    }
    ws(&mut i);
    if i != b.len() {
        return Err(format!("header: unexpected text after the dict at byte {i}"));
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran_order), Some(shape)) => Ok(NpyHeader { descr, fortran_order, shape }),
        _ => Err("header: needs 'descr', 'fortran_order' and 'shape'".into()),
    }
}

/// Writes a 2-D little-endian f32 `.npy` (format 1.0), as NumPy would.
pub fn npy_bytes_f32(width: usize, height: usize, data: &[f32]) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({height}, {width}), }}");
    // Pad so that magic + version + length + header + '\n' is a multiple of 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_headers_are_exact_literals_only() {
        let ok = parse_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }          \n").unwrap();
        assert_eq!(ok, NpyHeader { descr: "<f4".into(), fortran_order: false, shape: vec![3, 4] });
        assert_eq!(parse_npy_header("{'shape':(5,),'fortran_order':True,'descr':'|u1'}").unwrap().shape, vec![5]);
        // Issue #11, item 8: NumPy refuses each of these, so do we.
        for bad in [
            "{'descr': '<f4', 'fortran_order': FalsX, 'shape': (3, 4), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'extra': 1}",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, -4), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': [3, 4], }",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)} junk",
        ] {
            assert!(parse_npy_header(bad).is_err(), "{bad}");
        }
    }

    /// Widening in place gives what decoding into a second buffer gives, for every type of at most 4 bytes, both
    /// byte orders, and lengths around the chunk size.
    #[test]
    fn widening_in_place_matches_decoding_aside() {
        for dtype in [Dtype::U8, Dtype::I16, Dtype::U16, Dtype::I32, Dtype::F32] {
            for big in [false, true] {
                for n in [1usize, 2, 255, 256, 257, 511, 1000] {
                    let bs = dtype.size();
                    let raw: Vec<u8> = (0..n * bs).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
                    let mut want = vec![0f32; n];
                    decode_row(&raw, dtype, big, &mut want);
                    let mut out = vec![f32::NAN; n];
                    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
                    bytes[n * (4 - bs)..].copy_from_slice(&raw);
                    widen_in_place(bytes, n, dtype, big);
                    assert_eq!(
                        out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "{dtype:?} big {big} n {n}"
                    );
                }
            }
        }
    }
}
