//! OpenAPI schemas (utoipa) for the types whose JSON form serde does not derive from
//! their Rust shape: hex byte strings, decimal-string amounts, bounded strings.
//!
//! Every other type derives `utoipa::ToSchema` next to its serde derives. The schemas
//! here say exactly what serialization writes, and accept nothing that deserialization
//! (or the contracts, for a value that only ever comes from a valid chain) refuses: the
//! node's API document is generated from them, and schemathesis both generates requests
//! from it and checks every response against it.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

/// A string schema with a pattern and a description.
pub(crate) fn pattern_string(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// `bytes` bytes as the lowercase hex JSON writes (deserialization also takes a `0x`
/// prefix and capitals, which nothing writes).
pub(crate) fn hex_bytes(bytes: usize, description: &str) -> RefOr<Schema> {
    pattern_string(&format!("^[0-9a-f]{{{}}}$", 2 * bytes), description)
}

/// A regular expression matching exactly the canonical decimal forms (no sign, no
/// leading zero) of the whole numbers from 0 to `max`, which must be canonical decimal
/// digits itself.
pub fn decimal_at_most(max: &str) -> String {
    assert!(
        !max.is_empty()
            && max.bytes().all(|b| b.is_ascii_digit())
            && (max == "0" || !max.starts_with('0')),
        "{max:?} is not a canonical decimal"
    );
    let digits: Vec<u8> = max.bytes().map(|b| b - b'0').collect();
    let length = digits.len();
    let mut alternatives = vec!["0".to_string()];
    // Every number with fewer digits than `max`.
    if length >= 2 {
        alternatives.push(format!("[1-9][0-9]{{0,{}}}", length - 2));
    }
    // Numbers of `max`'s length: equal to it up to some position, smaller there, then
    // anything.
    for (position, &digit) in digits.iter().enumerate() {
        let lowest = if position == 0 { 1 } else { 0 };
        if digit > lowest {
            let prefix: String = max[..position].to_string();
            let rest = length - position - 1;
            alternatives.push(format!("{prefix}[{lowest}-{}][0-9]{{{rest}}}", digit - 1));
        }
    }
    if max != "0" {
        alternatives.push(max.to_string());
    }
    format!("^({})$", alternatives.join("|"))
}

/// A `u128` as the decimal string JSON carries it in.
pub(crate) fn u128_decimal(description: &str) -> RefOr<Schema> {
    pattern_string(&decimal_at_most(&u128::MAX.to_string()), description)
}
