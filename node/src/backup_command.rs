//! `seisan backup` and `seisan restore` (issue 20 item 5).
//!
//! `backup` asks a running node for a consistent archive of its data
//! (`GET /v1/admin/backup`, see `node::backup`) and writes it to a file, adding the
//! local key file only with `--include-keys`. `restore` rebuilds a data directory from
//! an archive: it refuses a non-empty directory, an archive of another genesis, and a
//! corrupt or truncated archive, each naming what was wrong; it builds everything in a
//! temporary directory beside the target and renames it into place at the end, so it
//! never leaves half a data directory. The result carries the `restored` marker: the
//! validator is fenced until it has learned from its peers what it signed after the
//! backup (R14 of the consensus crate).

use crate::cli::session::{ClientOptions, Session};
use crate::node::backup::{Archive, ArchiveError, KEY_FILE, MAX_ARCHIVE_BYTES};
use crate::node::files::RestoredMarker;
use crate::node::pipeline::Pipeline;
use anyhow::{anyhow, bail, Context};
use clap::Args;
use seisan_state::{Backend, SledBackend, StateDb};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Store records written per batch while restoring.
const RESTORE_BATCH: usize = 10_000;

/// `seisan backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Where to write the archive; refuses to overwrite.
    #[arg(long)]
    out: PathBuf,
    /// Also put the key file given by --key into the archive (it is never sent over
    /// the network: it is read here). Keep such an archive as secret as the key.
    #[arg(long)]
    include_keys: bool,
    #[command(flatten)]
    options: ClientOptions,
}

/// `seisan restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The archive `seisan backup` wrote.
    #[arg(long)]
    from: PathBuf,
    /// The data directory to create; must not exist or be empty.
    #[arg(long)]
    data: PathBuf,
    /// The genesis the node runs; an archive of any other genesis is refused.
    #[arg(long)]
    genesis: PathBuf,
}

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        bail!("{} exists; refusing to overwrite it", args.out.display());
    }
    let key = if args.include_keys {
        let path = args.options.key.clone().ok_or_else(|| {
            anyhow!("--include-keys needs the key file: pass --key FILE (or set SEISAN_KEY)")
        })?;
        let bytes =
            std::fs::read(&path).with_context(|| format!("reading key file {}", path.display()))?;
        seisan_crypto::keyfile::read_key_file(&path)
            .with_context(|| format!("key file {}", path.display()))?;
        Some(bytes)
    } else {
        None
    };
    let session = Session::open(&args.options)?;
    let path = "/v1/admin/backup";
    let response = session
        .node
        .streaming_get(path)
        .call()
        .map_err(|error| session.node.unreachable(error))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .into_with_config()
        .limit(MAX_ARCHIVE_BYTES)
        .read_to_vec()
        .with_context(|| format!("reading the backup from {}", session.node.base))?;
    if !(200..=299).contains(&status) {
        let message = serde_json::from_slice::<seisan_api::v1::ErrorBody>(&bytes)
            .map(|body| body.error.message)
            .unwrap_or_else(|_| format!("status {status}"));
        bail!("node {} refused the backup: {message}", session.node.base);
    }
    let mut archive = Archive::decode(&bytes)
        .map_err(|error| anyhow!("the backup the node sent is unusable: {error}"))?;
    if let Some(key) = key {
        archive.header.includes_key = true;
        archive.files.push((KEY_FILE.to_string(), key));
    }
    let encoded = archive.encode();
    // Mode 0600 with or without the key: the archive holds every member's books.
    write_new_file(&args.out, &encoded, true)?;
    let header = &archive.header;
    if args.options.json {
        println!(
            "{}",
            serde_json::json!({
                "out": args.out,
                "bytes": encoded.len(),
                "records": archive.records.len(),
                "files": archive.files.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                "header": header,
            })
        );
    } else {
        println!(
            "backup of {} at height {} (root {}) written to {}: {} records, {} files{}, {} bytes",
            header.member_name,
            header.height,
            header.state_root,
            args.out.display(),
            archive.records.len(),
            archive.files.len(),
            if header.includes_key {
                " including the key"
            } else {
                ""
            },
            encoded.len()
        );
    }
    Ok(())
}

/// Writes a new file durably (mode 0600 when `secret`).
fn write_new_file(path: &Path, bytes: &[u8], secret: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("fsync {}", path.display()))?;
    Ok(())
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.from)
        .with_context(|| format!("reading archive {}", args.from.display()))?;
    let archive = Archive::decode(&bytes).map_err(|error: ArchiveError| {
        anyhow!("archive {} is refused: {error}", args.from.display())
    })?;
    let genesis = crate::genesis_command::load_genesis(&args.genesis)?;
    let header = &archive.header;
    let genesis_hash = genesis.hash().to_hex();
    if header.genesis_hash != genesis_hash || header.chain_id != genesis.chain_id.0 {
        bail!(
            "archive {} was taken on chain {} with genesis {}, but {} is chain {} with genesis {}; refusing to restore another chain's data",
            args.from.display(),
            header.chain_id,
            header.genesis_hash,
            args.genesis.display(),
            genesis.chain_id,
            genesis_hash
        );
    }
    if let Ok(mut entries) = std::fs::read_dir(&args.data) {
        if let Some(entry) = entries.next() {
            let name = entry.map_or_else(
                |_| "?".to_string(),
                |entry| entry.file_name().to_string_lossy().into_owned(),
            );
            bail!(
                "data directory {} is not empty (it holds {name:?}, among others); restore writes only into a new or empty directory",
                args.data.display()
            );
        }
    } else if args.data.exists() {
        bail!("{} exists and is not a directory", args.data.display());
    }
    let name = args
        .data
        .file_name()
        .ok_or_else(|| anyhow!("--data {} names no directory", args.data.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = match args.data.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let building = parent.join(format!(".{name}.restoring-{}", std::process::id()));
    std::fs::create_dir(&building).with_context(|| format!("creating {}", building.display()))?;
    let built = build(&archive, genesis, &building).and_then(|()| {
        if args.data.exists() {
            std::fs::remove_dir(&args.data)
                .with_context(|| format!("replacing empty {}", args.data.display()))?;
        }
        std::fs::rename(&building, &args.data).with_context(|| {
            format!("renaming {} to {}", building.display(), args.data.display())
        })?;
        File::open(&parent)?
            .sync_all()
            .with_context(|| format!("fsync {}", parent.display()))
    });
    if let Err(error) = built {
        let _ = std::fs::remove_dir_all(&building);
        return Err(error);
    }
    let journaled = archive
        .files
        .iter()
        .filter(|(name, _)| name.starts_with(crate::node::backup::CUSTODY_JOURNAL_DIR))
        .count();
    if journaled > 0 {
        eprintln!(
            "warning: the custody payout journal ({journaled} entries) is as of the backup: a payout this node signed after it is not in it. If the hot wallet has sent anything since, the node holds every payout and sweep (GET /v1/reserves says payer_journal_behind) until the journal kept with the hot key is put back as custody-journal"
        );
    }
    println!(
        "restored {} at height {} (root {}) into {}; the validator is fenced until its peers have told it what it signed after the backup{}",
        header.member_name,
        header.height,
        header.state_root,
        args.data.display(),
        if header.includes_key {
            format!(
                "; its key is in {}",
                args.data.join("node.key").display()
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Writes the store, the small files and the marker into `dir`, checks that the store
/// opens at the archive's height and root (replaying the blocks after its last
/// checkpoint, as a node's start does), and fsyncs everything.
fn build(archive: &Archive, genesis: seisan_types::Genesis, dir: &Path) -> anyhow::Result<()> {
    let header = &archive.header;
    let state = dir.join("state");
    {
        let backend = SledBackend::open(&state)
            .with_context(|| format!("creating the store at {}", state.display()))?;
        for chunk in archive.records.chunks(RESTORE_BATCH) {
            backend.apply(
                chunk
                    .iter()
                    .map(|(key, value)| (key.clone(), Some(value.clone())))
                    .collect(),
            );
        }
        backend.flush();
    }
    {
        let db = StateDb::open(
            SledBackend::open(&state).with_context(|| format!("reopening {}", state.display()))?,
        )
        .map_err(|error| anyhow!("the restored store does not open: {error}"))?;
        let pipeline = Pipeline::open(db, std::sync::Arc::new(genesis))
            .map_err(|error| anyhow!("the restored store does not open: {error}"))?;
        let height = pipeline.tip().height.0;
        let root = pipeline.tip().state_root.to_hex();
        if height != header.height || root != header.state_root {
            bail!(
                "the restored store is at height {height} with root {root}, but the archive says height {} root {}: the archive is inconsistent",
                header.height,
                header.state_root
            );
        }
    }
    for (name, bytes) in &archive.files {
        let (path, secret) = if name == KEY_FILE {
            (dir.join("node.key"), true)
        } else {
            (dir.join(name), false)
        };
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        write_new_file(&path, bytes, secret)?;
    }
    let note = serde_json::json!({
        "restored_from": header,
        "meaning": "seisan restore wrote this directory; the node signs nothing until its peers have said what it signed after the backup (R14), then removes this file",
    });
    RestoredMarker::new(dir).write(&note.to_string())?;
    for folder in [
        dir.join(crate::node::backup::CUSTODY_JOURNAL_DIR),
        dir.to_path_buf(),
    ] {
        if folder.is_dir() {
            File::open(&folder)?
                .sync_all()
                .with_context(|| format!("fsync {}", folder.display()))?;
        }
    }
    Ok(())
}
