//! Rendering, the stage after the store: reads a scene back (manifest, then its GLB tiles) and draws it with the
//! WGSL shaders in `shaders/` on wgpu. Tiles stream through the frame in batches that fit a GPU memory budget (the
//! depth buffer is kept between batches), so a scene larger than GPU memory still renders.
//!
//! Only this module and its children know wgpu; the rest of terrafarm never needs a GPU, and a machine without an
//! adapter gets [`gpu::NO_ADAPTER`] (what to install), never a panic.

pub mod camera;
pub mod compute;
pub mod gpu;

use std::sync::mpsc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use image::ImageEncoder;
use serde::Serialize;

use crate::encode::{glb, Format};
use crate::manifest::Manifest;
use crate::store::Store;
use camera::{Extent, View};
use gpu::{FrameUniform, Gpu, Renderer, TileData};

/// How the surface is coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Grey Lambert shading from the mesh's normals, light from azimuth 315°, altitude 45° (as `gdaldem hillshade`).
    Hillshade,
    /// A colour ramp by height (green lowland → brown → white peaks), shaded by the same light.
    Hypsometric,
}

impl std::str::FromStr for Style {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hillshade" => Ok(Style::Hillshade),
            "hypsometric" => Ok(Style::Hypsometric),
            o => Err(format!("unknown style '{o}' (hillshade or hypsometric)")),
        }
    }
}

/// The cartographic hillshade convention: light from the north-west, 45° up.
pub const LIGHT_AZIMUTH: f64 = 315.0;
pub const LIGHT_ALTITUDE: f64 = 45.0;
/// Default long side of an image, in pixels.
pub const DEFAULT_CAP: u32 = 2048;

#[derive(Clone, Debug)]
pub struct Options {
    pub style: Style,
    pub wireframe: bool,
    /// Image size; default: the raster's size, long side capped at [`DEFAULT_CAP`].
    pub size: Option<[u32; 2]>,
    pub view: View,
    /// GPU bytes the uploaded tiles may take at once (the frame itself comes on top).
    pub budget: u64,
    /// Frames to draw (for frame-rate measurements); the image is the last one.
    pub frames: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { style: Style::Hillshade, wireframe: false, size: None, view: View::Top, budget: 512 << 20, frames: 1 }
    }
}

/// What a render did and took.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub adapter: String,
    pub size: [u32; 2],
    pub tiles: usize,
    pub vertices: u64,
    pub triangles: u64,
    /// Uploads of tile batches over all frames (1 per frame when the scene fits the budget, it is then uploaded once).
    pub batches: usize,
    /// Most GPU bytes held at once: the largest batch plus the frame.
    pub gpu_peak_bytes: u64,
    /// Seconds reading and decoding tiles from the store (overlapped with drawing).
    pub load_s: f64,
    /// Seconds for the first frame, tile loading and uploads included.
    pub first_frame_s: f64,
    /// Frames after the first and their mean seconds (tiles resident on the GPU when they fit the budget, streamed
    /// again otherwise).
    pub more_frames: u32,
    pub frame_s: Option<f64>,
    pub resident: bool,
}

/// A rendered image: RGBA8, top row first.
pub struct Image {
    pub rgba: Vec<u8>,
    pub size: [u32; 2],
}

impl Image {
    /// The image as an RGB PNG.
    pub fn png(&self) -> Result<Vec<u8>> {
        let rgb: Vec<u8> = self.rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&rgb, self.size[0], self.size[1], image::ExtendedColorType::Rgb8)
            .context("encoding the PNG")?;
        Ok(out)
    }
}

/// The scene's world box from its tile records, and its cell size.
pub fn extent(m: &Manifest) -> Result<Extent> {
    let mut min = [f64::INFINITY; 3];
    let mut max = [f64::NEG_INFINITY; 3];
    for t in m.tiles.iter().filter(|t| !t.files.is_empty()) {
        for k in 0..3 {
            min[k] = min[k].min(t.bounds[0][k]);
            max[k] = max[k].max(t.bounds[1][k]);
        }
    }
    if !min.iter().chain(&max).all(|v| v.is_finite()) {
        bail!("scene {} has no tiles with data to render", m.scene);
    }
    Ok(Extent { min, max, cell: m.params.cell_size })
}

/// The GLB files of a scene's tiles, in tile order; a scene written as OBJ only is refused with what to run.
fn glb_files(m: &Manifest) -> Result<Vec<String>> {
    let with_data: Vec<_> = m.tiles.iter().filter(|t| !t.files.is_empty()).collect();
    let files: Vec<String> = with_data.iter().filter_map(|t| t.files.iter().find(|f| f.format == Format::Glb)).map(|f| f.name.clone()).collect();
    if files.len() < with_data.len() {
        bail!("scene {}: render reads GLB tiles, and {} of its tiles have none (mesh it with --format glb or glb,obj)", m.scene, with_data.len() - files.len());
    }
    Ok(files)
}

/// Renders a scene: `m` is its manifest, its files are read from `store` under `scene/`.
pub fn render(gpu: &Gpu, store: &dyn Store, scene: &str, m: &Manifest, o: &Options) -> Result<(Image, Stats)> {
    let files = glb_files(m)?;
    let e = extent(m)?;
    let size = o.size.unwrap_or_else(|| camera::default_size(m.raster, DEFAULT_CAP));
    let l = camera::light(LIGHT_AZIMUTH, LIGHT_ALTITUDE);
    let (lo, hi) = (e.min[1], e.max[1]);
    let uniform = FrameUniform {
        view_proj: camera::view_proj(o.view, &e, size).to_f32(),
        light: [l[0], l[1], l[2], 0.0],
        shading: [lo as f32, if hi > lo { (1.0 / (hi - lo)) as f32 } else { 0.0 }, if o.style == Style::Hypsometric { 1.0 } else { 0.0 }, 2e-4],
        wire_colour: [0.05, 0.05, 0.08, 1.0],
    };
    let mut r = Renderer::new(gpu, size, &uniform)?;
    let centre = e.centre();
    let mut st = Stats { adapter: gpu.adapter.clone(), size, ..Stats::default() };

    let t0 = Instant::now();
    let mut resident = stream(gpu, &mut r, store, scene, &files, centre, o, &mut st)?;
    gpu.wait()?;
    st.first_frame_s = gpu::since(t0);
    st.resident = resident.is_some();
    if o.frames > 1 {
        let t = Instant::now();
        for _ in 1..o.frames {
            r.restart();
            match &resident {
                Some(b) => {
                    r.draw(b);
                    gpu.wait()?;
                }
                None => resident = stream(gpu, &mut r, store, scene, &files, centre, o, &mut st)?,
            }
        }
        gpu.wait()?;
        st.more_frames = o.frames - 1;
        st.frame_s = Some(gpu::since(t) / (o.frames - 1) as f64);
    }
    st.gpu_peak_bytes += r.target_bytes();
    let rgba = r.read()?;
    Ok((Image { rgba, size }, st))
}

/// One frame's pass over the tiles: read and decode on a loader thread, upload in batches within the budget, draw
/// each batch and let it go once drawn. Returns the batch when the whole scene fitted in one (it stays resident).
#[allow(clippy::too_many_arguments)]
fn stream(
    gpu: &Gpu,
    r: &mut Renderer,
    store: &dyn Store,
    scene: &str,
    files: &[String],
    centre: [f64; 3],
    o: &Options,
    st: &mut Stats,
) -> Result<Option<gpu::Batch>> {
    let (tx, rx) = mpsc::sync_channel::<Result<TileData>>(4);
    let mut batches = 0usize;
    let mut last: Option<gpu::Batch> = None;
    let load = std::thread::scope(|s| -> Result<f64> {
        let loader = s.spawn(move || {
            let t = Instant::now();
            for name in files {
                let tile = load_tile(store, scene, name, centre);
                let failed = tile.is_err();
                if tx.send(tile).is_err() || failed {
                    break;
                }
            }
            gpu::since(t)
        });
        let mut pending: Vec<TileData> = Vec::new();
        let mut bytes = 0u64;
        let mut flush = |pending: &mut Vec<TileData>, bytes: &mut u64, last: &mut Option<gpu::Batch>| -> Result<()> {
            if pending.is_empty() {
                return Ok(());
            }
            // The previous batch is released only once the GPU is done with it.
            if last.is_some() {
                gpu.wait()?;
                *last = None;
            }
            let b = r.upload(pending, o.wireframe);
            st.gpu_peak_bytes = st.gpu_peak_bytes.max(b.bytes);
            r.draw(&b);
            *last = Some(b);
            batches += 1;
            pending.clear();
            *bytes = 0;
            Ok(())
        };
        for tile in rx.iter() {
            let tile = tile?;
            let b = tile.gpu_bytes(o.wireframe);
            if !pending.is_empty() && bytes + b > o.budget {
                flush(&mut pending, &mut bytes, &mut last)?;
            }
            st.tiles += 1;
            st.vertices += tile.positions.len() as u64;
            st.triangles += tile.indices.len() as u64 / 3;
            bytes += b;
            pending.push(tile);
        }
        flush(&mut pending, &mut bytes, &mut last)?;
        loader.join().map_err(|_| anyhow::anyhow!("tile loader panicked"))
    })?;
    st.load_s += load;
    st.batches += batches;
    Ok(if batches == 1 { last } else { None })
}

fn load_tile(store: &dyn Store, scene: &str, name: &str, centre: [f64; 3]) -> Result<TileData> {
    let key = format!("{scene}/{name}");
    let bytes = store.get(&key)?.with_context(|| format!("{key} is listed in the manifest but missing from {}", store.describe()))?;
    let d = glb::decode(&bytes).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    let origin = [(d.translation[0] - centre[0]) as f32, (d.translation[1] - centre[1]) as f32, (d.translation[2] - centre[2]) as f32];
    Ok(TileData { positions: d.positions, normals: d.normals, indices: d.indices, origin })
}

/// `mesh --preview`: the default top-down hillshade of a scene whose tiles are stored, written as `scene/preview.png`
/// (before the manifest, which lists it).
pub fn preview(store: &dyn Store, scene: &str, m: &Manifest) -> Result<crate::manifest::ImageRecord> {
    let t = Instant::now();
    let gpu = Gpu::new().context("--preview")?;
    let (img, st) = render(&gpu, store, scene, m, &Options::default()).context("rendering the preview")?;
    let png = img.png()?;
    store.put(&format!("{scene}/preview.png"), &png)?;
    tracing::info!("{scene}/preview.png: {}x{} px on {} in {:.2} s", img.size[0], img.size[1], st.adapter, gpu::since(t));
    Ok(crate::manifest::ImageRecord { name: "preview.png".into(), bytes: png.len() as u64, size: img.size, adapter: st.adapter })
}

/// Reads a scene's manifest from `store` (`scene/manifest.json`).
pub fn read_manifest(store: &dyn Store, scene: &str) -> Result<Manifest> {
    let key = format!("{scene}/manifest.json");
    let bytes = store
        .get(&key)?
        .with_context(|| format!("no scene at {}: {key} not found (render takes a scene folder that `terrafarm mesh` wrote)", store.describe()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{key} is not a terrafarm manifest"))
}

/// Splits a scene address (`OUT/scene`, a local folder or blob URL) into the store root and the scene name.
pub fn split_scene(addr: &str) -> Result<(String, String)> {
    let (base, query) = match addr.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (addr, None),
    };
    let base = base.trim_end_matches('/');
    if !crate::store::is_remote(addr) {
        let p = std::path::Path::new(base);
        let name = p.file_name().and_then(|n| n.to_str()).with_context(|| format!("{addr}: not a scene folder"))?;
        let root = p.parent().filter(|r| !r.as_os_str().is_empty()).map_or(".".into(), |r| r.display().to_string());
        return Ok((root, name.to_string()));
    }
    let Some((root, name)) = base.rsplit_once('/').filter(|(r, n)| !n.is_empty() && !r.is_empty() && !r.ends_with(':') && !r.ends_with('/')) else {
        bail!("{}: name a scene inside a container, e.g. az://CONTAINER/PREFIX/SCENE", crate::redact::redact(addr));
    };
    Ok((
        match query {
            Some(q) => format!("{root}?{q}"),
            None => root.to_string(),
        },
        name.to_string(),
    ))
}

/// `terrafarm render`: each scene to one PNG.
pub fn command(a: &crate::cli::RenderArgs) -> Result<()> {
    use crate::config::{parse_size, ConfigError};
    let usage = |m: String| anyhow::Error::new(ConfigError(m));
    let style: Style = a.style.parse().map_err(usage)?;
    let view = View::parse(&a.camera).map_err(usage)?;
    let size = match &a.size {
        Some(s) => {
            let (w, h) = parse_size(s)?;
            Some([
                u32::try_from(w).map_err(|_| usage(format!("--size {s} is too large")))?,
                u32::try_from(h).map_err(|_| usage(format!("--size {s} is too large")))?,
            ])
        }
        None => None,
    };
    if size.is_some_and(|[w, h]| w == 0 || h == 0) {
        return Err(usage("--size must be at least 1x1".into()));
    }
    if a.frames == 0 || a.gpu_budget_mib == 0 {
        return Err(usage("--frames and --gpu-budget-mib must be at least 1".into()));
    }
    if a.output.is_some() && a.scenes.len() > 1 {
        return Err(usage("--output names one file: render one scene with it, or leave it out".into()));
    }
    let opts = Options { style, wireframe: a.wireframe, size, view, budget: a.gpu_budget_mib << 20, frames: a.frames };
    let mut gpu: Option<Gpu> = None;
    let mut reports = Vec::new();
    for addr in &a.scenes {
        let (root, scene) = split_scene(addr)?;
        let store = crate::store::open(&root, &Default::default())?;
        let m = read_manifest(store.as_ref(), &scene)?;
        glb_files(&m)?;
        // The adapter is looked for once a scene is known to be renderable.
        let gpu = match &mut gpu {
            Some(g) => g,
            None => {
                let g = gpu.insert(Gpu::new()?);
                tracing::info!("GPU: {}", g.adapter);
                g
            }
        };
        let (img, st) = render(gpu, store.as_ref(), &scene, &m, &opts).with_context(|| format!("rendering {}", crate::redact::redact(addr)))?;
        let png = img.png()?;
        let written = match &a.output {
            Some(path) => {
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                let name = path.file_name().and_then(|n| n.to_str()).with_context(|| format!("{}: not a file name", path.display()))?;
                crate::store::LocalStore::new(dir)?.put(name, &png)?;
                path.display().to_string()
            }
            None => {
                let key = format!("{scene}/renders/{}", file_name(&opts));
                store.put(&key, &png)?;
                format!("{}/{}", crate::redact::redact(&root), key)
            }
        };
        let steady = st.frame_s.map_or(String::new(), |f| {
            format!(", {:.2} frames/s after the first ({:.3} s each, {})", 1.0 / f, f, if st.resident { "resident" } else { "streamed" })
        });
        tracing::info!(
            "{written}: {}x{} px, {} tiles, {} triangles, {} batch(es), {:.1} MiB GPU peak, first frame {:.3} s{steady}",
            st.size[0],
            st.size[1],
            st.tiles,
            st.triangles,
            st.batches,
            st.gpu_peak_bytes as f64 / (1 << 20) as f64,
            st.first_frame_s
        );
        reports.push(serde_json::json!({ "scene": addr_for_report(addr), "png": written, "style": style, "camera": view.name(), "stats": st }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

fn addr_for_report(addr: &str) -> String {
    crate::redact::redact(addr.split('?').next().unwrap_or(addr))
}

/// The default file name of a render: CAMERA-STYLE[-wire].png.
pub fn file_name(o: &Options) -> String {
    let style = match o.style {
        Style::Hillshade => "hillshade",
        Style::Hypsometric => "hypsometric",
    };
    format!("{}-{style}{}.png", view_slug(o.view), if o.wireframe { "-wire" } else { "" })
}

/// File-name form of a view, for default output names.
pub fn view_slug(v: View) -> String {
    match v {
        View::Top => "top".into(),
        _ if v == View::OBLIQUE => "oblique".into(),
        View::Orbit { azimuth, elevation } => format!("az{azimuth}-el{elevation}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_addresses_split_into_root_and_name() {
        assert_eq!(split_scene("out/fuji").unwrap(), ("out".into(), "fuji".into()));
        assert_eq!(split_scene("out/fuji/").unwrap(), ("out".into(), "fuji".into()));
        assert_eq!(split_scene("fuji").unwrap(), (".".into(), "fuji".into()));
        assert_eq!(split_scene("/abs/out/fuji").unwrap(), ("/abs/out".into(), "fuji".into()));
        assert_eq!(split_scene("az://c/p/fuji").unwrap(), ("az://c/p".into(), "fuji".into()));
        assert_eq!(
            split_scene("https://a.blob.core.windows.net/c/fuji?sv=1&sig=x").unwrap(),
            ("https://a.blob.core.windows.net/c?sv=1&sig=x".into(), "fuji".into())
        );
        assert!(split_scene("az://c").is_err());
    }
}
