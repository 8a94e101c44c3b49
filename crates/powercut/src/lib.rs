//! A FUSE passthrough filesystem that loses power: the layer the power-cut test runs a
//! node on.
//!
//! Every path under the mount is a path under a backing directory. What a real disk
//! keeps across a power cut is what was fsynced; this layer makes that exact and
//! immediate, where a real machine keeps an unpredictable part of the page cache:
//!
//! - **File data** (writes and size changes, i.e. `write`, `truncate`, `ftruncate`) is
//!   held in memory, per inode, and reads and `stat` see it at once. It reaches the
//!   backing file only on an `fsync` or `fdatasync` of that file (any descriptor of it:
//!   the buffer belongs to the inode, as the page cache does). `sync_file_range` is not
//!   a FUSE operation, so it makes nothing durable here, as on a real power cut it does
//!   not save the disk's volatile cache or the file's size.
//! - **Directory entries** (create, mkdir, rename, unlink, rmdir) are applied to the
//!   backing directory at once (so reads see them), and each is logged with how to take
//!   it back. An `fsync` of a directory makes the changes in it durable (a rename needs
//!   either of its two directories); a removed or replaced entry waits in a hidden
//!   trash in the backing directory until then. This is the strict POSIX reading, as
//!   strict as the one for data: a new file whose directory was never fsynced is gone
//!   after a cut, whatever was fsynced into it; a rename without the directory's fsync
//!   is taken back; a file renamed over another with the directory fsynced but its own
//!   data not survives empty (the "rename without fsync" loss the write, fsync, rename,
//!   fsync-the-directory pattern guards against).
//! - **A power cut** ([`PowerSwitch::cut`], or [`PowerSwitch::arm`] for one on the n-th
//!   change from now) discards every unsynced buffer and takes back every directory
//!   change not made durable, newest first: afterwards the tree is what was fsynced.
//!
//! Files are opened with `FOPEN_DIRECT_IO` and attributes have no cache lifetime, so
//! the kernel keeps no copy of discarded data that a later read could see.

use fuser::{
    consts::FOPEN_DIRECT_IO, FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, FUSE_ROOT_ID,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Attributes and entries are never cached by the kernel: after a cut, sizes change.
const NO_CACHE: Duration = Duration::ZERO;

/// Why the filesystem could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The backing directory or the mount point is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    /// The kernel refused the mount (no /dev/fuse, no permission, ...).
    #[error(
        "mounting the power-cut FUSE filesystem on {mountpoint} failed: {source} \
         (needs /dev/fuse and root, or fusermount3 from Debian's fuse3 package)"
    )]
    Mount {
        mountpoint: PathBuf,
        source: io::Error,
    },
}

/// Unsynced data of one inode, as an overlay on its backing file (so a large file with
/// a small append costs the append, not a copy of the file).
#[derive(Debug)]
struct Dirty {
    /// The file's current size.
    size: u64,
    /// The backing file's bytes at or beyond this offset are gone (a truncation).
    kept: u64,
    /// Writes since the last sync, oldest first, each clipped to `size` at truncation.
    writes: Vec<(u64, Vec<u8>)>,
}

impl Dirty {
    /// `length` bytes of the current content at `offset` (shorter at the end).
    fn read(&self, backing: &Path, offset: u64, length: u64) -> Result<Vec<u8>, i32> {
        let end = (offset + length).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buffer = vec![0; (end - offset) as usize];
        let from_backing = end.min(self.kept);
        if offset < from_backing {
            read_at(
                backing,
                offset,
                &mut buffer[..(from_backing - offset) as usize],
            )?;
        }
        for (start, data) in &self.writes {
            let write_end = start + data.len() as u64;
            let (low, high) = (offset.max(*start), end.min(write_end));
            if low < high {
                buffer[(low - offset) as usize..(high - offset) as usize]
                    .copy_from_slice(&data[(low - start) as usize..(high - start) as usize]);
            }
        }
        Ok(buffer)
    }

    fn truncate(&mut self, size: u64) {
        self.size = size;
        self.kept = self.kept.min(size);
        for (start, data) in &mut self.writes {
            data.truncate(size.saturating_sub(*start) as usize);
        }
        self.writes.retain(|(_, data)| !data.is_empty());
    }
}

/// Fills `buffer` from `path` at `offset`; zeros past the file's end.
fn read_at(path: &Path, offset: u64, buffer: &mut [u8]) -> Result<(), i32> {
    let file = File::open(path).map_err(errno)?;
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(errno(error)),
        }
    }
    buffer[filled..].fill(0);
    Ok(())
}

/// The backing directory's hidden trash (never listed or looked up through the mount):
/// removed and replaced entries wait there until their removal is durable.
const TRASH: &str = ".powercut-trash";

/// A directory change not yet made durable by an fsync of its directory.
#[derive(Debug)]
struct Change {
    /// Directories (relative) an fsync of any of which makes the change durable.
    directories: Vec<PathBuf>,
    undo: Undo,
}

/// How a cut takes back a directory change that was not made durable.
#[derive(Debug)]
enum Undo {
    /// A created file or directory: removed (with anything in it).
    Remove(PathBuf),
    /// A removed or replaced entry, kept in the trash: put back.
    Restore { trash: PathBuf, path: PathBuf },
    /// A rename: moved back.
    MoveBack { from: PathBuf, to: PathBuf },
}

/// What a cut or a sync did, for tests and the binary's log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutReport {
    /// Files that had unsynced data.
    pub files: usize,
    /// Unsynced bytes written (sum of the written ranges) that were discarded.
    pub bytes: u64,
    /// Directory changes (creates, renames, removals) taken back.
    pub entries: usize,
}

#[derive(Debug)]
struct Inner {
    backing: PathBuf,
    /// Inode number -> path relative to the backing directory ("" is the root).
    paths: HashMap<u64, PathBuf>,
    inodes: HashMap<PathBuf, u64>,
    next_inode: u64,
    dirty: HashMap<u64, Dirty>,
    /// Syncs that wrote data (fsync or fdatasync of a file with buffered data).
    syncs: u64,
    /// Changes (writes, truncations, syncs, directory changes) left before an armed
    /// power cut.
    armed: Option<u64>,
    /// The power is off: every operation fails with EIO until [`PowerSwitch::power_on`].
    off: bool,
    /// What the last armed cut discarded.
    last_cut: CutReport,
    /// Directory changes not yet durable, oldest first.
    changes: Vec<Change>,
    /// Names handed out in the trash.
    trashed: u64,
}

impl Inner {
    /// Lets an operation through unless the power is off; a change counts down an
    /// armed cut, and the one that reaches zero cuts the power instead of happening.
    fn gate(&mut self, change: bool) -> Result<(), i32> {
        if self.off {
            return Err(libc::EIO);
        }
        if !change {
            return Ok(());
        }
        if let Some(left) = self.armed {
            if left <= 1 {
                self.armed = None;
                self.last_cut = self.cut();
                self.off = true;
                return Err(libc::EIO);
            }
            self.armed = Some(left - 1);
        }
        Ok(())
    }

    fn full(&self, ino: u64) -> Result<PathBuf, i32> {
        self.paths
            .get(&ino)
            .map(|relative| self.backing.join(relative))
            .ok_or(libc::ENOENT)
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<PathBuf, i32> {
        self.paths
            .get(&parent)
            .map(|relative| relative.join(name))
            .ok_or(libc::ENOENT)
    }

    fn inode_of(&mut self, relative: PathBuf) -> u64 {
        if let Some(ino) = self.inodes.get(&relative) {
            return *ino;
        }
        let ino = self.next_inode;
        self.next_inode += 1;
        self.paths.insert(ino, relative.clone());
        self.inodes.insert(relative, ino);
        ino
    }

    fn forget_path(&mut self, relative: &Path) {
        if let Some(ino) = self.inodes.remove(relative) {
            self.paths.remove(&ino);
            self.dirty.remove(&ino);
        }
    }

    fn attr(&mut self, ino: u64) -> Result<FileAttr, i32> {
        let path = self.full(ino)?;
        let metadata = std::fs::symlink_metadata(&path).map_err(errno)?;
        let size = match self.dirty.get(&ino) {
            Some(dirty) => dirty.size,
            None => metadata.len(),
        };
        let kind = if metadata.is_dir() {
            FileType::Directory
        } else if metadata.file_type().is_symlink() {
            FileType::Symlink
        } else {
            FileType::RegularFile
        };
        let time = |seconds: i64| {
            UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or_default())
        };
        Ok(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: time(metadata.atime()),
            mtime: time(metadata.mtime()),
            ctime: time(metadata.ctime()),
            crtime: time(metadata.ctime()),
            kind,
            perm: (metadata.mode() & 0o7777) as u16,
            nlink: metadata.nlink() as u32,
            uid: metadata.uid(),
            gid: metadata.gid(),
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// The inode's dirty overlay, started over the backing file on first use.
    fn dirty(&mut self, ino: u64) -> Result<&mut Dirty, i32> {
        if !self.dirty.contains_key(&ino) {
            let size = std::fs::metadata(self.full(ino)?).map_err(errno)?.len();
            self.dirty.insert(
                ino,
                Dirty {
                    size,
                    kept: size,
                    writes: Vec::new(),
                },
            );
        }
        Ok(self.dirty.get_mut(&ino).expect("inserted above"))
    }

    /// Applies the inode's buffered data to the backing file and fsyncs it there.
    fn sync(&mut self, ino: u64) -> Result<(), i32> {
        let Some(dirty) = self.dirty.remove(&ino) else {
            return Ok(());
        };
        let path = self.full(ino)?;
        let file = OpenOptions::new().write(true).open(&path).map_err(errno)?;
        file.set_len(dirty.kept).map_err(errno)?;
        for (start, data) in &dirty.writes {
            file.write_all_at(data, *start).map_err(errno)?;
        }
        file.set_len(dirty.size).map_err(errno)?;
        file.sync_all().map_err(errno)?;
        self.syncs += 1;
        Ok(())
    }

    /// Moves the entry at `relative` into the trash (where a cut can restore it from);
    /// returns its trash path.
    fn move_to_trash(&mut self, relative: &Path) -> Result<PathBuf, i32> {
        self.trashed += 1;
        let trash = PathBuf::from(TRASH).join(self.trashed.to_string());
        std::fs::rename(self.backing.join(relative), self.backing.join(&trash)).map_err(errno)?;
        self.forget_path(relative);
        Ok(trash)
    }

    /// Removes the entry at `relative` (an unlink or rmdir) so that a cut before its
    /// directory's fsync puts it back: into the trash, with the undo recorded.
    fn remove_undoably(&mut self, relative: PathBuf) -> Result<(), i32> {
        let trash = self.move_to_trash(&relative)?;
        self.changes.push(Change {
            directories: vec![parent_of(&relative)],
            undo: Undo::Restore {
                trash,
                path: relative,
            },
        });
        Ok(())
    }

    fn remove_backing(&self, relative: &Path) {
        let path = self.backing.join(relative);
        let _ = match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(_) => Ok(()),
        };
    }

    /// An fsync of `directory`: its pending entry changes become durable.
    fn sync_directory(&mut self, directory: &Path) {
        let (durable, pending): (Vec<Change>, Vec<Change>) = std::mem::take(&mut self.changes)
            .into_iter()
            .partition(|change| change.directories.iter().any(|dir| dir == directory));
        self.changes = pending;
        for change in durable {
            if let Undo::Restore { trash, .. } = change.undo {
                self.remove_backing(&trash);
            }
        }
    }

    fn cut(&mut self) -> CutReport {
        let report = CutReport {
            files: self.dirty.len(),
            bytes: self
                .dirty
                .values()
                .flat_map(|dirty| dirty.writes.iter().map(|(_, data)| data.len() as u64))
                .sum(),
            entries: self.changes.len(),
        };
        self.dirty.clear();
        // Newest first, so each undo finds the names as its change left them. Best
        // effort: a later change made durable may have moved a name on already.
        for change in std::mem::take(&mut self.changes).into_iter().rev() {
            match change.undo {
                Undo::Remove(path) => self.remove_backing(&path),
                Undo::Restore { trash, path } => {
                    if std::fs::symlink_metadata(self.backing.join(&path)).is_err() {
                        let _ =
                            std::fs::rename(self.backing.join(&trash), self.backing.join(&path));
                    } else {
                        self.remove_backing(&trash);
                    }
                }
                Undo::MoveBack { from, to } => {
                    let source = self.backing.join(&to);
                    let target = self.backing.join(&from);
                    if source.exists() && std::fs::symlink_metadata(&target).is_err() {
                        let _ = std::fs::rename(source, target);
                    }
                }
            }
        }
        // Names moved under the kernel's inode numbers: start the numbering afresh
        // (numbers are never reused, so a stale one is refused, not misread).
        self.paths.retain(|ino, _| *ino == FUSE_ROOT_ID);
        self.inodes.retain(|_, ino| *ino == FUSE_ROOT_ID);
        report
    }
}

/// The directory an entry is in ("" for the root).
fn parent_of(relative: &Path) -> PathBuf {
    relative.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn errno(error: io::Error) -> i32 {
    error.raw_os_error().unwrap_or(libc::EIO)
}

/// The handle that cuts the power of a mounted [`PowerCutFs`].
#[derive(Debug, Clone)]
pub struct PowerSwitch {
    inner: Arc<Mutex<Inner>>,
}

impl PowerSwitch {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("power-cut filesystem lock")
    }

    /// Discards every write not yet fsynced, at once: the power cut.
    pub fn cut(&self) -> CutReport {
        self.lock().cut()
    }

    /// How many fsyncs so far carried data to the backing directory.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Cuts the power just before the `changes`-th change from now (a write, size
    /// change, fsync or directory change, counted over every file): that change and
    /// everything unsynced is lost, and from then on every operation fails with EIO,
    /// as a disk without power would, until [`PowerSwitch::power_on`]. Lands a cut
    /// precisely between a write and its fsync, where a timed cut rarely falls.
    pub fn arm(&self, changes: u64) {
        assert!(changes > 0, "a cut after zero changes is `cut`");
        self.lock().armed = Some(changes);
    }

    /// Whether an armed cut has happened (the power is off); what it discarded.
    pub fn is_off(&self) -> Option<CutReport> {
        let inner = self.lock();
        inner.off.then_some(inner.last_cut)
    }

    /// Disarms, and turns the power back on after an armed cut (nothing unsynced is
    /// left to lose).
    pub fn power_on(&self) {
        let mut inner = self.lock();
        inner.armed = None;
        inner.off = false;
    }
}

/// The filesystem (give it to [`mount`], or to `fuser` yourself).
#[derive(Debug)]
pub struct PowerCutFs {
    inner: Arc<Mutex<Inner>>,
}

impl PowerCutFs {
    /// A filesystem over `backing` and the switch that cuts its power.
    pub fn new(backing: &Path) -> Result<(PowerCutFs, PowerSwitch), io::Error> {
        let trash = backing.join(TRASH);
        if trash.exists() {
            std::fs::remove_dir_all(&trash)?;
        }
        std::fs::create_dir(&trash)?;
        let mut paths = HashMap::new();
        let mut inodes = HashMap::new();
        paths.insert(FUSE_ROOT_ID, PathBuf::new());
        inodes.insert(PathBuf::new(), FUSE_ROOT_ID);
        let inner = Arc::new(Mutex::new(Inner {
            backing: backing.to_path_buf(),
            paths,
            inodes,
            next_inode: FUSE_ROOT_ID + 1,
            dirty: HashMap::new(),
            syncs: 0,
            armed: None,
            off: false,
            last_cut: CutReport::default(),
            changes: Vec::new(),
            trashed: 0,
        }));
        Ok((
            PowerCutFs {
                inner: inner.clone(),
            },
            PowerSwitch { inner },
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("power-cut filesystem lock")
    }

    fn entry(&self, relative: PathBuf, reply: ReplyEntry) {
        let mut inner = self.lock();
        let ino = inner.inode_of(relative);
        match inner.attr(ino) {
            Ok(attr) => reply.entry(&NO_CACHE, &attr, 0),
            Err(code) => reply.error(code),
        }
    }
}

/// A mounted power-cut filesystem; unmounted when dropped.
#[derive(Debug)]
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    /// Cuts this mount's power.
    pub switch: PowerSwitch,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            session.join();
        }
    }
}

/// Mounts a power-cut filesystem over `backing` at `mountpoint` (both existing
/// directories), served from a background thread.
pub fn mount(backing: &Path, mountpoint: &Path) -> Result<Mounted, MountError> {
    for path in [backing, mountpoint] {
        if !path.is_dir() {
            return Err(MountError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
    }
    let (filesystem, switch) = PowerCutFs::new(backing).map_err(|source| MountError::Mount {
        mountpoint: mountpoint.to_path_buf(),
        source,
    })?;
    let options = [MountOption::FSName("seisan-powercut".into())];
    let session = fuser::spawn_mount2(filesystem, mountpoint, &options).map_err(|source| {
        MountError::Mount {
            mountpoint: mountpoint.to_path_buf(),
            source,
        }
    })?;
    Ok(Mounted {
        session: Some(session),
        switch,
        mountpoint: mountpoint.to_path_buf(),
    })
}

impl Filesystem for PowerCutFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        if let Err(code) = self.lock().gate(false) {
            return reply.error(code);
        }
        if parent == FUSE_ROOT_ID && name == TRASH {
            return reply.error(libc::ENOENT);
        }
        let relative = match self.lock().child(parent, name) {
            Ok(relative) => relative,
            Err(code) => return reply.error(code),
        };
        let exists = {
            let inner = self.lock();
            std::fs::symlink_metadata(inner.backing.join(&relative)).is_ok()
        };
        if !exists {
            return reply.error(libc::ENOENT);
        }
        self.entry(relative, reply);
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        if let Err(code) = self.lock().gate(false) {
            return reply.error(code);
        }
        match self.lock().attr(ino) {
            Ok(attr) => reply.attr(&NO_CACHE, &attr),
            Err(code) => reply.error(code),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        if let Err(code) = self.lock().gate(true) {
            return reply.error(code);
        }
        let mut inner = self.lock();
        let result = (|| {
            if let Some(mode) = mode {
                let path = inner.full(ino)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .map_err(errno)?;
            }
            if let Some(size) = size {
                // A size change is data: buffered like a write until the next fsync.
                inner.dirty(ino)?.truncate(size);
            }
            inner.attr(ino)
        })();
        match result {
            Ok(attr) => reply.attr(&NO_CACHE, &attr),
            Err(code) => reply.error(code),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        if let Err(code) = self.lock().gate(true) {
            return reply.error(code);
        }
        let relative = match self.lock().child(parent, name) {
            Ok(relative) => relative,
            Err(code) => return reply.error(code),
        };
        let path = self.lock().backing.join(&relative);
        if let Err(error) = std::fs::create_dir(&path) {
            return reply.error(errno(error));
        }
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777));
        self.lock().changes.push(Change {
            directories: vec![parent_of(&relative)],
            undo: Undo::Remove(relative.clone()),
        });
        self.entry(relative, reply);
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        if let Err(code) = self.lock().gate(true) {
            return reply.error(code);
        }
        let mut inner = self.lock();
        let relative = match inner.child(parent, name) {
            Ok(relative) => relative,
            Err(code) => return reply.error(code),
        };
        match std::fs::symlink_metadata(inner.backing.join(&relative)) {
            Ok(metadata) if metadata.is_dir() => return reply.error(libc::EISDIR),
            Ok(_) => {}
            Err(error) => return reply.error(errno(error)),
        }
        match inner.remove_undoably(relative) {
            Ok(()) => reply.ok(),
            Err(code) => reply.error(code),
        }
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        if let Err(code) = self.lock().gate(true) {
            return reply.error(code);
        }
        let mut inner = self.lock();
        let relative = match inner.child(parent, name) {
            Ok(relative) => relative,
            Err(code) => return reply.error(code),
        };
        match std::fs::read_dir(inner.backing.join(&relative)) {
            Ok(listing) => {
                if listing.count() > 0 {
                    return reply.error(libc::ENOTEMPTY);
                }
            }
            Err(error) => return reply.error(errno(error)),
        }
        match inner.remove_undoably(relative) {
            Ok(()) => reply.ok(),
            Err(code) => reply.error(code),
        }
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        _flags: u32,
        reply: ReplyEmpty,
    ) {
        if let Err(code) = self.lock().gate(true) {
            return reply.error(code);
        }
        let mut inner = self.lock();
        let (from, to) = match (inner.child(parent, name), inner.child(newparent, newname)) {
            (Ok(from), Ok(to)) => (from, to),
            (Err(code), _) | (_, Err(code)) => return reply.error(code),
        };
        if std::fs::symlink_metadata(inner.backing.join(&from)).is_err() {
            return reply.error(libc::ENOENT);
        }
        // The replaced entry goes to the trash (a cut puts it back; its unsynced data
        // is gone); the moved inode keeps its number and its unsynced data, under the
        // new name and its children's.
        if std::fs::symlink_metadata(inner.backing.join(&to)).is_ok() {
            match inner.move_to_trash(&to) {
                Ok(trash) => inner.changes.push(Change {
                    directories: vec![parent_of(&to)],
                    undo: Undo::Restore {
                        trash,
                        path: to.clone(),
                    },
                }),
                Err(code) => return reply.error(code),
            }
        }
        if let Err(error) = std::fs::rename(inner.backing.join(&from), inner.backing.join(&to)) {
            return reply.error(errno(error));
        }
        inner.changes.push(Change {
            directories: vec![parent_of(&from), parent_of(&to)],
            undo: Undo::MoveBack {
                from: from.clone(),
                to: to.clone(),
            },
        });
        let moved: Vec<(PathBuf, u64)> = inner
            .inodes
            .iter()
            .filter(|(path, _)| path.starts_with(&from))
            .map(|(path, ino)| (path.clone(), *ino))
            .collect();
        for (path, ino) in moved {
            // Joining an empty rest would add a trailing slash ("name/"): not a file.
            let rest = path.strip_prefix(&from).expect("filtered by prefix");
            let renamed = if rest.as_os_str().is_empty() {
                to.clone()
            } else {
                to.join(rest)
            };
            inner.inodes.remove(&path);
            inner.inodes.insert(renamed.clone(), ino);
            inner.paths.insert(ino, renamed);
        }
        reply.ok();
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        if let Err(code) = self.lock().gate(false) {
            return reply.error(code);
        }
        match self.lock().full(ino) {
            Ok(_) => reply.opened(0, FOPEN_DIRECT_IO),
            Err(code) => reply.error(code),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        if let Err(code) = self.lock().gate(false) {
            return reply.error(code);
        }
        let inner = self.lock();
        let offset = offset.max(0) as u64;
        let result = inner
            .full(ino)
            .and_then(|path| match inner.dirty.get(&ino) {
                Some(dirty) => dirty.read(&path, offset, u64::from(size)),
                None => {
                    let length = std::fs::metadata(&path).map_err(errno)?.len();
                    let end = (offset + u64::from(size)).min(length);
                    let mut buffer = vec![0; end.saturating_sub(offset) as usize];
                    read_at(&path, offset, &mut buffer)?;
                    Ok(buffer)
                }
            });
        match result {
            Ok(data) => reply.data(&data),
            Err(code) => reply.error(code),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        if let Err(code) = self.lock().gate(true) {
            return reply.error(code);
        }
        let mut inner = self.lock();
        let dirty = match inner.dirty(ino) {
            Ok(dirty) => dirty,
            Err(code) => return reply.error(code),
        };
        let start = offset.max(0) as u64;
        dirty.size = dirty.size.max(start + data.len() as u64);
        dirty.writes.push((start, data.to_vec()));
        reply.written(data.len() as u32);
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _owner: u64, reply: ReplyEmpty) {
        // close() is not a sync: the data stays buffered.
        reply.ok();
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        if let Err(code) = self.lock().gate(true) {
            return reply.error(code);
        }
        match self.lock().sync(ino) {
            Ok(()) => reply.ok(),
            Err(code) => reply.error(code),
        }
    }

    fn opendir(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        if let Err(code) = self.lock().gate(false) {
            return reply.error(code);
        }
        match self.lock().full(ino) {
            Ok(_) => reply.opened(0, 0),
            Err(code) => reply.error(code),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        if let Err(code) = self.lock().gate(false) {
            return reply.error(code);
        }
        let mut inner = self.lock();
        let (path, relative) = match (inner.full(ino), inner.paths.get(&ino).cloned()) {
            (Ok(path), Some(relative)) => (path, relative),
            _ => return reply.error(libc::ENOENT),
        };
        let listing = match std::fs::read_dir(&path) {
            Ok(listing) => listing,
            Err(error) => return reply.error(errno(error)),
        };
        let mut entries = vec![
            (ino, FileType::Directory, OsStr::new(".").to_os_string()),
            (ino, FileType::Directory, OsStr::new("..").to_os_string()),
        ];
        for entry in listing.flatten() {
            if relative.as_os_str().is_empty() && entry.file_name() == TRASH {
                continue;
            }
            let kind = match entry.file_type() {
                Ok(kind) if kind.is_dir() => FileType::Directory,
                Ok(kind) if kind.is_symlink() => FileType::Symlink,
                _ => FileType::RegularFile,
            };
            let child = inner.inode_of(relative.join(entry.file_name()));
            entries.push((child, kind, entry.file_name()));
        }
        for (index, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(child, index as i64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _data: bool, reply: ReplyEmpty) {
        let mut inner = self.lock();
        if let Err(code) = inner.gate(true) {
            return reply.error(code);
        }
        match inner.paths.get(&ino).cloned() {
            Some(directory) => {
                inner.sync_directory(&directory);
                reply.ok();
            }
            None => reply.error(libc::ENOENT),
        }
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        reply.statfs(1 << 24, 1 << 23, 1 << 23, 1 << 20, 1 << 19, 4096, 255, 4096);
    }

    fn access(&mut self, _req: &Request<'_>, ino: u64, _mask: i32, reply: ReplyEmpty) {
        if let Err(code) = self.lock().gate(false) {
            return reply.error(code);
        }
        match self.lock().full(ino) {
            Ok(_) => reply.ok(),
            Err(code) => reply.error(code),
        }
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        if let Err(code) = self.lock().gate(true) {
            return reply.error(code);
        }
        let mut inner = self.lock();
        let relative = match inner.child(parent, name) {
            Ok(relative) => relative,
            Err(code) => return reply.error(code),
        };
        let existed = std::fs::symlink_metadata(inner.backing.join(&relative)).is_ok();
        let mut options = OpenOptions::new();
        options.write(true).create(true).mode(mode & 0o7777);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        }
        if let Err(error) = options.open(inner.backing.join(&relative)) {
            return reply.error(errno(error));
        }
        if !existed {
            inner.changes.push(Change {
                directories: vec![parent_of(&relative)],
                undo: Undo::Remove(relative.clone()),
            });
        }
        let ino = inner.inode_of(relative);
        if flags & libc::O_TRUNC != 0 {
            if let Ok(dirty) = inner.dirty(ino) {
                dirty.truncate(0);
            }
        }
        match inner.attr(ino) {
            Ok(attr) => reply.created(&NO_CACHE, &attr, 0, 0, FOPEN_DIRECT_IO),
            Err(code) => reply.error(code),
        }
    }
}

#[cfg(test)]
mod tests;
