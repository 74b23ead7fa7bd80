//! Halo plan and exchange: which owned samples each tile needs from each neighbouring tile, packed into one
//! all-to-all. The single-process path runs the same plan; only the transport differs.
//!
//! Must not read input or mesh: it moves samples between owned blocks and tile windows.

use std::collections::HashMap;

use crate::comm::{Comm, CommError};
use crate::tiling::{Grid, Rect, TileId};

/// Samples of tile `src`'s owned block that tile `dst`'s halo window needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub dst: usize,
    pub src: usize,
    pub rect: Rect,
}

/// The pieces that make up `dst`'s halo window, in a fixed order (row-major neighbourhood) that senders and
/// receivers both follow.
pub fn pieces(grid: &Grid, dst: TileId) -> impl Iterator<Item = Piece> + '_ {
    let halo = grid.halo_rect(dst);
    let d = grid.index(dst);
    grid.neighbourhood(dst).filter_map(move |src| grid.owned_rect(src).intersect(&halo).map(|rect| Piece { dst: d, src: grid.index(src), rect }))
}

/// Owned sample blocks of this rank's tiles, keyed by tile index, each laid out row-major over `owned_rect`.
pub type Blocks = HashMap<usize, Vec<f32>>;

fn copy_rect(src: &[f32], src_rect: &Rect, part: &Rect, dst: &mut [f32], dst_rect: &Rect) {
    let w = part.width();
    for y in part.y0..part.y1 {
        let s = (y - src_rect.y0) * src_rect.width() + (part.x0 - src_rect.x0);
        let d = (y - dst_rect.y0) * dst_rect.width() + (part.x0 - dst_rect.x0);
        dst[d..d + w].copy_from_slice(&src[s..s + w]);
    }
}

/// Samples received from other ranks, with where each piece starts.
pub struct Halo {
    received: Vec<f32>,
    offsets: HashMap<(usize, usize), usize>,
    pub bytes_sent: usize,
    pub bytes_received: usize,
}

/// Runs the one all-to-all that gives every local tile the border samples owned by tiles on other ranks.
/// Collective: every rank must call it.
pub fn exchange(grid: &Grid, owners: &[usize], comm: &dyn Comm, blocks: &Blocks) -> Result<Halo, CommError> {
    let me = comm.rank();
    let size = comm.size();
    let mut per_rank: Vec<Vec<f32>> = vec![Vec::new(); size];
    for dst in grid.tiles() {
        let to = owners[grid.index(dst)];
        if to == me {
            continue;
        }
        for p in pieces(grid, dst).filter(|p| owners[p.src] == me) {
            let src_rect = grid.owned_rect(grid.id(p.src));
            let block = &blocks[&p.src];
            let buf = &mut per_rank[to];
            let start = buf.len();
            buf.resize(start + p.rect.len(), 0.0);
            copy_rect(block, &src_rect, &p.rect, &mut buf[start..], &p.rect);
        }
    }
    let counts: Vec<usize> = per_rank.iter().map(Vec::len).collect();
    let send: Vec<f32> = per_rank.concat();
    let (received, recv_counts) = comm.all_to_all_v(&send, &counts)?;

    // Walk the same plan from the receiving side to find where each piece starts.
    let mut starts: Vec<usize> = recv_counts
        .iter()
        .scan(0usize, |acc, &c| {
            let s = *acc;
            *acc += c;
            Some(s)
        })
        .collect();
    let mut offsets = HashMap::new();
    for dst in grid.tiles().filter(|t| owners[grid.index(*t)] == me) {
        for p in pieces(grid, dst) {
            let from = owners[p.src];
            if from != me {
                offsets.insert((p.dst, p.src), starts[from]);
                starts[from] += p.rect.len();
            }
        }
    }
    Ok(Halo { received, offsets, bytes_sent: send.len() * 4, bytes_received: recv_counts.iter().sum::<usize>() * 4 })
}

impl Halo {
    /// Assembles tile `t`'s window over `grid.halo_rect(t)` from local blocks and received pieces.
    pub fn window(&self, grid: &Grid, t: TileId, blocks: &Blocks, out: &mut Vec<f32>) {
        let halo = grid.halo_rect(t);
        out.clear();
        out.resize(halo.len(), f32::NAN);
        for p in pieces(grid, t) {
            if let Some(block) = blocks.get(&p.src) {
                copy_rect(block, &grid.owned_rect(grid.id(p.src)), &p.rect, out, &halo);
            } else {
                let start = self.offsets[&(p.dst, p.src)];
                copy_rect(&self.received[start..start + p.rect.len()], &p.rect, &p.rect, out, &halo);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::single::Single;

    #[test]
    fn window_matches_raster_crop() {
        let (w, h) = (37, 23);
        let raster: Vec<f32> = (0..w * h).map(|i| i as f32).collect();
        let grid = Grid::new(w, h, 8).unwrap();
        let owners = crate::tiling::assign_owners(&grid, 1);
        let mut blocks = Blocks::new();
        for t in grid.tiles() {
            let r = grid.owned_rect(t);
            let mut b = Vec::new();
            for y in r.y0..r.y1 {
                b.extend_from_slice(&raster[y * w + r.x0..y * w + r.x1]);
            }
            blocks.insert(grid.index(t), b);
        }
        let halo = exchange(&grid, &owners, &Single, &blocks).unwrap();
        assert_eq!(halo.bytes_sent, 0);
        let mut win = Vec::new();
        for t in grid.tiles() {
            halo.window(&grid, t, &blocks, &mut win);
            let r = grid.halo_rect(t);
            let mut i = 0;
            for y in r.y0..r.y1 {
                for x in r.x0..r.x1 {
                    assert_eq!(win[i], raster[y * w + x]);
                    i += 1;
                }
            }
        }
    }
}
