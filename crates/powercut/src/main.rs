//! `seisan-powercut BACKING MOUNTPOINT`: mounts the power-cut filesystem and reads
//! commands from standard input, one a line: `cut` discards every unsynced write (the
//! power cut) and prints what it discarded; end of input unmounts.

use std::io::BufRead;
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [backing, mountpoint] = arguments.as_slice() else {
        eprintln!("usage: seisan-powercut BACKING MOUNTPOINT (then `cut` lines on stdin)");
        return std::process::ExitCode::from(2);
    };
    let mounted = match seisan_powercut::mount(&PathBuf::from(backing), &PathBuf::from(mountpoint))
    {
        Ok(mounted) => mounted,
        Err(error) => {
            eprintln!("seisan-powercut: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("mounted {backing} at {mountpoint}");
    for line in std::io::stdin().lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("cut") => {
                let report = mounted.switch.cut();
                println!(
                    "cut: discarded {} unsynced bytes in {} files",
                    report.bytes, report.files
                );
            }
            Ok("") => {}
            Ok(other) => eprintln!("unknown command {other:?} (cut)"),
            Err(_) => break,
        }
    }
    drop(mounted);
    std::process::ExitCode::SUCCESS
}
