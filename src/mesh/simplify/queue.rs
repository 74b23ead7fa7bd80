//! The refinement queue: the triangles still past the error, by class ([`super::Scratch`]'s `class`), each class an
//! unordered bucket. The refinement always takes a whole class at once (a batch), so only the order between
//! classes has to be kept all the time; the order inside a class (error descending, then triangle id ascending) is
//! made by sorting the bucket when it is taken. That is the order a heap of (class, error, id) pops in, so the
//! refinement is the same, triangle for triangle, at O(1) per queue update instead of a heap's O(log n) sift (the
//! sifts were 10–15% of the kernel's time on dense outputs).
//!
//! The lowest non-empty class (class 0 goes first) is found from two levels of occupancy bits.

use super::NONE;

#[derive(Default)]
pub(super) struct Queue {
    /// (error as f32 bits, triangle) per class; the f32 bits of a non-negative error order like the error.
    buckets: Vec<Vec<(u32, u32)>>,
    /// Per triangle: its class (NONE when not queued) and its index in that bucket.
    at: Vec<(u32, u32)>,
    /// One bit per non-empty class, and one bit per non-zero word of `occ`.
    occ: Vec<u64>,
    occ_top: Vec<u64>,
}

/// Inside a class: larger error first, then lower triangle id.
#[inline]
fn before(x: &(u32, u32), y: &(u32, u32)) -> std::cmp::Ordering {
    y.0.cmp(&x.0).then(x.1.cmp(&y.1))
}

impl Queue {
    /// Empties the queue (no triangles) for classes `0..classes`; buckets keep their memory.
    pub(super) fn reset(&mut self, classes: usize) {
        self.buckets.iter_mut().for_each(Vec::clear);
        if self.buckets.len() < classes {
            self.buckets.resize_with(classes, Vec::new);
        }
        self.at.clear();
        let words = classes.div_ceil(64);
        self.occ.clear();
        self.occ.resize(words, 0);
        self.occ_top.clear();
        self.occ_top.resize(words.div_ceil(64), 0);
    }

    /// Room for one more triangle id (not queued).
    #[inline]
    pub(super) fn grow(&mut self) {
        self.at.push((NONE, 0));
    }

    #[inline]
    fn mark(&mut self, c: u32) {
        let w = c as usize / 64;
        self.occ[w] |= 1 << (c % 64);
        self.occ_top[w / 64] |= 1 << (w % 64);
    }

    #[inline]
    fn unmark(&mut self, c: u32) {
        let w = c as usize / 64;
        self.occ[w] &= !(1 << (c % 64));
        if self.occ[w] == 0 {
            self.occ_top[w / 64] &= !(1 << (w % 64));
        }
    }

    /// Takes `t` out of the queue (nothing if it is not queued).
    #[inline]
    pub(super) fn remove(&mut self, t: u32) {
        let (c, i) = self.at[t as usize];
        if c == NONE {
            return;
        }
        let b = &mut self.buckets[c as usize];
        b.swap_remove(i as usize);
        if let Some(&(_, moved)) = b.get(i as usize) {
            self.at[moved as usize].1 = i;
        }
        let empty = b.is_empty();
        self.at[t as usize].0 = NONE;
        if empty {
            self.unmark(c);
        }
    }

    /// Queues `t` in class `c` with error bits `err` (moving it if it is queued elsewhere).
    #[inline]
    pub(super) fn set(&mut self, t: u32, c: u32, err: u32) {
        let (old, i) = self.at[t as usize];
        if old == c {
            self.buckets[c as usize][i as usize].0 = err;
            return;
        }
        self.remove(t);
        let b = &mut self.buckets[c as usize];
        let first = b.is_empty();
        self.at[t as usize] = (c, b.len() as u32);
        b.push((err, t));
        if first {
            self.mark(c);
        }
    }

    /// The first non-empty class, if any.
    #[inline]
    pub(super) fn top_class(&self) -> Option<u32> {
        let (w, x) = self.occ_top.iter().enumerate().find(|(_, &x)| x != 0)?;
        let j = w * 64 + x.trailing_zeros() as usize;
        Some((j * 64 + self.occ[j].trailing_zeros() as usize) as u32)
    }

    /// The first triangle of class `c` (non-empty) in queue order.
    pub(super) fn first(&self, c: u32) -> u32 {
        self.buckets[c as usize].iter().min_by(|x, y| before(x, y)).map_or(NONE, |e| e.1)
    }

    /// Moves every triangle of class `c` out of the queue into `out`, in queue order.
    pub(super) fn take_class(&mut self, c: u32, out: &mut Vec<u32>) {
        let b = &mut self.buckets[c as usize];
        b.sort_unstable_by(before);
        for &(_, t) in b.iter() {
            self.at[t as usize].0 = NONE;
            out.push(t);
        }
        b.clear();
        self.unmark(c);
    }

    /// Every queued triangle, in no particular order.
    pub(super) fn all(&self) -> impl Iterator<Item = u32> + '_ {
        self.buckets.iter().flat_map(|b| b.iter().map(|e| e.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a sorted reference of (class, error descending, id ascending): updates, moves, removals and
    /// whole-class takes in random order, with many equal errors.
    #[test]
    fn takes_classes_in_heap_order() {
        let mut rnd = crate::mesh::xorshift(0x9e3779b97f4a7c15u64);
        for round in 0..50 {
            let classes = [1usize, 3, 64, 65, 300, 5000][round % 6];
            let n = 200;
            let mut q = Queue::default();
            q.reset(classes);
            (0..n).for_each(|_| q.grow());
            let mut model: Vec<Option<(u32, u32)>> = vec![None; n];
            for _ in 0..3000 {
                let t = (rnd() % n as u64) as u32;
                match rnd() % 5 {
                    0 => {
                        q.remove(t);
                        model[t as usize] = None;
                    }
                    1 => {
                        let Some(c) = q.top_class() else {
                            assert!(model.iter().all(Option::is_none));
                            continue;
                        };
                        let mut want: Vec<(u32, u32, u32)> = model.iter().enumerate().filter_map(|(t, m)| m.map(|(c, e)| (c, e, t as u32))).collect();
                        want.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
                        assert_eq!(c, want[0].0);
                        assert_eq!(q.first(c), want[0].2);
                        let mut got = Vec::new();
                        q.take_class(c, &mut got);
                        let want: Vec<u32> = want.iter().filter(|w| w.0 == c).map(|w| w.2).collect();
                        assert_eq!(got, want);
                        got.iter().for_each(|&t| model[t as usize] = None);
                    }
                    _ => {
                        let (c, e) = ((rnd() % classes as u64) as u32, (rnd() % 4) as u32);
                        q.set(t, c, e);
                        model[t as usize] = Some((c, e));
                    }
                }
                let mut all: Vec<u32> = q.all().collect();
                all.sort();
                let want: Vec<u32> = (0..n as u32).filter(|&t| model[t as usize].is_some()).collect();
                assert_eq!(all, want);
            }
        }
    }
}
