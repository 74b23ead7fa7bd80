//! Full-resolution grid vertices computed on the GPU (`shaders/grid.wgsl`): for every sample of a tile its
//! tile-local position and unit normal. The CPU twin is the pipeline's own grid kernel, [`crate::mesh::grid::mesh_grid`]:
//! the same formula (`mesh::normal_from`), the same exact tile-local X/Z (computed here on the CPU with the same f64
//! snapping and handed to the shader), and the test `gpu_grid_vertices_match_the_cpu_kernel` bounds the difference.

use anyhow::{bail, Result};
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::gpu::Gpu;
use crate::mesh::{Params, VertexMap, Window};

const GRID_WGSL: &str = include_str!("../../shaders/grid.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GridUniform {
    nx: u32,
    ny: u32,
    rw: u32,
    rh: u32,
    ox: u32,
    oy: u32,
    z_scale: f32,
    z_offset: f32,
    kx: f32,
    kz: f32,
    _pad: [u32; 2],
}

/// One position and one normal per tile sample, row-major over the tile (samples without data get meaningless
/// values: the grid kernel makes no vertex of them).
pub struct GridVertices {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
}

/// Computes the grid vertices of `w.tile` on the GPU.
pub fn grid_vertices(gpu: &Gpu, w: &Window, p: &Params) -> Result<GridVertices> {
    let t = w.tile;
    let vm = VertexMap::new(&t, p);
    let (nx, ny) = (t.width(), t.height());
    let out_bytes = (nx * ny * 12) as u64;
    let limit = gpu.device.limits().max_storage_buffer_binding_size as u64;
    if out_bytes > limit || (w.data.len() * 4) as u64 > limit {
        bail!("tile of {nx}x{ny} samples needs {out_bytes} bytes per output buffer; this GPU binds at most {limit}");
    }
    let [kx, kz] = vm.slope_factors();
    let u = GridUniform {
        nx: nx as u32,
        ny: ny as u32,
        rw: w.rect.width() as u32,
        rh: w.rect.height() as u32,
        ox: (t.x0 - w.rect.x0) as u32,
        oy: (t.y0 - w.rect.y0) as u32,
        z_scale: p.z_scale,
        z_offset: p.z_offset,
        kx,
        kz,
        _pad: [0; 2],
    };
    let xs: Vec<f32> = (t.x0..t.x1).map(|x| vm.local_x(x)).collect();
    let zs: Vec<f32> = (t.y0..t.y1).map(|y| vm.local_z(y)).collect();
    let d = &gpu.device;
    let init = |contents: &[u8], usage| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents, usage });
    let uniform = init(bytemuck::bytes_of(&u), wgpu::BufferUsages::UNIFORM);
    let heights = init(bytemuck::cast_slice(w.data), wgpu::BufferUsages::STORAGE);
    let xs = init(bytemuck::cast_slice(&xs), wgpu::BufferUsages::STORAGE);
    let zs = init(bytemuck::cast_slice(&zs), wgpu::BufferUsages::STORAGE);
    let out = |label| {
        d.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: out_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    };
    let (pos, nrm) = (out("positions"), out("normals"));
    let module = d.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some("grid.wgsl"), source: wgpu::ShaderSource::Wgsl(GRID_WGSL.into()) });
    let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("grid_vertices"),
        layout: None,
        module: &module,
        entry_point: Some("grid_vertices"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind = d.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[&uniform, &heights, &xs, &zs, &pos, &nrm]
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect::<Vec<_>>(),
    });
    let read = |label| {
        d.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: out_bytes,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        })
    };
    let (rpos, rnrm) = (read("positions read-back"), read("normals read-back"));
    let mut enc = d.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups((nx as u32).div_ceil(16), (ny as u32).div_ceil(16), 1);
    }
    enc.copy_buffer_to_buffer(&pos, 0, &rpos, 0, out_bytes);
    enc.copy_buffer_to_buffer(&nrm, 0, &rnrm, 0, out_bytes);
    gpu.queue.submit([enc.finish()]);
    for b in [&rpos, &rnrm] {
        b.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    }
    gpu.wait()?;
    let take = |b: &wgpu::Buffer| -> Vec<[f32; 3]> {
        let v = bytemuck::cast_slice::<u8, [f32; 3]>(&b.slice(..).get_mapped_range()).to_vec();
        b.unmap();
        v
    };
    Ok(GridVertices { positions: take(&rpos), normals: take(&rnrm) })
}

/// Distance in units in the last place between two finite f32 of any sign (0 for equal values, +0 and −0 included).
pub fn ulps(a: f32, b: f32) -> u32 {
    let key = |v: f32| {
        let i = v.to_bits() as i32;
        if i < 0 {
            i32::MIN.wrapping_sub(i) as i64
        } else {
            i as i64
        }
    };
    (key(a) - key(b)).unsigned_abs().min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::ulps;

    #[test]
    fn ulp_distance() {
        assert_eq!(ulps(1.0, 1.0), 0);
        assert_eq!(ulps(0.0, -0.0), 0);
        assert_eq!(ulps(1.0, f32::from_bits(1.0f32.to_bits() + 3)), 3);
        assert_eq!(ulps(f32::from_bits(1), -f32::from_bits(1)), 2);
    }
}
