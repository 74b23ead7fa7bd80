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

fn displs(counts: &[Count]) -> Vec<Count> {
    counts
        .iter()
        .scan(0, |acc, &c| {
            let s = *acc;
            *acc += c;
            Some(s)
        })
        .collect()
}

fn count(rank: usize, n: usize) -> Result<Count, CommError> {
    Count::try_from(n).map_err(|_| CommError::Failed { rank, msg: format!("{n} values exceed one MPI message (2^31)") })
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
        let sc: Vec<Count> = send_counts.iter().map(|&c| count(self.rank, c)).collect::<Result<_, _>>()?;
        let mut rc: Vec<Count> = vec![0; self.size];
        // Counts first, then the one variable-count exchange.
        self.world.all_to_all_into(&sc[..], &mut rc[..]);
        let total: usize = rc.iter().map(|&c| c as usize).sum();
        let mut recv = vec![0f32; total];
        let (sd, rd) = (displs(&sc), displs(&rc));
        {
            let sp = Partition::new(send, &sc[..], &sd[..]);
            let mut rp = PartitionMut::new(&mut recv[..], &rc[..], &rd[..]);
            self.world.all_to_all_varcount_into(&sp, &mut rp);
        }
        Ok((recv, rc.iter().map(|&c| c as usize).collect()))
    }

    fn gather_bytes(&self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        let root = self.world.process_at_rank(0);
        let n = count(self.rank, bytes.len())?;
        if self.rank == 0 {
            let mut counts: Vec<Count> = vec![0; self.size];
            root.gather_into_root(&n, &mut counts[..]);
            let d = displs(&counts);
            let mut all = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
            {
                let mut p = PartitionMut::new(&mut all[..], &counts[..], &d[..]);
                root.gather_varcount_into_root(bytes, &mut p);
            }
            Ok(Some(counts.iter().zip(&d).map(|(&c, &s)| all[s as usize..(s + c) as usize].to_vec()).collect()))
        } else {
            root.gather_into(&n);
            root.gather_varcount_into(bytes);
            Ok(None)
        }
    }

    fn broadcast_bytes(&self, bytes: Option<Vec<u8>>) -> Result<Vec<u8>, CommError> {
        let root = self.world.process_at_rank(0);
        let mut n: u64 = bytes.as_ref().map_or(0, |b| b.len() as u64);
        root.broadcast_into(&mut n);
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
}
