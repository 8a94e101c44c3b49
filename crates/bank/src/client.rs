//! [`HttpBank`]: the [`BankAdapter`] over the embedded bank's HTTP API (blocking, ureq).
//!
//! A transport failure is [`BankError::Unavailable`]; a refusal by the bank comes back
//! as the bank's own typed [`BankError`]. Retrying a transfer after `Unavailable` with
//! the same reference is safe (the bank deduplicates by reference).

use crate::adapter::{
    AccountBalance, AccountId, BankAdapter, BankError, Entry, TransferReceipt, TransferReference,
    TransferRequest,
};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long one HTTP call to the bank may take.
pub const BANK_CALL_TIMEOUT_MS: u64 = 10_000;

/// A client of the embedded bank, acting as the party whose token it holds.
#[derive(Clone, Debug)]
pub struct HttpBank {
    base_url: String,
    token: String,
    agent: ureq::Agent,
}

fn unavailable(error: impl std::fmt::Display) -> BankError {
    BankError::Unavailable {
        reason: error.to_string(),
    }
}

/// Path-segment encoding for account ids and references (printable ASCII).
fn segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl HttpBank {
    pub fn new(base_url: &str, token: &str) -> HttpBank {
        let agent = Self::agent(ureq::tls::TlsConfig::default());
        HttpBank {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent,
        }
    }

    /// This client with `tls` for `https://` URLs (a CA to trust, see
    /// `seisan_tls::client_tls`); without it the webpki roots are trusted.
    pub fn with_tls(mut self, tls: ureq::tls::TlsConfig) -> HttpBank {
        self.agent = Self::agent(tls);
        self
    }

    fn agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(BANK_CALL_TIMEOUT_MS)))
            .tls_config(tls)
            .build()
            .into()
    }

    fn decode<T: DeserializeOwned>(
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<(u16, T), BankError> {
        let status = response.status().as_u16();
        let body: serde_json::Value = response.body_mut().read_json().map_err(unavailable)?;
        if (200..300).contains(&status) {
            let value = serde_json::from_value(body).map_err(unavailable)?;
            return Ok((status, value));
        }
        match serde_json::from_value::<BankError>(body["error"]["detail"].clone()) {
            Ok(error) => Err(error),
            Err(_) => Err(BankError::Unavailable {
                reason: format!("bank answered {status}: {body}"),
            }),
        }
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, BankError> {
        let response = self
            .agent
            .get(format!("{}{path}", self.base_url))
            .header("authorization", format!("Bearer {}", self.token))
            .call()
            .map_err(unavailable)?;
        Self::decode(response).map(|(_, value)| value)
    }

    /// Balances of every account this party may read.
    pub fn accounts(&self) -> Result<Vec<AccountBalance>, BankError> {
        self.get("/v1/accounts")
    }

    /// The camt.053 XML of `account` for the inclusive date range.
    pub fn camt053(&self, account: &AccountId, from: &str, to: &str) -> Result<String, BankError> {
        let mut response = self
            .agent
            .get(format!(
                "{}/v1/accounts/{}/camt053?from={}&to={}",
                self.base_url,
                segment(&account.0),
                segment(from),
                segment(to)
            ))
            .header("authorization", format!("Bearer {}", self.token))
            .call()
            .map_err(unavailable)?;
        if response.status().as_u16() != 200 {
            return Self::decode::<serde_json::Value>(response).map(|_| String::new());
        }
        response.body_mut().read_to_string().map_err(unavailable)
    }
}

impl BankAdapter for HttpBank {
    fn balance(&self, account: &AccountId) -> Result<AccountBalance, BankError> {
        self.get(&format!("/v1/accounts/{}", segment(&account.0)))
    }

    fn statement(&self, account: &AccountId, after: u64) -> Result<Vec<Entry>, BankError> {
        self.get(&format!(
            "/v1/accounts/{}/statement?after={after}",
            segment(&account.0)
        ))
    }

    fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, BankError> {
        let body = serde_json::to_vec(request).expect("transfer request serialises");
        let response = self
            .agent
            .post(format!("{}/v1/transfers", self.base_url))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .send(&body[..])
            .map_err(unavailable)?;
        Self::decode(response).map(|(_, receipt)| receipt)
    }

    fn transfer_by_reference(
        &self,
        reference: &TransferReference,
    ) -> Result<Option<TransferReceipt>, BankError> {
        let response = self
            .agent
            .get(format!(
                "{}/v1/transfers/{}",
                self.base_url,
                segment(&reference.0)
            ))
            .header("authorization", format!("Bearer {}", self.token))
            .call()
            .map_err(unavailable)?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        Self::decode(response).map(|(_, receipt)| Some(receipt))
    }
}
