//! Cameras for scene renders: the top-down orthographic view that covers exactly the raster's extent (north up,
//! one pixel per sample at the raster's own size, pixel centres on samples), and an orbiting perspective view.
//! World axes are glTF's: +X east, +Y up, +Z south.

/// A column-major 4×4 matrix (as WGSL's `mat4x4<f32>` takes it), built in f64.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mat4(pub [[f64; 4]; 4]);

type V3 = [f64; 3];

fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: V3, b: V3) -> V3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
fn unit(a: V3) -> V3 {
    let l = dot(a, a).sqrt();
    [a[0] / l, a[1] / l, a[2] / l]
}

impl Mat4 {
    /// Right-handed view matrix: the camera at `eye` looks at `target`, `up` towards the image's top.
    pub fn look_at(eye: V3, target: V3, up: V3) -> Mat4 {
        let f = unit(sub(target, eye));
        let s = unit(cross(f, up));
        let u = cross(s, f);
        Mat4([[s[0], u[0], -f[0], 0.0], [s[1], u[1], -f[1], 0.0], [s[2], u[2], -f[2], 0.0], [-dot(s, eye), -dot(u, eye), dot(f, eye), 1.0]])
    }

    /// Orthographic projection of a right-handed view box onto clip space with depth 0 (near) to 1 (far).
    pub fn orthographic(l: f64, r: f64, b: f64, t: f64, near: f64, far: f64) -> Mat4 {
        let d = 1.0 / (near - far);
        Mat4([[2.0 / (r - l), 0.0, 0.0, 0.0], [0.0, 2.0 / (t - b), 0.0, 0.0], [0.0, 0.0, d, 0.0], [-(l + r) / (r - l), -(t + b) / (t - b), near * d, 1.0]])
    }

    /// Perspective projection (vertical field of view in radians), depth 0 (near) to 1 (far).
    pub fn perspective(fov_y: f64, aspect: f64, near: f64, far: f64) -> Mat4 {
        let h = 1.0 / (fov_y / 2.0).tan();
        let r = far / (near - far);
        Mat4([[h / aspect, 0.0, 0.0, 0.0], [0.0, h, 0.0, 0.0], [0.0, 0.0, r, -1.0], [0.0, 0.0, r * near, 0.0]])
    }

    pub fn mul(&self, o: &Mat4) -> Mat4 {
        Mat4(std::array::from_fn(|c| std::array::from_fn(|r| (0..4).map(|k| self.0[k][r] * o.0[c][k]).sum())))
    }

    /// `self · (p, 1)`: clip coordinates of a point.
    pub fn apply(&self, p: V3) -> [f64; 4] {
        std::array::from_fn(|r| self.0[0][r] * p[0] + self.0[1][r] * p[1] + self.0[2][r] * p[2] + self.0[3][r])
    }

    pub fn to_f32(&self) -> [[f32; 4]; 4] {
        self.0.map(|c| c.map(|v| v as f32))
    }
}

/// Where the camera looks from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum View {
    /// Straight down, orthographic, north up.
    Top,
    /// Perspective from `azimuth` degrees (clockwise from north, where the viewer stands) and `elevation` degrees
    /// above the horizon, framing the whole scene.
    Orbit { azimuth: f64, elevation: f64 },
}

impl View {
    /// The default oblique view: from the south-south-west, 35° up.
    pub const OBLIQUE: View = View::Orbit { azimuth: 200.0, elevation: 35.0 };

    pub fn parse(s: &str) -> Result<View, String> {
        match s.trim() {
            "top" => Ok(View::Top),
            "oblique" => Ok(View::OBLIQUE),
            o => {
                let bad = || format!("unknown camera '{o}' (top, oblique, or AZIMUTH,ELEVATION in degrees, e.g. 200,35)");
                let (a, e) = o.split_once(',').ok_or_else(bad)?;
                let (azimuth, elevation) = (a.trim().parse::<f64>().map_err(|_| bad())?, e.trim().parse::<f64>().map_err(|_| bad())?);
                if !azimuth.is_finite() || !(1.0..=90.0).contains(&elevation) {
                    return Err(format!("camera {o}: the elevation must lie in 1–90 degrees"));
                }
                Ok(View::Orbit { azimuth, elevation })
            }
        }
    }

    pub fn name(&self) -> String {
        match self {
            View::Top => "top".into(),
            View::Orbit { azimuth, elevation } if *self == View::OBLIQUE => format!("oblique (az {azimuth}°, el {elevation}°)"),
            View::Orbit { azimuth, elevation } => format!("az {azimuth}°, el {elevation}°"),
        }
    }
}

/// What a camera needs to know of a scene: its world box (metres, relative to `centre`) and its cell size.
#[derive(Clone, Copy, Debug)]
pub struct Extent {
    /// World X/Z of the first and last sample, and the lowest and highest height.
    pub min: [f64; 3],
    pub max: [f64; 3],
    pub cell: [f64; 2],
}

impl Extent {
    /// The point all tile origins are made relative to (f32 precision is then spent near the scene).
    pub fn centre(&self) -> [f64; 3] {
        [(self.min[0] + self.max[0]) / 2.0, 0.0, (self.min[2] + self.max[2]) / 2.0]
    }
}

/// The view-projection matrix (world relative to [`Extent::centre`] → clip space, depth 0..1) for an image of
/// `size` pixels.
pub fn view_proj(view: View, e: &Extent, size: [u32; 2]) -> Mat4 {
    let (lo, hi) = (e.min[1], e.max[1]);
    let aspect = size[0] as f64 / size[1] as f64;
    match view {
        View::Top => {
            // Half a cell beyond the outer samples on every side: pixel centres land on samples at native size.
            let mut hw = (e.max[0] - e.min[0] + e.cell[0]) / 2.0;
            let mut hh = (e.max[2] - e.min[2] + e.cell[1]) / 2.0;
            // Keep the aspect: widen whichever side is short (a letterbox), never stretch.
            if hw / hh < aspect {
                hw = hh * aspect;
            } else {
                hh = hw / aspect;
            }
            let margin = 1.0 + (hi - lo).abs() * 0.01;
            let look = Mat4::look_at([0.0, hi + margin, 0.0], [0.0, lo, 0.0], [0.0, 0.0, -1.0]);
            Mat4::orthographic(-hw, hw, -hh, hh, 0.0, (hi - lo) + 2.0 * margin).mul(&look)
        }
        View::Orbit { azimuth, elevation } => {
            let half = [(e.max[0] - e.min[0]) / 2.0, (e.max[1] - e.min[1]) / 2.0, (e.max[2] - e.min[2]) / 2.0];
            let radius = (half[0] * half[0] + half[1] * half[1] + half[2] * half[2]).sqrt().max(1e-3);
            let target = [0.0, (lo + hi) / 2.0, 0.0];
            let (az, el) = (azimuth.to_radians(), elevation.to_radians());
            let dir = [el.cos() * az.sin(), el.sin(), -el.cos() * az.cos()];
            let fov_y = 35f64.to_radians();
            let at = |dist: f64| {
                let eye = [target[0] + dir[0] * dist, target[1] + dir[1] * dist, target[2] + dir[2] * dist];
                let near = ((dist - radius) * 0.9).max(dist * 1e-3);
                Mat4::perspective(fov_y, aspect, near, (dist + radius) * 1.01).mul(&Mat4::look_at(eye, target, [0.0, 1.0, 0.0]))
            };
            // The closest distance at which all eight corners of the box lie within 95% of the image: the bounding
            // sphere's distance is safe but leaves a flat scene small in the frame.
            let corners: Vec<V3> = (0..8)
                .map(|i| [half[0] * if i & 1 == 0 { -1.0 } else { 1.0 }, if i & 2 == 0 { lo } else { hi }, half[2] * if i & 4 == 0 { -1.0 } else { 1.0 }])
                .collect();
            let fits = |dist: f64| {
                let m = at(dist);
                corners.iter().all(|&c| {
                    let p = m.apply(c);
                    p[3] > 0.0 && (p[0] / p[3]).abs() <= 0.95 && (p[1] / p[3]).abs() <= 0.95
                })
            };
            let fov = if aspect < 1.0 { 2.0 * ((fov_y / 2.0).tan() * aspect).atan() } else { fov_y };
            let (mut near_d, mut far_d) = (radius * 1e-3, radius / (fov / 2.0).sin() * 1.05);
            if !fits(far_d) {
                return at(far_d);
            }
            for _ in 0..50 {
                let mid = (near_d + far_d) / 2.0;
                if fits(mid) {
                    far_d = mid
                } else {
                    near_d = mid
                }
            }
            at(far_d)
        }
    }
}

/// The unit vector towards a light at `azimuth` degrees (clockwise from north) and `altitude` degrees.
pub fn light(azimuth: f64, altitude: f64) -> [f32; 3] {
    let (az, alt) = (azimuth.to_radians(), altitude.to_radians());
    [(az.sin() * alt.cos()) as f32, alt.sin() as f32, (-az.cos() * alt.cos()) as f32]
}

/// The default image size: the raster's own size, scaled down so that the long side is at most `cap` pixels.
pub fn default_size(raster: [usize; 2], cap: u32) -> [u32; 2] {
    let long = raster[0].max(raster[1]).max(1) as f64;
    let s = (cap as f64 / long).min(1.0);
    [((raster[0] as f64 * s).round() as u32).max(1), ((raster[1] as f64 * s).round() as u32).max(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent() -> Extent {
        Extent { min: [0.0, 10.0, 0.0], max: [99.0, 50.0, 49.0], cell: [1.0, 1.0] }
    }

    #[test]
    fn top_view_puts_samples_on_pixel_centres_north_up() {
        let e = extent();
        let m = view_proj(View::Top, &e, [100, 50]);
        let c = e.centre();
        // NDC x of sample column i must be (i + 0.5) / 100 · 2 − 1, rows likewise with row 0 at the top (NDC y +1).
        for (i, j) in [(0usize, 0usize), (37, 12), (99, 49)] {
            let p = m.apply([i as f64 - c[0], 30.0, j as f64 - c[2]]);
            let (x, y) = (p[0] / p[3], p[1] / p[3]);
            assert!((x - ((i as f64 + 0.5) / 50.0 - 1.0)).abs() < 1e-9, "{i}: {x}");
            assert!((y - (1.0 - (j as f64 + 0.5) / 25.0)).abs() < 1e-9, "{j}: {y}");
            assert!((0.0..=1.0).contains(&(p[2] / p[3])));
        }
    }

    #[test]
    fn orbit_frames_every_corner() {
        let e = extent();
        let c = e.centre();
        for v in [View::OBLIQUE, View::Orbit { azimuth: 45.0, elevation: 80.0 }] {
            let m = view_proj(v, &e, [300, 200]);
            for x in [e.min[0], e.max[0]] {
                for z in [e.min[2], e.max[2]] {
                    for y in [e.min[1], e.max[1]] {
                        let p = m.apply([x - c[0], y, z - c[2]]);
                        let n = [p[0] / p[3], p[1] / p[3], p[2] / p[3]];
                        assert!(n[0].abs() <= 1.0 && n[1].abs() <= 1.0 && (0.0..=1.0).contains(&n[2]), "{v:?}: {n:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn light_from_the_north_west_and_cameras_parse() {
        let l = light(315.0, 45.0);
        assert!((l[0] + 0.5).abs() < 1e-6 && (l[2] + 0.5).abs() < 1e-6 && (l[1] - 0.5f32.sqrt()).abs() < 1e-6);
        assert_eq!(View::parse("top"), Ok(View::Top));
        assert_eq!(View::parse("10, 20"), Ok(View::Orbit { azimuth: 10.0, elevation: 20.0 }));
        assert!(View::parse("10,0").is_err() && View::parse("side").is_err());
        assert_eq!(default_size([4097, 2049], 2048), [2048, 1024]);
        assert_eq!(default_size([513, 513], 2048), [513, 513]);
    }
}
