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
}

/// Mapbox terrain-RGB: h = (R·65536 + G·256 + B)·0.1 − 10000, computed as (v − 100000)/10 so the f32 result is
/// the correctly rounded value. `px` holds `channels` bytes per pixel (3 or 4; alpha ignored).
pub fn decode_terrain_rgb(px: &[u8], channels: usize, out: &mut [f32]) {
    for (o, p) in out.iter_mut().zip(px.chunks_exact(channels)) {
        let v = (p[0] as i32) << 16 | (p[1] as i32) << 8 | p[2] as i32;
        *o = (v - 100_000) as f32 / 10.0;
    }
}

/// Terrarium: h = R·256 + G + B/256 − 32768 (exact in f32).
pub fn decode_terrarium(px: &[u8], channels: usize, out: &mut [f32]) {
    for (o, p) in out.iter_mut().zip(px.chunks_exact(channels)) {
        *o = ((p[0] as i32) * 256 + p[1] as i32 - 32768) as f32 + p[2] as f32 / 256.0;
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
