//! Every decoder read back against the array that was written (issue #2), including windowed reads.

mod common;
use common::*;
use proptest::prelude::*;
use std::path::Path;
use terrafarm::raster::{self, Dtype, Encoding, ReadOptions};
use terrafarm::tiling::Rect;

fn opts(encoding: Encoding, size: Option<(usize, usize)>) -> ReadOptions {
    ReadOptions { encoding, size, max_samples: 1 << 32, nodata: None }
}

fn read_all(p: &Path, o: &ReadOptions) -> (usize, usize, Vec<f32>) {
    let r = raster::open(p, o).unwrap();
    let (w, h) = (r.width(), r.height());
    let mut out = vec![0f32; w * h];
    r.read_window(Rect::new(0, 0, w, h), &mut out).unwrap();
    (w, h, out)
}

fn npy(descr: &str, w: usize, h: usize, payload: &[u8]) -> Vec<u8> {
    let mut hdr = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({h}, {w}), }}");
    while (10 + hdr.len() + 1) % 64 != 0 {
        hdr.push(' ');
    }
    hdr.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(hdr.len() as u16).to_le_bytes());
    b.extend_from_slice(hdr.as_bytes());
    b.extend_from_slice(payload);
    b
}

#[test]
fn gray8_and_gray16_png_and_tiff() {
    let d = tempfile::tempdir().unwrap();
    let f = |x: u32, y: u32| (x * 1000 + y * 7) as u16;
    for ext in ["png", "tif"] {
        let p = d.path().join(format!("g16.{ext}"));
        write_gray16_png(&p, 13, 9, f);
        let (w, h, v) = read_all(&p, &opts(Encoding::Auto, None));
        assert_eq!((w, h), (13, 9));
        assert!(v.iter().enumerate().all(|(i, &z)| z == f((i % 13) as u32, (i / 13) as u32) as f32), "{ext}");
        let p8 = d.path().join(format!("g8.{ext}"));
        image::GrayImage::from_fn(5, 4, |x, y| image::Luma([(x * 40 + y) as u8])).save(&p8).unwrap();
        let (_, _, v8) = read_all(&p8, &opts(Encoding::Gray, None));
        assert_eq!(v8[6], 41.0, "{ext}");
    }
}

#[test]
fn terrain_rgb_and_terrarium_png() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("rgb.png");
    let px = |x: u32, y: u32| image::Rgba([1 + (x % 3) as u8, (y * 20) as u8, (x * 30 + y) as u8, 255]);
    image::RgbaImage::from_fn(6, 5, px).save(&p).unwrap();
    let (_, _, v) = read_all(&p, &opts(Encoding::TerrainRgb, None));
    let (_, _, t) = read_all(&p, &opts(Encoding::Terrarium, None));
    for (i, (&a, &b)) in v.iter().zip(&t).enumerate() {
        let image::Rgba([r, g, bb, _]) = px((i % 6) as u32, (i / 6) as u32);
        let (r, g, bb) = (r as f64, g as f64, bb as f64);
        assert!((a as f64 - ((r * 65536.0 + g * 256.0 + bb) * 0.1 - 10000.0)).abs() < 1e-3);
        assert_eq!(b as f64, r * 256.0 + g + bb / 256.0 - 32768.0);
    }
}

#[test]
fn srtm_hgt_big_endian_with_voids() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("N35E138.hgt");
    let n = 1201usize;
    let vals: Vec<i16> = (0..n * n).map(|i| if i == 5 { -32768 } else { (i % 3000) as i16 - 100 }).collect();
    std::fs::write(&p, vals.iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>()).unwrap();
    let r = raster::open(&p, &opts(Encoding::Auto, None)).unwrap();
    assert!(r.windowed());
    assert_eq!(r.encoding(), Encoding::Hgt);
    let mut win = vec![0f32; 20];
    r.read_window(Rect::new(3, 0, 8, 4), &mut win).unwrap();
    assert!(win[2].is_nan(), "void → NaN");
    assert_eq!(win[0], -97.0);
    assert_eq!(win[5], ((n + 3) % 3000) as f32 - 100.0);
}

#[test]
fn npy_every_dtype() {
    let d = tempfile::tempdir().unwrap();
    let (w, h) = (7usize, 3usize);
    let want: Vec<f32> = (0..w * h).map(|i| i as f32 * 3.0).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("<f4", want.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ("<f8", want.iter().flat_map(|&v| (v as f64).to_le_bytes()).collect()),
        ("<i2", want.iter().flat_map(|&v| (v as i16).to_le_bytes()).collect()),
        ("<u2", want.iter().flat_map(|&v| (v as u16).to_le_bytes()).collect()),
        ("<i4", want.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect()),
        (">f4", want.iter().flat_map(|v| v.to_be_bytes()).collect()),
    ];
    for (descr, payload) in cases {
        let p = d.path().join(format!("a{}.npy", descr.replace(['<', '>'], "_")));
        std::fs::write(&p, npy(descr, w, h, &payload)).unwrap();
        let (rw, rh, v) = read_all(&p, &opts(Encoding::Auto, None));
        assert_eq!((rw, rh), (w, h), "{descr}");
        assert_eq!(v, want, "{descr}");
    }
}

#[test]
fn nodata_value_becomes_nan() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.i16");
    std::fs::write(&p, [5i16, -9999, 7, 8].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let mut o = opts(Encoding::Auto, Some((2, 2)));
    o.nodata = Some(-9999.0);
    let (_, _, v) = read_all(&p, &o);
    assert!(v[1].is_nan() && v[0] == 5.0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Raw and .npy round-trip any array, and any window of it reads the same samples as the whole, whatever a
    /// reused window buffer held before (the reader writes every sample).
    #[test]
    fn raw_and_npy_round_trip(w in 2usize..60, h in 2usize..60, seed in any::<u64>(), dtype in 0usize..7,
                              wx in 0usize..60, wy in 0usize..60, ww in 1usize..60, wh in 1usize..60) {
        let d = tempfile::tempdir().unwrap();
        let vals: Vec<f32> = (0..w * h).map(|i| ((i as u64).wrapping_mul(seed | 1) % 60000) as f32).collect();
        let le = |f: &dyn Fn(f32) -> Vec<u8>| vals.iter().flat_map(|&v| f(v)).collect::<Vec<u8>>();
        // (raw type where a headerless file can hold it, .npy descr, bytes, heights read back)
        let (dt, descr, bytes, want): (Option<Dtype>, &str, Vec<u8>, Vec<f32>) = match dtype {
            0 => (Some(Dtype::F32), "<f4", le(&|v| v.to_le_bytes().to_vec()), vals.clone()),
            1 => (Some(Dtype::U16), "<u2", le(&|v| (v as u16).to_le_bytes().to_vec()), vals.clone()),
            2 => (Some(Dtype::I16), "<i2", le(&|v| ((v as i32 - 30000) as i16).to_le_bytes().to_vec()), vals.iter().map(|&v| (v as i32 - 30000) as f32).collect()),
            3 => (Some(Dtype::U8), "|u1", le(&|v| vec![(v as u32 % 256) as u8]), vals.iter().map(|&v| (v as u32 % 256) as f32).collect()),
            4 => (None, "<i4", le(&|v| (v as i32 * -3).to_le_bytes().to_vec()), vals.iter().map(|&v| (v as i32 * -3) as f32).collect()),
            5 => (None, ">f4", le(&|v| (v * 0.25).to_be_bytes().to_vec()), vals.iter().map(|&v| v * 0.25).collect()),
            _ => (None, ">i2", le(&|v| ((v as i32 - 30000) as i16).to_be_bytes().to_vec()), vals.iter().map(|&v| (v as i32 - 30000) as f32).collect()),
        };
        let mut inputs = Vec::new();
        if let Some(dt) = dt {
            let raw = d.path().join(format!("a.{}", dt.name()));
            std::fs::write(&raw, &bytes).unwrap();
            inputs.push((raw, opts(Encoding::Raw(dt), Some((w, h)))));
        }
        let np = d.path().join("a.npy");
        std::fs::write(&np, npy(descr, w, h, &bytes)).unwrap();
        inputs.push((np, opts(Encoding::Npy, None)));
        for (p, o) in &inputs {
            let (_, _, v) = read_all(p, o);
            prop_assert_eq!(&v, &want);
            let r = raster::open(p, o).unwrap();
            let (x0, y0) = (wx % w, wy % h);
            let rect = Rect::new(x0, y0, (x0 + ww).min(w), (y0 + wh).min(h));
            let mut win = vec![-7.5f32; rect.len()];
            r.read_window(rect, &mut win).unwrap();
            for (i, z) in win.iter().enumerate() {
                let (x, y) = (rect.x0 + i % rect.width(), rect.y0 + i / rect.width());
                prop_assert_eq!(*z, want[y * w + x]);
            }
        }
    }
}
