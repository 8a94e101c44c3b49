//! Who may do what at the embedded bank, and the bank's config file.
//!
//! Every party (the clearing house and each exchange) has an operating account (its
//! own money) and a trust account (segregated, held for the clearing system) and an
//! API token. The rules (patent claims 7-8: only the accounting system, on the
//! clearing house's instruction, moves money between trust accounts):
//! - an exchange reads its own two accounts, and moves money from its own operating
//!   account to its own trust account (S210), nothing else;
//! - the clearing house reads every account, moves money between trust accounts
//!   (mirrored settlement) and from a trust account back to the same party's
//!   operating account (a fiat withdrawal);
//! - an auditor (one per validator of the consortium, with its own token) reads every
//!   party's trust account (balance, statement, transfers out of it) and nothing else,
//!   and moves no money: it is how every validator sees, and attests, what each trust
//!   account says, instead of only the exchange itself and the clearing house. An
//!   auditor has no accounts of its own.
//!
//! Pure: [`Access::authorize_read`] and [`Access::authorize_transfer`] decide from the
//! config alone.

use crate::adapter::{
    valid_currency, AccountId, AccountKind, BankError, TransferRequest, DEFAULT_CURRENCY,
};
use seisan_types::Amount;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The most parties a bank config may name.
pub const MAX_PARTIES: usize = 256;

/// A party's role at the bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    ClearingHouse,
    Exchange,
    /// A validator's read-only view of every trust account (see the module docs).
    Auditor,
}

impl PartyRole {
    /// Whether parties of this role hold accounts at the bank.
    pub fn holds_accounts(self) -> bool {
        match self {
            PartyRole::ClearingHouse | PartyRole::Exchange => true,
            PartyRole::Auditor => false,
        }
    }
}

/// The bank party name of `member`'s auditor view.
pub fn auditor_name(member: &str) -> String {
    format!("{member}-auditor")
}

/// One party in the bank config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyConfig {
    /// The party's name; its accounts are `<name>:operating` and `<name>:trust`. Use
    /// the member names of the genesis file.
    pub name: String,
    pub role: PartyRole,
    /// The bearer token the party presents.
    pub token: String,
    /// The operating account's balance when the account is first opened, in minor
    /// units (an auditor holds no accounts: 0).
    #[serde(default)]
    pub opening_operating: Amount,
}

/// The bank config file (`bank.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankConfig {
    /// Where the HTTP API listens, e.g. `127.0.0.1:7400`.
    pub listen: String,
    /// The books' directory; relative paths are relative to the config file.
    pub data_dir: PathBuf,
    /// The bank's first currency, e.g. `JPY` (accounts in [`DEFAULT_CURRENCY`] carry no
    /// currency suffix, see [`AccountId`]).
    pub currency: String,
    /// Decimals of the first currency (0 for JPY), for statements.
    #[serde(default)]
    pub scale: u32,
    /// Further currencies: every party that holds accounts holds an operating and a
    /// trust account in each (`<name>:trust:USD`), each opened with the party's
    /// `opening_operating`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_currencies: Vec<CurrencyConfig>,
    /// A BIC-like name of the bank, for statements.
    #[serde(default = "default_bank_name")]
    pub bank_name: String,
    /// The HTTPS certificate chain (PEM); with `tls_key`, the API is served over TLS
    /// only. Relative paths are relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    pub parties: Vec<PartyConfig>,
}

/// A further currency of the bank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencyConfig {
    /// The code, e.g. `USD`.
    pub code: String,
    /// Decimals (2 for USD), for statements.
    #[serde(default)]
    pub scale: u32,
}

/// The most currencies one bank config may name.
pub const MAX_CURRENCIES: usize = 16;

fn default_bank_name() -> String {
    "SEISJPJTXXX".into()
}

impl BankConfig {
    /// Reads and validates a config file; makes a relative `data_dir` relative to it.
    pub fn load(path: &Path) -> Result<BankConfig, BankError> {
        let text = std::fs::read_to_string(path).map_err(|error| BankError::InvalidRequest {
            reason: format!("reading {}: {error}", path.display()),
        })?;
        let mut config: BankConfig =
            toml::from_str(&text).map_err(|error| BankError::InvalidRequest {
                reason: format!("parsing {}: {error}", path.display()),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if config.data_dir.is_relative() {
            config.data_dir = base.join(&config.data_dir);
        }
        for file in [&mut config.tls_cert, &mut config.tls_key]
            .into_iter()
            .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        config.validate()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("bank config serialises")
    }

    /// Every currency of the bank, the first one first.
    pub fn currencies(&self) -> Vec<&str> {
        std::iter::once(self.currency.as_str())
            .chain(self.more_currencies.iter().map(|more| more.code.as_str()))
            .collect()
    }

    /// The decimals of `currency` (0 for one the config does not name).
    pub fn scale_of(&self, currency: &str) -> u32 {
        if currency == self.currency {
            return self.scale;
        }
        self.more_currencies
            .iter()
            .find(|more| more.code == currency)
            .map_or(0, |more| more.scale)
    }

    /// This config with `code` (of `scale` decimals) as a further currency.
    pub fn with_currency(mut self, code: &str, scale: u32) -> BankConfig {
        self.more_currencies.push(CurrencyConfig {
            code: code.to_string(),
            scale,
        });
        self
    }

    /// Unique names, tokens and currencies, exactly one clearing house, bounded size.
    pub fn validate(&self) -> Result<(), BankError> {
        let invalid = |reason: String| Err(BankError::InvalidRequest { reason });
        let currencies = self.currencies();
        if currencies.len() > MAX_CURRENCIES {
            return invalid(format!("a bank holds at most {MAX_CURRENCIES} currencies"));
        }
        for (index, code) in currencies.iter().enumerate() {
            if !valid_currency(code) {
                return invalid(format!(
                    "currency {code:?} is not three capital letters (e.g. USD)"
                ));
            }
            if currencies[..index].contains(code) {
                return invalid(format!("currency {code} is named twice"));
            }
        }
        if self.parties.is_empty() || self.parties.len() > MAX_PARTIES {
            return invalid(format!("a bank needs 1 to {MAX_PARTIES} parties"));
        }
        let houses = self
            .parties
            .iter()
            .filter(|party| party.role == PartyRole::ClearingHouse)
            .count();
        if houses != 1 {
            return invalid(format!(
                "exactly one clearing house is needed, got {houses}"
            ));
        }
        for (index, party) in self.parties.iter().enumerate() {
            crate::adapter::check_name("party name", &party.name)?;
            if party.name.contains(':') {
                return invalid(format!("party name {:?} may not contain ':'", party.name));
            }
            if !party.role.holds_accounts() && !party.opening_operating.is_zero() {
                return invalid(format!(
                    "auditor {} holds no accounts, so it has no opening balance",
                    party.name
                ));
            }
            if party.token.len() < 16 {
                return invalid(format!(
                    "the token of {} is shorter than 16 bytes",
                    party.name
                ));
            }
            for other in &self.parties[..index] {
                if other.name == party.name || other.token == party.token {
                    return invalid(format!("party {} repeats a name or token", party.name));
                }
            }
        }
        Ok(())
    }

    /// A testnet config: the clearing house and the exchanges named, dev tokens
    /// `dev-token-<name>`, `opening_operating` for each exchange's operating account.
    pub fn testnet(
        listen: &str,
        clearing_house: &str,
        exchanges: &[&str],
        opening_operating: Amount,
    ) -> BankConfig {
        let mut parties = vec![PartyConfig {
            name: clearing_house.to_string(),
            role: PartyRole::ClearingHouse,
            token: dev_token(clearing_house),
            opening_operating: Amount::ZERO,
        }];
        for name in exchanges {
            parties.push(PartyConfig {
                name: name.to_string(),
                role: PartyRole::Exchange,
                token: dev_token(name),
                opening_operating,
            });
        }
        BankConfig {
            listen: listen.to_string(),
            data_dir: PathBuf::from("bank-data"),
            currency: DEFAULT_CURRENCY.into(),
            scale: 0,
            more_currencies: Vec::new(),
            bank_name: default_bank_name(),
            tls_cert: None,
            tls_key: None,
            parties,
        }
    }
}

impl BankConfig {
    /// This config with an auditor party for each of `members` (named
    /// [`auditor_name`], dev token [`dev_auditor_token`]): a testnet's validators.
    pub fn with_dev_auditors(mut self, members: &[&str]) -> BankConfig {
        for member in members {
            let name = auditor_name(member);
            self.parties.push(PartyConfig {
                token: dev_token(&name),
                name,
                role: PartyRole::Auditor,
                opening_operating: Amount::ZERO,
            });
        }
        self
    }
}

/// The well-known auditor token of a testnet validator. Never use it outside a testnet.
pub fn dev_auditor_token(member: &str) -> String {
    dev_token(&auditor_name(member))
}

/// The well-known token of a testnet party. Never use it outside a testnet.
pub fn dev_token(name: &str) -> String {
    format!("dev-token-{name}")
}

/// The access rules over a validated config. See the module docs.
#[derive(Clone, Debug)]
pub struct Access {
    parties: Vec<PartyConfig>,
    currencies: Vec<String>,
}

impl Access {
    pub fn new(config: &BankConfig) -> Access {
        Access {
            parties: config.parties.clone(),
            currencies: config.currencies().into_iter().map(String::from).collect(),
        }
    }

    /// The party presenting `token`, or [`BankError::Unauthenticated`].
    pub fn authenticate(&self, token: Option<&str>) -> Result<&PartyConfig, BankError> {
        let token = token.ok_or(BankError::Unauthenticated)?;
        self.parties
            .iter()
            .find(|party| constant_time_eq(party.token.as_bytes(), token.as_bytes()))
            .ok_or(BankError::Unauthenticated)
    }

    /// Accounts the party may read (per party, each currency's operating and trust).
    pub fn visible_accounts(&self, party: &PartyConfig) -> Vec<AccountId> {
        self.parties
            .iter()
            .filter(|other| other.role.holds_accounts())
            .flat_map(|other| {
                self.currencies.iter().flat_map(|currency| {
                    [
                        AccountId::operating_in(&other.name, currency),
                        AccountId::trust_in(&other.name, currency),
                    ]
                })
            })
            .filter(|account| self.authorize_read(party, account).is_ok())
            .collect()
    }

    /// Whether `name` is a party that holds accounts.
    fn holds_accounts(&self, name: &str) -> bool {
        self.parties
            .iter()
            .any(|party| party.name == name && party.role.holds_accounts())
    }

    pub fn authorize_read(
        &self,
        party: &PartyConfig,
        account: &AccountId,
    ) -> Result<(), BankError> {
        let allowed = match party.role {
            PartyRole::ClearingHouse => true,
            PartyRole::Exchange => account
                .split()
                .is_some_and(|(owner, _)| owner == party.name),
            PartyRole::Auditor => account.split().is_some_and(|(owner, kind)| {
                kind == AccountKind::Trust && self.holds_accounts(owner)
            }),
        };
        if allowed {
            Ok(())
        } else {
            Err(BankError::Forbidden {
                party: party.name.clone(),
                action: format!("read {account}"),
            })
        }
    }

    pub fn authorize_transfer(
        &self,
        party: &PartyConfig,
        request: &TransferRequest,
    ) -> Result<(), BankError> {
        let from = request.from.split();
        let to = request.to.split();
        let allowed = match (party.role, from, to) {
            (PartyRole::Exchange, Some((from_party, from_kind)), Some((to_party, to_kind))) => {
                from_party == party.name
                    && to_party == party.name
                    && from_kind == AccountKind::Operating
                    && to_kind == AccountKind::Trust
            }
            (
                PartyRole::ClearingHouse,
                Some((from_party, from_kind)),
                Some((to_party, to_kind)),
            ) => match (from_kind, to_kind) {
                (AccountKind::Trust, AccountKind::Trust) => true,
                (AccountKind::Trust, AccountKind::Operating) => from_party == to_party,
                _ => false,
            },
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(BankError::Forbidden {
                party: party.name.clone(),
                action: format!("transfer from {} to {}", request.from, request.to),
            })
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::TransferReference;

    #[test]
    fn tls_files_are_relative_to_the_config_file_and_survive_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = BankConfig::testnet(
            "127.0.0.1:7400",
            "clearing-house",
            &["exchange-a"],
            Amount(1),
        );
        config.tls_cert = Some("tls/bank.pem".into());
        config.tls_key = Some("/etc/bank.key".into());
        let path = dir.path().join("bank.toml");
        std::fs::write(&path, config.to_toml()).unwrap();
        let loaded = BankConfig::load(&path).unwrap();
        assert_eq!(loaded.tls_cert, Some(dir.path().join("tls/bank.pem")));
        assert_eq!(loaded.tls_key, Some(PathBuf::from("/etc/bank.key")));
        // A config without TLS writes no TLS keys.
        let plain = BankConfig::testnet(
            "127.0.0.1:7400",
            "clearing-house",
            &["exchange-a"],
            Amount(1),
        );
        assert!(!plain.to_toml().contains("tls_"));
    }

    fn access() -> Access {
        Access::new(&BankConfig::testnet(
            "127.0.0.1:0",
            "clearing-house",
            &["exchange-a", "exchange-b"],
            Amount(1_000_000),
        ))
    }

    fn request(from: AccountId, to: AccountId) -> TransferRequest {
        TransferRequest {
            from,
            to,
            amount: Amount(1),
            reference: TransferReference("r".into()),
        }
    }

    #[test]
    fn tokens_identify_parties_and_wrong_tokens_are_refused() {
        let access = access();
        let party = access.authenticate(Some("dev-token-exchange-a")).unwrap();
        assert_eq!(party.name, "exchange-a");
        assert_eq!(
            access
                .authenticate(Some("dev-token-exchange-c"))
                .unwrap_err(),
            BankError::Unauthenticated
        );
        assert_eq!(
            access.authenticate(None).unwrap_err(),
            BankError::Unauthenticated
        );
    }

    #[test]
    fn exchanges_fund_their_own_trust_account_only() {
        let access = access();
        let a = access.authenticate(Some("dev-token-exchange-a")).unwrap();
        let own = request(
            AccountId::operating("exchange-a"),
            AccountId::trust("exchange-a"),
        );
        assert!(access.authorize_transfer(a, &own).is_ok());
        for forbidden in [
            request(
                AccountId::trust("exchange-a"),
                AccountId::operating("exchange-a"),
            ),
            request(
                AccountId::trust("exchange-a"),
                AccountId::trust("exchange-b"),
            ),
            request(
                AccountId::operating("exchange-a"),
                AccountId::trust("exchange-b"),
            ),
            request(
                AccountId::operating("exchange-b"),
                AccountId::trust("exchange-b"),
            ),
        ] {
            assert!(matches!(
                access.authorize_transfer(a, &forbidden),
                Err(BankError::Forbidden { .. })
            ));
        }
        assert!(access
            .authorize_read(a, &AccountId::trust("exchange-a"))
            .is_ok());
        assert!(access
            .authorize_read(a, &AccountId::trust("exchange-b"))
            .is_err());
        assert_eq!(access.visible_accounts(a).len(), 2);
    }

    #[test]
    fn only_the_clearing_house_moves_trust_money() {
        let access = access();
        let house = access
            .authenticate(Some("dev-token-clearing-house"))
            .unwrap();
        for allowed in [
            request(
                AccountId::trust("exchange-a"),
                AccountId::trust("exchange-b"),
            ),
            request(
                AccountId::trust("exchange-a"),
                AccountId::operating("exchange-a"),
            ),
        ] {
            assert!(access.authorize_transfer(house, &allowed).is_ok());
        }
        for forbidden in [
            request(
                AccountId::trust("exchange-a"),
                AccountId::operating("exchange-b"),
            ),
            request(
                AccountId::operating("exchange-a"),
                AccountId::trust("exchange-a"),
            ),
        ] {
            assert!(access.authorize_transfer(house, &forbidden).is_err());
        }
        assert!(access
            .authorize_read(house, &AccountId::trust("exchange-b"))
            .is_ok());
        assert_eq!(access.visible_accounts(house).len(), 6);
    }

    #[test]
    fn an_auditor_reads_every_trust_account_and_nothing_else() {
        let access = Access::new(
            &BankConfig::testnet(
                "127.0.0.1:0",
                "clearing-house",
                &["exchange-a", "exchange-b"],
                Amount(1_000_000),
            )
            .with_dev_auditors(&["clearing-house", "exchange-a"]),
        );
        let auditor = access
            .authenticate(Some(&dev_auditor_token("exchange-a")))
            .unwrap();
        assert_eq!(auditor.name, "exchange-a-auditor");
        assert_eq!(auditor.role, PartyRole::Auditor);
        for party in ["clearing-house", "exchange-a", "exchange-b"] {
            assert!(access
                .authorize_read(auditor, &AccountId::trust(party))
                .is_ok());
            assert!(matches!(
                access.authorize_read(auditor, &AccountId::operating(party)),
                Err(BankError::Forbidden { .. })
            ));
        }
        // Another auditor is not a party with accounts, and no name is readable
        // beyond the config's parties.
        for other in ["clearing-house-auditor", "exchange-c"] {
            assert!(access
                .authorize_read(auditor, &AccountId::trust(other))
                .is_err());
        }
        assert_eq!(
            access.visible_accounts(auditor),
            vec![
                AccountId::trust("clearing-house"),
                AccountId::trust("exchange-a"),
                AccountId::trust("exchange-b"),
            ]
        );
        // It moves no money, not even between the trust accounts it reads.
        for any in [
            request(
                AccountId::trust("exchange-a"),
                AccountId::trust("exchange-b"),
            ),
            request(
                AccountId::operating("exchange-a"),
                AccountId::trust("exchange-a"),
            ),
            request(
                AccountId::trust("exchange-a"),
                AccountId::operating("exchange-a"),
            ),
        ] {
            assert!(matches!(
                access.authorize_transfer(auditor, &any),
                Err(BankError::Forbidden { .. })
            ));
        }
        // The exchange's own token is unchanged by its auditor's existence.
        let a = access.authenticate(Some("dev-token-exchange-a")).unwrap();
        assert!(access
            .authorize_read(a, &AccountId::trust("exchange-b"))
            .is_err());
    }

    #[test]
    fn an_auditor_has_no_opening_balance() {
        let mut config = BankConfig::testnet("127.0.0.1:0", "clearing", &["exchange"], Amount(5))
            .with_dev_auditors(&["exchange"]);
        config.validate().unwrap();
        config.parties[2].opening_operating = Amount(1);
        assert!(config.validate().is_err());
    }

    #[test]
    fn config_round_trips_and_rejects_duplicate_tokens() {
        let config = BankConfig::testnet("127.0.0.1:7400", "ch", &["a", "b"], Amount(5));
        let text = config.to_toml();
        let parsed: BankConfig = toml::from_str(&text).unwrap();
        assert_eq!(parsed, config);
        let mut bad = config.clone();
        bad.parties[2].token = bad.parties[1].token.clone();
        assert!(bad.validate().is_err());
        let mut bad = config;
        bad.parties[1].role = PartyRole::ClearingHouse;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn every_currency_gets_both_accounts_and_the_same_rules() {
        let config =
            BankConfig::testnet("127.0.0.1:0", "clearing", &["exch-a", "exch-b"], Amount(5))
                .with_currency("USD", 2)
                .with_dev_auditors(&["exch-a"]);
        config.validate().unwrap();
        assert_eq!(config.currencies(), vec!["JPY", "USD"]);
        assert_eq!(config.scale_of("USD"), 2);
        let parsed: BankConfig = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(parsed, config);
        let access = Access::new(&config);
        let a = access.authenticate(Some("dev-token-exch-a")).unwrap();
        assert_eq!(
            access.visible_accounts(a),
            vec![
                AccountId::operating("exch-a"),
                AccountId::trust("exch-a"),
                AccountId("exch-a:operating:USD".into()),
                AccountId("exch-a:trust:USD".into()),
            ]
        );
        // An exchange funds its own USD trust account, never another's.
        let own = request(
            AccountId::operating_in("exch-a", "USD"),
            AccountId::trust_in("exch-a", "USD"),
        );
        assert!(access.authorize_transfer(a, &own).is_ok());
        let other = request(
            AccountId::operating_in("exch-a", "USD"),
            AccountId::trust_in("exch-b", "USD"),
        );
        assert!(access.authorize_transfer(a, &other).is_err());
        let auditor = access
            .authenticate(Some(&dev_auditor_token("exch-a")))
            .unwrap();
        assert!(access
            .authorize_read(auditor, &AccountId::trust_in("exch-b", "USD"))
            .is_ok());
        assert!(access
            .authorize_read(auditor, &AccountId::operating_in("exch-b", "USD"))
            .is_err());
        for bad in ["usd", "JPY"] {
            let mut twice = config.clone();
            twice.more_currencies[0].code = bad.into();
            assert!(twice.validate().is_err(), "{bad}");
        }
    }
}
