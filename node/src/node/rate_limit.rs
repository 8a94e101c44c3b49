//! Rate limits on the HTTP API: a token bucket per client address for every request,
//! and one per member for `POST /v1/transactions`, keyed by the transaction's signer
//! and charged only when its signature verifies, so a forger cannot spend another
//! member's allowance (the API has no authentication yet; once it does, the caller's
//! member). A client over
//! its limit gets 429 `rate_limited` with `Retry-After` (whole seconds until its next
//! token), and every other client is unaffected: each key has its own bucket.
//!
//! A bucket holds up to `BURST_SECONDS` seconds of its rate and refills continuously.
//! The defaults are generous: the suite, the chaos run and the benchmark submit
//! thousands of transactions a second through one loopback address, and a node behind a
//! proxy sees every client at the proxy's address. An operator sets them in the node
//! config (`rate_limit_per_address`, `rate_limit_per_member`; 0 turns a limit off).

use super::admission::AdmissionError;
use super::api::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use seisan_types::ids::MemberId;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests per second one client address may make, by default.
pub const DEFAULT_PER_ADDRESS: u32 = 5_000;
/// Transactions per second one member may submit through `POST /v1/transactions`, by
/// default.
pub const DEFAULT_PER_MEMBER: u32 = 2_000;
/// A bucket holds this many seconds of its rate: a quiet client may send a burst.
pub const BURST_SECONDS: u32 = 2;
/// The most keys (addresses or members) tracked at once. Past it, buckets that are full
/// again (equivalent to a new one) are dropped; if every one is still draining (a flood
/// from this many addresses), all are dropped and start full.
pub const MAX_TRACKED_KEYS: usize = 65_536;

/// The configured limits, per second; 0 is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per second per client address, on every endpoint.
    pub per_address: u32,
    /// Transactions per second per member on `POST /v1/transactions`.
    pub per_member: u32,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            per_address: DEFAULT_PER_ADDRESS,
            per_member: DEFAULT_PER_MEMBER,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets of one rate, one per key.
#[derive(Debug)]
pub struct Buckets<K> {
    per_second: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Copy> Buckets<K> {
    /// Buckets refilling at `per_second` (0: unlimited).
    pub fn new(per_second: u32) -> Buckets<K> {
        Buckets {
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_second) * f64::from(BURST_SECONDS)
    }

    /// Takes one token of `key`'s bucket at `now`, or says how long until one is back.
    pub fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        if self.per_second == 0 {
            return Ok(());
        }
        let capacity = self.capacity();
        let rate = f64::from(self.per_second);
        let mut buckets = self.buckets.lock().expect("rate-limit lock");
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(&key) {
            buckets.retain(|_, bucket| {
                let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
                bucket.tokens + elapsed * rate < capacity
            });
            if buckets.len() >= MAX_TRACKED_KEYS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// The API's limiters, shared by every request.
#[derive(Debug)]
pub struct RateLimiter {
    pub limits: RateLimits,
    addresses: Buckets<IpAddr>,
    members: Buckets<MemberId>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> RateLimiter {
        RateLimiter {
            limits,
            addresses: Buckets::new(limits.per_address),
            members: Buckets::new(limits.per_member),
        }
    }

    /// One request from `address`, or the 429 to answer.
    pub fn request_from(&self, address: IpAddr) -> Result<(), ApiError> {
        self.addresses
            .take(address, Instant::now())
            .map_err(|wait| {
                refusal(
                    wait,
                    format!(
                        "more than {} requests per second from {address}",
                        self.limits.per_address
                    ),
                )
            })
    }

    /// One transaction signed by `member` (admission calls this once the signature
    /// verified, so the signature is checked once per node), or the refusal: 429
    /// `rate_limited` with `Retry-After`.
    pub fn transaction_of(&self, member: MemberId) -> Result<(), AdmissionError> {
        self.members
            .take(member, Instant::now())
            .map_err(|wait| AdmissionError::RateLimited {
                member,
                per_second: self.limits.per_member,
                retry_after_s: retry_after_s(wait),
            })
    }
}

/// Whole seconds until the next token (at least 1).
fn retry_after_s(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// 429 `rate_limited`, `Retry-After` the whole seconds until the next token (at least 1).
fn refusal(wait: Duration, what: String) -> ApiError {
    let seconds = retry_after_s(wait);
    ApiError {
        retry_after_s: Some(seconds),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{what}; retry after {seconds} s"),
        )
    }
}

/// Middleware: refuses a request over its address's limit before anything reads it.
/// Without the peer's address (a server not started with connect info) it lets the
/// request through.
pub async fn limit_by_address(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    if let Some(address) = peer {
        if let Err(error) = limiter.request_from(address) {
            return error.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_and_keys_are_independent() {
        let buckets = Buckets::<u8>::new(10);
        let start = Instant::now();
        for _ in 0..10 * BURST_SECONDS {
            assert!(buckets.take(1, start).is_ok());
        }
        let wait = buckets.take(1, start).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another key is unaffected by the first one's flood.
        assert!(buckets.take(2, start).is_ok());
        // A tenth of a second later one token is back, and only one.
        let later = start + Duration::from_millis(100);
        assert!(buckets.take(1, later).is_ok());
        assert!(buckets.take(1, later).is_err());
        // A quiet key refills to its burst, not beyond.
        let much_later = start + Duration::from_secs(60);
        for _ in 0..10 * BURST_SECONDS {
            assert!(buckets.take(1, much_later).is_ok());
        }
        assert!(buckets.take(1, much_later).is_err());
    }

    #[test]
    fn zero_is_no_limit_and_a_refusal_is_a_429_with_retry_after() {
        let unlimited = Buckets::<u8>::new(0);
        let now = Instant::now();
        for _ in 0..100_000 {
            assert!(unlimited.take(1, now).is_ok());
        }
        let limiter = RateLimiter::new(RateLimits {
            per_address: 1,
            per_member: 1,
        });
        let address: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(limiter.request_from(address).is_ok());
        assert!(limiter.request_from(address).is_ok());
        let error = limiter.request_from(address).unwrap_err();
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.code, "rate_limited");
        assert_eq!(error.retry_after_s, Some(1));
        assert!(error.message.contains("127.0.0.2"), "{}", error.message);
        assert!(limiter.transaction_of(MemberId(1)).is_ok());
        assert!(limiter.transaction_of(MemberId(1)).is_ok());
        assert!(limiter.transaction_of(MemberId(1)).is_err());
        assert!(limiter.transaction_of(MemberId(2)).is_ok());
    }

    #[test]
    fn the_tracked_keys_are_bounded() {
        let buckets = Buckets::<u32>::new(1);
        let now = Instant::now();
        for key in 0..MAX_TRACKED_KEYS as u32 + 10 {
            let _ = buckets.take(key, now);
        }
        let tracked = buckets.buckets.lock().unwrap().len();
        assert!(tracked <= MAX_TRACKED_KEYS, "{tracked}");
    }
}
