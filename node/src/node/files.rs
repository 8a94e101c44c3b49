//! Small durable files: the data-directory lock, the last-signed-vote record and the
//! marker of a data directory restored from a backup.
//! The record's bytes are the consensus crate's canonical encoding; a record that does
//! not decode stops the node rather than letting it guess what it signed.

use anyhow::{bail, Context};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An exclusive lock on a data directory, held for the life of the node. A second
/// node on the same directory is refused with a clear message.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(data: &Path) -> anyhow::Result<DataDirLock> {
        create_dir_durably(data)
            .with_context(|| format!("creating data directory {}", data.display()))?;
        let path = data.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        sync_directory(data)?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                bail!(
                    "data directory {} is in use by another seisan node; stop it first",
                    data.display()
                )
            }
            Err(std::fs::TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
}

/// Creates `directory` and any missing parents so that they survive a power cut: a new
/// directory's entry is durable only once the directory holding it is fsynced, and
/// everything the node later makes durable inside it (its store, its vote record)
/// would otherwise vanish with it.
pub fn create_dir_durably(directory: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    let mut cursor = Some(directory);
    while let Some(path) = cursor {
        if path.as_os_str().is_empty() || path.exists() {
            break;
        }
        missing.push(path);
        cursor = path.parent();
    }
    std::fs::create_dir_all(directory)?;
    for created in missing {
        sync_directory(created)?;
        if let Some(parent) = created
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            sync_directory(parent)?;
        }
    }
    Ok(())
}

/// fsync of a directory: the entries created, renamed or removed in it are durable.
fn sync_directory(directory: &Path) -> anyhow::Result<()> {
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .with_context(|| format!("fsync {}", directory.display()))
}

/// A record that must be on disk before the node acts on it (the last signed vote):
/// written to a temporary file, fsynced, renamed over the old one, and the directory
/// fsynced, so after a crash the file holds either the old or the new record.
#[derive(Debug, Clone)]
pub struct DurableRecord {
    path: PathBuf,
}

impl DurableRecord {
    pub fn new(path: PathBuf) -> DurableRecord {
        DurableRecord { path }
    }

    /// The stored bytes, or `None` if nothing was ever stored.
    pub fn load(&self) -> anyhow::Result<Option<Vec<u8>>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    /// Replaces the stored bytes durably.
    pub fn store(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let temporary = self.path.with_extension("tmp");
        let mut file = File::create(&temporary)
            .with_context(|| format!("creating {}", temporary.display()))?;
        file.write_all(bytes)?;
        file.sync_all()
            .with_context(|| format!("fsync {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("renaming to {}", self.path.display()))?;
        if let Some(parent) = self.path.parent() {
            File::open(parent)?
                .sync_all()
                .with_context(|| format!("fsync {}", parent.display()))?;
        }
        Ok(())
    }
}

/// The marker `seisan restore` leaves in a data directory it rebuilt (R14 of the
/// consensus crate): while it is present, the node's engines start fenced and sign
/// nothing until they have learned from their peers what this validator signed after
/// the backup was taken. Removed, durably, once a fence lifted and its record is durable.
#[derive(Debug, Clone)]
pub struct RestoredMarker {
    path: PathBuf,
}

/// The marker's file name in a data directory.
pub const RESTORED_MARKER: &str = "restored";

impl RestoredMarker {
    pub fn new(data: &Path) -> RestoredMarker {
        RestoredMarker {
            path: data.join(RESTORED_MARKER),
        }
    }

    pub fn is_present(&self) -> bool {
        self.path.exists()
    }

    /// Writes the marker with a line saying where the data came from, durably.
    pub fn write(&self, note: &str) -> anyhow::Result<()> {
        DurableRecord::new(self.path.clone()).store(note.as_bytes())
    }

    /// Removes the marker and fsyncs the directory, so a crash after this never
    /// brings the fence back and a crash before it always does.
    pub fn remove(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(error).with_context(|| format!("removing {}", self.path.display()))
            }
        }
        if let Some(parent) = self.path.parent() {
            File::open(parent)?
                .sync_all()
                .with_context(|| format!("fsync {}", parent.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let error = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("in use by another seisan node"),
            "{error}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn durable_record_replaces_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let record = DurableRecord::new(dir.path().join("last-vote"));
        assert_eq!(record.load().unwrap(), None);
        record.store(b"first").unwrap();
        record.store(b"second").unwrap();
        assert_eq!(record.load().unwrap(), Some(b"second".to_vec()));
        assert!(!dir.path().join("last-vote.tmp").exists());
    }
}
