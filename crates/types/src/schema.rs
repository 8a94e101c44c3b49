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

/// An unsigned integer id (a `#[serde(transparent)]` newtype over `u32` or `u64`): a
/// JSON number from `minimum` to the integer's largest value `max` (serde refuses
/// anything past it), described by the id's doc comment lines.
pub(crate) fn unsigned_id(docs: &[&str], max: u64, minimum: u64) -> RefOr<Schema> {
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
    let format = if max == u64::from(u32::MAX) {
        KnownFormat::UInt32
    } else {
        KnownFormat::UInt64
    };
    let description: Vec<&str> = docs.iter().map(|line| line.trim()).collect();
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .format(Some(SchemaFormat::KnownFormat(format)))
        .minimum(Some(minimum))
        .maximum(Some(max))
        .description(Some(description.join("\n")))
        .into()
}

/// Implements the schema of an unsigned integer id (see [`unsigned_id`]):
/// `id_schema!(Name, inner integer type, minimum, doc lines...)`.
macro_rules! id_schema {
    ($name:ident, $inner:ty, $minimum:expr, $($doc:expr),* $(,)?) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schema::unsigned_id(&[$($doc),*], u64::from(<$inner>::MAX), $minimum)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use id_schema;

/// A `u128` as the decimal string JSON carries it in.
pub(crate) fn u128_decimal(description: &str) -> RefOr<Schema> {
    pattern_string(&decimal_at_most(&u128::MAX.to_string()), description)
}

/// A reference to `T`'s component, for a tuple element.
pub fn one<T: utoipa::ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
}

/// An array of references to `T`'s component, for a tuple element.
pub fn many<T: utoipa::ToSchema>() -> RefOr<Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(one::<T>())
        .into()
}

/// `T`'s component and every one it references, for a tuple's
/// [`utoipa::ToSchema::schemas`].
pub fn collect<T: utoipa::ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// Declares the schema of a tuple, which JSON writes as an array of exactly its
/// elements (serde refuses a shorter or longer one): a schema-only type that a field
/// names with `#[schema(value_type = ...)]`. utoipa's own tuple schemas inline their
/// elements without registering the components those reference, and allow fewer
/// elements; these reference each element (`one T` or an array of it, `many T`).
macro_rules! tuple_schema {
    ($(#[$meta:meta])* $name:ident, $description:literal, [$($kind:ident $element:ty),+ $(,)?]) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                // A prefix item is a schema, not a reference: each reference is
                // wrapped in an `allOf` of one.
                let elements: Vec<Schema> = vec![$(
                    Schema::AllOf(
                        utoipa::openapi::schema::AllOfBuilder::new()
                            .item($kind::<$element>())
                            .build(),
                    )
                ),+];
                let count = elements.len();
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(utoipa::openapi::schema::ArrayItems::False)
                    .prefix_items(elements)
                    .min_items(Some(count))
                    .max_items(Some(count))
                    .description(Some($description))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                $(collect::<$element>(schemas);)+
            }
        }
    };
}

use crate::bank::BankFact;
use crate::bytes::{PublicKey, Signature};
use crate::clearing::RemovalReason;
use crate::custody::{DepositFact, DepositOutcome};
use crate::ids::{AssetId, MemberId};
use crate::mirror::MirrorFact;

tuple_schema!(
    /// `(MemberId, Signature)`: one validator's signature in a quorum certificate.
    MemberSignature,
    "A validator and its signature: [member, signature].",
    [one MemberId, one Signature]
);
tuple_schema!(
    /// `(MemberId, PublicKey)`: one validator of a validator set.
    ValidatorKey,
    "A validator and its key: [member, public key].",
    [one MemberId, one PublicKey]
);
tuple_schema!(
    /// `(MemberId, MemberId)`: the two parties of a bilateral confirmation.
    MemberPair,
    "The two parties of a trade: [member, member].",
    [one MemberId, one MemberId]
);
tuple_schema!(
    /// `(MemberId, AssetId)`: a member short in an asset.
    MemberAsset,
    "A member and an asset: [member, asset].",
    [one MemberId, one AssetId]
);
tuple_schema!(
    /// `(MemberId, RemovalReason)`: a member removed from a settlement cycle.
    MemberRemoval,
    "A member removed from a cycle and why: [member, reason].",
    [one MemberId, one RemovalReason]
);
tuple_schema!(
    /// `(MemberId, BankFact)`: one validator's attestation of a bank entry.
    BankAttestation,
    "A validator and the bank entry it attested: [member, fact].",
    [one MemberId, one BankFact]
);
tuple_schema!(
    /// `(MemberId, MirrorFact)`: one validator's attestation of a mirror transfer.
    MirrorAttestation,
    "A validator and the bank transfer it attested: [member, fact].",
    [one MemberId, one MirrorFact]
);
tuple_schema!(
    /// `(DepositFact, Vec<MemberId>)`: one version of a deposit's facts and who
    /// attested it.
    DepositVersion,
    "A version of a deposit's facts and the validators that attested it: [fact, [member, ...]].",
    [one DepositFact, many MemberId]
);
tuple_schema!(
    /// `(DepositFact, DepositOutcome)`: the facts a deposit was acted on with, and what
    /// became of it.
    DepositSettled,
    "The facts a deposit was acted on with and what became of it: [fact, outcome].",
    [one DepositFact, one DepositOutcome]
);

/// Closes the variant objects of an externally tagged enum's schema (serde's default
/// enum form, `{"variant": content}`): serde refuses any key beside the variant's, but
/// utoipa's derive leaves the object open (it has no attribute for it). Touches only a
/// `oneOf` whose every alternative is a string `enum` (unit variants) or an inline
/// object with exactly one property, which is required and not otherwise restricted;
/// an untagged enum of referenced types, or anything else, is left as it is.
///
/// For the API document: apply to each component (every enum of seisan-types,
/// seisan-contracts and seisan-consensus is externally tagged).
pub fn close_tagged_variants(schema: &mut RefOr<Schema>) {
    use utoipa::openapi::schema::AdditionalProperties;
    let RefOr::T(Schema::OneOf(one_of)) = schema else {
        return;
    };
    let is_wrapper = |item: &RefOr<Schema>| match item {
        RefOr::T(Schema::Object(object)) => {
            object.properties.len() == 1
                && object.required.len() == 1
                && object.properties.contains_key(&object.required[0])
                && object.additional_properties.is_none()
        }
        _ => false,
    };
    let is_unit = |item: &RefOr<Schema>| {
        matches!(item, RefOr::T(Schema::Object(object))
            if object.enum_values.is_some() && object.properties.is_empty())
    };
    if !one_of
        .items
        .iter()
        .all(|item| is_wrapper(item) || is_unit(item))
        || !one_of.items.iter().any(is_wrapper)
    {
        return;
    }
    for item in &mut one_of.items {
        if let RefOr::T(Schema::Object(object)) = item {
            if !object.properties.is_empty() {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
    }
}
