//! Ordered byte maps with atomic batches: the storage engines under [`crate::StateDb`].

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One atomic change set: keys to set (`Some`) or delete (`None`).
pub type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// An ordered key-value engine.
///
/// Contract: `apply` is atomic (all of a batch or none of it survives a crash), and a
/// batch is durable only once `flush` has returned. Reads see applied batches at once.
/// Methods panic on I/O errors: the state cannot be trusted after one, and the node
/// restarts from its last flushed height.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Entries with `lower <= key < upper` (or unbounded), ascending, at most `limit`.
    fn range(
        &self,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// The last entry with `lower <= key <= upper`.
    fn last_in(&self, lower: &[u8], upper: &[u8]) -> Option<(Vec<u8>, Vec<u8>)>;
    fn apply(&self, batch: Batch);
    fn flush(&self);
    /// Bytes the engine occupies on disk (0 for memory).
    fn size_on_disk(&self) -> u64;
}

/// sled 0.34.7: one tree, batches applied with `apply_batch` (atomic) and made durable
/// with `flush` followed by an fsync of sled's files ([`SyncedFiles`]).
#[derive(Clone)]
pub struct SledBackend {
    db: sled::Db,
    tree: sled::Tree,
    files: Arc<Mutex<SyncedFiles>>,
}

/// What sled's own `flush` leaves out, made durable after it.
///
/// sled 0.34.7's `flush` ends in `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on
/// Linux (`pagecache/iobuf.rs`): it writes the log's dirty pages but flushes neither the
/// drive's volatile cache nor the file's size and block map, so a power cut can lose a
/// block the node already counted as committed. sled also writes its `conf` file and
/// its blobs (values too large to inline) without any sync, and renames snapshots
/// without syncing the directory. After each flush we therefore `fdatasync` the log
/// file (an fsync on any descriptor of a file flushes that inode), fsync every blob and
/// snapshot not synced before, and fsync the directories that gained entries.
#[derive(Debug)]
struct SyncedFiles {
    directory: PathBuf,
    /// sled's log (`db`), opened once: sled never replaces it.
    log: File,
    /// Blob and snapshot paths already fsynced (files sled never rewrites in place).
    synced: HashSet<PathBuf>,
}

impl SyncedFiles {
    fn open(directory: &Path) -> std::io::Result<SyncedFiles> {
        let log = File::open(directory.join("db"))?;
        // `conf` is written once, at creation, without a sync.
        File::open(directory.join("conf"))?.sync_all()?;
        let mut files = SyncedFiles {
            directory: directory.to_path_buf(),
            log,
            synced: HashSet::new(),
        };
        files.sync()?;
        sync_directory(directory)?;
        // sled creates its directory if missing: make that entry durable too.
        if let Some(parent) = directory
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            sync_directory(parent)?;
        }
        Ok(files)
    }

    /// fsync of new blobs and snapshots and their directories, then fdatasync of the
    /// log: a log entry that points at a blob (a page over sled's blob threshold, such
    /// as a large block's record) must not be durable before the blob is, or a power cut
    /// between the two leaves a durable pointer to a lost file.
    fn sync(&mut self) -> std::io::Result<()> {
        for (directory, is_immutable) in [
            (
                self.directory.join("blobs"),
                (|_: &str| true) as fn(&str) -> bool,
            ),
            (self.directory.clone(), |name: &str| {
                name.starts_with("snap.")
            }),
        ] {
            let mut gained = false;
            let entries = match std::fs::read_dir(&directory) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            for entry in entries {
                let path = entry?.path();
                let name = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or("");
                if !is_immutable(name) || self.synced.contains(&path) {
                    continue;
                }
                match File::open(&path) {
                    Ok(file) => file.sync_all()?,
                    // sled removed it meanwhile (an old snapshot or a rewritten blob).
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                }
                self.synced.insert(path);
                gained = true;
            }
            if gained {
                sync_directory(&directory)?;
            }
        }
        self.log.sync_data()?;
        Ok(())
    }
}

fn sync_directory(directory: &Path) -> std::io::Result<()> {
    File::open(directory)?.sync_all()
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledBackend")
    }
}

/// How long [`open_sled`] waits for a just-closed database's file lock.
pub const SLED_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens a sled database, waiting up to [`SLED_LOCK_PATIENCE`] for its file lock: sled
/// 0.34 releases the lock only when the last of its background I/O tasks lets go of its
/// file, a moment after the `Db` is dropped, so a store reopened at once in the same
/// process (a restart, `seisan restore` checking what it wrote) found it still locked
/// under load. A lock held by another live process is still refused, after the wait.
/// (The node's own `LOCK` file refuses a second node on a data directory at once.)
pub fn open_sled(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + SLED_LOCK_PATIENCE;
    loop {
        match config.open() {
            // sled wraps the lock's WouldBlock in an `Other` error naming it.
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

impl SledBackend {
    pub fn open(path: &Path) -> Result<SledBackend, sled::Error> {
        // No background flusher: every commit flushes itself before it counts, so a
        // timed flush would only repeat that work.
        let db = open_sled(
            &sled::Config::new()
                .path(path)
                .mode(sled::Mode::HighThroughput)
                .flush_every_ms(None),
        )?;
        let tree = db.open_tree(b"seisan-state")?;
        let files = SyncedFiles::open(path).map_err(sled::Error::Io)?;
        Ok(SledBackend {
            db,
            tree,
            files: Arc::new(Mutex::new(files)),
        })
    }
}

fn io_panic<T>(result: sled::Result<T>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("sled {what} failed: {error}; the node must restart"))
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        io_panic(self.tree.get(key), "read").map(|value| value.to_vec())
    }

    fn range(
        &self,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.tree
            .range::<Vec<u8>, _>((lower, upper))
            .take(limit)
            .map(|entry| {
                let (key, value) = io_panic(entry, "range read");
                (key.to_vec(), value.to_vec())
            })
            .collect()
    }

    fn last_in(&self, lower: &[u8], upper: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        self.tree
            .range(lower.to_vec()..=upper.to_vec())
            .next_back()
            .map(|entry| {
                let (key, value) = io_panic(entry, "range read");
                (key.to_vec(), value.to_vec())
            })
    }

    fn apply(&self, batch: Batch) {
        let mut sled_batch = sled::Batch::default();
        for (key, value) in batch {
            match value {
                Some(value) => sled_batch.insert(key, value),
                None => sled_batch.remove(key),
            }
        }
        io_panic(self.tree.apply_batch(sled_batch), "batch write");
    }

    fn flush(&self) {
        io_panic(self.db.flush(), "flush");
        let mut files = self.files.lock().expect("sled file sync lock");
        io_panic(files.sync().map_err(sled::Error::Io), "fsync");
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// An in-memory engine with a durable layer and a volatile layer: `apply` writes the
/// volatile layer, `flush` moves it into the durable one, and [`MemoryBackend::crash`]
/// throws the volatile layer away, as a power cut would.
#[derive(Clone, Default, Debug)]
pub struct MemoryBackend {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Default, Debug)]
struct MemoryInner {
    hold_flushes: bool,
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    volatile: Vec<Batch>,
    view: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// Drops every batch applied since the last flush; returns a backend over what was
    /// durable (as reopening after a crash would).
    pub fn crash(&self) -> MemoryBackend {
        let inner = self.inner.lock().expect("memory backend lock");
        let durable = inner.durable.clone();
        MemoryBackend {
            inner: Arc::new(Mutex::new(MemoryInner {
                hold_flushes: false,
                view: durable.clone(),
                durable,
                volatile: Vec::new(),
            })),
        }
    }

    /// While held, `flush` returns without making anything durable: a crash then
    /// loses every batch since the hold began (a crash between write and flush).
    pub fn hold_flushes(&self, hold: bool) {
        self.inner.lock().expect("memory backend lock").hold_flushes = hold;
    }
}

fn apply_to(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: &Batch) {
    for (key, value) in batch {
        match value {
            Some(value) => map.insert(key.clone(), value.clone()),
            None => map.remove(key),
        };
    }
}

impl Backend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner
            .lock()
            .expect("memory backend lock")
            .view
            .get(key)
            .cloned()
    }

    fn range(
        &self,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let inner = self.inner.lock().expect("memory backend lock");
        inner
            .view
            .range((lower, upper))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn last_in(&self, lower: &[u8], upper: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
        let inner = self.inner.lock().expect("memory backend lock");
        inner
            .view
            .range(lower.to_vec()..=upper.to_vec())
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone()))
    }

    fn apply(&self, batch: Batch) {
        let mut inner = self.inner.lock().expect("memory backend lock");
        apply_to(&mut inner.view, &batch);
        inner.volatile.push(batch);
    }

    fn flush(&self) {
        let mut inner = self.inner.lock().expect("memory backend lock");
        if inner.hold_flushes {
            return;
        }
        let pending = std::mem::take(&mut inner.volatile);
        for batch in &pending {
            apply_to(&mut inner.durable, batch);
        }
    }

    fn size_on_disk(&self) -> u64 {
        0
    }
}
