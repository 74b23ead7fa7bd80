// Terrain rendering: one vertex + fragment pair for the shaded surface (hillshade or hypsometric tint, lit from the
// mesh's own normals) and one for the wireframe overlay (the triangle edges the simplifier chose).
//
// Tiles are drawn one instance each; the instance index selects the tile's origin, relative to the scene centre,
// from `origins` (positions in a GLB are tile-local, the node translation carries the origin).
// World axes are glTF's: +X east, +Y up, +Z south (raster rows grow southwards).

struct Frame {
    view_proj: mat4x4<f32>,
    // Unit vector towards the light (world axes).
    light: vec4<f32>,
    // x: lowest height, y: 1 / (highest − lowest), z: style (0 hillshade, 1 hypsometric), w: wire lift (clip z).
    shading: vec4<f32>,
    wire_colour: vec4<f32>,
};

@group(0) @binding(0) var<uniform> frame: Frame;
@group(0) @binding(1) var<storage, read> origins: array<vec4<f32>>;

struct Surface {
    @builtin(position) clip: vec4<f32>,
    @location(0) normal: vec3<f32>,
    @location(1) height: f32,
};

@vertex
fn vs_surface(@location(0) pos: vec3<f32>, @location(1) normal: vec3<f32>, @builtin(instance_index) tile: u32) -> Surface {
    let world = pos + origins[tile].xyz;
    var out: Surface;
    out.clip = frame.view_proj * vec4<f32>(world, 1.0);
    out.normal = normal;
    out.height = world.y;
    return out;
}

// Hypsometric tint: lowland green, foothill yellow, mountain brown, rock grey, snow white.
fn ramp(t: f32) -> vec3<f32> {
    let stops = array<vec3<f32>, 5>(
        vec3<f32>(0.20, 0.45, 0.22),
        vec3<f32>(0.72, 0.72, 0.38),
        vec3<f32>(0.55, 0.38, 0.22),
        vec3<f32>(0.55, 0.53, 0.52),
        vec3<f32>(0.97, 0.97, 0.98),
    );
    let x = clamp(t, 0.0, 1.0) * 4.0;
    let i = min(u32(x), 3u);
    return mix(stops[i], stops[i + 1u], x - f32(i));
}

@fragment
fn fs_surface(in: Surface) -> @location(0) vec4<f32> {
    // Lambert term: the same quantity as the cartographic hillshade (sin alt · cos slope + cos alt · sin slope ·
    // cos(az − aspect)), so a top-down render compares with `gdaldem hillshade` pixel for pixel.
    let shade = max(dot(normalize(in.normal), frame.light.xyz), 0.0);
    if frame.shading.z < 0.5 {
        return vec4<f32>(vec3<f32>(shade), 1.0);
    }
    let t = (in.height - frame.shading.x) * frame.shading.y;
    return vec4<f32>(ramp(t) * (0.35 + 0.65 * shade), 1.0);
}

@vertex
fn vs_wire(@location(0) pos: vec3<f32>, @builtin(instance_index) tile: u32) -> @builtin(position) vec4<f32> {
    let world = pos + origins[tile].xyz;
    var clip = frame.view_proj * vec4<f32>(world, 1.0);
    // Lift edges towards the camera so they win the depth test against their own triangles.
    clip.z = clip.z - frame.shading.w * clip.w;
    return clip;
}

@fragment
fn fs_wire() -> @location(0) vec4<f32> {
    return frame.wire_colour;
}
