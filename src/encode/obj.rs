//! Wavefront OBJ writer: `v`, `vn`, `vt`, `f v/vt/vn`, in world coordinates. Floats go through `ryu` and integers
//! through `itoa` into one growing buffer: no `format!` per number.

use crate::mesh::Mesh;

#[inline]
fn put_f32(out: &mut Vec<u8>, buf: &mut ryu::Buffer, v: f32) {
    // ryu prints integral values as "3.0"; keep them, every OBJ reader accepts them.
    out.extend_from_slice(buf.format_finite(if v == 0.0 { 0.0 } else { v }).as_bytes());
}

/// Encodes one tile as OBJ. World X/Z come from each vertex's global sample and the cell size (so a border vertex
/// prints the same in both tiles); texture V is flipped to OBJ's bottom-left origin.
pub fn encode(m: &Mesh, cell: [f64; 2], header: &str) -> Vec<u8> {
    let n = m.vertices();
    let mut out = Vec::with_capacity(64 + header.len() + n * 96 + m.indices.len() * 24);
    for line in header.lines() {
        out.extend_from_slice(b"# ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    let mut f = ryu::Buffer::new();
    for (p, g) in m.positions.iter().zip(&m.grid) {
        out.extend_from_slice(b"v ");
        put_f32(&mut out, &mut f, (g[0] as f64 * cell[0]) as f32);
        out.push(b' ');
        put_f32(&mut out, &mut f, p[1]);
        out.push(b' ');
        put_f32(&mut out, &mut f, (g[1] as f64 * cell[1]) as f32);
        out.push(b'\n');
    }
    for nv in &m.normals {
        out.extend_from_slice(b"vn ");
        put_f32(&mut out, &mut f, nv[0]);
        out.push(b' ');
        put_f32(&mut out, &mut f, nv[1]);
        out.push(b' ');
        put_f32(&mut out, &mut f, nv[2]);
        out.push(b'\n');
    }
    for t in &m.uvs {
        out.extend_from_slice(b"vt ");
        put_f32(&mut out, &mut f, t[0]);
        out.push(b' ');
        put_f32(&mut out, &mut f, 1.0 - t[1]);
        out.push(b'\n');
    }
    let mut ib = itoa::Buffer::new();
    for tri in m.indices.chunks_exact(3) {
        out.push(b'f');
        for &i in tri {
            let s = ib.format(i + 1).as_bytes();
            out.push(b' ');
            out.extend_from_slice(s);
            out.push(b'/');
            out.extend_from_slice(s);
            out.push(b'/');
            out.extend_from_slice(s);
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{grid::mesh_grid, Params, Window};
    use crate::tiling::Rect;

    #[test]
    fn golden_text_of_a_two_triangle_tile() {
        let data = [0.0f32, 1.0, 2.0, 3.5];
        let r = Rect::new(0, 0, 2, 2);
        let m = mesh_grid(&Window { data: &data, rect: r, tile: r }, &Params { cell: [2.0, 1.0], z_scale: 1.0, z_offset: 0.0, raster: [2, 2], tile: 2 });
        let s = String::from_utf8(encode(&m, [2.0, 1.0], "tile 0 0")).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "# tile 0 0");
        assert_eq!(&lines[1..5], ["v 0.0 0.0 0.0", "v 2.0 1.0 0.0", "v 0.0 2.0 1.0", "v 2.0 3.5 1.0"]);
        assert_eq!(lines[9], "vt 0.0 1.0");
        assert_eq!(&lines[13..], ["f 1/1/1 3/3/3 2/2/2", "f 2/2/2 3/3/3 4/4/4"]);
    }
}
