//! Bad input gets a clear message naming the file, a non-zero exit, no panic and no partial output (issue #2).

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// Runs `mesh` on `input` (+ extra flags) and checks the failure contract.
fn fails_cleanly(input: &Path, extra: &[&str], expect: &str) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let mut args = vec!["mesh", input.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{input:?}: {err}");
    let name = input.file_name().unwrap().to_string_lossy();
    assert!(err.contains(&*name), "message does not name the file:\n{err}");
    assert!(err.to_lowercase().contains(&expect.to_lowercase()), "expected '{expect}' in:\n{err}");
    let leftovers: Vec<PathBuf> = walk(&out);
    assert!(leftovers.is_empty(), "partial output left: {leftovers:?}");
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                v.extend(walk(&e.path()));
            } else {
                v.push(e.path());
            }
        }
    }
    v
}

fn tmp_file(d: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn truncated_png() {
    let d = tempfile::tempdir().unwrap();
    let good = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png")).unwrap();
    let p = tmp_file(&d, "cut.png", &good[..good.len() / 2]);
    fails_cleanly(&p, &[], "decode");
}

#[test]
fn zero_byte_file() {
    let d = tempfile::tempdir().unwrap();
    fails_cleanly(&tmp_file(&d, "zero.png", b""), &[], "empty");
    fails_cleanly(&tmp_file(&d, "zero.f32", b""), &["--size", "2x2"], "empty");
}

#[test]
fn png_bomb_header_is_refused_before_decoding() {
    // A valid PNG signature and IHDR claiming 200000 x 200000 16-bit samples, and nothing else.
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&200_000u32.to_be_bytes());
    ihdr.extend_from_slice(&200_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[16, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    for chunk in [&b"IDAT"[..], &b"IEND"[..]] {
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(chunk);
        png.extend_from_slice(&crc32(chunk).to_be_bytes());
    }
    let d = tempfile::tempdir().unwrap();
    let p = tmp_file(&d, "bomb.png", &png);
    fails_cleanly(&p, &[], "max-samples");
    // The limit is the user's to raise, and small limits bite too.
    fails_cleanly(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png")), &["--max-samples", "1000"], "max-samples");
}

#[test]
fn raw_size_mismatch() {
    let d = tempfile::tempdir().unwrap();
    let p = tmp_file(&d, "h.f32", &[0u8; 4 * 10]);
    fails_cleanly(&p, &["--size", "4x4"], "--size 4x4");
    fails_cleanly(&p, &[], "--size");
}

#[test]
fn nan_only_raster() {
    let d = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = std::iter::repeat_n(f32::NAN.to_le_bytes(), 64).flatten().collect();
    fails_cleanly(&tmp_file(&d, "nan.f32", &bytes), &["--size", "8x8"], "no valid height");
    let zeros = vec![0u8; 2 * 64];
    fails_cleanly(&tmp_file(&d, "nodata.u16", &zeros), &["--size", "8x8", "--nodata", "0"], "no valid height");
}

#[test]
fn one_by_one_raster() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("one.png");
    write_gray16_png(&p, 1, 1, |_, _| 5);
    fails_cleanly(&p, &[], "at least 2x2");
}

#[test]
fn rgb_png_without_encoding_lists_choices() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("rgb.png");
    image::RgbImage::from_pixel(4, 4, image::Rgb([1, 134, 160])).save(&p).unwrap();
    fails_cleanly(&p, &[], "terrain-rgb");
    fails_cleanly(&p, &["--encoding", "gray"], "unsupported pixel type");
}

#[test]
fn unknown_extension() {
    let d = tempfile::tempdir().unwrap();
    fails_cleanly(&tmp_file(&d, "heights.xyz", b"1 2 3\n"), &[], "cannot tell the format");
}

#[test]
fn unreadable_path() {
    let d = tempfile::tempdir().unwrap();
    fails_cleanly(&d.path().join("missing.png"), &[], "no such file");
}

#[test]
fn output_path_that_is_a_file() {
    let d = tempfile::tempdir().unwrap();
    let f = tmp_file(&d, "not-a-dir", b"x");
    let o = run(&["mesh", concat!(env!("CARGO_MANIFEST_DIR"), "/data/synth-513.png"), "--out", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("not-a-dir") && err.contains("not a directory"), "{err}");
    assert_eq!(std::fs::read(&f).unwrap(), b"x");
}

#[test]
fn npy_errors_are_specific() {
    let d = tempfile::tempdir().unwrap();
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    let h = "{'descr': '<c8', 'fortran_order': False, 'shape': (4, 4), }\n";
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&[0u8; 128]);
    fails_cleanly(&tmp_file(&d, "complex.npy", &b), &[], "dtype");
    let mut b3 = b"\x93NUMPY\x01\x00".to_vec();
    let h3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4, 4), }\n";
    b3.extend_from_slice(&(h3.len() as u16).to_le_bytes());
    b3.extend_from_slice(h3.as_bytes());
    fails_cleanly(&tmp_file(&d, "cube.npy", &b3), &[], "2-D");
}
