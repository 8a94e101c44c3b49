//! Backups of a running node (issue 20 item 5): `GET /v1/admin/backup` and the archive
//! format `seisan backup` writes and `seisan restore` reads.
//!
//! A node's data directory is locked while it runs (sled and [`super::files::DataDirLock`]),
//! so a consistent copy is taken by the node itself: holding the commit lock for
//! reading (no block commits meanwhile), it copies every record of its store (state,
//! blocks, certificates, kept blocks and certificates), its consensus record, custody
//! journal and scan cursor into memory, lets go of the lock, and only then sends the
//! archive. Keys are never served over HTTP: `seisan backup --include-keys` adds the
//! local key file to the archive on the client's side. The transaction journal is not
//! copied: what it holds was gossiped when admitted, and a restored node must not
//! re-admit transactions its clients may have resubmitted elsewhere since.
//!
//! The archive: a magic, a JSON [`BackupHeader`] (format, chain id, genesis hash,
//! member, height and state root it was taken at), the entries (store records and
//! files), an end mark and a tagged SHA-256 over everything before it, so a truncated or
//! altered archive is refused as a whole. A restored data directory carries the
//! `restored` marker, so its validator is fenced (R14 of the consensus crate) until it
//! has learned from its peers what it signed after the backup was taken.

use super::api::{ApiContext, ApiError};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use seisan_state::Backend;
use seisan_types::Hash;
use serde::{Deserialize, Serialize};
use std::ops::Bound;
use std::path::Path;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The archive format this build writes and reads.
pub const BACKUP_FORMAT: u32 = 1;
/// The first bytes of every archive.
const MAGIC: &[u8; 8] = b"SEISANBK";
/// Domain tag of the archive checksum (kept here, not in `seisan_types::tags`: it
/// signs nothing and never leaves the archive).
const BACKUP_CHECKSUM_TAG: &[u8] = b"SEISAN_BACKUP_CHECKSUM_V1";
/// Store records copied per pass over the store (bounds one read's memory).
const SNAPSHOT_CHUNK: usize = 4096;
/// The largest archive read or served: it is built in memory.
pub const MAX_ARCHIVE_BYTES: u64 = 4 << 30;
/// The largest header, file name and single file in an archive.
const MAX_HEADER_BYTES: usize = 64 << 10;
const MAX_NAME_BYTES: usize = 255;
const MAX_FILE_BYTES: u64 = 64 << 20;

const TAG_RECORD: u8 = 1;
const TAG_FILE: u8 = 2;
const TAG_END: u8 = 0xff;

/// The consensus record's file name (R10), the custody scan cursor's and the custody
/// journal's directory, as the node names them in its data directory.
pub const CONSENSUS_RECORD_FILE: &str = "consensus-record";
pub const CUSTODY_CURSOR_FILE: &str = "custody-scan-cursor";
pub const CUSTODY_JOURNAL_DIR: &str = "custody-journal";
/// The archive's name for a key file added with `--include-keys`.
pub const KEY_FILE: &str = "key";

/// What an archive says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// [`BACKUP_FORMAT`] of the build that wrote it.
    pub format: u32,
    pub chain_id: String,
    /// The hash of the genesis the node runs (hex).
    pub genesis_hash: String,
    /// The node's member id and name.
    pub member: u32,
    pub member_name: String,
    /// The committed height and state root the store was copied at (hex root).
    pub height: u64,
    pub state_root: String,
    /// When it was taken (node's clock, ms since the epoch).
    pub taken_at_ms: u64,
    /// Whether the archive carries a key file (`seisan backup --include-keys`).
    pub includes_key: bool,
}

/// A parsed archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archive {
    pub header: BackupHeader,
    /// Every store record, raw key and value, ascending.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// The small files, by their path in the data directory.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Why an archive is refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a seisan backup (it does not start with the backup magic)")]
    NotABackup,
    #[error("truncated: it ends inside {what} (the copy is incomplete)")]
    Truncated { what: &'static str },
    #[error("corrupt: its checksum does not match its content")]
    Checksum,
    #[error("corrupt: {reason}")]
    Malformed { reason: String },
    #[error("written in backup format {found}; this seisan reads format {BACKUP_FORMAT}")]
    Format { found: u32 },
}

/// Whether `name` is a file an archive may carry, so a crafted archive cannot write
/// outside the data directory or over the node's store.
fn allowed_file(name: &str) -> bool {
    match name.split_once('/') {
        None => [CONSENSUS_RECORD_FILE, CUSTODY_CURSOR_FILE, KEY_FILE].contains(&name),
        Some((dir, file)) => {
            dir == CUSTODY_JOURNAL_DIR
                && !file.is_empty()
                && !file.contains('/')
                && file != "."
                && file != ".."
                && !file.starts_with('.')
        }
    }
}

impl Archive {
    /// The archive's bytes, checksum included.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("the header serializes");
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for (key, value) in &self.records {
            out.push(TAG_RECORD);
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
        for (name, bytes) in &self.files {
            assert!(allowed_file(name), "archive file name {name:?}");
            out.push(TAG_FILE);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out.push(TAG_END);
        let checksum = Hash::tagged(BACKUP_CHECKSUM_TAG, &[&out]);
        out.extend_from_slice(&checksum.0);
        out
    }

    /// Parses and checks an archive: magic, checksum, format, every entry's bounds.
    pub fn decode(bytes: &[u8]) -> Result<Archive, ArchiveError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ArchiveError::NotABackup);
        }
        if bytes.len() < MAGIC.len() + 4 + 1 + 32 {
            return Err(ArchiveError::Truncated { what: "the header" });
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if body.last() != Some(&TAG_END) {
            // The end mark is missing before the last 32 bytes: most likely cut short.
            let intact = Hash::tagged(BACKUP_CHECKSUM_TAG, &[body]).0 == checksum;
            return Err(if intact {
                ArchiveError::Malformed {
                    reason: "no end mark".into(),
                }
            } else {
                ArchiveError::Truncated {
                    what: "its entries (no end mark and checksum)",
                }
            });
        }
        if Hash::tagged(BACKUP_CHECKSUM_TAG, &[body]).0 != checksum {
            return Err(ArchiveError::Checksum);
        }
        let mut reader = Reader {
            bytes: body,
            at: MAGIC.len(),
        };
        let header_len = reader.u32("the header")? as usize;
        if header_len > MAX_HEADER_BYTES {
            return Err(ArchiveError::Malformed {
                reason: format!("a header of {header_len} bytes"),
            });
        }
        let header: BackupHeader = serde_json::from_slice(reader.take(header_len, "the header")?)
            .map_err(|error| ArchiveError::Malformed {
            reason: format!("the header does not parse: {error}"),
        })?;
        if header.format != BACKUP_FORMAT {
            return Err(ArchiveError::Format {
                found: header.format,
            });
        }
        let mut archive = Archive {
            header,
            records: Vec::new(),
            files: Vec::new(),
        };
        loop {
            match reader.take(1, "an entry")?[0] {
                TAG_RECORD => {
                    let key_len = reader.u32("a record")? as usize;
                    let key = reader.take(key_len, "a record")?.to_vec();
                    let value_len = reader.u32("a record")? as usize;
                    let value = reader.take(value_len, "a record")?.to_vec();
                    archive.records.push((key, value));
                }
                TAG_FILE => {
                    let name_len = u16::from_le_bytes(
                        reader.take(2, "a file")?.try_into().expect("two bytes"),
                    ) as usize;
                    if name_len > MAX_NAME_BYTES {
                        return Err(ArchiveError::Malformed {
                            reason: format!("a file name of {name_len} bytes"),
                        });
                    }
                    let name = String::from_utf8(reader.take(name_len, "a file")?.to_vec())
                        .map_err(|_| ArchiveError::Malformed {
                            reason: "a file name is not UTF-8".into(),
                        })?;
                    if !allowed_file(&name) {
                        return Err(ArchiveError::Malformed {
                            reason: format!(
                                "it names a file {name:?} a data directory never holds"
                            ),
                        });
                    }
                    let len = u64::from_le_bytes(
                        reader.take(8, "a file")?.try_into().expect("eight bytes"),
                    );
                    if len > MAX_FILE_BYTES {
                        return Err(ArchiveError::Malformed {
                            reason: format!("file {name} of {len} bytes"),
                        });
                    }
                    let bytes = reader.take(len as usize, "a file")?.to_vec();
                    archive.files.push((name, bytes));
                }
                TAG_END if reader.at == body.len() => break,
                TAG_END => {
                    return Err(ArchiveError::Malformed {
                        reason: "bytes after the end mark".into(),
                    })
                }
                tag => {
                    return Err(ArchiveError::Malformed {
                        reason: format!("unknown entry tag {tag}"),
                    })
                }
            }
        }
        if archive.header.includes_key != archive.files.iter().any(|(name, _)| name == KEY_FILE) {
            return Err(ArchiveError::Malformed {
                reason: "its header and its entries disagree on whether it holds a key".into(),
            });
        }
        Ok(archive)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ArchiveError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(ArchiveError::Truncated { what })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, ArchiveError> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("four bytes"),
        ))
    }
}

// How the OpenAPI document describes the answer: a binary string (a body of `Vec<u8>`
// would be described as an array of numbers).
/// The archive's bytes (the seisan backup format).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Describes the body only; the handler sends the bytes themselves.
struct ArchiveBytes(Vec<u8>);

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(backup))
}

/// A consistent backup of this node's data (`seisan backup`): every store record
/// (state, blocks, certificates, kept blocks), the consensus record, the custody
/// journal and scan cursor, taken while no block commits, as one checksummed archive
/// marked with its format, chain id, genesis hash, member, height and state root. Never
/// holds a key. Restore it with `seisan restore`; the restored validator is fenced
/// until its peers have told it what it signed after the backup.
#[utoipa::path(get, path = "/v1/admin/backup", tag = "node",
    responses(
        (status = 200, description = "The archive (the seisan backup format), as an attachment", content_type = "application/octet-stream", body = inline(ArchiveBytes)),
        (status = 500, description = "`backup_failed`: the store or a data file could not be read", body = seisan_api::v1::ErrorBody),
    ))]
async fn backup(State(context): State<ApiContext>) -> Result<Response, ApiError> {
    let archive = tokio::task::spawn_blocking(move || snapshot(&context))
        .await
        .map_err(|error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "backup_failed",
                format!("the backup task failed: {error}"),
            )
        })??;
    let bytes = archive.encode();
    let name = format!(
        "attachment; filename=\"{}-{}.seisan-backup\"",
        archive.header.member_name, archive.header.height
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        bytes,
    )
        .into_response())
}

/// Copies the store and the small files while no block commits. The copy is in memory,
/// so the lock is never held across sending to the client.
fn snapshot(context: &ApiContext) -> Result<Archive, ApiError> {
    let (member, member_name) = {
        let status = context.status.borrow();
        (status.member, status.member_name.clone())
    };
    let data = context.data_dir.clone();
    let failed =
        |what: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backup_failed", what);
    // No merge of the transaction index's runs may be half copied: one under way ends
    // first, before the commit lock, so commits go on meanwhile.
    let _no_merges = context.db.pause_merges();
    let _read = context.commit_lock.read().expect("commit lock");
    // No checkpoint may land while the store is copied (a copy that mixed two would
    // not open): the ones due are written first, and no block commits meanwhile.
    context.db.wait_for_checkpoints();
    let height = context.db.committed_height().map_or(0, |height| height.0);
    let state_root = context
        .db
        .committed_root()
        .map_or_else(String::new, |root| root.to_hex());
    let backend = context.db.backend();
    let mut records = Vec::new();
    let mut lower = Bound::Unbounded;
    loop {
        let chunk = backend.range(lower, Bound::Unbounded, SNAPSHOT_CHUNK);
        let Some((last, _)) = chunk.last() else {
            break;
        };
        lower = Bound::Excluded(last.clone());
        let full = chunk.len() == SNAPSHOT_CHUNK;
        records.extend(chunk);
        if !full {
            break;
        }
    }
    let mut files = Vec::new();
    for name in [CONSENSUS_RECORD_FILE, CUSTODY_CURSOR_FILE] {
        if let Some(bytes) = read_if_present(&data.join(name)).map_err(failed)? {
            files.push((name.to_string(), bytes));
        }
    }
    let journal = data.join(CUSTODY_JOURNAL_DIR);
    if journal.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(&journal)
            .map_err(|error| failed(format!("listing {}: {error}", journal.display())))?
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .map(|file| format!("{CUSTODY_JOURNAL_DIR}/{file}"))
            // Half-written temporaries (a dot file or .tmp) are not journal entries.
            .filter(|name| allowed_file(name) && !name.ends_with(".tmp"))
            .collect();
        names.sort();
        for name in names {
            if let Some(bytes) = read_if_present(&data.join(&name)).map_err(failed)? {
                files.push((name, bytes));
            }
        }
    }
    Ok(Archive {
        header: BackupHeader {
            format: BACKUP_FORMAT,
            chain_id: context.genesis.chain_id.0.clone(),
            genesis_hash: context.domain.genesis.to_hex(),
            member,
            member_name,
            height,
            state_root,
            taken_at_ms: super::runtime::now_ms(),
            includes_key: false,
        },
        records,
        files,
    })
}

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("reading {}: {error}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive() -> Archive {
        Archive {
            header: BackupHeader {
                format: BACKUP_FORMAT,
                chain_id: "unit-dev".into(),
                genesis_hash: Hash([3; 32]).to_hex(),
                member: 2,
                member_name: "exchange-b".into(),
                height: 7,
                state_root: Hash([4; 32]).to_hex(),
                taken_at_ms: 1,
                includes_key: false,
            },
            records: vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), vec![])],
            files: vec![
                (CONSENSUS_RECORD_FILE.into(), vec![1, 2, 3]),
                (format!("{CUSTODY_JOURNAL_DIR}/payout-1"), b"{}".to_vec()),
            ],
        }
    }

    #[test]
    fn an_archive_round_trips() {
        let archive = archive();
        assert_eq!(Archive::decode(&archive.encode()).unwrap(), archive);
    }

    #[test]
    fn truncated_altered_and_foreign_archives_are_refused_by_name() {
        let bytes = archive().encode();
        for cut in [bytes.len() - 1, bytes.len() / 2, 12] {
            let error = Archive::decode(&bytes[..cut]).unwrap_err();
            assert!(
                matches!(error, ArchiveError::Truncated { .. }),
                "cut at {cut}: {error}"
            );
        }
        let mut altered = bytes.clone();
        let middle = altered.len() / 2;
        altered[middle] ^= 1;
        assert!(matches!(
            Archive::decode(&altered),
            Err(ArchiveError::Checksum)
        ));
        assert!(matches!(
            Archive::decode(b"{\"not\": \"a backup\"}"),
            Err(ArchiveError::NotABackup)
        ));
    }

    #[test]
    fn no_file_outside_the_data_directory_is_accepted() {
        for name in [
            "../etc/passwd",
            "state/db",
            "custody-journal/../x",
            "LOCK",
            "custody-journal/.tmp",
        ] {
            assert!(!allowed_file(name), "{name}");
        }
        assert!(allowed_file("custody-journal/payout-7"));
        assert!(allowed_file(KEY_FILE));
    }
}
