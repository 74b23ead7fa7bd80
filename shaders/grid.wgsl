// Full-resolution grid vertices on the GPU: for every sample of a tile, its tile-local position and its unit normal,
// the same formula as the CPU grid kernel (`mesh::normal_from`): central differences where both neighbours have data,
// one-sided where one has, flat where none has.
//
// Heights arrive as f32 bit patterns (u32) so that "no data" (NaN) is tested on the bits: WGSL lets an
// implementation assume floats are never NaN, so `h != h` would not be a reliable test.

struct Grid {
    // Tile size in samples.
    nx: u32,
    ny: u32,
    // The window (tile plus halo) in samples, and the tile's first sample inside it.
    rw: u32,
    rh: u32,
    ox: u32,
    oy: u32,
    z_scale: f32,
    z_offset: f32,
    // z_scale / cell along X and Z.
    kx: f32,
    kz: f32,
    _pad0: u32,
    _pad1: u32,
};

@group(0) @binding(0) var<uniform> grid: Grid;
@group(0) @binding(1) var<storage, read> heights: array<u32>;
// Tile-local X of each tile column and Z of each tile row (exact f32 values computed on the CPU from f64 snapping).
@group(0) @binding(2) var<storage, read> local_x: array<f32>;
@group(0) @binding(3) var<storage, read> local_z: array<f32>;
@group(0) @binding(4) var<storage, read_write> positions: array<f32>;
@group(0) @binding(5) var<storage, read_write> normals: array<f32>;

fn has_data(bits: u32) -> bool {
    return (bits & 0x7f800000u) != 0x7f800000u;
}

// Height bits at window (x, y); NaN's bits outside the window.
fn at(x: i32, y: i32) -> u32 {
    if x < 0 || y < 0 || x >= i32(grid.rw) || y >= i32(grid.rh) {
        return 0x7fc00000u;
    }
    return heights[u32(y) * grid.rw + u32(x)];
}

fn slope(a: u32, c: u32, b: u32) -> f32 {
    let ha = has_data(a);
    let hb = has_data(b);
    if ha && hb {
        return (bitcast<f32>(b) - bitcast<f32>(a)) * 0.5;
    }
    if hb {
        return bitcast<f32>(b) - bitcast<f32>(c);
    }
    if ha {
        return bitcast<f32>(c) - bitcast<f32>(a);
    }
    return 0.0;
}

@compute @workgroup_size(16, 16)
fn grid_vertices(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= grid.nx || id.y >= grid.ny {
        return;
    }
    let x = i32(id.x + grid.ox);
    let y = i32(id.y + grid.oy);
    let c = at(x, y);
    let gx = slope(at(x - 1, y), c, at(x + 1, y)) * grid.kx;
    let gz = slope(at(x, y - 1), c, at(x, y + 1)) * grid.kz;
    let inv = 1.0 / sqrt(gx * gx + gz * gz + 1.0);
    let k = (id.y * grid.nx + id.x) * 3u;
    positions[k] = local_x[id.x];
    positions[k + 1u] = bitcast<f32>(c) * grid.z_scale + grid.z_offset;
    positions[k + 2u] = local_z[id.y];
    normals[k] = -gx * inv;
    normals[k + 1u] = inv;
    normals[k + 2u] = -gz * inv;
}
