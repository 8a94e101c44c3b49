//! Authenticating an API request as a member, with the member's ed25519 key.
//!
//! Two forms, both checked against the member's *current* key (the committed
//! membership, so a key rotated by governance works at once and the old one never
//! again):
//!
//! - **Signed request** (what the CLI, the tests and the tools send): three headers,
//!   [`KEY_HEADER`] (the public key, hex), [`TIMESTAMP_HEADER`] (Unix milliseconds) and
//!   [`SIGNATURE_HEADER`], a signature over the tagged hash of the method, the path with
//!   its query, the timestamp and the SHA-256 of the body ([`request_digest`]). The node
//!   refuses a timestamp more than [`MAX_CLOCK_SKEW_MS`] from its own clock, so a
//!   captured request is worth nothing a few minutes later, and a changed path, query or
//!   body breaks the signature.
//! - **Token** (for tools that can send only a fixed header: schemathesis, a scraper, a
//!   browser): `Authorization: Seisan-Token KEY.EXPIRES_MS.SIGNATURE`, issued by the
//!   member to itself (`seisan auth token`), valid until its expiry and for at most
//!   [`MAX_TOKEN_TTL_MS`]. No node keeps a session: a token is checked like a signature.
//!
//! Like any bearer credential a token and a request can be replayed by whoever sees them
//! while they are valid: run the API behind TLS off a trusted network.

use seisan_types::bytes::{array_from_hex, PublicKey, Signature};
use seisan_types::hash::Hash;
use seisan_types::tags;
use sha2::{Digest, Sha256};

/// The signer's public key, hex.
pub const KEY_HEADER: &str = "seisan-key";
/// When the request was signed, Unix milliseconds.
pub const TIMESTAMP_HEADER: &str = "seisan-timestamp";
/// The signature over [`request_digest`], hex.
pub const SIGNATURE_HEADER: &str = "seisan-signature";
/// The `Authorization` scheme of a self-issued token.
pub const TOKEN_SCHEME: &str = "Seisan-Token";
/// How far a signed request's timestamp may be from the node's clock, either way.
pub const MAX_CLOCK_SKEW_MS: u64 = 120_000;
/// The longest a token may be valid, counted from the node's clock.
pub const MAX_TOKEN_TTL_MS: u64 = 24 * 3_600_000;

/// Why a request is not authenticated: the node answers 401 with [`AuthError::code`]
/// and this message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this endpoint needs a member's credentials: sign the request ({KEY_HEADER}, {TIMESTAMP_HEADER}, {SIGNATURE_HEADER} headers, as the seisan CLI does with --key) or send 'Authorization: {TOKEN_SCHEME} ...' (seisan auth token)")]
    Missing,
    #[error("header {header} is malformed: {reason}")]
    Malformed {
        header: &'static str,
        reason: String,
    },
    #[error("the request was signed at {signed_ms} ms and this node's clock says {now_ms} ms: more than {MAX_CLOCK_SKEW_MS} ms apart (sign each request afresh, and keep clocks in step)")]
    Stale { signed_ms: u64, now_ms: u64 },
    #[error("the signature does not verify with key {key} over this method, path, query, timestamp and body")]
    BadSignature { key: PublicKey },
    #[error("the token expired at {expires_ms} ms (this node's clock says {now_ms} ms); issue a new one with seisan auth token")]
    TokenExpired { expires_ms: u64, now_ms: u64 },
    #[error("the token is valid until {expires_ms} ms, more than {MAX_TOKEN_TTL_MS} ms after this node's clock ({now_ms} ms); issue one with a shorter --ttl")]
    TokenTooLong { expires_ms: u64, now_ms: u64 },
    #[error("the token's signature does not verify with key {key}")]
    BadTokenSignature { key: PublicKey },
}

impl AuthError {
    /// The error code in the node's JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "unauthenticated",
            AuthError::Malformed { .. } => "malformed_credentials",
            AuthError::Stale { .. } => "stale_request",
            AuthError::BadSignature { .. } | AuthError::BadTokenSignature { .. } => "bad_signature",
            AuthError::TokenExpired { .. } => "token_expired",
            AuthError::TokenTooLong { .. } => "token_too_long",
        }
    }
}

/// What a signed request's signature covers.
pub fn request_digest(method: &str, path_and_query: &str, timestamp_ms: u64, body: &[u8]) -> Hash {
    let body_hash: [u8; 32] = Sha256::digest(body).into();
    Hash::tagged(
        tags::SEISAN_HTTP_REQUEST_V1,
        &[
            method.to_ascii_uppercase().as_bytes(),
            path_and_query.as_bytes(),
            timestamp_ms.to_string().as_bytes(),
            &body_hash,
        ],
    )
}

/// What a token's signature covers: its expiry.
pub fn token_digest(expires_ms: u64) -> Hash {
    Hash::tagged(
        tags::SEISAN_HTTP_TOKEN_V1,
        &[expires_ms.to_string().as_bytes()],
    )
}

/// A member's signing key, as a client holds it.
#[derive(Clone, Debug)]
pub struct Credentials {
    keypair: seisan_crypto::Keypair,
}

impl Credentials {
    pub fn new(keypair: seisan_crypto::Keypair) -> Credentials {
        Credentials { keypair }
    }

    pub fn public_key(&self) -> PublicKey {
        self.keypair.public_key()
    }

    /// The headers that authenticate one request (name, value).
    pub fn sign_request(
        &self,
        method: &str,
        path_and_query: &str,
        timestamp_ms: u64,
        body: &[u8],
    ) -> [(&'static str, String); 3] {
        let digest = request_digest(method, path_and_query, timestamp_ms, body);
        let signature = self.keypair.sign_digest(&digest);
        [
            (KEY_HEADER, self.public_key().to_string()),
            (TIMESTAMP_HEADER, timestamp_ms.to_string()),
            (SIGNATURE_HEADER, hex::encode(signature.0)),
        ]
    }

    /// A token valid until `expires_ms`: the whole `Authorization` header value.
    pub fn token(&self, expires_ms: u64) -> String {
        let signature = self.keypair.sign_digest(&token_digest(expires_ms));
        format!(
            "{TOKEN_SCHEME} {}.{expires_ms}.{}",
            self.public_key(),
            hex::encode(signature.0)
        )
    }
}

/// The credential headers of a request, as received (`None`: absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct Presented<'a> {
    pub key: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub authorization: Option<&'a str>,
}

/// Checks a request's credentials; returns the key that signed it. The caller then
/// resolves the key to a current member.
pub fn authenticate(
    presented: Presented<'_>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<PublicKey, AuthError> {
    if let Some(authorization) = presented.authorization {
        if let Some(token) = authorization
            .strip_prefix(TOKEN_SCHEME)
            .and_then(|rest| rest.strip_prefix(' '))
        {
            return check_token(token.trim(), now_ms);
        }
    }
    let (Some(key), Some(timestamp), Some(signature)) =
        (presented.key, presented.timestamp, presented.signature)
    else {
        return Err(
            match (presented.key, presented.timestamp, presented.signature) {
                (None, None, None) => AuthError::Missing,
                _ => AuthError::Malformed {
                    header: if presented.key.is_none() {
                        KEY_HEADER
                    } else if presented.timestamp.is_none() {
                        TIMESTAMP_HEADER
                    } else {
                        SIGNATURE_HEADER
                    },
                    reason: "missing (a signed request carries all three seisan-* headers)"
                        .to_string(),
                },
            },
        );
    };
    let key = parse_key(KEY_HEADER, key)?;
    let signed_ms = parse_ms(TIMESTAMP_HEADER, timestamp)?;
    if signed_ms.abs_diff(now_ms) > MAX_CLOCK_SKEW_MS {
        return Err(AuthError::Stale { signed_ms, now_ms });
    }
    let signature = parse_signature(SIGNATURE_HEADER, signature)?;
    let digest = request_digest(method, path_and_query, signed_ms, body);
    seisan_crypto::verify_digest(&key, &digest, &signature)
        .map_err(|_| AuthError::BadSignature { key })?;
    Ok(key)
}

fn check_token(token: &str, now_ms: u64) -> Result<PublicKey, AuthError> {
    const HEADER: &str = "authorization";
    let mut parts = token.split('.');
    let (Some(key), Some(expires), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed {
            header: HEADER,
            reason: format!("a {TOKEN_SCHEME} is KEY.EXPIRES_MS.SIGNATURE"),
        });
    };
    let key = parse_key(HEADER, key)?;
    let expires_ms = parse_ms(HEADER, expires)?;
    let signature = parse_signature(HEADER, signature)?;
    seisan_crypto::verify_digest(&key, &token_digest(expires_ms), &signature)
        .map_err(|_| AuthError::BadTokenSignature { key })?;
    if expires_ms <= now_ms {
        return Err(AuthError::TokenExpired { expires_ms, now_ms });
    }
    if expires_ms - now_ms > MAX_TOKEN_TTL_MS {
        return Err(AuthError::TokenTooLong { expires_ms, now_ms });
    }
    Ok(key)
}

fn parse_key(header: &'static str, text: &str) -> Result<PublicKey, AuthError> {
    array_from_hex::<32>(text.trim())
        .map(PublicKey)
        .map_err(|reason| AuthError::Malformed {
            header,
            reason: format!("the public key: {reason}"),
        })
}

fn parse_signature(header: &'static str, text: &str) -> Result<Signature, AuthError> {
    array_from_hex::<64>(text.trim())
        .map(Signature)
        .map_err(|reason| AuthError::Malformed {
            header,
            reason: format!("the signature: {reason}"),
        })
}

fn parse_ms(header: &'static str, text: &str) -> Result<u64, AuthError> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| AuthError::Malformed {
            header,
            reason: format!("{text:?} is not Unix milliseconds"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn credentials() -> Credentials {
        Credentials::new(seisan_crypto::Keypair::from_seed([7; 32]))
    }

    fn presented<'a>(headers: &'a [(&'static str, String); 3]) -> Presented<'a> {
        Presented {
            key: Some(&headers[0].1),
            timestamp: Some(&headers[1].1),
            signature: Some(&headers[2].1),
            authorization: None,
        }
    }

    #[test]
    fn a_signed_request_names_its_key_and_nothing_in_it_can_change() {
        let credentials = credentials();
        let headers = credentials.sign_request("GET", "/v1/trades?limit=5", NOW, b"");
        let key = authenticate(presented(&headers), "GET", "/v1/trades?limit=5", b"", NOW)
            .expect("verifies");
        assert_eq!(key, credentials.public_key());
        let changed = [
            ("POST", "/v1/trades?limit=5", &b""[..]),
            ("GET", "/v1/trades?limit=6", &b""[..]),
            ("GET", "/v1/trades", &b""[..]),
            ("GET", "/v1/trades?limit=5", &b"{}"[..]),
        ];
        for (method, path, body) in changed {
            assert_eq!(
                authenticate(presented(&headers), method, path, body, NOW),
                Err(AuthError::BadSignature { key }),
                "{method} {path} {body:?}"
            );
        }
    }

    #[test]
    fn a_request_signed_too_long_ago_or_ahead_is_stale() {
        let headers = credentials().sign_request("GET", "/v1/x", NOW, b"");
        let late = NOW + MAX_CLOCK_SKEW_MS + 1;
        assert_eq!(
            authenticate(presented(&headers), "GET", "/v1/x", b"", late),
            Err(AuthError::Stale {
                signed_ms: NOW,
                now_ms: late
            })
        );
        let early = NOW - MAX_CLOCK_SKEW_MS - 1;
        assert!(matches!(
            authenticate(presented(&headers), "GET", "/v1/x", b"", early),
            Err(AuthError::Stale { .. })
        ));
        assert!(authenticate(
            presented(&headers),
            "GET",
            "/v1/x",
            b"",
            NOW + MAX_CLOCK_SKEW_MS
        )
        .is_ok());
    }

    #[test]
    fn missing_and_partial_credentials_are_named() {
        assert_eq!(
            authenticate(Presented::default(), "GET", "/v1/x", b"", NOW),
            Err(AuthError::Missing)
        );
        let headers = credentials().sign_request("GET", "/v1/x", NOW, b"");
        let mut partial = presented(&headers);
        partial.signature = None;
        assert!(matches!(
            authenticate(partial, "GET", "/v1/x", b"", NOW),
            Err(AuthError::Malformed {
                header: SIGNATURE_HEADER,
                ..
            })
        ));
        let mut garbled = presented(&headers);
        garbled.key = Some("zz");
        assert!(matches!(
            authenticate(garbled, "GET", "/v1/x", b"", NOW),
            Err(AuthError::Malformed {
                header: KEY_HEADER,
                ..
            })
        ));
    }

    #[test]
    fn a_token_works_until_it_expires_and_not_beyond_the_longest_lifetime() {
        let credentials = credentials();
        let token = credentials.token(NOW + 60_000);
        let with = |authorization: &str, now| {
            authenticate(
                Presented {
                    authorization: Some(authorization),
                    ..Presented::default()
                },
                "GET",
                "/v1/anything",
                b"",
                now,
            )
        };
        assert_eq!(with(&token, NOW), Ok(credentials.public_key()));
        assert!(matches!(
            with(&token, NOW + 60_000),
            Err(AuthError::TokenExpired { .. })
        ));
        let long = credentials.token(NOW + MAX_TOKEN_TTL_MS + 1);
        assert!(matches!(
            with(&long, NOW),
            Err(AuthError::TokenTooLong { .. })
        ));
        // Another expiry under the same signature is refused.
        let forged = token.replace(
            &format!(".{}.", NOW + 60_000),
            &format!(".{}.", NOW + 90_000),
        );
        assert!(matches!(
            with(&forged, NOW),
            Err(AuthError::BadTokenSignature { .. })
        ));
        assert!(matches!(
            with("Seisan-Token nonsense", NOW),
            Err(AuthError::Malformed { .. })
        ));
    }
}
