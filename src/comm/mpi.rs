//! MPI backend (rsmpi): the only module in terrafarm that names MPI. Collectives are called from the main thread
//! only (rayon workers never touch MPI), so MPI is initialised with `Threading::Funneled`.

use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use super::{launcher_size, Comm, CommError};

pub struct MpiComm {
    _universe: Universe,
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    node_ranks: usize,
}

/// Start offsets of each block, or `None` when a block starts past what an MPI count (i32) can address.
pub(crate) fn displs(counts: &[usize]) -> Option<Vec<Count>> {
    let mut at = 0usize;
    let mut out = Vec::with_capacity(counts.len());
    for &c in counts {
        out.push(Count::try_from(at).ok()?);
        at = at.checked_add(c)?;
    }
    Count::try_from(at).ok().map(|_| out)
}

fn counts(counts: &[usize]) -> Option<Vec<Count>> {
    counts.iter().map(|&c| Count::try_from(c).ok()).collect()
}

impl MpiComm {
    /// Initialises MPI. Fails when the launcher started more ranks than MPI reports: a binary built against one MPI
    /// started by another's `mpirun` silently runs N copies of rank 0.
    pub fn init() -> Result<Option<MpiComm>, CommError> {
        let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
            return Ok(None);
        };
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        if let Some(n) = launcher_size() {
            if n != size {
                return Err(CommError::Failed {
                    rank,
                    msg: format!(
                        "the launcher started {n} processes but MPI reports a world of {size}: terrafarm was built against a different MPI than the mpirun that started it (rebuild with the cluster's MPI, or use its mpirun)"
                    ),
                });
            }
        }
        let node_ranks = world.split_shared(rank as i32).size() as usize;
        Ok(Some(MpiComm { _universe: universe, world, rank, size, node_ranks }))
    }
}

impl Comm for MpiComm {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }

    fn all_to_all_v(&self, send: &[f32], send_counts: &[usize]) -> Result<(Vec<f32>, Vec<usize>), CommError> {
        // Every count and offset must fit an MPI count; checked, and agreed on, before anything moves (a rank that
        // bailed out alone would leave the others in the exchange).
        let sizes = || -> Result<(Vec<Count>, Vec<Count>), CommError> {
            if send_counts.len() != self.size || send_counts.iter().sum::<usize>() != send.len() {
                return Err(self.fail(format!("all_to_all_v: counts {send_counts:?} do not match {} values", send.len())));
            }
            let sc = counts(send_counts).ok_or_else(|| self.fail(format!("all_to_all_v: a block of {send_counts:?} values exceeds one MPI message (2^31)")))?;
            let sd = displs(send_counts).ok_or_else(|| self.fail(format!("all_to_all_v: {} values to send exceed MPI's 2^31 offsets", send.len())))?;
            Ok((sc, sd))
        };
        let (sc, sd) = super::agree(self, sizes())?;
        let mut rc: Vec<Count> = vec![0; self.size];
        // Counts first (fixed size), then the one variable-count exchange once every rank can address what it gets.
        self.world.all_to_all_into(&sc[..], &mut rc[..]);
        let rcu: Vec<usize> = rc.iter().map(|&c| c as usize).collect();
        let total: usize = rcu.iter().sum();
        let rd = super::agree(self, displs(&rcu).ok_or_else(|| self.fail(format!("all_to_all_v: {total} values to receive exceed MPI's 2^31 offsets"))))?;
        let mut recv = vec![0f32; total];
        {
            let sp = Partition::new(send, &sc[..], &sd[..]);
            let mut rp = PartitionMut::new(&mut recv[..], &rc[..], &rd[..]);
            self.world.all_to_all_varcount_into(&sp, &mut rp);
        }
        Ok((recv, rcu))
    }

    fn gather_bytes(&self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        let root = self.world.process_at_rank(0);
        let n =
            super::agree(self, Count::try_from(bytes.len()).map_err(|_| self.fail(format!("gather: {} bytes exceed one MPI message (2^31)", bytes.len()))))?;
        if self.rank == 0 {
            let mut counts: Vec<Count> = vec![0; self.size];
            root.gather_into_root(&n, &mut counts[..]);
            let cu: Vec<usize> = counts.iter().map(|&c| c as usize).collect();
            let d = super::agree(
                self,
                displs(&cu).ok_or_else(|| self.fail(format!("gather: {} bytes in all exceed MPI's 2^31 offsets", cu.iter().sum::<usize>()))),
            )?;
            let mut all = vec![0u8; cu.iter().sum()];
            {
                let mut p = PartitionMut::new(&mut all[..], &counts[..], &d[..]);
                root.gather_varcount_into_root(bytes, &mut p);
            }
            Ok(Some(counts.iter().zip(&d).map(|(&c, &s)| all[s as usize..(s + c) as usize].to_vec()).collect()))
        } else {
            root.gather_into(&n);
            super::agree(self, Ok::<(), CommError>(()))?;
            root.gather_varcount_into(bytes);
            Ok(None)
        }
    }

    fn broadcast_bytes(&self, bytes: Option<Vec<u8>>) -> Result<Vec<u8>, CommError> {
        let root = self.world.process_at_rank(0);
        let mut n: u64 = bytes.as_ref().map_or(0, |b| b.len() as u64);
        root.broadcast_into(&mut n);
        if Count::try_from(n).is_err() {
            // Every rank knows n now, so every rank fails here together.
            return Err(self.fail(format!("broadcast: {n} bytes exceed one MPI message (2^31)")));
        }
        let mut buf = bytes.unwrap_or_else(|| vec![0u8; n as usize]);
        root.broadcast_into(&mut buf[..]);
        Ok(buf)
    }

    fn all_ok(&self, ok: bool) -> Result<bool, CommError> {
        let mine = i32::from(ok);
        let mut all = 0i32;
        self.world.all_reduce_into(&mine, &mut all, mpi::collective::SystemOperation::min());
        Ok(all == 1)
    }

    fn cores_per_rank(&self) -> usize {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        (cores / self.node_ranks.max(1)).max(1)
    }

    fn abort(&self, msg: &str) -> ! {
        eprintln!("terrafarm: rank {}: fatal, aborting the job: {}", self.rank, crate::redact::redact(msg));
        self.world.abort(1)
    }
}

impl MpiComm {
    fn fail(&self, msg: String) -> CommError {
        CommError::Failed { rank: self.rank, msg }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_past_i32_are_refused_not_wrapped() {
        assert_eq!(super::displs(&[3, 4, 5]), Some(vec![0, 3, 7]));
        // Five ranks of 500 M values each: every count fits, the offsets do not (issue #12, item 6).
        assert_eq!(super::displs(&[500_000_000; 5]), None);
        assert_eq!(super::displs(&[usize::MAX, 1]), None);
    }
}
