//! Full-resolution grid mesher: every sample a vertex, two triangles per cell. Count first, then fill buffers of
//! exactly the right size; samples without data drop the triangles that touch them (holes), never become vertices.

use super::{normal_from, Mesh, Params, VertexMap, Window};

/// Fills positions, normals, UVs and grid coordinates for tile row `y` into the given output slices.
/// Row-wise so the inner loop sees three contiguous rows and no bounds logic beyond the ends.
#[inline]
fn fill_row(w: &Window, vm: &VertexMap, y: usize, pos: &mut [[f32; 3]], nrm: &mut [[f32; 3]], uv: &mut [[f32; 2]], grid: &mut [[u32; 2]]) {
    let rw = w.rect.width();
    let row = |yy: usize| &w.data[(yy - w.rect.y0) * rw..(yy - w.rect.y0 + 1) * rw];
    let mid = row(y);
    let up = (y > w.rect.y0).then(|| row(y - 1));
    let down = (y + 1 < w.rect.y1).then(|| row(y + 1));
    let z = vm.local_z(y);
    let v = (y as f64 * vm.inv_h) as f32;
    for (k, x) in (w.tile.x0..w.tile.x1).enumerate() {
        let i = x - w.rect.x0;
        let c = mid[i];
        let l = if i > 0 { mid[i - 1] } else { f32::NAN };
        let r = if i + 1 < rw { mid[i + 1] } else { f32::NAN };
        let u = up.map_or(f32::NAN, |s| s[i]);
        let d = down.map_or(f32::NAN, |s| s[i]);
        pos[k] = [vm.local_x(x), c * vm.zs + vm.zo, z];
        nrm[k] = normal_from(l, r, u, d, c, vm.kx, vm.kz);
        uv[k] = [(x as f64 * vm.inv_w) as f32, v];
        grid[k] = [x as u32, y as u32];
    }
}

/// Meshes the tile at full resolution.
pub fn mesh_grid(w: &Window, p: &Params) -> Mesh {
    let t = w.tile;
    let vm = VertexMap::new(&t, p);
    let (nx, ny) = (t.width(), t.height());
    let rw = w.rect.width();
    let tile_row = |y: usize| {
        let s = (y - w.rect.y0) * rw + (t.x0 - w.rect.x0);
        &w.data[s..s + nx]
    };
    let nodata: usize = (t.y0..t.y1).map(|y| tile_row(y).iter().filter(|h| h.is_nan()).count()).sum();
    let mut m = Mesh { origin: vm.origin(), nodata_samples: nodata, ..Mesh::default() };

    if nodata == 0 {
        let n = nx * ny;
        m.positions = vec![[0.0; 3]; n];
        m.normals = vec![[0.0; 3]; n];
        m.uvs = vec![[0.0; 2]; n];
        m.grid = vec![[0; 2]; n];
        for (j, y) in (t.y0..t.y1).enumerate() {
            let r = j * nx..(j + 1) * nx;
            fill_row(w, &vm, y, &mut m.positions[r.clone()], &mut m.normals[r.clone()], &mut m.uvs[r.clone()], &mut m.grid[r]);
        }
        m.indices = Vec::with_capacity((nx - 1) * (ny - 1) * 6);
        for j in 0..ny - 1 {
            for i in 0..nx - 1 {
                let a = (j * nx + i) as u32;
                let b = a + 1;
                let c = a + nx as u32;
                let d = c + 1;
                m.indices.extend_from_slice(&[a, c, b, b, c, d]);
            }
        }
    } else {
        // Keep a triangle only when its three corners have data; keep a vertex only when a kept triangle uses it.
        let valid = |i: usize, j: usize| !tile_row(t.y0 + j)[i].is_nan();
        let mut used = vec![false; nx * ny];
        let mut tris: Vec<[u32; 3]> = Vec::new();
        for j in 0..ny - 1 {
            for i in 0..nx - 1 {
                let (a, b, c, d) = (j * nx + i, j * nx + i + 1, (j + 1) * nx + i, (j + 1) * nx + i + 1);
                let (va, vb, vc, vd) = (valid(i, j), valid(i + 1, j), valid(i, j + 1), valid(i + 1, j + 1));
                for (ok, tri) in [(va && vc && vb, [a, c, b]), (vb && vc && vd, [b, c, d])] {
                    if ok {
                        tri.iter().for_each(|&k| used[k] = true);
                        tris.push([tri[0] as u32, tri[1] as u32, tri[2] as u32]);
                    }
                }
            }
        }
        let mut remap = vec![u32::MAX; nx * ny];
        let count = used.iter().filter(|&&u| u).count();
        m.positions.reserve_exact(count);
        m.normals.reserve_exact(count);
        m.uvs.reserve_exact(count);
        m.grid.reserve_exact(count);
        for (k, _) in used.iter().enumerate().filter(|(_, &u)| u) {
            let (x, y) = (t.x0 + k % nx, t.y0 + k / nx);
            let h = w.at(x, y);
            remap[k] = m.positions.len() as u32;
            m.positions.push(vm.position(x, y, h));
            m.normals.push(vm.normal(w, x, y, h));
            m.uvs.push(vm.uv(x, y));
            m.grid.push([x as u32, y as u32]);
        }
        m.indices = tris.iter().flat_map(|t| t.map(|k| remap[k as usize])).collect();
    }
    m.finish_bounds();
    m
}

/// Where the fused grid writer puts its output: little-endian bytes laid out as glTF buffer views (positions and
/// normals as f32×3, UVs as f32×2, indices as u16 or u32), exactly [`GridPlan`]'s sizes. The GLB encoder hands
/// out its BIN sections as this type.
pub struct GridOut<'a> {
    pub positions: &'a mut [u8],
    pub normals: &'a mut [u8],
    pub uvs: &'a mut [u8],
    pub indices: &'a mut [u8],
    pub u16_indices: bool,
}

/// What the fused writer will produce for a tile: counts and the bounds a GLB header needs before any vertex (the
/// GLB encoder's `Layout`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridPlan {
    pub vertices: usize,
    pub indices: usize,
    pub origin: [f64; 3],
    pub min: [f32; 3],
    pub max: [f32; 3],
}

/// Which implementation of the row kernels to run. Both give identical bytes (tests/simd.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Scalar,
    /// AVX where the CPU has it (checked at run time), else scalar.
    Auto,
}

/// Plans the fused full-resolution writer (count, then fill). `None` when the window has any no-data sample: holes
/// go through [`mesh_grid`], which drops triangles.
pub fn plan(w: &Window, p: &Params) -> Option<GridPlan> {
    plan_with(w, p, Kernel::Auto)
}

/// [`plan`] with a chosen kernel for the height scan.
pub fn plan_with(w: &Window, p: &Params, kernel: Kernel) -> Option<GridPlan> {
    let t = w.tile;
    let vm = VertexMap::new(&t, p);
    let (nx, ny) = (t.width(), t.height());
    let rw = w.rect.width();
    let (tx0, tx1) = (t.x0 - w.rect.x0, t.x1 - w.rect.x0);
    // One pass over the window: any NaN (tile or halo) → None; min/max of the tile's transformed heights.
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for (j, row) in w.data.chunks_exact(rw).enumerate() {
        let y = w.rect.y0 + j;
        let part = if (t.y0..t.y1).contains(&y) { Some(&row[tx0..tx1]) } else { None };
        let r = match kernel {
            #[cfg(target_arch = "x86_64")]
            // SSE2 is part of the x86-64 baseline: no run-time check needed.
            Kernel::Auto => unsafe { scan_row_sse2(row, part, vm.zs, vm.zo) },
            _ => scan_row_scalar(row, part, vm.zs, vm.zo),
        };
        let (l, h) = r?;
        lo = if l < lo { l } else { lo };
        hi = if h > hi { h } else { hi };
    }
    let (lo, hi) = (super::canonical_zero(lo), super::canonical_zero(hi));
    // The same values finish_bounds() folds from the positions mesh_grid() makes.
    let x_end = vm.position(t.x1 - 1, t.y1 - 1, 0.0);
    Some(GridPlan {
        vertices: nx * ny,
        indices: (nx - 1) * (ny - 1) * 6,
        origin: vm.origin(),
        min: [0.0f32.min(x_end[0]), lo, 0.0f32.min(x_end[2])].map(super::canonical_zero),
        max: [0.0f32.max(x_end[0]), hi, 0.0f32.max(x_end[2])].map(super::canonical_zero),
    })
}

/// `None` when `row` holds a NaN; else min and max of `h·zs + zo` over `part` (±∞ when there is none).
fn scan_row_scalar(row: &[f32], part: Option<&[f32]>, zs: f32, zo: f32) -> Option<(f32, f32)> {
    if row.iter().any(|h| h.is_nan()) {
        return None;
    }
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &h in part.unwrap_or(&[]) {
        let v = h * zs + zo;
        lo = if v < lo { v } else { lo };
        hi = if v > hi { v } else { hi };
    }
    Some((lo, hi))
}

/// The SSE2 twin of [`scan_row_scalar`]: min/max are order-independent on NaN-free values (±0 are made +0 by
/// the caller), so the result is identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn scan_row_sse2(row: &[f32], part: Option<&[f32]>, zs: f32, zo: f32) -> Option<(f32, f32)> {
    use std::arch::x86_64::*;
    let mut nan = _mm_setzero_ps();
    let mut chunks = row.chunks_exact(4);
    for c in &mut chunks {
        let v = _mm_loadu_ps(c.as_ptr());
        nan = _mm_or_ps(nan, _mm_cmpunord_ps(v, v));
    }
    if _mm_movemask_ps(nan) != 0 || chunks.remainder().iter().any(|h| h.is_nan()) {
        return None;
    }
    let part = part.unwrap_or(&[]);
    let (vzs, vzo) = (_mm_set1_ps(zs), _mm_set1_ps(zo));
    let (mut lo4, mut hi4) = (_mm_set1_ps(f32::INFINITY), _mm_set1_ps(f32::NEG_INFINITY));
    let mut chunks = part.chunks_exact(4);
    for c in &mut chunks {
        let v = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(c.as_ptr()), vzs), vzo);
        lo4 = _mm_min_ps(lo4, v);
        hi4 = _mm_max_ps(hi4, v);
    }
    let (mut l, mut h) = ([0f32; 4], [0f32; 4]);
    _mm_storeu_ps(l.as_mut_ptr(), lo4);
    _mm_storeu_ps(h.as_mut_ptr(), hi4);
    let (mut lo, mut hi) =
        (l.iter().fold(f32::INFINITY, |a, &b| if b < a { b } else { a }), h.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a }));
    for &x in chunks.remainder() {
        let v = x * zs + zo;
        lo = if v < lo { v } else { lo };
        hi = if v > hi { v } else { hi };
    }
    Some((lo, hi))
}

/// Writes the planned tile straight into `out` (no intermediate Mesh): attribute rows through a small row buffer
/// that stays in L1, indices as one row template shifted per row. Bytes equal `mesh_grid` + the GLB encoder's.
pub fn fill(w: &Window, p: &Params, out: GridOut, kernel: Kernel) {
    let t = w.tile;
    let vm = VertexMap::new(&t, p);
    let (nx, ny) = (t.width(), t.height());
    let rw = w.rect.width();
    // Column-constant attributes, computed once per tile with the f64 mapping mesh_grid uses.
    let xs: Vec<f32> = (t.x0..t.x1).map(|x| vm.local_x(x)).collect();
    let us: Vec<f32> = (t.x0..t.x1).map(|x| (x as f64 * vm.inv_w) as f32).collect();
    let mut pos_row = vec![[0f32; 3]; nx];
    let mut nrm_row = vec![[0f32; 3]; nx];
    let mut uv_row = vec![[0f32; 2]; nx];
    let avx = kernel == Kernel::Auto && avx_available();
    let i0 = t.x0 - w.rect.x0;
    for (j, y) in (t.y0..t.y1).enumerate() {
        let row = |yy: usize| &w.data[(yy - w.rect.y0) * rw..(yy - w.rect.y0 + 1) * rw];
        let mid = row(y);
        let z = vm.local_z(y);
        let v = (y as f64 * vm.inv_h) as f32;
        for k in 0..nx {
            pos_row[k] = [xs[k], mid[i0 + k] * vm.zs + vm.zo, z];
            uv_row[k] = [us[k], v];
        }
        normals_row(w, &vm, y, avx, &mut nrm_row);
        let r3 = j * nx * 12..(j + 1) * nx * 12;
        out.positions[r3.clone()].copy_from_slice(bytemuck::cast_slice(&pos_row));
        out.normals[r3].copy_from_slice(bytemuck::cast_slice(&nrm_row));
        out.uvs[j * nx * 8..(j + 1) * nx * 8].copy_from_slice(bytemuck::cast_slice(&uv_row));
    }
    // Row j's indices are row 0's plus j·nx: build the template once, then shift it per row.
    let per_row = (nx - 1) * 6;
    let template: Vec<u32> = (0..nx - 1)
        .flat_map(|i| {
            let (a, c) = (i as u32, (i + nx) as u32);
            [a, c, a + 1, a + 1, c, c + 1]
        })
        .collect();
    if out.u16_indices {
        let tpl: Vec<u16> = template.iter().map(|&i| i as u16).collect();
        let mut row = vec![0u16; per_row];
        for (j, dst) in out.indices.chunks_exact_mut(per_row * 2).enumerate().take(ny - 1) {
            let off = (j * nx) as u16;
            row.iter_mut().zip(&tpl).for_each(|(o, &s)| *o = s + off);
            dst.copy_from_slice(bytemuck::cast_slice(&row));
        }
    } else {
        let mut row = vec![0u32; per_row];
        for (j, dst) in out.indices.chunks_exact_mut(per_row * 4).enumerate().take(ny - 1) {
            let off = (j * nx) as u32;
            #[cfg(target_arch = "x86_64")]
            if kernel == Kernel::Auto {
                // SAFETY: SSE2 is part of the x86-64 baseline; dst holds exactly per_row u32s.
                unsafe { shift_store_u32_sse2(&template, off, dst) };
                continue;
            }
            row.iter_mut().zip(&template).for_each(|(o, &s)| *o = s + off);
            dst.copy_from_slice(bytemuck::cast_slice(&row));
        }
    }
}

/// The normals of tile row `y` into `out` (one per tile column). The vector kernel covers the columns with both
/// horizontal neighbours when both vertical neighbours exist; the rest (raster edges) take the general formula.
fn normals_row(w: &Window, vm: &VertexMap, y: usize, avx: bool, out: &mut [[f32; 3]]) {
    let (t, rw) = (w.tile, w.rect.width());
    let nx = t.width();
    let i0 = t.x0 - w.rect.x0;
    let row = |yy: usize| &w.data[(yy - w.rect.y0) * rw..(yy - w.rect.y0 + 1) * rw];
    let mid = row(y);
    let up = (y > w.rect.y0).then(|| row(y - 1));
    let down = (y + 1 < w.rect.y1).then(|| row(y + 1));
    let (mut k_lo, mut k_hi) = (0, 0);
    if let (Some(u), Some(d)) = (up, down) {
        k_lo = usize::from(i0 == 0);
        k_hi = if i0 + nx == rw { nx - 1 } else { nx };
        if k_lo < k_hi {
            let (a, b) = (i0 + k_lo, i0 + k_hi);
            let args = Central { l: &mid[a - 1..b - 1], r: &mid[a + 1..b + 1], u: &u[a..b], d: &d[a..b], kx: vm.kx, kz: vm.kz };
            if avx {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: callers pass avx = true only after avx_available().
                unsafe {
                    central_normals_avx(&args, &mut out[k_lo..k_hi])
                };
            } else {
                central_normals_scalar(&args, &mut out[k_lo..k_hi]);
            }
        } else {
            (k_lo, k_hi) = (0, 0);
        }
    }
    for k in (0..k_lo).chain(k_hi..nx) {
        let i = i0 + k;
        let l = if i > 0 { mid[i - 1] } else { f32::NAN };
        let r = if i + 1 < rw { mid[i + 1] } else { f32::NAN };
        let u = up.map_or(f32::NAN, |s| s[i]);
        let d = down.map_or(f32::NAN, |s| s[i]);
        out[k] = normal_from(l, r, u, d, mid[i], vm.kx, vm.kz);
    }
}

/// Only the normals of a hole-free tile (row-major, one per sample), for benchmarking the normal kernel on its
/// own; `fill` computes the same values.
pub fn normals(w: &Window, p: &Params, kernel: Kernel, out: &mut Vec<[f32; 3]>) {
    let t = w.tile;
    let vm = VertexMap::new(&t, p);
    let nx = t.width();
    out.resize(nx * t.height(), [0.0; 3]);
    let avx = kernel == Kernel::Auto && avx_available();
    for (j, y) in (t.y0..t.y1).enumerate() {
        normals_row(w, &vm, y, avx, &mut out[j * nx..(j + 1) * nx]);
    }
}

/// `dst` (little-endian u32 bytes) = `src` + `off`, four at a time straight into the output (no row buffer).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn shift_store_u32_sse2(src: &[u32], off: u32, dst: &mut [u8]) {
    use std::arch::x86_64::*;
    debug_assert_eq!(dst.len(), src.len() * 4);
    let o = _mm_set1_epi32(off as i32);
    let n = src.len();
    let mut i = 0;
    while i + 4 <= n {
        let v = _mm_add_epi32(_mm_loadu_si128(src.as_ptr().add(i) as *const __m128i), o);
        _mm_storeu_si128(dst.as_mut_ptr().add(i * 4) as *mut __m128i, v);
        i += 4;
    }
    for k in i..n {
        dst[k * 4..k * 4 + 4].copy_from_slice(&(src[k] + off).to_le_bytes());
    }
}

/// Central-difference inputs for a run of columns: left, right, up and down neighbours, aligned by column.
struct Central<'a> {
    l: &'a [f32],
    r: &'a [f32],
    u: &'a [f32],
    d: &'a [f32],
    kx: f32,
    kz: f32,
}

/// The scalar twin: exactly `normal_from` with both neighbours present on both axes.
fn central_normals_scalar(a: &Central, out: &mut [[f32; 3]]) {
    for (k, o) in out.iter_mut().enumerate() {
        let gx = (a.r[k] - a.l[k]) * 0.5 * a.kx;
        let gz = (a.d[k] - a.u[k]) * 0.5 * a.kz;
        let inv = 1.0 / (gx * gx + gz * gz + 1.0).sqrt();
        *o = [-gx * inv, inv, -gz * inv];
    }
}

/// True when the AVX row kernels may run on this CPU.
pub fn avx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Stores four (a, b, c) triples interleaved: a0 b0 c0 a1 | b1 c1 a2 b2 | c2 a3 b3 c3.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn store3(a: std::arch::x86_64::__m128, b: std::arch::x86_64::__m128, c: std::arch::x86_64::__m128, dst: *mut f32) {
    use std::arch::x86_64::*;
    let ab_lo = _mm_unpacklo_ps(a, b); // a0 b0 a1 b1
    let ab_hi = _mm_unpackhi_ps(a, b); // a2 b2 a3 b3
    let bc_lo = _mm_unpacklo_ps(b, c); // b0 c0 b1 c1
    let bc_hi = _mm_unpackhi_ps(b, c); // b2 c2 b3 c3
    let ca_lo = _mm_unpacklo_ps(c, a); // c0 a0 c1 a1
    let ca_hi = _mm_unpackhi_ps(c, a); // c2 a2 c3 a3
    _mm_storeu_ps(dst, _mm_shuffle_ps::<0b11_00_01_00>(ab_lo, ca_lo)); // a0 b0 c0 a1
    _mm_storeu_ps(dst.add(4), _mm_shuffle_ps::<0b01_00_11_10>(bc_lo, ab_hi)); // b1 c1 a2 b2
    _mm_storeu_ps(dst.add(8), _mm_shuffle_ps::<0b11_10_11_00>(ca_hi, bc_hi)); // c2 a3 b3 c3
}

/// Eight columns at a time, the same IEEE operations in the same order as the scalar twin (no FMA, exact
/// sqrt and division), so the bytes are identical.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn central_normals_avx(a: &Central, out: &mut [[f32; 3]]) {
    use std::arch::x86_64::*;
    let n = out.len();
    let half = _mm256_set1_ps(0.5);
    let one = _mm256_set1_ps(1.0);
    let kx = _mm256_set1_ps(a.kx);
    let kz = _mm256_set1_ps(a.kz);
    let sign = _mm256_set1_ps(-0.0);
    let mut k = 0;
    while k + 8 <= n {
        // SAFETY: k + 8 <= n and every input slice has length n.
        let ld = |s: &[f32]| _mm256_loadu_ps(s.as_ptr().add(k));
        let gx = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(ld(a.r), ld(a.l)), half), kx);
        let gz = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(ld(a.d), ld(a.u)), half), kz);
        let s = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(gx, gx), _mm256_mul_ps(gz, gz)), one);
        let inv = _mm256_div_ps(one, _mm256_sqrt_ps(s));
        let nx = _mm256_mul_ps(_mm256_xor_ps(gx, sign), inv);
        let nz = _mm256_mul_ps(_mm256_xor_ps(gz, sign), inv);
        // SAFETY: out[k..k + 8] is 24 contiguous f32s.
        let dst = out.as_mut_ptr().add(k) as *mut f32;
        store3(_mm256_castps256_ps128(nx), _mm256_castps256_ps128(inv), _mm256_castps256_ps128(nz), dst);
        store3(_mm256_extractf128_ps::<1>(nx), _mm256_extractf128_ps::<1>(inv), _mm256_extractf128_ps::<1>(nz), dst.add(12));
        k += 8;
    }
    let rest = Central { l: &a.l[k..], r: &a.r[k..], u: &a.u[k..], d: &a.d[k..], kx: a.kx, kz: a.kz };
    central_normals_scalar(&rest, &mut out[k..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiling::Rect;

    fn params(w: usize, h: usize) -> Params {
        Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [w, h], tile: w.max(h) }
    }

    #[test]
    fn small_grid_counts_and_winding() {
        let data: Vec<f32> = (0..12).map(|i| (i % 4) as f32).collect();
        let r = Rect::new(0, 0, 4, 3);
        let m = mesh_grid(&Window { data: &data, rect: r, tile: r }, &params(4, 3));
        assert_eq!(m.vertices(), 12);
        assert_eq!(m.triangles(), 12);
        for t in m.indices.chunks(3) {
            let [a, b, c] = [t[0], t[1], t[2]].map(|i| m.positions[i as usize]);
            let e1 = [b[0] - a[0], b[2] - a[2]];
            let e2 = [c[0] - a[0], c[2] - a[2]];
            // y component of (b−a)×(c−a) must be positive: facing up.
            assert!(e1[1] * e2[0] - e1[0] * e2[1] > 0.0);
        }
        assert_eq!(m.max, [3.0, 3.0, 2.0]);
    }

    #[test]
    fn fast_path_equals_general_formula() {
        let data: Vec<f32> = (0..30).map(|i| ((i * 7) % 11) as f32 * 0.5).collect();
        let rect = Rect::new(0, 0, 6, 5);
        let tile = Rect::new(1, 1, 5, 4);
        let w = Window { data: &data, rect, tile };
        let p = params(6, 5);
        let m = mesh_grid(&w, &p);
        let vm = VertexMap::new(&tile, &p);
        for (k, g) in m.grid.iter().enumerate() {
            let (x, y) = (g[0] as usize, g[1] as usize);
            assert_eq!(m.normals[k], vm.normal(&w, x, y, w.at(x, y)));
            assert_eq!(m.positions[k], vm.position(x, y, w.at(x, y)));
            assert_eq!(m.uvs[k], vm.uv(x, y));
        }
    }

    #[test]
    fn nodata_makes_holes_not_nan() {
        let mut data = vec![1f32; 25];
        data[12] = f32::NAN; // centre of 5x5
        let r = Rect::new(0, 0, 5, 5);
        let m = mesh_grid(&Window { data: &data, rect: r, tile: r }, &params(5, 5));
        assert_eq!(m.nodata_samples, 1);
        assert_eq!(m.vertices(), 24);
        assert_eq!(m.triangles(), 32 - 6);
        assert!(m.positions.iter().flatten().chain(m.normals.iter().flatten()).all(|v| v.is_finite()));
        assert!(m.indices.iter().all(|&i| (i as usize) < m.vertices()));
    }

    #[test]
    fn all_nodata_is_empty() {
        let data = vec![f32::NAN; 9];
        let r = Rect::new(0, 0, 3, 3);
        let m = mesh_grid(&Window { data: &data, rect: r, tile: r }, &params(3, 3));
        assert_eq!((m.vertices(), m.triangles()), (0, 0));
    }
}
