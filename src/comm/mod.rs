//! Communication between ranks behind one small trait. `single` is the one-process backend; `mpi` (cargo feature
//! `mpi`) is the only code in terrafarm that names MPI. Nothing here knows about tiles or heights.

pub mod single;
#[cfg(feature = "mpi")]
pub mod mpi;

#[derive(Debug, thiserror::Error)]
pub enum CommError {
    #[error("rank {rank}: {msg}")]
    Failed { rank: usize, msg: String },
}

/// The collectives the pipeline needs, nothing more.
pub trait Comm {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// One all-to-all with per-destination counts (MPI_Alltoallv). `send` holds the blocks for ranks 0..size
    /// back to back; returns what each rank sent us, back to back, and the per-source counts.
    fn all_to_all_v(&self, send: &[f32], send_counts: &[usize]) -> Result<(Vec<f32>, Vec<usize>), CommError>;
    /// Gathers one byte string per rank on rank 0 (`Some` there, `None` elsewhere).
    fn gather_bytes(&self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError>;
    /// Rank 0's `bytes` on every rank (`None` on the others).
    fn broadcast_bytes(&self, bytes: Option<Vec<u8>>) -> Result<Vec<u8>, CommError>;
    /// True on every rank when `ok` is true on every rank.
    fn all_ok(&self, ok: bool) -> Result<bool, CommError>;
    /// Cores this rank may use: the node's cores divided among the ranks that share the node.
    fn cores_per_rank(&self) -> usize;
}

/// The world size a launcher (mpirun/mpiexec of Open MPI, MPICH, Intel MPI, or Slurm) announced, if any.
pub fn launcher_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS_WORLD", "SLURM_NTASKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok())
}

/// The communicator for this process: MPI when built with it, else single-process. A build without MPI refuses
/// to run as one of several launched copies (each would think it is rank 0 and write every tile).
pub fn world() -> Result<Box<dyn Comm>, CommError> {
    #[cfg(feature = "mpi")]
    {
        if let Some(c) = mpi::MpiComm::init()? {
            return Ok(Box::new(c));
        }
    }
    if let Some(n) = launcher_size().filter(|&n| n > 1) {
        #[cfg(not(feature = "mpi"))]
        return Err(CommError::Failed {
            rank: 0,
            msg: format!("launched as one of {n} processes, but this terrafarm was built without MPI: rebuild with `cargo build --release --features mpi`"),
        });
        #[cfg(feature = "mpi")]
        let _ = n;
    }
    Ok(Box::new(single::Single))
}
