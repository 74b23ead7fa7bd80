//! Tile geometry: which samples a tile covers, which tile owns a sample, which rank owns a tile, which samples a
//! tile needs around it (its halo). Integer geometry only: no I/O, no heights.

/// Half-open rectangle of sample coordinates `[x0, x1) × [y0, y1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rect {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Rect {
    pub fn new(x0: usize, y0: usize, x1: usize, y1: usize) -> Rect {
        debug_assert!(x0 <= x1 && y0 <= y1);
        Rect { x0, y0, x1, y1 }
    }
    pub fn width(&self) -> usize {
        self.x1 - self.x0
    }
    pub fn height(&self) -> usize {
        self.y1 - self.y0
    }
    pub fn len(&self) -> usize {
        self.width() * self.height()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn intersect(&self, o: &Rect) -> Option<Rect> {
        let r = Rect { x0: self.x0.max(o.x0), y0: self.y0.max(o.y0), x1: self.x1.min(o.x1), y1: self.y1.min(o.y1) };
        (r.x0 < r.x1 && r.y0 < r.y1).then_some(r)
    }
    pub fn contains(&self, x: usize, y: usize) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
}

/// Tile coordinates (column, row) in the tile grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    pub col: usize,
    pub row: usize,
}

/// A raster of `width × height` samples cut into tiles of `tile × tile` cells.
///
/// Tile (c, r) spans sample columns `c·T ..= min((c+1)·T, W−1)`, so neighbouring tiles share their border samples.
/// Each sample is *owned* by exactly one tile (the one whose column/row range starts at or before it, the last tile
/// taking the final sample); ownership is what the halo exchange moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub width: usize,
    pub height: usize,
    pub tile: usize,
    pub cols: usize,
    pub rows: usize,
}

impl Grid {
    /// `None` when the raster has fewer than 2×2 samples or the tile has fewer than 2 cells a side (a one-cell tile
    /// would need a halo two tiles away).
    pub fn new(width: usize, height: usize, tile: usize) -> Option<Grid> {
        if width < 2 || height < 2 || tile < 2 {
            return None;
        }
        Some(Grid { width, height, tile, cols: (width - 1).div_ceil(tile), rows: (height - 1).div_ceil(tile) })
    }

    pub fn count(&self) -> usize {
        self.cols * self.rows
    }

    /// Row-major tile index.
    pub fn index(&self, t: TileId) -> usize {
        t.row * self.cols + t.col
    }

    pub fn id(&self, index: usize) -> TileId {
        TileId { col: index % self.cols, row: index / self.cols }
    }

    pub fn tiles(&self) -> impl Iterator<Item = TileId> + '_ {
        (0..self.count()).map(|i| self.id(i))
    }

    /// Samples the tile's mesh covers (its cells' corners), inclusive of the shared border samples.
    pub fn tile_rect(&self, t: TileId) -> Rect {
        let x0 = t.col * self.tile;
        let y0 = t.row * self.tile;
        Rect::new(x0, y0, ((t.col + 1) * self.tile).min(self.width - 1) + 1, ((t.row + 1) * self.tile).min(self.height - 1) + 1)
    }

    /// Samples this tile owns (reads from input and serves to neighbours). Owned rects partition the raster.
    pub fn owned_rect(&self, t: TileId) -> Rect {
        let x1 = if t.col + 1 == self.cols { self.width } else { (t.col + 1) * self.tile };
        let y1 = if t.row + 1 == self.rows { self.height } else { (t.row + 1) * self.tile };
        Rect::new(t.col * self.tile, t.row * self.tile, x1, y1)
    }

    /// The tile rectangle plus a one-sample ring where the raster has one: what a mesher needs for exact normals.
    pub fn halo_rect(&self, t: TileId) -> Rect {
        let r = self.tile_rect(t);
        Rect::new(r.x0.saturating_sub(1), r.y0.saturating_sub(1), (r.x1 + 1).min(self.width), (r.y1 + 1).min(self.height))
    }

    /// Neighbours (including the tile itself) in row-major order: the only tiles whose owned samples a halo touches.
    pub fn neighbourhood(&self, t: TileId) -> impl Iterator<Item = TileId> + '_ {
        let c0 = t.col.saturating_sub(1);
        let r0 = t.row.saturating_sub(1);
        let c1 = (t.col + 1).min(self.cols - 1);
        let r1 = (t.row + 1).min(self.rows - 1);
        (r0..=r1).flat_map(move |row| (c0..=c1).map(move |col| TileId { col, row }))
    }

    /// Mesh cells in the tile, used as its cost when balancing ranks.
    pub fn cost(&self, t: TileId) -> u64 {
        let r = self.tile_rect(t);
        ((r.width() - 1) * (r.height() - 1)) as u64
    }
}

/// Hilbert curve index of (x, y) on a `n × n` grid, `n` a power of two.
fn hilbert_index(n: usize, mut x: usize, mut y: usize) -> u64 {
    let mut d: u64 = 0;
    let mut s = n / 2;
    while s > 0 {
        let rx = usize::from(x & s > 0);
        let ry = usize::from(y & s > 0);
        d += (s as u64) * (s as u64) * ((3 * rx) ^ ry) as u64;
        if ry == 0 {
            if rx == 1 {
                x = n - 1 - x;
                y = n - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    d
}

/// Sharding policy: tiles are ordered along a Hilbert curve over the tile grid and the curve is cut into `ranks`
/// contiguous runs of near-equal cost (mesh cells), so a rank's tiles are spatially compact and most halo samples
/// come from tiles on the same rank. Every rank computes the same map from (grid, ranks) alone.
/// Returns the owning rank of each tile, by row-major tile index.
pub fn assign_owners(grid: &Grid, ranks: usize) -> Vec<usize> {
    let ranks = ranks.max(1);
    let n = grid.cols.max(grid.rows).next_power_of_two();
    let mut order: Vec<usize> = (0..grid.count()).collect();
    order.sort_by_key(|&i| {
        let t = grid.id(i);
        (hilbert_index(n, t.col, t.row), i)
    });
    let total: u64 = order.iter().map(|&i| grid.cost(grid.id(i))).sum();
    let mut owners = vec![0; grid.count()];
    let mut before: u64 = 0;
    for &i in &order {
        let c = grid.cost(grid.id(i));
        // A tile goes to the rank whose share contains the tile's cost midpoint.
        let mid = 2 * before + c; // doubled to stay in integers
        let rank = ((mid as u128 * ranks as u128) / (2 * total.max(1)) as u128) as usize;
        owners[i] = rank.min(ranks - 1);
        before += c;
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_share_borders_and_cover_raster() {
        let g = Grid::new(1001, 517, 256).unwrap();
        assert_eq!((g.cols, g.rows), (4, 3));
        let last = g.tile_rect(TileId { col: 3, row: 2 });
        assert_eq!((last.x1, last.y1), (1001, 517));
        let a = g.tile_rect(TileId { col: 0, row: 0 });
        let b = g.tile_rect(TileId { col: 1, row: 0 });
        assert_eq!(a.x1 - 1, b.x0, "neighbours share one sample column");
    }

    #[test]
    fn exact_multiple_has_no_sliver_tile() {
        let g = Grid::new(513, 513, 256).unwrap();
        assert_eq!((g.cols, g.rows), (2, 2));
        let g = Grid::new(514, 513, 256).unwrap();
        assert_eq!(g.cols, 3);
        assert_eq!(g.tile_rect(TileId { col: 2, row: 0 }).width(), 2);
    }

    #[test]
    fn owned_rects_partition_the_raster() {
        for (w, h, t) in [(2, 2, 2), (10, 7, 3), (513, 300, 64), (65, 65, 64)] {
            let g = Grid::new(w, h, t).unwrap();
            let mut hits = vec![0u8; w * h];
            for id in g.tiles() {
                let r = g.owned_rect(id);
                for y in r.y0..r.y1 {
                    for x in r.x0..r.x1 {
                        hits[y * w + x] += 1;
                    }
                }
            }
            assert!(hits.iter().all(|&n| n == 1), "{w}x{h}/{t}");
        }
    }

    #[test]
    fn halo_is_covered_by_neighbourhood() {
        let g = Grid::new(100, 80, 7).unwrap();
        for id in g.tiles() {
            let halo = g.halo_rect(id);
            let covered: usize = g.neighbourhood(id).filter_map(|n| g.owned_rect(n).intersect(&halo)).map(|r| r.len()).sum();
            assert_eq!(covered, halo.len());
        }
    }

    #[test]
    fn owners_are_balanced_and_contiguous() {
        let g = Grid::new(4097, 4097, 256).unwrap();
        for ranks in 1..=7 {
            let owners = assign_owners(&g, ranks);
            let mut cost = vec![0u64; ranks];
            for id in g.tiles() {
                cost[owners[g.index(id)]] += g.cost(id);
            }
            let max = *cost.iter().max().unwrap() as f64;
            let min = *cost.iter().min().unwrap() as f64;
            assert!(min > 0.0 && max / min < 1.5, "ranks {ranks}: {cost:?}");
        }
        assert!(assign_owners(&g, 1).iter().all(|&r| r == 0));
    }

    #[test]
    fn more_ranks_than_tiles_is_fine() {
        let g = Grid::new(9, 9, 4).unwrap();
        let owners = assign_owners(&g, 8);
        assert_eq!(owners.len(), 4);
        assert!(owners.iter().all(|&r| r < 8));
    }
}
