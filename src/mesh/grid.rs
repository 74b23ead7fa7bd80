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
    let z = ((y - vm.y0) as f64 * vm.cy) as f32;
    let v = (y as f64 * vm.inv_h) as f32;
    for (k, x) in (w.tile.x0..w.tile.x1).enumerate() {
        let i = x - w.rect.x0;
        let c = mid[i];
        let l = if i > 0 { mid[i - 1] } else { f32::NAN };
        let r = if i + 1 < rw { mid[i + 1] } else { f32::NAN };
        let u = up.map_or(f32::NAN, |s| s[i]);
        let d = down.map_or(f32::NAN, |s| s[i]);
        pos[k] = [((x - vm.x0) as f64 * vm.cx) as f32, c * vm.zs + vm.zo, z];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiling::Rect;

    fn params(w: usize, h: usize) -> Params {
        Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [w, h] }
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
