//! The local folder (or `file://`) store: every object is written atomically (temporary name in the same folder,
//! flushed, then renamed), so a crash or preemption never leaves a truncated file under a final name.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Store, StoreError};

pub struct LocalStore {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const TMP_SUFFIX: &str = ".tfpart";

impl LocalStore {
    pub fn new(root: &Path) -> Result<LocalStore, StoreError> {
        if root.exists() && !root.is_dir() {
            return Err(StoreError::Io {
                path: root.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "output path exists and is not a directory"),
            });
        }
        std::fs::create_dir_all(root).map_err(|e| StoreError::Io { path: root.to_path_buf(), source: e })?;
        Ok(LocalStore { root: root.to_path_buf() })
    }

    fn path(&self, key: &str) -> PathBuf {
        key.split('/').fold(self.root.clone(), |p, part| p.join(part))
    }
}

impl Store for LocalStore {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(key);
        let err = |p: &Path| {
            let p = p.to_path_buf();
            move |e| StoreError::Io { path: p, source: e }
        };
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let tmp = dir.join(format!(".{name}.{}.{}{TMP_SUFFIX}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            StoreError::Io { path: path.clone(), source: e }
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path(key);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io { path, source: e }),
        }
    }

    fn remove_partials(&self, prefix: &str) -> Result<usize, StoreError> {
        fn walk(dir: &Path, n: &mut usize) -> std::io::Result<()> {
            let rd = match std::fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in rd {
                let entry = entry?;
                let p = entry.path();
                if entry.file_type()?.is_dir() {
                    walk(&p, n)?;
                } else if p.file_name().and_then(|s| s.to_str()).is_some_and(|s| s.starts_with('.') && s.ends_with(TMP_SUFFIX)) {
                    std::fs::remove_file(&p)?;
                    *n += 1;
                }
            }
            Ok(())
        }
        let dir = self.path(prefix);
        let mut n = 0;
        walk(&dir, &mut n).map_err(|e| StoreError::Io { path: dir, source: e })?;
        Ok(n)
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_is_atomic_and_leaves_no_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path()).unwrap();
        s.put("scene/tiles/0_0.glb", b"abc").unwrap();
        assert_eq!(s.get("scene/tiles/0_0.glb").unwrap().unwrap(), b"abc");
        assert_eq!(s.size("scene/tiles/0_0.glb").unwrap(), Some(3));
        assert_eq!(s.size("scene/nope").unwrap(), None);
        let names: Vec<_> = std::fs::read_dir(d.path().join("scene/tiles")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["0_0.glb"]);
    }

    #[test]
    fn partials_are_swept() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path()).unwrap();
        std::fs::create_dir_all(d.path().join("sc/tiles")).unwrap();
        std::fs::write(d.path().join("sc/tiles/.0_0.glb.1.2.tfpart"), b"half").unwrap();
        std::fs::write(d.path().join("sc/tiles/1_0.glb"), b"whole").unwrap();
        assert_eq!(s.remove_partials("sc").unwrap(), 1);
        assert!(d.path().join("sc/tiles/1_0.glb").exists());
    }

    #[test]
    fn file_as_root_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        assert!(LocalStore::new(&f).is_err());
    }
}
