//! Single-process backend: every collective is a local copy. Used by default builds and by MPI builds run without
//! a launcher.

use super::{Comm, CommError};

pub struct Single;

impl Comm for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_to_all_v(&self, send: &[f32], send_counts: &[usize]) -> Result<(Vec<f32>, Vec<usize>), CommError> {
        if send_counts.len() != 1 || send_counts[0] != send.len() {
            return Err(CommError::Failed { rank: 0, msg: format!("all_to_all_v: counts {send_counts:?} do not match {} values", send.len()) });
        }
        Ok((send.to_vec(), send_counts.to_vec()))
    }
    fn gather_bytes(&self, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        Ok(Some(vec![bytes.to_vec()]))
    }
    fn broadcast_bytes(&self, bytes: Option<Vec<u8>>) -> Result<Vec<u8>, CommError> {
        bytes.ok_or_else(|| CommError::Failed { rank: 0, msg: "broadcast: rank 0 has nothing to send".into() })
    }
    fn all_ok(&self, ok: bool) -> Result<bool, CommError> {
        Ok(ok)
    }
    fn cores_per_rank(&self) -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }
}
