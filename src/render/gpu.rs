//! The wgpu side of rendering: adapter and device, the terrain pipelines from `shaders/terrain.wgsl`, an offscreen
//! colour + depth target, tile batches uploaded within a memory budget, and the read-back of the image.
//! Nothing here knows about stores, manifests or GLB: [`super`] feeds it decoded tiles.

use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

const TERRAIN_WGSL: &str = include_str!("../../shaders/terrain.wgsl");
const COLOUR: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
const DEPTH: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;
const POSITION: [wgpu::VertexAttribute; 1] = wgpu::vertex_attr_array![0 => Float32x3];
const NORMAL: [wgpu::VertexAttribute; 1] = wgpu::vertex_attr_array![1 => Float32x3];

/// What a user sees when no adapter appears: what to install, for the software driver and for real GPUs.
pub const NO_ADAPTER: &str = "no GPU adapter found (terrafarm renders through Vulkan with wgpu). Install a Vulkan \
driver: on Debian or Ubuntu `apt-get install mesa-vulkan-drivers` gives lavapipe, a software renderer that needs no GPU; \
on a GPU node, the vendor's driver (NVIDIA: the driver package, which includes its Vulkan ICD). Everything else in \
terrafarm works without one";

/// A device and queue, and the adapter's name (reported with every measurement).
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: String,
}

impl Gpu {
    /// The first Vulkan adapter, high-performance preferred; the software rasteriser (lavapipe) is accepted.
    pub fn new() -> Result<Gpu> {
        let instance = wgpu::Instance::new(&wgpu::InstanceDescriptor { backends: wgpu::Backends::VULKAN, ..Default::default() });
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
        }))
        .map_err(|e| anyhow!("{NO_ADAPTER} ({e})"))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("terrafarm"),
            required_features: wgpu::Features::empty(),
            // The adapter's own limits: big tiles want big buffers, big images big textures.
            required_limits: limits,
            ..Default::default()
        }))
        .with_context(|| format!("opening the GPU device on {}", info.name))?;
        Ok(Gpu { device, queue, adapter: format!("{} ({:?}, {})", info.name, info.device_type, info.driver_info) })
    }

    pub fn max_texture(&self) -> u32 {
        self.device.limits().max_texture_dimension_2d
    }

    /// Blocks until the GPU has finished everything submitted.
    pub fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::Wait).map(|_| ()).map_err(|e| anyhow!("waiting for the GPU: {e:?}"))
    }
}

/// The per-frame uniform block of `terrain.wgsl` (`Frame`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct FrameUniform {
    pub view_proj: [[f32; 4]; 4],
    pub light: [f32; 4],
    pub shading: [f32; 4],
    pub wire_colour: [f32; 4],
}

/// One tile ready for upload: tile-local positions and normals, triangle indices, and its origin relative to the
/// scene centre.
pub struct TileData {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub indices: Vec<u32>,
    pub origin: [f32; 3],
}

impl TileData {
    /// GPU bytes this tile takes once uploaded (with the wireframe's edge list when asked).
    pub fn gpu_bytes(&self, wire: bool) -> u64 {
        let v = self.positions.len() as u64 * 24;
        let i = self.indices.len() as u64 * 4;
        v + i + if wire { 2 * i } else { 0 } + 16
    }
}

struct TileBuffers {
    positions: wgpu::Buffer,
    normals: wgpu::Buffer,
    indices: wgpu::Buffer,
    index_count: u32,
    edges: Option<(wgpu::Buffer, u32)>,
}

/// Tiles uploaded together and drawn in one render pass.
pub struct Batch {
    tiles: Vec<TileBuffers>,
    bind: wgpu::BindGroup,
    pub bytes: u64,
}

/// An offscreen frame: colour and depth (kept across batches, so tiles streamed through one by one still hide
/// each other correctly), the pipelines, and the read-back buffer.
pub struct Renderer<'g> {
    gpu: &'g Gpu,
    pub size: [u32; 2],
    colour: wgpu::Texture,
    depth: wgpu::Texture,
    frame: wgpu::Buffer,
    layout: wgpu::BindGroupLayout,
    surface: wgpu::RenderPipeline,
    wire: wgpu::RenderPipeline,
    cleared: bool,
    pub clear_colour: [f64; 3],
}

impl<'g> Renderer<'g> {
    pub fn new(gpu: &'g Gpu, size: [u32; 2], uniform: &FrameUniform) -> Result<Renderer<'g>> {
        let max = gpu.max_texture();
        if size[0] == 0 || size[1] == 0 || size[0] > max || size[1] > max {
            anyhow::bail!("image size {}x{} is outside what this GPU renders (1 to {max} pixels a side)", size[0], size[1]);
        }
        let d = &gpu.device;
        let texture = |format, usage, label| {
            d.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d { width: size[0], height: size[1], depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage,
                view_formats: &[],
            })
        };
        let colour = texture(COLOUR, wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC, "colour");
        let depth = texture(DEPTH, wgpu::TextureUsages::RENDER_ATTACHMENT, "depth");
        let frame = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("frame"),
            contents: bytemuck::bytes_of(uniform),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let module =
            d.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some("terrain.wgsl"), source: wgpu::ShaderSource::Wgsl(TERRAIN_WGSL.into()) });
        let layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("frame + origins"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: false, min_binding_size: None },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::VERTEX,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pl = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor { label: None, bind_group_layouts: &[&layout], push_constant_ranges: &[] });
        let vec3 = |attributes| wgpu::VertexBufferLayout { array_stride: 12, step_mode: wgpu::VertexStepMode::Vertex, attributes };
        let pipeline = |vs: &str, fs: &str, buffers: &[wgpu::VertexBufferLayout], topology| {
            d.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(vs),
                layout: Some(&pl),
                vertex: wgpu::VertexState { module: &module, entry_point: Some(vs), compilation_options: Default::default(), buffers },
                primitive: wgpu::PrimitiveState { topology, cull_mode: None, ..Default::default() },
                depth_stencil: Some(wgpu::DepthStencilState {
                    format: DEPTH,
                    depth_write_enabled: true,
                    depth_compare: wgpu::CompareFunction::LessEqual,
                    stencil: Default::default(),
                    bias: Default::default(),
                }),
                multisample: Default::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some(fs),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState { format: COLOUR, blend: None, write_mask: wgpu::ColorWrites::ALL })],
                }),
                multiview: None,
                cache: None,
            })
        };
        let surface = pipeline("vs_surface", "fs_surface", &[vec3(&POSITION), vec3(&NORMAL)], wgpu::PrimitiveTopology::TriangleList);
        let wire = pipeline("vs_wire", "fs_wire", &[vec3(&POSITION)], wgpu::PrimitiveTopology::LineList);
        Ok(Renderer { gpu, size, colour, depth, frame, layout, surface, wire, cleared: false, clear_colour: [0.92, 0.94, 0.97] })
    }

    /// Bytes the frame itself holds on the GPU (colour, depth, and the read-back copy).
    pub fn target_bytes(&self) -> u64 {
        let (w, h) = (self.size[0] as u64, self.size[1] as u64);
        w * h * 8 + padded_row(self.size[0]) as u64 * h
    }

    pub fn set_uniform(&self, u: &FrameUniform) {
        self.gpu.queue.write_buffer(&self.frame, 0, bytemuck::bytes_of(u));
    }

    /// Starts a new image: the next draw clears colour and depth.
    pub fn restart(&mut self) {
        self.cleared = false;
    }

    /// Uploads tiles (with their edge lists when `wire`).
    pub fn upload(&self, tiles: &[TileData], wire: bool) -> Batch {
        let d = &self.gpu.device;
        let buf = |contents: &[u8], usage| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents, usage });
        let mut bytes = 0;
        let mut out = Vec::with_capacity(tiles.len());
        let mut origins: Vec<[f32; 4]> = Vec::with_capacity(tiles.len().max(1));
        for t in tiles {
            bytes += t.gpu_bytes(wire);
            origins.push([t.origin[0], t.origin[1], t.origin[2], 0.0]);
            let edges = wire.then(|| {
                let e: Vec<u32> = t.indices.chunks_exact(3).flat_map(|c| [c[0], c[1], c[1], c[2], c[2], c[0]]).collect();
                (buf(bytemuck::cast_slice(&e), wgpu::BufferUsages::INDEX), e.len() as u32)
            });
            out.push(TileBuffers {
                positions: buf(bytemuck::cast_slice(&t.positions), wgpu::BufferUsages::VERTEX),
                normals: buf(bytemuck::cast_slice(&t.normals), wgpu::BufferUsages::VERTEX),
                indices: buf(bytemuck::cast_slice(&t.indices), wgpu::BufferUsages::INDEX),
                index_count: t.indices.len() as u32,
                edges,
            });
        }
        if origins.is_empty() {
            origins.push([0.0; 4]);
        }
        let origins = buf(bytemuck::cast_slice(&origins), wgpu::BufferUsages::STORAGE);
        let bind = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: self.frame.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: origins.as_entire_binding() },
            ],
        });
        Batch { tiles: out, bind, bytes }
    }

    /// Draws a batch into the frame (surface, then the wireframe over it when the batch has edges) and submits.
    pub fn draw(&mut self, b: &Batch) {
        let colour = self.colour.create_view(&Default::default());
        let depth = self.depth.create_view(&Default::default());
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        {
            let [r, g, bl] = self.clear_colour;
            let first = !self.cleared;
            let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("terrain"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &colour,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: if first { wgpu::LoadOp::Clear(wgpu::Color { r, g, b: bl, a: 1.0 }) } else { wgpu::LoadOp::Load },
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                    view: &depth,
                    depth_ops: Some(wgpu::Operations { load: if first { wgpu::LoadOp::Clear(1.0) } else { wgpu::LoadOp::Load }, store: wgpu::StoreOp::Store }),
                    stencil_ops: None,
                }),
                timestamp_writes: None,
                occlusion_query_set: None,
            });
            pass.set_bind_group(0, &b.bind, &[]);
            pass.set_pipeline(&self.surface);
            for (i, t) in b.tiles.iter().enumerate() {
                pass.set_vertex_buffer(0, t.positions.slice(..));
                pass.set_vertex_buffer(1, t.normals.slice(..));
                pass.set_index_buffer(t.indices.slice(..), wgpu::IndexFormat::Uint32);
                pass.draw_indexed(0..t.index_count, 0, i as u32..i as u32 + 1);
            }
            pass.set_pipeline(&self.wire);
            for (i, t) in b.tiles.iter().enumerate() {
                if let Some((edges, n)) = &t.edges {
                    pass.set_vertex_buffer(0, t.positions.slice(..));
                    pass.set_index_buffer(edges.slice(..), wgpu::IndexFormat::Uint32);
                    pass.draw_indexed(0..*n, 0, i as u32..i as u32 + 1);
                }
            }
        }
        self.cleared = true;
        self.gpu.queue.submit([enc.finish()]);
    }

    /// Copies the frame back: RGBA8 rows, top row first. An image nothing was drawn into is the clear colour.
    pub fn read(&mut self) -> Result<Vec<u8>> {
        if !self.cleared {
            self.draw(&self.upload(&[], false));
        }
        let (w, h) = (self.size[0], self.size[1]);
        let row = padded_row(w);
        let d = &self.gpu.device;
        let readback = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: row as u64 * h as u64,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut enc = d.create_command_encoder(&Default::default());
        enc.copy_texture_to_buffer(
            self.colour.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &readback,
                layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row), rows_per_image: Some(h) },
            },
            wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
        );
        self.gpu.queue.submit([enc.finish()]);
        let slice = readback.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.gpu.wait()?;
        rx.recv().map_err(|_| anyhow!("GPU read-back was dropped"))?.map_err(|e| anyhow!("mapping the read-back buffer: {e}"))?;
        let data = slice.get_mapped_range();
        let mut out = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h as usize {
            out.extend_from_slice(&data[y * row as usize..y * row as usize + w as usize * 4]);
        }
        drop(data);
        readback.unmap();
        Ok(out)
    }
}

/// Bytes per row of a texture-to-buffer copy: a multiple of 256 (WebGPU's `COPY_BYTES_PER_ROW_ALIGNMENT`).
fn padded_row(width: u32) -> u32 {
    (width * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT
}

/// Seconds since `t`, for reports.
pub fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}
