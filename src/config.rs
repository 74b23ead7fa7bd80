//! Flags → validated configuration. Everything a user can get wrong on the command line is caught here, before any
//! input is opened or any collective starts, and reported as a usage error (exit code 2).

use std::path::PathBuf;

use crate::cli::MeshArgs;
use crate::encode::Format;
use crate::mesh::simplify::SimplifyParams;
use crate::mesh::Method;
use crate::raster::{Encoding, ReadOptions};
use crate::store::BlobOptions;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(usize, usize), ConfigError> {
    let parse = |p: &str| p.trim().parse::<usize>().ok().filter(|&v| v > 0);
    match s.split_once(['x', 'X']).map(|(w, h)| (parse(w), parse(h))) {
        Some((Some(w), Some(h))) => Ok((w, h)),
        _ => bad(format!("size '{s}' is not WIDTHxHEIGHT with positive integers, e.g. 4097x4097")),
    }
}

/// Parses `--cell-size X` or `X,Y` (metres, positive).
pub fn parse_cell(s: &str) -> Result<[f64; 2], ConfigError> {
    let cells: Vec<f64> = s
        .split(',')
        .map(|s| s.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ConfigError(format!("--cell-size '{s}' is not X or X,Y in metres")))?;
    let cell = match cells[..] {
        [x] => [x, x],
        [x, y] => [x, y],
        _ => return bad(format!("--cell-size '{s}' is not X or X,Y in metres")),
    };
    if !cell.iter().all(|c| c.is_finite() && *c > 0.0) {
        return bad("--cell-size must be positive and finite");
    }
    Ok(cell)
}

/// Validated settings of one `mesh` run.
#[derive(Clone, Debug)]
pub struct MeshConfig {
    pub inputs: Vec<PathBuf>,
    pub out: String,
    pub tile_size: usize,
    pub formats: Vec<Format>,
    pub read: ReadOptions,
    /// `--cell-size`, when given (else the input's georeferencing decides).
    pub cell: Option<[f64; 2]>,
    pub z_scale: f32,
    pub z_offset: f32,
    pub method: Method,
    pub skirts: Option<f32>,
    pub threads: Option<usize>,
    pub resume: bool,
    pub preview: bool,
    pub scene: Option<String>,
    pub json: bool,
    pub blob: BlobOptions,
}

impl MeshConfig {
    pub fn from_args(a: MeshArgs) -> Result<MeshConfig, ConfigError> {
        let encoding: Encoding = a.encoding.parse().map_err(ConfigError)?;
        let size = a.size.as_deref().map(parse_size).transpose()?;
        let mut formats: Vec<Format> = a.format.split(',').filter(|s| !s.trim().is_empty()).map(str::parse).collect::<Result<_, _>>().map_err(ConfigError)?;
        formats.sort();
        formats.dedup();
        if formats.is_empty() {
            return bad("--format needs at least one of glb, obj");
        }
        let cell = a.cell_size.as_deref().map(parse_cell).transpose()?;
        if !(2..=16384).contains(&a.tile_size) {
            return bad(format!("--tile-size {} is outside 2..=16384 cells", a.tile_size));
        }
        if formats.contains(&Format::Glb) && crate::encode::glb::worst_case_bytes(a.tile_size) > crate::encode::glb::MAX_GLB_BYTES {
            // Refused before anything is allocated: a full-resolution tile this size would not fit one GLB.
            return bad(format!(
                "--tile-size {}: a tile's GLB could reach {:.1} GiB, past glTF's 4 GiB limit for one GLB file; the largest tile size that fits is {} (or leave glb out of --format)",
                a.tile_size,
                crate::encode::glb::worst_case_bytes(a.tile_size) as f64 / (1u64 << 30) as f64,
                crate::encode::glb::max_tile_size()
            ));
        }
        if !a.z_scale.is_finite() || a.z_scale == 0.0 || !a.z_offset.is_finite() {
            return bad("--z-scale must be finite and non-zero, --z-offset finite");
        }
        if a.threads == Some(0) {
            return bad("--threads must be at least 1");
        }
        if a.scene.is_some() && a.inputs.len() > 1 {
            return bad("--scene names one scene; it cannot be used with several inputs");
        }
        if let Some(s) = &a.scene {
            if s.is_empty() || s.contains(['/', '\\']) || s == "." || s == ".." {
                return bad(format!("--scene '{s}' must be a plain name"));
            }
        }
        if a.max_error.is_some_and(|e| !(e.is_finite() && e >= 0.0)) {
            return bad("--max-error must be a finite number of metres ≥ 0");
        }
        if a.max_triangles.is_some_and(|n| n < 2) {
            return bad("--max-triangles must be at least 2 (a tile's two corner triangles)");
        }
        if a.skirts.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
            return bad("--skirts must be a positive depth in metres");
        }
        let method = match (a.max_error, a.max_triangles) {
            (None, None) => Method::Grid,
            (e, n) => Method::Simplify(SimplifyParams { max_error: e.unwrap_or(0.0), max_triangles: n }),
        };
        if a.max_samples == 0 {
            return bad("--max-samples must be positive");
        }
        if !(1..=4000).contains(&a.blob_block_mib) {
            return bad(format!("--blob-block-mib {} is outside 1..=4000 (Azure's block size limit is 4000 MiB)", a.blob_block_mib));
        }
        if !(1..=64).contains(&a.blob_concurrency) {
            return bad(format!("--blob-concurrency {} is outside 1..=64", a.blob_concurrency));
        }
        if !(a.blob_retry_timeout.is_finite() && a.blob_retry_timeout >= 0.0 && a.blob_retry_timeout <= 3600.0) {
            return bad("--blob-retry-timeout must be between 0 and 3600 seconds");
        }
        let blob = BlobOptions {
            retries: a.blob_retries,
            retry_timeout: std::time::Duration::from_secs_f64(a.blob_retry_timeout),
            block_size: a.blob_block_mib << 20,
            concurrency: a.blob_concurrency,
            ..BlobOptions::default()
        };
        Ok(MeshConfig {
            inputs: a.inputs,
            out: a.out,
            tile_size: a.tile_size,
            formats,
            read: ReadOptions { encoding, size, max_samples: a.max_samples, nodata: a.nodata },
            cell,
            z_scale: a.z_scale,
            z_offset: a.z_offset,
            method,
            skirts: a.skirts,
            threads: a.threads,
            resume: a.resume,
            preview: a.preview,
            scene: a.scene,
            json: a.json,
            blob,
        })
    }

    /// The scene name of input `i`: `--scene`, else the file stem (of a URL's path: never its query).
    pub fn scene_name(&self, i: usize) -> String {
        self.scene.clone().unwrap_or_else(|| scene_stem(&self.inputs[i].to_string_lossy(), i))
    }
}

/// The default scene name of input `i`: its file stem (without a URL's query), else `scene{i}`.
pub fn scene_stem(input: &str, i: usize) -> String {
    PathBuf::from(input.split('?').next().unwrap_or_default())
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("scene{i}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4097x2049").unwrap(), (4097, 2049));
        assert!(parse_size("4097").is_err());
        assert!(parse_size("0x5").is_err());
        assert!(parse_size("ax5").is_err());
    }
}
