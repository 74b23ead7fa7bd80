//! Deterministic synthetic terrain: ridged multi-octave value noise. The same (width, height, seed, relief) gives
//! the same heights on every machine and thread count. Generates samples and encodes them to bytes; writing them is
//! the store's job.

use rayon::prelude::*;

/// SplitMix64-style finaliser: a well-mixed hash of lattice coordinates, octave and seed.
#[inline]
fn hash(x: i64, y: i64, o: u64, seed: u64) -> f64 {
    let mut z = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ o.wrapping_mul(0x1656_67B1_9E37_79F9) ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[inline]
fn smooth(t: f64) -> f64 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

fn value_noise(x: f64, y: f64, o: u64, seed: u64) -> f64 {
    let (xf, yf) = (x.floor(), y.floor());
    let (xi, yi) = (xf as i64, yf as i64);
    let (tx, ty) = (smooth(x - xf), smooth(y - yf));
    let a = hash(xi, yi, o, seed);
    let b = hash(xi + 1, yi, o, seed);
    let c = hash(xi, yi + 1, o, seed);
    let d = hash(xi + 1, yi + 1, o, seed);
    let top = a + (b - a) * tx;
    let bot = c + (d - c) * tx;
    top + (bot - top) * ty
}

/// Heights in metres, row-major, `width × height`.
pub fn generate(width: usize, height: usize, seed: u64, relief: f32) -> Vec<f32> {
    let base = (width.max(height) as f64 / 3.0).max(4.0);
    let octaves = (base.log2().ceil() as u64).max(1);
    let mut out = vec![0f32; width * height];
    out.par_chunks_mut(width).enumerate().for_each(|(y, row)| {
        for (x, o) in row.iter_mut().enumerate() {
            let (mut h, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0 / base, 0.0);
            for k in 0..octaves {
                let n = value_noise(x as f64 * freq, y as f64 * freq, k, seed);
                // Ridged: sharp crests, like eroded mountains; weighted by the coarser octaves' height.
                let r = 1.0 - (2.0 * n - 1.0).abs();
                h += amp * r * r;
                norm += amp;
                amp *= 0.5;
                freq *= 2.0;
            }
            *o = ((h / norm) * relief as f64) as f32;
        }
    });
    out
}

/// 16-bit grayscale PNG of heights rounded to whole metres (clamped to 0..=65535).
pub fn png_bytes(width: usize, height: usize, heights: &[f32]) -> Result<Vec<u8>, image::ImageError> {
    let px: Vec<u16> = heights.iter().map(|h| h.round().clamp(0.0, 65535.0) as u16).collect();
    let img = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_raw(width as u32, height as u32, px).expect("buffer matches size");
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// Raw little-endian f32.
pub fn f32_bytes(heights: &[f32]) -> Vec<u8> {
    heights.iter().flat_map(|h| h.to_le_bytes()).collect()
}

/// `terrafarm synth`: writes the terrain to the output file (through the local store: atomic). Bad flags are
/// [`ConfigError`]s (exit code 2).
pub fn command(a: &crate::cli::SynthArgs) -> anyhow::Result<()> {
    use crate::config::{parse_size, ConfigError};
    let (w, h) = parse_size(&a.size)?;
    if w < 2 || h < 2 {
        return Err(ConfigError(format!("--size {w}x{h}: need at least 2x2")).into());
    }
    if !(a.relief.is_finite() && a.relief > 0.0) {
        return Err(ConfigError("--relief must be positive".into()).into());
    }
    let ext = a.output.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let dir = a.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = a.output.file_name().and_then(|n| n.to_str()).ok_or_else(|| ConfigError(format!("{}: bad file name", a.output.display())))?;
    if !matches!(ext.as_str(), "png" | "f32" | "npy") {
        return Err(ConfigError(format!("{}: output must end in .png, .f32 or .npy", a.output.display())).into());
    }
    let heights = generate(w, h, a.seed, a.relief);
    let bytes = match ext.as_str() {
        "png" => png_bytes(w, h, &heights)?,
        "f32" => f32_bytes(&heights),
        _ => crate::raster::npy_bytes_f32(w, h, &heights),
    };
    crate::store::Store::put(&crate::store::LocalStore::new(dir)?, name, &bytes)?;
    tracing::info!("wrote {} ({w}x{h}, seed {}, {} bytes)", a.output.display(), a.seed, bytes.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let a = generate(65, 33, 7, 1000.0);
        let b = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| generate(65, 33, 7, 1000.0));
        assert_eq!(a, b);
        assert_ne!(a, generate(65, 33, 8, 1000.0));
        assert!(a.iter().all(|h| (0.0..=1000.0).contains(h)));
        let (min, max) = a.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &h| (lo.min(h), hi.max(h)));
        assert!(max - min > 100.0, "terrain has relief: {min}..{max}");
    }
}
