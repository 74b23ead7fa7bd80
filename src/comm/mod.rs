//! Communication between ranks behind one small trait, and the job's failure policy. `single` is the one-process
//! backend; `mpi` (cargo feature `mpi`) is the only code in terrafarm that names MPI. Nothing here knows about
//! tiles or heights.
//!
//! The failure policy, in one place: a collective cannot be abandoned half-way, so every fallible step before a
//! collective goes through [`agree`] (all ranks learn whether any rank failed, and all fail together), the
//! backends check everything they can check locally (message sizes) and agree on it before the data moves, and a
//! failure that can no longer be agreed on (a collective that itself failed, a panic) ends the whole job through
//! [`Comm::abort`] (MPI_Abort) with a message naming the rank, so `mpirun` exits instead of hanging.

#[cfg(feature = "mpi")]
pub mod mpi;
pub mod single;

#[derive(Debug, thiserror::Error)]
pub enum CommError {
    #[error("rank {rank}: {msg}")]
    Failed { rank: usize, msg: String },
    /// This rank was fine, but another rank failed the step all ranks agreed on (that rank printed why).
    #[error("another rank failed (see its message)")]
    OtherRankFailed,
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
    /// Ends the whole job now (MPI_Abort under MPI), after printing `msg` with this rank's number: for failures
    /// that the other ranks can no longer agree on. Never returns.
    fn abort(&self, msg: &str) -> ! {
        eprintln!("terrafarm: rank {}: fatal: {}", self.rank(), crate::redact::redact(msg));
        std::process::exit(1)
    }
}

/// Collective: every rank passes its own outcome of the same step; returns it unchanged when every rank succeeded,
/// and an error on every rank when any failed, so no rank enters the next collective alone. A failure of the
/// agreement itself can no longer be agreed on: it aborts the job.
pub fn agree<T, E: From<CommError>>(comm: &dyn Comm, res: Result<T, E>) -> Result<T, E> {
    let all = match comm.all_ok(res.is_ok()) {
        Ok(all) => all,
        Err(e) => comm.abort(&format!("agreement failed: {e}")),
    };
    match res {
        Err(e) => Err(e),
        Ok(_) if !all => Err(E::from(CommError::OtherRankFailed)),
        Ok(v) => Ok(v),
    }
}

/// The outcome of a collective whose inputs were agreed on: an error here means the ranks may be out of step,
/// which only ending the job resolves (single process: the error is returned as it is).
pub fn or_abort<T>(comm: &dyn Comm, res: Result<T, CommError>, what: &str) -> Result<T, CommError> {
    match res {
        Err(CommError::OtherRankFailed) => Err(CommError::OtherRankFailed),
        Err(e) if comm.size() > 1 => comm.abort(&format!("{what}: {e}")),
        r => r,
    }
}

/// The world size a launcher started this process as part of, if any: read only from variables a launcher sets
/// for each process it starts (Open MPI's mpirun, MPICH/Intel MPI's Hydra, a PMIx launcher, `srun`). Variables
/// of a whole Slurm allocation (`SLURM_NTASKS`, and `PMI_SIZE` without a `PMI_RANK`) are not per process: a
/// single `terrafarm` inside `sbatch -n 4` is one process, not one of four.
pub fn launcher_size() -> Option<usize> {
    launcher_size_from(|k| std::env::var(k).ok())
}

/// [`launcher_size`] over any variable lookup (tests pass a map).
pub fn launcher_size_from(var: impl Fn(&str) -> Option<String>) -> Option<usize> {
    let num = |k: &str| var(k)?.trim().parse::<usize>().ok();
    // (size variable, the per-process variable that must accompany it)
    let pairs = [
        ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
        ("PMI_SIZE", "PMI_RANK"),
        ("PMIX_SIZE", "PMIX_RANK"),
        ("MPI_LOCALNRANKS_WORLD", "PMI_RANK"),
        // srun sets these for each task of a job step; sbatch's batch script gets neither SLURM_STEP_NUM_TASKS
        // for its own step nor a task id of a step.
        ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID"),
    ];
    pairs.iter().find_map(|(size, rank)| num(rank).and(num(size)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn size(vars: &[(&str, &str)]) -> Option<usize> {
        launcher_size_from(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn allocation_variables_are_not_a_launch() {
        // Inside `sbatch -n 4`: the allocation's variables, no per-process ones (issue #12, item 7).
        assert_eq!(size(&[("SLURM_NTASKS", "4"), ("SLURM_NPROCS", "4"), ("PMI_SIZE", "4"), ("SLURM_JOB_ID", "77")]), None);
        assert_eq!(size(&[("OMPI_COMM_WORLD_SIZE", "4"), ("OMPI_COMM_WORLD_RANK", "2")]), Some(4));
        assert_eq!(size(&[("PMI_SIZE", "3"), ("PMI_RANK", "0")]), Some(3));
        assert_eq!(size(&[("SLURM_NTASKS", "8"), ("SLURM_STEP_NUM_TASKS", "2"), ("SLURM_PROCID", "1")]), Some(2));
    }
}
