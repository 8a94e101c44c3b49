//! Wallet key files: one line of hex (with or without `0x`), readable only by the owner
//! (mode 0600), so a key is never in genesis, a config file or a log. The loaded key
//! prints as its address only.

use crate::CustodyError;
use alloy_signer_local::PrivateKeySigner;
use seisan_types::custody::ChainAddress;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A wallet key. `Debug` shows the address, never the key.
#[derive(Clone)]
pub struct WalletKey {
    pub(crate) signer: PrivateKeySigner,
}

impl std::fmt::Debug for WalletKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WalletKey({})", self.address())
    }
}

impl WalletKey {
    /// Parses a hex private key.
    pub fn from_hex(text: &str) -> Result<WalletKey, String> {
        let text = text.trim();
        let signer: PrivateKeySigner = text
            .strip_prefix("0x")
            .unwrap_or(text)
            .parse()
            .map_err(|_| "not a 32-byte hex private key".to_string())?;
        Ok(WalletKey { signer })
    }

    /// A fresh key from the operating system's randomness (the shell's, never the core's):
    /// how an operator or the testnet makes a hot or cold wallet no one else knows.
    pub fn generate() -> WalletKey {
        WalletKey {
            signer: PrivateKeySigner::random_with(&mut rand_core::OsRng),
        }
    }

    /// The key as the one line of hex a key file holds.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.signer.to_bytes()))
    }

    /// Reads a key file, refusing one that others can read or write.
    pub fn load(path: &Path) -> Result<WalletKey, CustodyError> {
        let fail = |reason: String| CustodyError::Key {
            path: path.display().to_string(),
            reason,
        };
        let mode = std::fs::metadata(path)
            .map_err(|error| fail(error.to_string()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "mode is {mode:o}; a wallet key file must be 600 (chmod 600)"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|error| fail(error.to_string()))?;
        WalletKey::from_hex(&text).map_err(fail)
    }

    /// Writes a key file with mode 0600 (fails if it exists).
    pub fn write(path: &Path, hex_key: &str) -> Result<(), CustodyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let fail = |reason: String| CustodyError::Key {
            path: path.display().to_string(),
            reason,
        };
        WalletKey::from_hex(hex_key).map_err(fail)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|error| fail(error.to_string()))?;
        file.write_all(format!("{}\n", hex_key.trim()).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|error| fail(error.to_string()))
    }

    pub fn address(&self) -> ChainAddress {
        crate::evm::canonical_address(self.signer.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Anvil's first well-known dev account.
    const DEV_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn loads_only_private_files_and_never_shows_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.key");
        WalletKey::write(&path, DEV_KEY).unwrap();
        let key = WalletKey::load(&path).unwrap();
        assert_eq!(
            key.address().0,
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        assert!(!format!("{key:?}").contains("ac0974"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = WalletKey::load(&path).unwrap_err();
        assert!(error.to_string().contains("must be 600"), "{error}");
    }

    #[test]
    fn generated_keys_are_fresh_and_round_trip_through_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (WalletKey::generate(), WalletKey::generate());
        assert_ne!(one.address(), two.address());
        let path = dir.path().join("cold.key");
        WalletKey::write(&path, &one.to_hex()).unwrap();
        assert_eq!(WalletKey::load(&path).unwrap().address(), one.address());
    }
}
