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
    // Its name was applied at once, its data never synced: empty.
    assert_eq!(std::fs::read(&unsynced).unwrap(), b"");
}

#[test]
fn fsync_through_another_descriptor_saves_the_inode_and_truncation_is_data() {
    let (_dir, mounted) = mounted();
    let path = mounted.mountpoint.join("file");
    std::fs::write(&path, b"0123456789").unwrap();
    File::open(&path).unwrap().sync_all().unwrap();
    assert!(mounted.switch.syncs() >= 1);

    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(4).unwrap();
    file.write_all_at(b"ab", 8).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123\0\0\0\0ab");
    mounted.switch.cut();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");

    file.set_len(4).unwrap();
    file.sync_data().unwrap();
    mounted.switch.cut();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123");
}

#[test]
fn rename_moves_the_unsynced_data_and_a_cut_then_loses_it() {
    let (_dir, mounted) = mounted();
    let target = mounted.mountpoint.join("record");
    std::fs::write(&target, b"old").unwrap();
    File::open(&target).unwrap().sync_all().unwrap();

    // The careful pattern: write, fsync, rename. Survives.
    let temporary = mounted.mountpoint.join("record.tmp");
    let mut file = File::create(&temporary).unwrap();
    file.write_all(b"new").unwrap();
    file.sync_all().unwrap();
    std::fs::rename(&temporary, &target).unwrap();
    mounted.switch.cut();
    assert_eq!(std::fs::read(&target).unwrap(), b"new");

    // The careless one: write, rename, no fsync. The name survives, the data not.
    std::fs::write(&temporary, b"newer").unwrap();
    std::fs::rename(&temporary, &target).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"newer");
    mounted.switch.cut();
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    assert!(!temporary.exists());

    // Directories and listings pass through.
    std::fs::create_dir(mounted.mountpoint.join("sub")).unwrap();
    std::fs::write(mounted.mountpoint.join("sub/a"), b"x").unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&mounted.mountpoint)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["record", "sub"]);
    std::fs::remove_file(mounted.mountpoint.join("sub/a")).unwrap();
    std::fs::remove_dir(mounted.mountpoint.join("sub")).unwrap();
}

#[test]
fn an_armed_cut_falls_on_the_counted_change_and_the_disk_stays_off_until_power_on() {
    let (_dir, mounted) = mounted();
    let path = mounted.mountpoint.join("log");
    let mut file = File::create(&path).unwrap();
    file.write_all(b"synced").unwrap();
    file.sync_data().unwrap();

    mounted.switch.arm(3);
    file.write_all(b" one").unwrap();
    file.write_all(b" two").unwrap();
    assert!(mounted.switch.is_off().is_none());
    // The third change is the fsync: the power goes before it does anything.
    let error = file.sync_data().unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "{error}");
    let report = mounted.switch.is_off().expect("the power is off");
    assert_eq!(report, CutReport { files: 1, bytes: 8 });
    assert_eq!(
        std::fs::read(&path).unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    drop(file);

    mounted.switch.power_on();
    assert_eq!(std::fs::read(&path).unwrap(), b"synced");
}
