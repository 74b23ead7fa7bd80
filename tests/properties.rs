//! Invariants of the in-memory pipeline on random rasters and tilings (issue #2).

use proptest::prelude::*;
use std::collections::HashMap;
use terrafarm::mesh::{Mesh, Method, Params};
use terrafarm::pipeline::memory::mesh_in_memory;
use terrafarm::tiling::TileId;

fn raster(w: usize, h: usize, seed: u64, holes: u32) -> Vec<f32> {
    (0..w * h)
        .map(|i| {
            let z = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            if holes > 0 && z % 100 < holes as u64 {
                f32::NAN
            } else {
                (z % 5000) as f32 * 0.25
            }
        })
        .collect()
}

fn check(tiles: &[(TileId, Mesh)], p: &Params) -> Result<(), TestCaseError> {
    let (cell, q) = (p.cell, p.quantum());
    let mut border: HashMap<[u32; 2], ([u64; 3], [u32; 3])> = HashMap::new();
    for (_, m) in tiles {
        let n = m.vertices() as u32;
        for t in m.indices.chunks_exact(3) {
            prop_assert!(t.iter().all(|&i| i < n), "index out of range");
            prop_assert!(t[0] != t[1] && t[1] != t[2] && t[0] != t[2], "degenerate triangle");
            let [a, b, c] = [t[0], t[1], t[2]].map(|i| m.positions[i as usize]);
            let cross_y = (b[2] - a[2]) * (c[0] - a[0]) - (b[0] - a[0]) * (c[2] - a[2]);
            prop_assert!(cross_y > 0.0, "triangle not facing up");
        }
        for k in 0..m.vertices() {
            let p = m.positions[k];
            prop_assert!(p.iter().chain(&m.normals[k]).all(|v| v.is_finite()));
            // World position as a viewer computes it: the tile's translation plus the f32 local position.
            let world = [m.origin[0] + p[0] as f64, p[1] as f64, m.origin[2] + p[2] as f64];
            let g = m.grid[k];
            let want = [g[0] as f64 * cell[0], g[1] as f64 * cell[1]];
            // Within half the scene's coordinate quantum (a power of two below tile extent / 2^24).
            prop_assert!((world[0] - want[0]).abs() <= q[0] / 2.0 && (world[2] - want[1]).abs() <= q[1] / 2.0, "{:?} vs {:?}", world, want);
            let key = (world.map(f64::to_bits), m.normals[k].map(f32::to_bits));
            if let Some(prev) = border.insert(g, key) {
                prop_assert_eq!(prev.0, key.0, "world position differs across seam at {:?}", g);
                prop_assert_eq!(prev.1, key.1, "normal differs across seam at {:?}", g);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn grid_meshes_are_valid_and_seamless(w in 2usize..90, h in 2usize..90, tile in 2usize..40, seed in any::<u64>(),
                                          holes in 0u32..20, cx in 0.1f64..5.0, cy in 0.1f64..5.0) {
        let data = raster(w, h, seed, holes);
        let p = Params { cell: [cx, cy], z_scale: 0.7, z_offset: -3.0, raster: [w, h], tile };
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        let one = pool(1).install(|| mesh_in_memory(&data, w, h, tile, &p, &Method::Grid)).unwrap();
        let three = pool(3).install(|| mesh_in_memory(&data, w, h, tile, &p, &Method::Grid)).unwrap();
        prop_assert!(one == three, "output depends on thread count");
        check(&one, &p)?;
        if holes == 0 {
            let tris: usize = one.iter().map(|(_, m)| m.triangles()).sum();
            prop_assert_eq!(tris, 2 * (w - 1) * (h - 1));
        }
    }
}
