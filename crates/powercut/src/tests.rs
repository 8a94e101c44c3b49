//! The layer against the kernel: a real mount in a temporary directory (needs /dev/fuse;
//! fails, never skips, without it).

use super::*;
use std::io::Write;

fn mounted() -> (tempfile::TempDir, Mounted) {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir(dir.path().join("backing")).unwrap();
    std::fs::create_dir(dir.path().join("mount")).unwrap();
    let mounted = mount(&dir.path().join("backing"), &dir.path().join("mount"))
        .unwrap_or_else(|error| panic!("{error}"));
    (dir, mounted)
}

fn sync_directory(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

fn names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn reads_see_unsynced_writes_and_a_cut_leaves_the_synced_state() {
    let (dir, mounted) = mounted();
    let synced = mounted.mountpoint.join("synced");
    let unsynced = mounted.mountpoint.join("unsynced");

    let mut file = File::create(&synced).unwrap();
    file.write_all(b"first").unwrap();
    file.sync_data().unwrap();
    file.write_all(b" second").unwrap();
    drop(file);
    std::fs::write(&unsynced, b"never synced").unwrap();
    // Both names are durable, only the first file's data is.
    sync_directory(&mounted.mountpoint);

    // Before the cut every read sees every write, through new descriptors too.
    assert_eq!(std::fs::read(&synced).unwrap(), b"first second");
    assert_eq!(std::fs::read(&unsynced).unwrap(), b"never synced");
    assert_eq!(std::fs::metadata(&synced).unwrap().len(), 12);
    // The backing file holds only what was fsynced.
    assert_eq!(
        std::fs::read(dir.path().join("backing/synced")).unwrap(),
        b"first"
    );

    let report = mounted.switch.cut();
    assert_eq!(report.files, 2, "{report:?}");

    assert_eq!(std::fs::read(&synced).unwrap(), b"first");
    assert_eq!(std::fs::metadata(&synced).unwrap().len(), 5);
    // Its name was made durable, its data never: empty.
    assert_eq!(std::fs::read(&unsynced).unwrap(), b"");
    // The trash is not part of the mount.
    assert_eq!(names(&mounted.mountpoint), ["synced", "unsynced"]);
}

#[test]
fn fsync_through_another_descriptor_saves_the_inode_and_truncation_is_data() {
    let (_dir, mounted) = mounted();
    let path = mounted.mountpoint.join("file");
    std::fs::write(&path, b"0123456789").unwrap();
    File::open(&path).unwrap().sync_all().unwrap();
    sync_directory(&mounted.mountpoint);
    assert!(mounted.switch.syncs() >= 1);

    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(4).unwrap();
    file.write_all_at(b"ab", 8).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123\0\0\0\0ab");
    mounted.switch.cut();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");

    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(4).unwrap();
    file.sync_data().unwrap();
    mounted.switch.cut();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123");
}

#[test]
fn a_name_is_durable_only_after_its_directory_is_fsynced() {
    let (_dir, mounted) = mounted();
    let target = mounted.mountpoint.join("record");
    let temporary = mounted.mountpoint.join("record.tmp");
    std::fs::write(&target, b"old").unwrap();
    File::open(&target).unwrap().sync_all().unwrap();
    sync_directory(&mounted.mountpoint);

    // The careful pattern: write, fsync, rename, fsync the directory. Survives.
    let mut file = File::create(&temporary).unwrap();
    file.write_all(b"new").unwrap();
    file.sync_all().unwrap();
    std::fs::rename(&temporary, &target).unwrap();
    sync_directory(&mounted.mountpoint);
    mounted.switch.cut();
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert_eq!(names(&mounted.mountpoint), ["record"]);

    // Without the directory's fsync the rename is taken back: the old record, and
    // the temporary file under its own name again.
    let mut file = File::create(&temporary).unwrap();
    file.write_all(b"newer").unwrap();
    file.sync_all().unwrap();
    std::fs::rename(&temporary, &target).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"newer");
    let report = mounted.switch.cut();
    assert_eq!(
        report.entries, 3,
        "create, trash the old record, rename: {report:?}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert!(!temporary.exists(), "its creation was not durable either");

    // Without the data's fsync the name survives (directory fsynced) but not the data.
    std::fs::write(&temporary, b"newest").unwrap();
    std::fs::rename(&temporary, &target).unwrap();
    sync_directory(&mounted.mountpoint);
    mounted.switch.cut();
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    assert!(!temporary.exists());

    // Removals: undone by a cut unless the directory was fsynced.
    std::fs::create_dir(mounted.mountpoint.join("sub")).unwrap();
    sync_directory(&mounted.mountpoint);
    std::fs::write(mounted.mountpoint.join("sub/a"), b"x").unwrap();
    File::open(mounted.mountpoint.join("sub/a"))
        .unwrap()
        .sync_all()
        .unwrap();
    sync_directory(&mounted.mountpoint.join("sub"));
    std::fs::remove_file(mounted.mountpoint.join("sub/a")).unwrap();
    mounted.switch.cut();
    assert_eq!(
        std::fs::read(mounted.mountpoint.join("sub/a")).unwrap(),
        b"x"
    );
    std::fs::remove_file(mounted.mountpoint.join("sub/a")).unwrap();
    sync_directory(&mounted.mountpoint.join("sub"));
    std::fs::remove_dir(mounted.mountpoint.join("sub")).unwrap();
    sync_directory(&mounted.mountpoint);
    mounted.switch.cut();
    assert_eq!(names(&mounted.mountpoint), ["record"]);
}

#[test]
fn an_armed_cut_falls_on_the_counted_change_and_the_disk_stays_off_until_power_on() {
    let (_dir, mounted) = mounted();
    let path = mounted.mountpoint.join("log");
    let mut file = File::create(&path).unwrap();
    file.write_all(b"synced").unwrap();
    file.sync_data().unwrap();
    sync_directory(&mounted.mountpoint);

    mounted.switch.arm(3);
    file.write_all(b" one").unwrap();
    file.write_all(b" two").unwrap();
    assert!(mounted.switch.is_off().is_none());
    // The third change is the fsync: the power goes before it does anything.
    let error = file.sync_data().unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "{error}");
    let report = mounted.switch.is_off().expect("the power is off");
    assert_eq!(
        report,
        CutReport {
            files: 1,
            bytes: 8,
            entries: 0
        }
    );
    assert_eq!(
        std::fs::read(&path).unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    drop(file);

    mounted.switch.power_on();
    assert_eq!(std::fs::read(&path).unwrap(), b"synced");
}
