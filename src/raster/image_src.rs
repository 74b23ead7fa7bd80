//! PNG and TIFF through the `image` crate: the header is checked against `--max-samples` before any pixel is
//! decoded; the whole image is then decoded once (PNG's compression has no random access).

use std::path::Path;

use image::{DynamicImage, ImageReader, Limits};

use super::{check_samples, Encoding, RasterError, ReadOptions, Source, ENCODING_CHOICES};
use crate::tiling::Rect;

/// A decoded raster held in memory.
pub struct MemorySource {
    width: usize,
    height: usize,
    data: Vec<f32>,
    encoding: Encoding,
}

impl Source for MemorySource {
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn read_window(&self, rect: Rect, out: &mut [f32]) -> Result<(), RasterError> {
        for (i, y) in (rect.y0..rect.y1).enumerate() {
            let s = y * self.width + rect.x0;
            out[i * rect.width()..(i + 1) * rect.width()].copy_from_slice(&self.data[s..s + rect.width()]);
        }
        Ok(())
    }
    fn windowed(&self) -> bool {
        false
    }
    fn encoding(&self) -> Encoding {
        self.encoding
    }
    fn info(&self) -> super::SourceInfo {
        super::SourceInfo { format: "image (decoded whole)".into(), sample_type: self.encoding.to_string(), ..Default::default() }
    }
}

/// Mapbox terrain-RGB: h = (R·65536 + G·256 + B)·0.1 − 10000, computed as (v − 100000)/10 so the f32 result is
/// the correctly rounded value. `px` holds `channels` bytes per pixel (3 or 4; alpha ignored). Runs the SSSE3
/// kernel where the CPU has it (identical results: exact integer work, exact int→f32, one IEEE division).
pub fn decode_terrain_rgb(px: &[u8], channels: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("ssse3") && (channels == 3 || channels == 4) {
        // SAFETY: SSSE3 checked just above.
        return unsafe { decode_rgb_ssse3(px, channels, out, false) };
    }
    decode_terrain_rgb_scalar(px, channels, out)
}

/// The scalar twin of [`decode_terrain_rgb`].
pub fn decode_terrain_rgb_scalar(px: &[u8], channels: usize, out: &mut [f32]) {
    for (o, p) in out.iter_mut().zip(px.chunks_exact(channels)) {
        let v = (p[0] as i32) << 16 | (p[1] as i32) << 8 | p[2] as i32;
        *o = (v - 100_000) as f32 / 10.0;
    }
}

/// Terrarium: h = R·256 + G + B/256 − 32768 (exact in f32). SSSE3 kernel where available, identical results.
pub fn decode_terrarium(px: &[u8], channels: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("ssse3") && (channels == 3 || channels == 4) {
        // SAFETY: SSSE3 checked just above.
        return unsafe { decode_rgb_ssse3(px, channels, out, true) };
    }
    decode_terrarium_scalar(px, channels, out)
}

/// The scalar twin of [`decode_terrarium`].
pub fn decode_terrarium_scalar(px: &[u8], channels: usize, out: &mut [f32]) {
    for (o, p) in out.iter_mut().zip(px.chunks_exact(channels)) {
        *o = ((p[0] as i32) * 256 + p[1] as i32 - 32768) as f32 + p[2] as f32 / 256.0;
    }
}

/// Four pixels per step: one 16-byte load, byte shuffles gather R, G, B into 32-bit lanes, then the scalar
/// formula's operations in the same order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn decode_rgb_ssse3(px: &[u8], ch: usize, out: &mut [f32], terrarium: bool) {
    use std::arch::x86_64::*;
    let n = out.len().min(px.len() / ch);
    let lane = |i: usize, bytes: [i8; 4]| -> [i8; 4] { bytes.map(|b| if b < 0 { -128 } else { (i * ch) as i8 + b }) };
    let mask = |b: [i8; 4]| {
        let (a, c, d, e) = (lane(0, b), lane(1, b), lane(2, b), lane(3, b));
        _mm_setr_epi8(a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2], d[3], e[0], e[1], e[2], e[3])
    };
    // Little-endian lanes: terrain-RGB wants [B, G, R, 0]; Terrarium wants [G, R, 0, 0] and [B, 0, 0, 0].
    let m_rgb = mask([2, 1, 0, -1]);
    let m_rg = mask([1, 0, -1, -1]);
    let m_b = mask([2, -1, -1, -1]);
    let (off_rgb, off_t) = (_mm_set1_epi32(100_000), _mm_set1_epi32(32768));
    let (ten, f256) = (_mm_set1_ps(10.0), _mm_set1_ps(256.0));
    let mut i = 0;
    // A 16-byte load at pixel i must stay inside px.
    while i + 4 <= n && i * ch + 16 <= px.len() {
        let v = _mm_loadu_si128(px.as_ptr().add(i * ch) as *const __m128i);
        let h = if terrarium {
            let rg = _mm_cvtepi32_ps(_mm_sub_epi32(_mm_shuffle_epi8(v, m_rg), off_t));
            let b = _mm_div_ps(_mm_cvtepi32_ps(_mm_shuffle_epi8(v, m_b)), f256);
            _mm_add_ps(rg, b)
        } else {
            _mm_div_ps(_mm_cvtepi32_ps(_mm_sub_epi32(_mm_shuffle_epi8(v, m_rgb), off_rgb)), ten)
        };
        _mm_storeu_ps(out.as_mut_ptr().add(i), h);
        i += 4;
    }
    if terrarium {
        decode_terrarium_scalar(&px[i * ch..], ch, &mut out[i..]);
    } else {
        decode_terrain_rgb_scalar(&px[i * ch..], ch, &mut out[i..]);
    }
}

pub fn decode(path: &Path, bytes: &[u8], enc: Encoding, opts: &ReadOptions) -> Result<MemorySource, RasterError> {
    let open = || ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| RasterError::io(path, e));
    let (w, h) = open()?.into_dimensions().map_err(|e| RasterError::format(path, format!("cannot read image header: {e}")))?;
    check_samples(path, w as u64, h as u64, opts.max_samples)?;
    let mut reader = open()?;
    // Dimensions were checked above; let the decoder allocate what that size needs.
    reader.limits(Limits::no_limits());
    let img = reader.decode().map_err(|e| RasterError::format(path, format!("cannot decode image: {e}")))?;
    let (w, h) = (w as usize, h as usize);
    let mut data = vec![0f32; w * h];
    let channels = img.color().channel_count() as usize;
    let resolved = match (enc, &img) {
        (Encoding::Auto | Encoding::Gray, DynamicImage::ImageLuma8(b)) => {
            data.iter_mut().zip(b.as_raw()).for_each(|(o, &v)| *o = v as f32);
            Encoding::Gray
        }
        (Encoding::Auto | Encoding::Gray, DynamicImage::ImageLuma16(b)) => {
            data.iter_mut().zip(b.as_raw()).for_each(|(o, &v)| *o = v as f32);
            Encoding::Gray
        }
        (Encoding::Auto | Encoding::Gray, DynamicImage::ImageLumaA8(b)) => {
            data.iter_mut().zip(b.as_raw().chunks_exact(2)).for_each(|(o, v)| *o = v[0] as f32);
            Encoding::Gray
        }
        (Encoding::Auto | Encoding::Gray, DynamicImage::ImageLumaA16(b)) => {
            data.iter_mut().zip(b.as_raw().chunks_exact(2)).for_each(|(o, v)| *o = v[0] as f32);
            Encoding::Gray
        }
        (Encoding::Auto, DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)) => {
            return Err(RasterError::format(
                path,
                "RGB image: the height encoding is ambiguous; pass --encoding terrain-rgb (Mapbox) or --encoding terrarium \
                 (or convert it to grayscale and pass --encoding gray)",
            ))
        }
        (Encoding::TerrainRgb, DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)) => {
            decode_terrain_rgb(img.as_bytes(), channels, &mut data);
            Encoding::TerrainRgb
        }
        (Encoding::Terrarium, DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)) => {
            decode_terrarium(img.as_bytes(), channels, &mut data);
            Encoding::Terrarium
        }
        (Encoding::TerrainRgb | Encoding::Terrarium, other) => {
            return Err(RasterError::format(path, format!("--encoding {enc} needs an 8-bit RGB or RGBA image, this one is {:?}", other.color())))
        }
        (_, other) => {
            return Err(RasterError::format(
                path,
                format!("unsupported pixel type {:?} for --encoding {enc} (8/16-bit gray or 8-bit RGB(A); encodings: {ENCODING_CHOICES})", other.color()),
            ))
        }
    };
    Ok(MemorySource { width: w, height: h, data, encoding: resolved })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terrain_rgb_formula() {
        // (1, 134, 160) → 1·65536 + 134·256 + 160 = 100000 → 0 m; and an arbitrary triple.
        let mut out = [0f32; 2];
        decode_terrain_rgb(&[1, 134, 160, 255, 1, 145, 82, 255], 4, &mut out);
        assert_eq!(out[0], 0.0);
        let v = 65536 + 145 * 256 + 82;
        assert_eq!(out[1], ((v as f64) * 0.1 - 10000.0) as f32);
    }

    #[test]
    fn terrarium_formula() {
        let mut out = [0f32; 1];
        decode_terrarium(&[128, 10, 64], 3, &mut out);
        assert_eq!(out[0], 10.25);
    }
}
