//! GLB (binary glTF 2.0) writer. Follows the glTF 2.0 specification: §4.4 (binary glTF layout: 12-byte header,
//! JSON chunk padded with spaces, BIN chunk padded with zeros, 4-byte alignment), §3.6.2 (accessor min/max for
//! POSITION), §3.7.2.1 (indices must not hold the primitive-restart value, hence u16 only up to 65535 vertices).
//! One mesh, one node carrying the tile origin as `translation`, so positions stay small and exact in f32.

use serde_json::json;

use crate::mesh::Mesh;

const GLTF_MAGIC: u32 = 0x4654_6C67;
const CHUNK_JSON: u32 = 0x4E4F_534A;
const CHUNK_BIN: u32 = 0x004E_4942;
const ARRAY_BUFFER: u32 = 34962;
const ELEMENT_ARRAY_BUFFER: u32 = 34963;
const FLOAT: u32 = 5126;
const BYTE: u32 = 5120;
const UNSIGNED_SHORT: u32 = 5123;
const UNSIGNED_INT: u32 = 5125;

#[cfg(target_endian = "big")]
compile_error!("GLB buffers are little-endian; terrafarm casts vertex buffers directly and supports little-endian targets only");

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// What the GLB header needs to know before any vertex is written (count, then fill): counts, origin and the
/// POSITION bounds. The fused grid writer plans exactly this.
pub use crate::mesh::grid::GridPlan as Layout;

/// The BIN chunk's buffer views, as writable byte slices: the type the fused grid kernel fills.
pub use crate::mesh::grid::GridOut as Sections;

/// GLB lengths are u32 (§4.4.3): a file, and so its BIN chunk, must stay below 4 GiB.
pub const MAX_GLB_BYTES: u64 = u32::MAX as u64;

/// The most bytes a tile of `tile` cells a side can take as GLB: the full grid (what a tile with no simplification
/// possible gives) plus skirts on all four sides, and room for the JSON chunk.
pub fn worst_case_bytes(tile: usize) -> u64 {
    let t = tile as u64;
    let vertices = (t + 1) * (t + 1) + 4 * (t + 1);
    let indices = 6 * t * t + 6 * 4 * t;
    vertices * 32 + indices * 4 + 64 * 1024
}

/// The largest tile size (cells) whose GLB fits [`MAX_GLB_BYTES`] in every case.
pub fn max_tile_size() -> usize {
    let (mut lo, mut hi) = (1usize, 1 << 20);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if worst_case_bytes(mid) <= MAX_GLB_BYTES {
            lo = mid
        } else {
            hi = mid
        }
    }
    lo
}

/// Encodes one tile as GLB. `extras` lands on the node (tile coordinates, error bound). An empty mesh has no GLB:
/// callers must not ask for one (glTF accessors need count ≥ 1).
pub fn encode(m: &Mesh, extras: &serde_json::Value) -> Vec<u8> {
    debug_assert!(m.vertices() > 0 && m.triangles() > 0);
    let layout = Layout { vertices: m.vertices(), indices: m.indices.len(), origin: m.origin, min: m.min, max: m.max };
    let mut out = Vec::new();
    encode_into(&mut out, &layout, extras, |s| {
        s.positions.copy_from_slice(bytemuck::cast_slice(&m.positions));
        s.normals.copy_from_slice(bytemuck::cast_slice(&m.normals));
        s.uvs.copy_from_slice(bytemuck::cast_slice(&m.uvs));
        if s.u16_indices {
            for (d, &i) in s.indices.chunks_exact_mut(2).zip(&m.indices) {
                d.copy_from_slice(&(i as u16).to_le_bytes());
            }
        } else {
            s.indices.copy_from_slice(bytemuck::cast_slice(&m.indices));
        }
    });
    out
}

/// Writes a GLB of `layout` into `out`, replacing its contents (its memory is reused, so a per-thread buffer costs
/// no page faults or zeroing after the first tile). Header and JSON are written here; `fill` writes every byte of the BIN
/// sections in place.
pub fn encode_into(out: &mut Vec<u8>, l: &Layout, extras: &serde_json::Value, fill: impl FnOnce(Sections)) {
    let n = l.vertices;
    let small = n <= 65535;
    let (pos_len, nrm_len, uv_len) = (n * 12, n * 12, n * 8);
    let idx_len = l.indices * if small { 2 } else { 4 };
    let bin_len = pad4(pos_len + nrm_len + uv_len + idx_len);
    let (o_nrm, o_uv, o_idx) = (pos_len, pos_len + nrm_len, pos_len + nrm_len + uv_len);

    let doc = json!({
        "asset": { "version": "2.0", "generator": concat!("terrafarm ", env!("CARGO_PKG_VERSION")) },
        "scene": 0,
        "scenes": [{ "nodes": [0] }],
        "nodes": [{ "mesh": 0, "translation": l.origin, "extras": extras }],
        "meshes": [{ "primitives": [{
            "attributes": { "POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2 },
            "indices": 3,
            "mode": 4
        }] }],
        "buffers": [{ "byteLength": bin_len }],
        "bufferViews": [
            { "buffer": 0, "byteOffset": 0, "byteLength": pos_len, "target": ARRAY_BUFFER },
            { "buffer": 0, "byteOffset": o_nrm, "byteLength": nrm_len, "target": ARRAY_BUFFER },
            { "buffer": 0, "byteOffset": o_uv, "byteLength": uv_len, "target": ARRAY_BUFFER },
            { "buffer": 0, "byteOffset": o_idx, "byteLength": idx_len, "target": ELEMENT_ARRAY_BUFFER }
        ],
        "accessors": [
            { "bufferView": 0, "componentType": FLOAT, "count": n, "type": "VEC3", "min": l.min, "max": l.max },
            { "bufferView": 1, "componentType": FLOAT, "count": n, "type": "VEC3" },
            { "bufferView": 2, "componentType": FLOAT, "count": n, "type": "VEC2" },
            { "bufferView": 3, "componentType": if small { UNSIGNED_SHORT } else { UNSIGNED_INT }, "count": l.indices, "type": "SCALAR" }
        ]
    });
    let json_bytes = serde_json::to_vec(&doc).expect("glTF JSON serialises");
    let json_len = pad4(json_bytes.len());
    let total = 12 + 8 + json_len + 8 + bin_len;

    // One buffer of the final size: header and JSON in front, the BIN sections filled in place. A reused buffer
    // is only resized, not cleared: every byte below is overwritten, so its old contents never leak.
    if out.len() < total {
        out.resize(total, 0);
    } else {
        out.truncate(total);
    }
    let bin0 = 20 + json_len + 8;
    let (head, _) = out.split_at_mut(bin0);
    for (i, v) in [GLTF_MAGIC, 2, total as u32, json_len as u32, CHUNK_JSON].into_iter().enumerate() {
        head[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    head[20..20 + json_bytes.len()].copy_from_slice(&json_bytes);
    head[20 + json_bytes.len()..20 + json_len].fill(b' ');
    head[20 + json_len..20 + json_len + 4].copy_from_slice(&(bin_len as u32).to_le_bytes());
    head[20 + json_len + 4..].copy_from_slice(&CHUNK_BIN.to_le_bytes());
    let bin = &mut out[bin0..];
    let (pos, rest) = bin.split_at_mut(pos_len);
    let (nrm, rest) = rest.split_at_mut(nrm_len);
    let (uv, rest) = rest.split_at_mut(uv_len);
    let (idx, pad) = rest.split_at_mut(idx_len);
    pad.fill(0);
    fill(Sections { positions: pos, normals: nrm, uvs: uv, indices: idx, u16_indices: small });
}

/// Reads the JSON chunk of a GLB (used by tests and by resume checks).
pub fn json_chunk(glb: &[u8]) -> Option<serde_json::Value> {
    if glb.len() < 20 || u32::from_le_bytes(glb[0..4].try_into().ok()?) != GLTF_MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(glb[12..16].try_into().ok()?) as usize;
    serde_json::from_slice(glb.get(20..20 + len)?).ok()
}

/// How a GLB stores its vertex data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// f32 positions, normals and UVs (core glTF 2.0).
    Plain,
    /// `KHR_mesh_quantization`: positions as u16 on a power-of-two grid (dequantized by the node's translation and
    /// scale), normals as normalized i8; no UVs (they are the position over the raster's extent).
    Quantized,
    /// Quantized, then every buffer view compressed with `EXT_meshopt_compression` (the meshoptimizer codecs).
    Meshopt,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "plain" | "none" => Ok(Compression::Plain),
            "quantized" | "quantize" => Ok(Compression::Quantized),
            "meshopt" => Ok(Compression::Meshopt),
            o => Err(format!("unknown glTF encoding '{o}' (plain, quantized or meshopt)")),
        }
    }
}

/// A mesh quantized for `KHR_mesh_quantization`: integer positions (padded to 4 components, as the extension's
/// 4-byte alignment of vertex attributes asks) with `translation + k · scale` giving world metres, and unit
/// normals as normalized i8 (padded to 4).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    pub positions: Vec<[u16; 4]>,
    pub normals: Vec<[i8; 4]>,
    pub indices: Vec<u32>,
    pub translation: [f64; 3],
    pub scale: [f64; 3],
}

impl Quantized {
    /// World position of vertex `i` (exact: `translation` is a multiple of `scale`, both powers of two apart).
    pub fn world(&self, i: usize) -> [f64; 3] {
        std::array::from_fn(|k| self.translation[k] + self.positions[i][k] as f64 * self.scale[k])
    }

    /// World-space min and max corners of the quantized vertices.
    pub fn bounds(&self) -> [[f64; 3]; 2] {
        let mut b = [[f64::INFINITY; 3], [f64::NEG_INFINITY; 3]];
        for i in 0..self.positions.len() {
            let w = self.world(i);
            for k in 0..3 {
                b[0][k] = b[0][k].min(w[k]);
                b[1][k] = b[1][k].max(w[k]);
            }
        }
        b
    }
}

/// Quantization steps (metres, powers of two) for tiles of `tile` cells: X and Z fine enough that a tile spans at
/// most 65 000 steps, Y the largest power of two not above an eighth of `max_error` (so rounding moves a height
/// by at most a sixteenth of the error budget).
pub fn quant_steps(tile: usize, cell: [f64; 2], max_error: f32) -> [f64; 3] {
    let up = |v: f64| 2f64.powi(v.log2().ceil() as i32);
    let down = |v: f64| 2f64.powi(v.log2().floor() as i32);
    [up(tile as f64 * cell[0] / 65_000.0), down(max_error as f64 / 8.0), up(tile as f64 * cell[1] / 65_000.0)]
}

/// Quantizes a tile to the grid of `step` metres per axis (powers of two). Every coordinate goes to the nearest
/// multiple of its step, whatever tile it is in, so vertices two tiles share quantize to the same world position.
/// Fails when the tile does not fit 16 bits at these steps.
pub fn quantize(m: &Mesh, step: [f64; 3]) -> Result<Quantized, String> {
    let world = |p: &[f32; 3]| -> [f64; 3] { std::array::from_fn(|k| m.origin[k] + p[k] as f64) };
    let mut lo = [f64::INFINITY; 3];
    for p in &m.positions {
        let w = world(p);
        for k in 0..3 {
            lo[k] = lo[k].min(w[k]);
        }
    }
    let translation: [f64; 3] = std::array::from_fn(|k| ((lo[k] / step[k]).round() - 1.0) * step[k]);
    let mut positions = Vec::with_capacity(m.positions.len());
    for p in &m.positions {
        let w = world(p);
        let mut q = [0u16; 4];
        for k in 0..3 {
            let v = ((w[k] - translation[k]) / step[k]).round();
            if !(0.0..=65535.0).contains(&v) {
                return Err(format!(
                    "a tile spans {:.1} m along {} at a {} m quantization step: more than 16 bits hold (raise --max-error, or use --gltf plain)",
                    (w[k] - lo[k]).abs() + step[k],
                    ["X", "Y", "Z"][k],
                    step[k]
                ));
            }
            q[k] = v as u16;
        }
        positions.push(q);
    }
    let normals = m.normals.iter().map(|n| [n[0], n[1], n[2]].map(|c| (c.clamp(-1.0, 1.0) * 127.0).round() as i8)).map(|n| [n[0], n[1], n[2], 0]).collect();
    Ok(Quantized { positions, normals, indices: m.indices.clone(), translation, scale: step })
}

/// Encodes a quantized tile as GLB (`KHR_mesh_quantization`, and `EXT_meshopt_compression` when `meshopt`).
pub fn encode_quantized(q: &Quantized, meshopt: bool, extras: &serde_json::Value) -> Result<Vec<u8>, String> {
    let n = q.positions.len();
    let small = n <= 65535;
    let idx: Vec<u8> =
        if small { q.indices.iter().flat_map(|&i| (i as u16).to_le_bytes()).collect() } else { q.indices.iter().flat_map(|&i| i.to_le_bytes()).collect() };
    let istride = if small { 2 } else { 4 };
    let pos: &[u8] = bytemuck::cast_slice(&q.positions);
    let nrm: &[u8] = bytemuck::cast_slice(&q.normals);
    // Raw (uncompressed) layout: positions (stride 8), normals (stride 4), indices.
    let raw = [(pos, 8usize, Some(ARRAY_BUFFER)), (nrm, 4, Some(ARRAY_BUFFER)), (idx.as_slice(), istride, Some(ELEMENT_ARRAY_BUFFER))];
    let mut raw_off = Vec::new();
    let mut at = 0usize;
    for (b, _, _) in &raw {
        raw_off.push(at);
        at = pad4(at + b.len());
    }
    let raw_len = at;
    let mut bin = Vec::new();
    let mut views = Vec::new();
    for (i, (b, stride, target)) in raw.iter().enumerate() {
        let mut v = json!({ "buffer": 0, "byteOffset": raw_off[i], "byteLength": b.len() });
        if let Some(t) = target {
            v["target"] = json!(t);
        }
        if i < 2 {
            v["byteStride"] = json!(stride);
        }
        if meshopt {
            let (enc, mode) = if i < 2 {
                let e = match i {
                    0 => ::meshopt::encode_vertex_buffer(&q.positions),
                    _ => ::meshopt::encode_vertex_buffer(&q.normals),
                };
                (e.map_err(|e| format!("meshopt vertex encoding: {e:?}"))?, "ATTRIBUTES")
            } else {
                (::meshopt::encode_index_buffer(&q.indices, n).map_err(|e| format!("meshopt index encoding: {e:?}"))?, "TRIANGLES")
            };
            let off = bin.len();
            bin.extend_from_slice(&enc);
            bin.resize(pad4(bin.len()), 0);
            v["buffer"] = json!(1);
            v["extensions"] = json!({ "EXT_meshopt_compression": {
                "buffer": 0, "byteOffset": off, "byteLength": enc.len(), "byteStride": stride, "count": if i < 2 { n } else { q.indices.len() }, "mode": mode
            }});
        } else {
            bin.resize(raw_off[i], 0);
            bin.extend_from_slice(b);
        }
        views.push(v);
    }
    bin.resize(pad4(bin.len()), 0);
    let (mut min, mut max) = ([u16::MAX; 3], [0u16; 3]);
    for p in &q.positions {
        for k in 0..3 {
            min[k] = min[k].min(p[k]);
            max[k] = max[k].max(p[k]);
        }
    }
    let mut exts = vec!["KHR_mesh_quantization"];
    let mut buffers = vec![json!({ "byteLength": bin.len() })];
    if meshopt {
        exts.push("EXT_meshopt_compression");
        buffers.push(json!({ "byteLength": raw_len, "extensions": { "EXT_meshopt_compression": { "fallback": true } } }));
    }
    let doc = json!({
        "asset": { "version": "2.0", "generator": concat!("terrafarm ", env!("CARGO_PKG_VERSION")) },
        "extensionsUsed": exts,
        "extensionsRequired": exts,
        "scene": 0,
        "scenes": [{ "nodes": [0] }],
        "nodes": [{ "mesh": 0, "translation": q.translation, "scale": q.scale, "extras": extras }],
        "meshes": [{ "primitives": [{ "attributes": { "POSITION": 0, "NORMAL": 1 }, "indices": 2, "mode": 4 }] }],
        "buffers": buffers,
        "bufferViews": views,
        "accessors": [
            { "bufferView": 0, "componentType": UNSIGNED_SHORT, "count": n, "type": "VEC3", "min": min, "max": max },
            { "bufferView": 1, "componentType": BYTE, "normalized": true, "count": n, "type": "VEC3" },
            { "bufferView": 2, "componentType": if small { UNSIGNED_SHORT } else { UNSIGNED_INT }, "count": q.indices.len(), "type": "SCALAR" }
        ]
    });
    let json_bytes = serde_json::to_vec(&doc).map_err(|e| e.to_string())?;
    let json_len = pad4(json_bytes.len());
    let total = 12 + 8 + json_len + 8 + bin.len();
    let mut out = Vec::with_capacity(total);
    for v in [GLTF_MAGIC, 2, total as u32, json_len as u32, CHUNK_JSON] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&json_bytes);
    out.resize(20 + json_len, b' ');
    out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
    out.extend_from_slice(&CHUNK_BIN.to_le_bytes());
    out.extend_from_slice(&bin);
    Ok(out)
}

/// A tile read back from a GLB that terrafarm wrote: what a renderer needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub indices: Vec<u32>,
    /// The node's translation (the tile origin, metres).
    pub translation: [f64; 3],
}

/// Reads back a GLB in a layout terrafarm writes ([`encode_into`]; or [`encode_quantized`], with or without meshopt
/// compression): one node with a translation (and scale, when quantized), one triangle primitive, POSITION and
/// NORMAL as f32, or u16 positions and normalized i8 normals. Anything else is refused with the reason, never a
/// panic: a scene's files may have been replaced by hand.
pub fn decode(glb: &[u8]) -> Result<Decoded, String> {
    let doc = json_chunk(glb).ok_or("not a GLB (bad magic or JSON chunk)")?;
    let json_len = u32::from_le_bytes(glb[12..16].try_into().map_err(|_| "short header")?) as usize;
    let bin0 = 20 + pad4(json_len) + 8;
    let bin = glb.get(bin0..).ok_or("no BIN chunk")?;
    let prim = &doc["meshes"][0]["primitives"][0];
    if prim["mode"].as_u64().unwrap_or(4) != 4 {
        return Err("primitive is not a triangle list".into());
    }
    // A buffer view's bytes: a slice of the BIN chunk, or what the meshopt decoder makes of its compressed bytes.
    let view_bytes = |i: usize| -> Result<std::borrow::Cow<[u8]>, String> {
        let bv = doc["bufferViews"].get(i).ok_or_else(|| format!("buffer view {i} does not exist"))?;
        let slice = |o: &serde_json::Value| -> Result<&[u8], String> {
            let off = o["byteOffset"].as_u64().unwrap_or(0) as usize;
            let len = o["byteLength"].as_u64().ok_or("buffer view without byteLength")? as usize;
            off.checked_add(len).and_then(|end| bin.get(off..end)).ok_or_else(|| "buffer view outside the BIN chunk".to_string())
        };
        let m = &bv["extensions"]["EXT_meshopt_compression"];
        if m.is_null() {
            return Ok(std::borrow::Cow::Borrowed(slice(bv)?));
        }
        let (data, count, stride) =
            (slice(m)?, m["count"].as_u64().ok_or("meshopt view without count")? as usize, m["byteStride"].as_u64().unwrap_or(0) as usize);
        let bytes: Vec<u8> = match (m["mode"].as_str(), stride) {
            (Some("ATTRIBUTES"), 4) => {
                bytemuck::cast_slice(&::meshopt::decode_vertex_buffer::<[u8; 4]>(data, count).map_err(|e| format!("meshopt: {e:?}"))?).to_vec()
            }
            (Some("ATTRIBUTES"), 8) => {
                bytemuck::cast_slice(&::meshopt::decode_vertex_buffer::<[u8; 8]>(data, count).map_err(|e| format!("meshopt: {e:?}"))?).to_vec()
            }
            (Some("TRIANGLES"), 2) => {
                bytemuck::cast_slice(&::meshopt::decode_index_buffer::<u16>(data, count).map_err(|e| format!("meshopt: {e:?}"))?).to_vec()
            }
            (Some("TRIANGLES"), 4) => {
                bytemuck::cast_slice(&::meshopt::decode_index_buffer::<u32>(data, count).map_err(|e| format!("meshopt: {e:?}"))?).to_vec()
            }
            (mode, s) => return Err(format!("meshopt mode {mode:?} with stride {s} is not one terrafarm writes")),
        };
        Ok(std::borrow::Cow::Owned(bytes))
    };
    // An accessor's elements as rows of `size` bytes (honouring the view's stride), and its component type.
    let accessor = |k: &serde_json::Value| -> Result<(Vec<Vec<u8>>, u64, bool), String> {
        let i = k.as_u64().ok_or("missing accessor")? as usize;
        let acc = doc["accessors"].get(i).ok_or_else(|| format!("accessor {i} does not exist"))?;
        let comp = acc["componentType"].as_u64().ok_or("accessor without componentType")?;
        let width = match acc["type"].as_str() {
            Some("SCALAR") => 1,
            Some("VEC3") => 3,
            t => return Err(format!("accessor type {t:?} is not one terrafarm writes")),
        };
        let csize = match comp as u32 {
            BYTE => 1,
            UNSIGNED_SHORT => 2,
            FLOAT | UNSIGNED_INT => 4,
            c => return Err(format!("component type {c} is not one terrafarm writes")),
        };
        let count = acc["count"].as_u64().ok_or("accessor without count")? as usize;
        let bvi = acc["bufferView"].as_u64().ok_or("accessor without bufferView")? as usize;
        let bytes = view_bytes(bvi)?;
        let size = width * csize;
        let stride = doc["bufferViews"][bvi]["byteStride"].as_u64().map_or(size, |s| s as usize);
        let off = acc["byteOffset"].as_u64().unwrap_or(0) as usize;
        if stride < size || count.checked_mul(stride).is_none() {
            return Err("accessor stride smaller than its element".into());
        }
        let rows = (0..count)
            .map(|n| bytes.get(off + n * stride..off + n * stride + size).map(<[u8]>::to_vec).ok_or_else(|| "accessor outside its buffer view".to_string()))
            .collect::<Result<Vec<_>, String>>()?;
        Ok((rows, comp, acc["normalized"].as_bool().unwrap_or(false)))
    };
    let f32s = |r: &[u8]| -> [f32; 3] { std::array::from_fn(|k| f32::from_le_bytes(r[k * 4..k * 4 + 4].try_into().unwrap())) };
    let node = &doc["nodes"][0];
    let scale: [f64; 3] = std::array::from_fn(|k| node["scale"][k].as_f64().unwrap_or(1.0));
    let (pos, pcomp, _) = accessor(&prim["attributes"]["POSITION"])?;
    let positions: Vec<[f32; 3]> = match pcomp as u32 {
        FLOAT => pos.iter().map(|r| f32s(r)).collect(),
        // Quantized: integer positions times the node's power-of-two scale (exact in f32 below 2^24 steps).
        UNSIGNED_SHORT => pos.iter().map(|r| std::array::from_fn(|k| (u16::from_le_bytes([r[2 * k], r[2 * k + 1]]) as f64 * scale[k]) as f32)).collect(),
        c => return Err(format!("POSITION of component type {c} is not one terrafarm writes")),
    };
    let (nrm, ncomp, normalized) = accessor(&prim["attributes"]["NORMAL"])?;
    let normals: Vec<[f32; 3]> = match (ncomp as u32, normalized) {
        (FLOAT, _) => nrm.iter().map(|r| f32s(r)).collect(),
        (BYTE, true) => nrm.iter().map(|r| std::array::from_fn(|k| ((r[k] as i8) as f32 / 127.0).max(-1.0))).collect(),
        (c, _) => return Err(format!("NORMAL of component type {c} is not one terrafarm writes")),
    };
    let (idx, icomp, _) = accessor(&prim["indices"])?;
    let indices: Vec<u32> = match icomp as u32 {
        UNSIGNED_SHORT => idx.iter().map(|r| u16::from_le_bytes([r[0], r[1]]) as u32).collect(),
        UNSIGNED_INT => idx.iter().map(|r| u32::from_le_bytes([r[0], r[1], r[2], r[3]])).collect(),
        c => return Err(format!("indices of component type {c} are not one terrafarm writes")),
    };
    if normals.len() != positions.len() || indices.len() % 3 != 0 || indices.iter().any(|&i| i as usize >= positions.len()) {
        return Err("inconsistent vertex, normal and index counts".into());
    }
    let t = &node["translation"];
    let translation = std::array::from_fn(|k| t[k].as_f64().unwrap_or(0.0));
    Ok(Decoded { positions, normals, indices, translation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{grid::mesh_grid, Params, Window};
    use crate::tiling::Rect;

    fn tiny() -> Mesh {
        let data = [0.0f32, 1.0, 2.0, 3.0];
        let r = Rect::new(0, 0, 2, 2);
        mesh_grid(&Window { data: &data, rect: r, tile: r }, &Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [2, 2], tile: 2 })
    }

    #[test]
    fn layout_is_aligned_and_consistent() {
        let m = tiny();
        let b = encode(&m, &json!({"tile": [0, 0]}));
        assert_eq!(b.len() % 4, 0);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize, b.len());
        let doc = json_chunk(&b).unwrap();
        assert_eq!(doc["accessors"][3]["componentType"], UNSIGNED_SHORT);
        assert_eq!(doc["accessors"][0]["max"], json!([1.0, 3.0, 1.0]));
        assert_eq!(doc["nodes"][0]["extras"]["tile"], json!([0, 0]));
        let json_len = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
        let bin_len = u32::from_le_bytes(b[20 + json_len..24 + json_len].try_into().unwrap()) as usize;
        assert_eq!(doc["buffers"][0]["byteLength"], bin_len);
        assert_eq!(20 + json_len + 8 + bin_len, b.len());
    }

    #[test]
    fn golden_bytes_of_a_two_triangle_tile() {
        // Guards the exact byte layout; regenerate deliberately if the format changes.
        let b = encode(&tiny(), &json!({}));
        let json_len = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
        let bin = &b[28 + json_len..];
        let pos: &[f32] = bytemuck::cast_slice(&bin[..48]);
        assert_eq!(pos, &[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 1.0, 1.0, 3.0, 1.0]);
        let idx: Vec<u16> = bin[128..140].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        assert_eq!(idx, [0, 2, 1, 1, 2, 3]);
        assert_eq!(bin.len(), 140);
    }

    #[test]
    fn large_meshes_use_u32_indices() {
        let (w, h) = (300, 300);
        let data = vec![0f32; w * h];
        let r = Rect::new(0, 0, w, h);
        let m = mesh_grid(&Window { data: &data, rect: r, tile: r }, &Params { cell: [1.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [w, h], tile: w.max(h) });
        let doc = json_chunk(&encode(&m, &json!({}))).unwrap();
        assert_eq!(doc["accessors"][3]["componentType"], UNSIGNED_INT);
    }

    #[test]
    fn decode_reads_back_what_encode_wrote_and_refuses_garbage() {
        let mut m = tiny();
        m.origin = [256.0, 0.0, 512.5];
        let d = decode(&encode(&m, &json!({}))).unwrap();
        assert_eq!((d.positions, d.normals, d.indices, d.translation), (m.positions.clone(), m.normals.clone(), m.indices.clone(), m.origin));
        let b = encode(&m, &json!({}));
        assert!(decode(&b[..40]).is_err());
        assert!(decode(b"glTF").is_err());
        let mut cut = b.clone();
        cut.truncate(b.len() - 8);
        assert!(decode(&cut).is_err());
        // Quantized and meshopt-compressed tiles decode to the quantized positions (translation + k · scale).
        let q = quantize(&m, [0.25, 0.125, 0.25]).unwrap();
        for meshopt in [false, true] {
            let d = decode(&encode_quantized(&q, meshopt, &json!({})).unwrap()).unwrap();
            assert_eq!(d.indices, q.indices);
            for (i, p) in d.positions.iter().enumerate() {
                let w: [f64; 3] = std::array::from_fn(|k| d.translation[k] + p[k] as f64);
                assert_eq!(w, q.world(i), "meshopt {meshopt}");
            }
            assert!(d.normals.iter().zip(&m.normals).all(|(a, b)| (0..3).all(|k| (a[k] - b[k]).abs() <= 0.5 / 127.0 + 1e-6)));
        }
    }
}
