//! The tile and halo stages on a raster already in memory, single process: what `bench` and the tests drive to
//! measure and check the kernels through the same halo plan and tile worker as `mesh`. Writes nothing.

use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;
use serde_json::json;

use super::tile::{grid_glb_into, TileScratch};
use crate::comm::Comm;
use crate::encode;
use crate::halo::{self, Blocks, Halo};
use crate::mesh::{self, simplify, Method, Params, Window};
use crate::tiling::{self, Grid, TileId};

/// A raster in memory cut into tiles with its halo exchanged (single process): the tile and halo stages, ready to
/// mesh. What `bench` and the tests drive.
pub struct InMemory {
    pub grid: Grid,
    /// The tiles this rank holds (all of them in a single process), row-major.
    pub mine: Vec<TileId>,
    owners: Vec<usize>,
    blocks: Blocks,
    halo: Halo,
}

impl InMemory {
    pub fn new(data: &[f32], width: usize, height: usize, tile: usize) -> Result<InMemory> {
        Self::new_on(&crate::comm::single::Single, data, width, height, tile)
    }

    /// Collective: every rank holds the whole raster, keeps its own tiles (the sharding `mesh` uses) and runs the
    /// real halo exchange through `comm`.
    pub fn new_on(comm: &dyn Comm, data: &[f32], width: usize, height: usize, tile: usize) -> Result<InMemory> {
        let grid = Grid::new(width, height, tile).ok_or_else(|| anyhow!("raster {width}x{height} with tile {tile} cannot be meshed"))?;
        if data.len() != width * height {
            bail!("raster data has {} samples, expected {width}x{height}", data.len());
        }
        let owners = tiling::assign_owners(&grid, comm.size());
        let mine: Vec<TileId> = grid.tiles().filter(|t| owners[grid.index(*t)] == comm.rank()).collect();
        // Tile by tile in parallel, as the read stage fills `mesh`'s blocks.
        let blocks: Blocks = mine
            .par_iter()
            .map(|&t| {
                let r = grid.owned_rect(t);
                let mut b: Vec<f32> = Vec::with_capacity(r.len());
                for y in r.y0..r.y1 {
                    b.extend_from_slice(&data[y * width + r.x0..y * width + r.x1]);
                }
                super::sanitize(&mut b, 1.0, 0.0);
                (grid.index(t), b)
            })
            .collect();
        let halo = crate::comm::or_abort(comm, halo::exchange(&grid, &owners, comm, &blocks), "halo exchange")?;
        Ok(InMemory { grid, mine, owners, blocks, halo })
    }

    /// Runs the halo exchange again (collective): what `bench` times as the halo stage.
    pub fn exchange(&mut self, comm: &dyn Comm) -> Result<()> {
        self.halo = crate::comm::or_abort(comm, halo::exchange(&self.grid, &self.owners, comm, &self.blocks), "halo exchange")?;
        Ok(())
    }

    /// Bytes this rank sent in the halo exchange.
    pub fn halo_bytes_sent(&self) -> usize {
        self.halo.bytes_sent
    }

    /// Samples this rank's tiles own.
    pub fn owned_samples(&self) -> usize {
        self.mine.iter().map(|&t| self.grid.owned_rect(t).len()).sum()
    }

    /// Meshes every tile in parallel on the current rayon pool; row-major tile order.
    /// Full-resolution GLB bytes of every tile through the fused grid writer, each thread reusing one output
    /// buffer (as the pipeline does before handing the bytes to the store); returns the total bytes. Tiles with
    /// holes fall back to mesh + encode.
    pub fn grid_glb_bytes(&self, params: &Params, kernel: mesh::grid::Kernel) -> usize {
        self.mine.par_iter().map_init(<TileScratch>::default, |sc, &t| self.grid_glb_tile(t, params, kernel, sc)).sum()
    }

    /// As [`Self::grid_glb_bytes`], but every tile gets its own fresh buffer and all are kept: the whole output
    /// resident in memory at once (first-touch page faults included).
    pub fn grid_glb_tiles(&self, params: &Params, kernel: mesh::grid::Kernel) -> Vec<Vec<u8>> {
        self.mine
            .par_iter()
            .map_init(<TileScratch>::default, |sc, &t| {
                self.grid_glb_tile(t, params, kernel, sc);
                std::mem::take(&mut sc.2)
            })
            .collect()
    }

    /// Tile `t` with its halo, assembled into `buf`.
    fn window<'a>(&self, t: TileId, buf: &'a mut Vec<f32>) -> Window<'a> {
        self.halo.window(&self.grid, t, &self.blocks, buf);
        Window { data: buf, rect: self.grid.halo_rect(t), tile: self.grid.tile_rect(t) }
    }

    /// Normals only, every hole-free tile (the normal kernel alone); returns how many were computed.
    pub fn grid_normals(&self, params: &Params, kernel: mesh::grid::Kernel) -> usize {
        self.mine
            .par_iter()
            .map_init(<(Vec<f32>, Vec<[f32; 3]>)>::default, |(window, out), &t| {
                let win = self.window(t, window);
                mesh::grid::normals(&win, params, kernel, out);
                out.len()
            })
            .sum()
    }

    fn grid_glb_tile(&self, t: TileId, params: &Params, kernel: mesh::grid::Kernel, (window, scratch, out): &mut TileScratch) -> usize {
        let win = self.window(t, window);
        let extras = json!({});
        if grid_glb_into(&win, params, &extras, out, kernel).is_none() {
            *out = encode::glb::encode(&mesh::mesh_tile(&win, params, &Method::Grid, None, scratch), &extras);
        }
        out.len()
    }

    pub fn mesh(&self, params: &Params, method: &Method) -> Vec<(TileId, mesh::Mesh)> {
        self.mine
            .par_iter()
            .map_init(<(Vec<f32>, simplify::Scratch)>::default, |(window, scratch), &t| {
                let win = self.window(t, window);
                (t, mesh::mesh_tile(&win, params, method, None, scratch))
            })
            .collect()
    }
}

/// read → tile → halo → mesh on a raster already in memory, single process.
pub fn mesh_in_memory(data: &[f32], width: usize, height: usize, tile: usize, params: &Params, method: &Method) -> Result<Vec<(TileId, mesh::Mesh)>> {
    Ok(InMemory::new(data, width, height, tile)?.mesh(params, method))
}
