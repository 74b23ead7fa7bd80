//! Per-kernel criterion benchmarks with throughput: grid mesh, simplification, GLB and OBJ encoding, decoders.
//! `cargo bench --bench kernels`. Inputs are deterministic synthetic terrain (one 257² tile, the default tile size).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use terrafarm::mesh::grid::Kernel;
use terrafarm::mesh::simplify::{mesh_simplified, Scratch, SimplifyParams, Split};
use terrafarm::mesh::{grid::mesh_grid, Params, Window};
use terrafarm::raster::{decode_terrain_rgb, decode_terrarium};
use terrafarm::tiling::Rect;

const N: usize = 257;

fn tile() -> (Vec<f32>, Rect, Params) {
    let data = terrafarm::synth::generate(N, N, 7, 1200.0);
    (data, Rect::new(0, 0, N, N), Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [N, N], tile: N })
}

fn kernels(c: &mut Criterion) {
    let (data, r, p) = tile();
    let w = Window { data: &data, rect: r, tile: r };
    let mut g = c.benchmark_group("mesh");
    g.throughput(Throughput::Elements((N * N) as u64));
    g.bench_function("grid 257² (samples)", |b| b.iter(|| black_box(mesh_grid(black_box(&w), &p))));
    // 0 m takes the lossless fast path (the full grid, then checked vertex removals); 1 and 5 m the greedy insertion.
    for e in [0.0f32, 1.0, 5.0] {
        let sp = SimplifyParams { max_error: e, max_triangles: None, split: Split::Whole, curvature: 0.0 };
        let mut s = Scratch::default();
        g.bench_function(format!("simplify {e} m 257² (samples)"), |b| b.iter(|| black_box(mesh_simplified(&w, &p, &sp, &mut s))));
    }
    g.finish();

    let m = mesh_grid(&w, &p);
    let glb_len = terrafarm::encode::glb::encode(&m, &serde_json::json!({})).len();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(glb_len as u64));
    g.bench_function("glb 257² grid (bytes out)", |b| b.iter(|| black_box(terrafarm::encode::glb::encode(&m, &serde_json::json!({})))));
    // The fused writer into a reused buffer (what `mesh --format glb` runs), scalar twin and SIMD.
    let mut buf = Vec::new();
    for (name, k) in [("grid->glb fused scalar 257² (bytes out)", Kernel::Scalar), ("grid->glb fused simd 257² (bytes out)", Kernel::Auto)] {
        g.bench_function(name, |b| b.iter(|| black_box(terrafarm::pipeline::grid_glb_into(black_box(&w), &p, &serde_json::json!({}), &mut buf, k))));
    }
    let obj_len = terrafarm::encode::obj::encode(&m, [1.0, 1.0], "").len();
    g.throughput(Throughput::Bytes(obj_len as u64));
    g.bench_function("obj 257² grid (bytes out)", |b| b.iter(|| black_box(terrafarm::encode::obj::encode(&m, [1.0, 1.0], ""))));
    g.finish();

    let px: Vec<u8> = (0..N * N * 4).map(|i| (i * 31 % 251) as u8).collect();
    let mut out = vec![0f32; N * N];
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements((N * N) as u64));
    g.bench_function("terrain-rgb (samples)", |b| b.iter(|| decode_terrain_rgb(black_box(&px), 4, &mut out)));
    g.bench_function("terrarium (samples)", |b| b.iter(|| decode_terrarium(black_box(&px), 4, &mut out)));
    g.bench_function("terrain-rgb scalar twin (samples)", |b| b.iter(|| terrafarm::raster::decode_terrain_rgb_scalar(black_box(&px), 4, &mut out)));
    g.bench_function("terrarium scalar twin (samples)", |b| b.iter(|| terrafarm::raster::decode_terrarium_scalar(black_box(&px), 4, &mut out)));
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
