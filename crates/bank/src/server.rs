//! The embedded bank's HTTP API (axum), the shell around [`BankStore`] and [`Access`].
//!
//! Every route but `/v1/health` needs `Authorization: Bearer <token>`; errors are
//! `{"error": {"code", "message", "detail"}}` where `detail` is the
//! [`BankError`] itself, so the client gets the typed error back.
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/health` | liveness |
//! | `GET /v1/accounts` | balances of the accounts the caller may read |
//! | `GET /v1/accounts/{account}` | one balance |
//! | `GET /v1/accounts/{account}/statement?after=N` | entries after sequence N |
//! | `GET /v1/accounts/{account}/camt053?from=YYYY-MM-DD&to=YYYY-MM-DD` | camt.053 XML |
//! | `POST /v1/transfers` | a [`TransferRequest`]; 201 when executed, 200 for a repeat |
//! | `GET /v1/transfers/{reference}` | the receipt of an executed transfer, to a party that may read either side |

use crate::access::{Access, BankConfig};
use crate::adapter::{AccountId, BankError, TransferReference, TransferRequest};
use crate::camt::{
    camt053, date_end_ms, date_start_ms, days_between, parse_date, StatementRequest,
};
use crate::store::BankStore;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

/// The longest date range one camt.053 export may cover, in days.
pub const MAX_STATEMENT_DAYS: i64 = 366;

/// The running bank: books, rules and config.
#[derive(Debug)]
pub struct Bank {
    pub store: BankStore,
    pub access: Access,
    pub config: BankConfig,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

impl Bank {
    /// Opens the books in `config.data_dir` and opens every party's accounts, in every
    /// currency of the config, that do not exist yet (existing ones are left as they
    /// are, so adding a currency to a running bank's config opens only its accounts).
    pub fn open(config: BankConfig) -> Result<Bank, BankError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|error| BankError::Unavailable {
            reason: format!("creating {}: {error}", config.data_dir.display()),
        })?;
        let store = BankStore::open(&config.data_dir)?;
        let now = now_ms();
        for party in config
            .parties
            .iter()
            .filter(|party| party.role.holds_accounts())
        {
            for currency in config.currencies() {
                store.open_account(
                    &AccountId::operating_in(&party.name, currency),
                    currency,
                    party.opening_operating,
                    now,
                )?;
                store.open_account(
                    &AccountId::trust_in(&party.name, currency),
                    currency,
                    seisan_types::Amount::ZERO,
                    now,
                )?;
            }
        }
        Ok(Bank {
            access: Access::new(&config),
            store,
            config,
        })
    }
}

/// A [`BankError`] as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub BankError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            BankError::Unauthenticated => StatusCode::UNAUTHORIZED,
            BankError::Forbidden { .. } => StatusCode::FORBIDDEN,
            BankError::UnknownAccount { .. } => StatusCode::NOT_FOUND,
            BankError::InsufficientFunds { .. } | BankError::CurrencyMismatch { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            BankError::ReferenceConflict { .. } => StatusCode::CONFLICT,
            BankError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            BankError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = serde_json::json!({"error": {
            "code": self.0.code(),
            "message": self.0.to_string(),
            "detail": self.0,
        }});
        (status, Json(body)).into_response()
    }
}

impl From<BankError> for ApiError {
    fn from(error: BankError) -> ApiError {
        ApiError(error)
    }
}

type Shared = Arc<Bank>;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The bank's router.
pub fn router(bank: Arc<Bank>) -> Router {
    Router::new()
        .route(
            "/v1/health",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .route("/v1/accounts", get(list_accounts))
        .route("/v1/accounts/{account}", get(account_balance))
        .route("/v1/accounts/{account}/statement", get(statement))
        .route("/v1/accounts/{account}/camt053", get(export_camt053))
        .route("/v1/transfers", post(transfer))
        .route("/v1/transfers/{reference}", get(transfer_by_reference))
        .with_state(bank)
}

async fn list_accounts(
    State(bank): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let party = bank.access.authenticate(bearer(&headers))?;
    let balances = bank
        .access
        .visible_accounts(party)
        .iter()
        .map(|account| bank.store.balance(account))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(balances).into_response())
}

async fn account_balance(
    State(bank): State<Shared>,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    let party = bank.access.authenticate(bearer(&headers))?;
    let account = AccountId(account);
    bank.access.authorize_read(party, &account)?;
    Ok(Json(bank.store.balance(&account)?).into_response())
}

#[derive(Debug, Deserialize)]
struct StatementQuery {
    #[serde(default)]
    after: u64,
}

async fn statement(
    State(bank): State<Shared>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(query): Query<StatementQuery>,
) -> Result<Response, ApiError> {
    let party = bank.access.authenticate(bearer(&headers))?;
    let account = AccountId(account);
    bank.access.authorize_read(party, &account)?;
    Ok(Json(bank.store.statement(&account, query.after)?).into_response())
}

#[derive(Debug, Deserialize)]
struct RangeQuery {
    from: String,
    to: String,
}

async fn export_camt053(
    State(bank): State<Shared>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(query): Query<RangeQuery>,
) -> Result<Response, ApiError> {
    let party = bank.access.authenticate(bearer(&headers))?;
    let account = AccountId(account);
    bank.access.authorize_read(party, &account)?;
    let parse = |text: &str| {
        parse_date(text).ok_or_else(|| BankError::InvalidRequest {
            reason: format!("{text:?} is not a date YYYY-MM-DD from 1970 on"),
        })
    };
    let (from, to) = (parse(&query.from)?, parse(&query.to)?);
    let days = days_between(from, to);
    if !(0..MAX_STATEMENT_DAYS).contains(&days) {
        return Err(BankError::InvalidRequest {
            reason: format!(
                "the range must run forward and cover at most {MAX_STATEMENT_DAYS} days"
            ),
        }
        .into());
    }
    let end_ms = date_end_ms(to);
    let (opening, entries) = bank
        .store
        .statement_range(&account, date_start_ms(from), end_ms)?;
    let record = bank.store.account(&account)?;
    let xml = camt053(&StatementRequest {
        bank_name: &bank.config.bank_name,
        account: &account,
        currency: &record.currency,
        scale: bank.config.scale_of(&record.currency),
        from,
        to,
        opening,
        entries: &entries,
        created_ms: now_ms(),
    });
    Ok(([(header::CONTENT_TYPE, "application/xml")], xml).into_response())
}

async fn transfer(
    State(bank): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let party = bank.access.authenticate(bearer(&headers))?;
    let request: TransferRequest =
        serde_json::from_slice(&body).map_err(|error| BankError::InvalidRequest {
            reason: format!("body is not a transfer request: {error}"),
        })?;
    bank.access.authorize_transfer(party, &request)?;
    let receipt = bank.store.transfer(&request, now_ms())?;
    let status = if receipt.duplicate {
        StatusCode::OK
    } else {
        tracing::info!(
            party = %party.name,
            from = %request.from,
            to = %request.to,
            amount = %request.amount,
            reference = %request.reference,
            "bank.transfer executed"
        );
        StatusCode::CREATED
    };
    Ok((status, Json(receipt)).into_response())
}

async fn transfer_by_reference(
    State(bank): State<Shared>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Result<Response, ApiError> {
    let party = bank.access.authenticate(bearer(&headers))?;
    let receipt = bank
        .store
        .transfer_by_reference(&TransferReference(reference.clone()))?;
    match receipt {
        Some(receipt) => {
            // Either side's owner may read the transfer: the payee's validator must
            // see a mirrored settlement's confirmation as much as the payer's.
            bank.access
                .authorize_read(party, &receipt.request.from)
                .or_else(|_| bank.access.authorize_read(party, &receipt.request.to))?;
            Ok(Json(receipt).into_response())
        }
        None => Ok((
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": {
                "code": "unknown_reference",
                "message": format!("no transfer was executed under reference {reference}"),
            }})),
        )
            .into_response()),
    }
}

/// Opens the bank and serves its API on `config.listen` until `shutdown` resolves.
pub async fn serve(
    config: BankConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), BankError> {
    let listen = config.listen.clone();
    // A bad certificate or key stops the bank before it opens its books.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(seisan_tls::server_config(cert, key).map_err(|error| {
            BankError::InvalidRequest {
                reason: error.to_string(),
            }
        })?),
        (None, None) => None,
        _ => {
            return Err(BankError::InvalidRequest {
                reason: "tls_cert and tls_key go together: set both or neither".into(),
            })
        }
    };
    let bank = Arc::new(Bank::open(config)?);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|error| BankError::Unavailable {
            reason: format!("binding {listen}: {error}"),
        })?;
    tracing::info!(listen = %listen, tls = tls.is_some(), data = %bank.config.data_dir.display(), "bank.serve listening");
    seisan_tls::serve(listener, tls, router(bank), shutdown)
        .await
        .map_err(|error| BankError::Unavailable {
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::dev_token;
    use crate::adapter::{BankAdapter, TransferReference};
    use crate::client::HttpBank;
    use seisan_types::Amount;

    /// Starts the bank on a free port; returns its URL and the runtime serving it.
    fn start(dir: &std::path::Path) -> (String, tokio::runtime::Runtime) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mut config = BankConfig::testnet(
            "127.0.0.1:0",
            "clearing-house",
            &["a-exchange", "b-exchange"],
            Amount(1000),
        );
        config.data_dir = dir.to_path_buf();
        let bank = Arc::new(Bank::open(config).unwrap());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, router(bank)).await });
        (url, runtime)
    }

    #[test]
    fn http_api_enforces_tokens_rules_and_idempotency() {
        let dir = tempfile::tempdir().unwrap();
        let (url, _runtime) = start(dir.path());
        let a = HttpBank::new(&url, &dev_token("a-exchange"));
        let house = HttpBank::new(&url, &dev_token("clearing-house"));
        let stranger = HttpBank::new(&url, "not-a-token-at-all");
        let deposit = TransferRequest {
            from: AccountId::operating("a-exchange"),
            to: AccountId::trust("a-exchange"),
            amount: Amount(200),
            reference: TransferReference("dep-1".into()),
        };
        assert_eq!(
            stranger.transfer(&deposit).unwrap_err(),
            BankError::Unauthenticated
        );
        assert_eq!(
            stranger
                .balance(&AccountId::trust("a-exchange"))
                .unwrap_err(),
            BankError::Unauthenticated
        );
        assert_eq!(
            house
                .balance(&AccountId::trust("a-exchange"))
                .unwrap()
                .balance,
            Amount(0)
        );
        assert!(!a.transfer(&deposit).unwrap().duplicate);
        assert!(a.transfer(&deposit).unwrap().duplicate);
        let mut conflicting = deposit.clone();
        conflicting.amount = Amount(300);
        assert!(matches!(
            a.transfer(&conflicting).unwrap_err(),
            BankError::ReferenceConflict { .. }
        ));
        let to_b = TransferRequest {
            from: AccountId::trust("a-exchange"),
            to: AccountId::trust("b-exchange"),
            amount: Amount(100),
            reference: TransferReference("settle-1".into()),
        };
        assert!(matches!(
            a.transfer(&to_b).unwrap_err(),
            BankError::Forbidden { .. }
        ));
        assert!(matches!(
            a.balance(&AccountId::trust("b-exchange")).unwrap_err(),
            BankError::Forbidden { .. }
        ));
        assert!(matches!(
            house.balance(&AccountId::trust("zz")).unwrap_err(),
            BankError::UnknownAccount { .. }
        ));
        house.transfer(&to_b).unwrap();
        assert_eq!(
            a.balance(&AccountId::trust("a-exchange")).unwrap().balance,
            Amount(100)
        );
        assert_eq!(
            house
                .balance(&AccountId::trust("b-exchange"))
                .unwrap()
                .balance,
            Amount(100)
        );
        assert_eq!(
            a.balance(&AccountId::operating("a-exchange"))
                .unwrap()
                .balance,
            Amount(800)
        );
        let statement = a.statement(&AccountId::trust("a-exchange"), 0).unwrap();
        assert_eq!(statement.len(), 2);
        assert_eq!(statement[1].reference.0, "settle-1");
        assert!(house
            .transfer_by_reference(&TransferReference("settle-1".into()))
            .unwrap()
            .is_some());
        assert!(house
            .transfer_by_reference(&TransferReference("never".into()))
            .unwrap()
            .is_none());
        // Both sides of a transfer may read its receipt (a mirrored settlement's payer
        // and payee each attest it); a party on neither side may not.
        let b = HttpBank::new(&url, &dev_token("b-exchange"));
        let settle = TransferReference("settle-1".into());
        let seen_by_payer = a.transfer_by_reference(&settle).unwrap().unwrap();
        let seen_by_payee = b.transfer_by_reference(&settle).unwrap().unwrap();
        assert_eq!(seen_by_payer, seen_by_payee);
        assert!(matches!(
            b.transfer_by_reference(&TransferReference("dep-1".into())),
            Err(BankError::Forbidden { .. })
        ));
        let today = crate::camt::date_of_ms(now_ms()).to_string();
        let xml = a
            .camt053(&AccountId::trust("a-exchange"), &today, &today)
            .unwrap();
        assert!(xml.contains("<EndToEndId>dep-1</EndToEndId>"), "{xml}");
        crate::camt::tests::assert_valid_camt053(&xml);
        assert!(xml.contains("<CdtDbtInd>DBIT</CdtDbtInd>"));
        assert_eq!(a.accounts().unwrap().len(), 2);
    }
}
