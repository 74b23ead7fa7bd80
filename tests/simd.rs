//! The fused grid→GLB writer and its SIMD row kernel (issue #7): the run-time-dispatched SIMD path, its scalar
//! twin, and meshing then encoding all give identical GLB bytes, on random windows (inner tiles, raster edges and
//! corners, odd sizes, u16 and u32 indices, negative z-scale) and on real terrain; and the SSSE3 terrain-RGB and
//! Terrarium decoders against their scalar twins.

mod common;
use proptest::prelude::*;
use terrafarm::encode::glb;
use terrafarm::mesh::grid::{avx_available, mesh_grid, plan, Kernel};
use terrafarm::mesh::{Params, Window};
use terrafarm::pipeline::{grid_glb_into, InMemory};
use terrafarm::tiling::Rect;

fn both_paths(data: &[f32], rect: Rect, tile: Rect, p: &Params) {
    let w = Window { data, rect, tile };
    let extras = serde_json::json!({ "t": 1 });
    let mut m = mesh_grid(&w, p);
    m.max_error = 0.0;
    let want = glb::encode(&m, &extras);
    let (mut scalar, mut simd) = (Vec::new(), vec![0xAAu8; 7]); // a dirty reused buffer must not matter
    let ps = grid_glb_into(&w, p, &extras, &mut scalar, Kernel::Scalar).expect("no holes: fused path applies");
    let pa = grid_glb_into(&w, p, &extras, &mut simd, Kernel::Auto).unwrap();
    assert_eq!(ps, pa);
    assert_eq!((ps.min, ps.max, ps.origin), (m.min, m.max, m.origin));
    assert!(scalar == want, "scalar fused GLB differs from mesh+encode (tile {tile:?} in {rect:?})");
    assert!(simd == want, "SIMD fused GLB differs from the scalar twin (tile {tile:?} in {rect:?})");
    // Reusing a larger, already used buffer gives the same bytes again.
    let mut reused = vec![0x55u8; want.len() + 1000];
    grid_glb_into(&w, p, &extras, &mut reused, Kernel::Auto).unwrap();
    assert!(reused == want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn fused_simd_scalar_and_classic_agree(
        rw in 3usize..90, rh in 3usize..90, tx in 0usize..90, ty in 0usize..90, tw in 2usize..60, th in 2usize..60,
        seed in 0u64..1000, zs in prop_oneof![Just(1.0f32), -3.0f32..3.0], cx in 0.1f64..5.0, cy in 0.1f64..5.0,
    ) {
        // A raster rw×rh; the window is the tile plus a one-sample halo clipped to the raster.
        let (tx, ty) = (tx % (rw - 1), ty % (rh - 1));
        let tile = Rect::new(tx, ty, (tx + tw).min(rw), (ty + th).min(rh));
        let rect = Rect::new(tile.x0.saturating_sub(1), tile.y0.saturating_sub(1), (tile.x1 + 1).min(rw), (tile.y1 + 1).min(rh));
        let raster = terrafarm::synth::generate(rw, rh, seed, 300.0);
        let data: Vec<f32> = (rect.y0..rect.y1).flat_map(|y| raster[y * rw + rect.x0..y * rw + rect.x1].to_vec()).collect();
        let p = Params { cell: [cx, cy], z_scale: zs, z_offset: 7.5, raster: [rw, rh], tile: rw.max(rh) };
        both_paths(&data, rect, tile, &p);
    }
}

#[test]
fn large_tiles_use_u32_indices_and_agree() {
    let (w, h) = (400, 300);
    let raster = terrafarm::synth::generate(w, h, 9, 1000.0);
    let r = Rect::new(0, 0, w, h);
    both_paths(&raster, r, Rect::new(0, 0, w, h), &Params { cell: [0.5, 2.0], z_scale: 1.0, z_offset: 0.0, raster: [w, h], tile: w.max(h) });
}

#[test]
fn holes_are_left_to_the_general_mesher() {
    let mut d = terrafarm::synth::generate(10, 10, 1, 10.0);
    d[0] = f32::NAN; // in the halo only
    let w = Window { data: &d, rect: Rect::new(0, 0, 10, 10), tile: Rect::new(1, 1, 9, 9) };
    assert!(plan(&w, &Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [10, 10], tile: 10 }).is_none());
}

#[test]
fn whole_fuji_raster_fused_equals_classic() {
    let Some(p) = common::shared("fuji.png") else { return };
    let opts = terrafarm::raster::ReadOptions { encoding: "terrain-rgb".parse().unwrap(), size: None, max_samples: 1 << 32, nodata: None };
    let r = terrafarm::raster::open(&p, &opts).unwrap();
    let (w, h) = (r.width(), r.height());
    let mut d = vec![0f32; w * h];
    r.read_window(Rect::new(0, 0, w, h), &mut d).unwrap();
    let params = Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [w, h], tile: w.max(h) };
    // One inner tile with its halo, byte for byte; then every tile of the raster by size.
    let tile = Rect::new(100, 100, 201, 201);
    let rect = Rect::new(99, 99, 202, 202);
    let win: Vec<f32> = (rect.y0..rect.y1).flat_map(|y| d[y * w + rect.x0..y * w + rect.x1].to_vec()).collect();
    both_paths(&win, rect, tile, &Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [w, h], tile: w.max(h) });
    let mem = InMemory::new(&d, w, h, 100).unwrap();
    let classic: usize = mem.mesh(&params, &terrafarm::mesh::Method::Grid).iter().map(|(_, m)| glb::encode(m, &serde_json::json!({})).len()).sum();
    assert_eq!(mem.grid_glb_bytes(&params, Kernel::Scalar), classic);
    assert_eq!(mem.grid_glb_bytes(&params, Kernel::Auto), classic);
}

/// Under CI the SIMD path must actually run (x86-64 machines with AVX), or the comparisons above prove nothing.
#[test]
fn simd_path_is_exercised_in_ci() {
    eprintln!("AVX row kernels available: {}", avx_available());
    if std::env::var("CI").is_ok_and(|v| v == "true") && cfg!(target_arch = "x86_64") {
        assert!(avx_available(), "CI machine without AVX: the SIMD twin test would be vacuous");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// The SSSE3 terrain-RGB and Terrarium decoders equal their scalar twins bit for bit, for RGB and RGBA and
    /// lengths that leave a scalar tail.
    #[test]
    fn rgb_decoders_match_scalar_twins(px in proptest::collection::vec(any::<u8>(), 0..400), rgba in any::<bool>()) {
        use terrafarm::raster::{decode_terrain_rgb, decode_terrain_rgb_scalar, decode_terrarium, decode_terrarium_scalar};
        let ch = if rgba { 4 } else { 3 };
        let n = px.len() / ch;
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        decode_terrain_rgb(&px, ch, &mut a);
        decode_terrain_rgb_scalar(&px, ch, &mut b);
        prop_assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        decode_terrarium(&px, ch, &mut a);
        decode_terrarium_scalar(&px, ch, &mut b);
        prop_assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
}
