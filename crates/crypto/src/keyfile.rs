//! Key files.
//!
//! Format (`seisan-ed25519-key-v1`), a JSON object:
//! ```json
//! {"format": "seisan-ed25519-key-v1", "public_key": "<64 hex>", "secret_key": "<64 hex>"}
//! ```
//! `secret_key` is the 32-byte ed25519 seed, `public_key` the key derived from it (read
//! back and checked). Files are created with mode 0600 and never overwritten; a file
//! readable by group or others is refused on load, as ssh does.

use crate::Keypair;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The `format` field of every key file this version writes and reads.
pub const KEY_FILE_FORMAT: &str = "seisan-ed25519-key-v1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    public_key: String,
    secret_key: String,
}

/// Why a key file could not be written or read; each names the file.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant's #[error] message is its documentation
pub enum KeyFileError {
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {path} already exists; refusing to overwrite a key")]
    Exists { path: String },
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run chmod 600 {path}"
    )]
    Permissions { path: String, mode: u32 },
    #[error("key file {path} is malformed: {reason}")]
    Malformed { path: String, reason: String },
}

/// Writes a new key file with mode 0600; refuses to replace an existing file.
pub fn write_key_file(path: &Path, keypair: &Keypair) -> Result<(), KeyFileError> {
    let shown = path.display().to_string();
    let content = serde_json::to_string_pretty(&KeyFile {
        format: KEY_FILE_FORMAT.into(),
        public_key: hex::encode(keypair.public_key().0),
        secret_key: hex::encode(keypair.seed()),
    })
    .expect("key file serializes");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: shown.clone(),
                }
            } else {
                KeyFileError::Io {
                    path: shown.clone(),
                    source,
                }
            }
        })?;
    file.write_all(content.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .and_then(|_| file.sync_all())
        .map_err(|source| KeyFileError::Io {
            path: shown,
            source,
        })
}

/// Reads a key file, checking its mode, format and that the public key matches.
pub fn read_key_file(path: &Path) -> Result<Keypair, KeyFileError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io {
        path: shown.clone(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions { path: shown, mode });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let malformed = |reason: String| KeyFileError::Malformed {
        path: shown.clone(),
        reason,
    };
    let file: KeyFile =
        serde_json::from_str(&text).map_err(|error| malformed(error.to_string()))?;
    if file.format != KEY_FILE_FORMAT {
        return Err(malformed(format!(
            "format is {:?}, expected {KEY_FILE_FORMAT:?}",
            file.format
        )));
    }
    let seed = seisan_types::bytes::array_from_hex::<32>(&file.secret_key)
        .map_err(|reason| malformed(format!("secret_key: {reason}")))?;
    let keypair = Keypair::from_seed(seed);
    if hex::encode(keypair.public_key().0)
        != file
            .public_key
            .trim_start_matches("0x")
            .to_ascii_lowercase()
    {
        return Err(malformed("public_key does not match secret_key".into()));
    }
    Ok(keypair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        let keypair = Keypair::generate();
        write_key_file(&path, &keypair).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_key_file(&path).unwrap().public_key(),
            keypair.public_key()
        );
        assert!(matches!(
            write_key_file(&path, &keypair),
            Err(KeyFileError::Exists { .. })
        ));
    }

    #[test]
    fn refuses_open_permissions_and_mismatched_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        write_key_file(&path, &Keypair::generate()).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o666] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = read_key_file(&path).unwrap_err();
            assert!(
                matches!(error, KeyFileError::Permissions { mode: shown, .. } if shown == mode),
                "{error}"
            );
            // The message says which file, its mode, and the fix.
            let message = error.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains(&format!("mode {mode:o}")), "{message}");
            assert!(message.contains("chmod 600"), "{message}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_key_file(&path).is_ok());

        let other = dir.path().join("b.key");
        let text = serde_json::json!({
            "format": KEY_FILE_FORMAT,
            "public_key": hex::encode(Keypair::generate().public_key().0),
            "secret_key": hex::encode([7u8; 32]),
        });
        std::fs::write(&other, text.to_string()).unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_key_file(&other),
            Err(KeyFileError::Malformed { .. })
        ));
    }
}
