//! Output storage, and remote input bytes: the only code that writes output files or talks to blob storage.
//! A local folder (default, `file://`) or Azure Blob Storage (`az://`, `https://…blob.core.windows.net/…`), both
//! behind one small synchronous trait. Whatever the backend, an object becomes visible under its final name only
//! once complete, so readers and resumed runs never see half a tile.

mod blob;
mod local;

use std::path::PathBuf;

pub use blob::{open_input, BlobOptions, BlobStore};
pub use local::LocalStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Config(String),
    /// A blob request failed after object_store's retries; the message is already redacted.
    #[error("{0}")]
    Remote(String),
}

/// Where a scene's files go. Keys are '/'-separated paths relative to the output root.
pub trait Store: Send + Sync {
    /// Writes `bytes` under `key`, visible only once complete.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Size in bytes of `key`, or `None` when absent.
    fn size(&self, key: &str) -> Result<Option<u64>, StoreError>;
    /// Removes `key` if present.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Deletes temporaries a crashed run left under `prefix`; returns how many.
    fn remove_partials(&self, prefix: &str) -> Result<usize, StoreError>;
    /// Human description of the root, with nothing secret in it.
    fn describe(&self) -> String;
}

/// True when `s` names blob storage rather than a local path.
pub fn is_remote(s: &str) -> bool {
    ["az://", "azure://", "https://", "http://"].iter().any(|p| s.starts_with(p))
}

/// Opens the store named by `--out`: a local folder path, a `file://` URL, or a blob URL (see [`BlobStore`]).
pub fn open(out: &str, blob: &BlobOptions) -> Result<Box<dyn Store>, StoreError> {
    if let Some(p) = out.strip_prefix("file://") {
        return Ok(Box::new(LocalStore::new(std::path::Path::new(p))?));
    }
    if is_remote(out) {
        return Ok(Box::new(BlobStore::open(out, blob)?));
    }
    Ok(Box::new(LocalStore::new(std::path::Path::new(out))?))
}
