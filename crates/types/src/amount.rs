//! Amounts and assets.
//!
//! The ledger holds integer minor units ([`Amount`], a `u128`, so 18-decimal ETH in wei
//! fits). Decimal text enters and leaves only here, through [`Asset::parse_amount`] and
//! [`Asset::format_amount`]: an amount with more decimals than the asset's scale, a
//! negative amount or one that overflows is an error naming the asset and the limit,
//! never silently rounded.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The largest scale (number of decimals) an asset may have.
pub const MAX_ASSET_SCALE: u32 = 30;

/// An amount in an asset's minor units (wei, satoshi, yen).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(pub u128);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn min(self, other: Amount) -> Amount {
        Amount(self.0.min(other.0))
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// JSON carries minor units as a decimal string (JavaScript numbers lose precision past
/// 2^53); the binary codec carries the `u128` itself.
impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.0.to_string())
        } else {
            serializer.serialize_u128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            u128::from_str(&text).map(Amount).map_err(|_| {
                serde::de::Error::custom(format!(
                    "amount {text:?} is not a whole number of minor units (0 to 2^128-1)"
                ))
            })
        } else {
            u128::deserialize(deserializer).map(Amount)
        }
    }
}

/// The decimal string of minor units JSON carries: no sign, no leading zero, at most
/// `u128::MAX` (what serialization writes; deserialization refuses anything past it).
impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::u128_decimal(
            "An amount in the asset's minor units (wei, satoshi, yen) as a decimal string \
             of 0 to 2^128-1, with no sign, point or leading zero.",
        )
    }
}

impl utoipa::ToSchema for Amount {}

/// What kind of thing an asset is, which decides where its custody lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// The public chain's own coin (ETH on Ethereum).
    NativeCoin,
    /// A token contract on the public chain (an ERC-20).
    Token,
    /// Money held in trust accounts at the accounting system (bank).
    Fiat,
}

/// An asset as declared in genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// Short unique name, e.g. `ETH`, `WBTC`, `JPY`.
    pub symbol: String,
    pub kind: AssetKind,
    /// Number of decimals of one whole unit (18 for ETH, 8 for WBTC, 0 for JPY).
    pub scale: u32,
    /// For a token, its contract address on the public chain.
    #[serde(default)]
    pub contract: Option<String>,
}

/// Why a decimal amount was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {text:?} for {asset} is not a decimal number")]
    Invalid { asset: String, text: String },
    #[error("amount {text:?} for {asset} has {given} decimals; {asset} allows at most {scale}")]
    TooManyDecimals {
        asset: String,
        text: String,
        scale: u32,
        given: u32,
    },
    #[error("amount {text:?} for {asset} is negative; amounts must be zero or more")]
    Negative { asset: String, text: String },
    #[error("amount {text:?} for {asset} is too large; the limit is {max} {asset}")]
    Overflow {
        asset: String,
        text: String,
        max: String,
    },
}

impl Asset {
    /// Parses a decimal amount ("1.5") into minor units, refusing anything the asset
    /// cannot represent exactly.
    pub fn parse_amount(&self, text: &str) -> Result<Amount, AmountError> {
        let trimmed = text.trim();
        let decimal = Decimal::from_str_exact(trimmed).map_err(|_| AmountError::Invalid {
            asset: self.symbol.clone(),
            text: text.to_string(),
        })?;
        self.amount_from_decimal(decimal, text)
    }

    /// Converts a decimal into minor units under the same rules as [`Self::parse_amount`].
    pub fn amount_from_decimal(&self, decimal: Decimal, text: &str) -> Result<Amount, AmountError> {
        if decimal.is_sign_negative() && !decimal.is_zero() {
            return Err(AmountError::Negative {
                asset: self.symbol.clone(),
                text: text.to_string(),
            });
        }
        let normalized = decimal.normalize();
        let given = normalized.scale();
        if given > self.scale {
            return Err(AmountError::TooManyDecimals {
                asset: self.symbol.clone(),
                text: text.to_string(),
                scale: self.scale,
                given,
            });
        }
        let overflow = || AmountError::Overflow {
            asset: self.symbol.clone(),
            text: text.to_string(),
            max: self.format_amount(Amount(u128::MAX)),
        };
        let mantissa: u128 = normalized.mantissa().unsigned_abs();
        let factor = 10u128
            .checked_pow(self.scale - given)
            .ok_or_else(overflow)?;
        mantissa
            .checked_mul(factor)
            .map(Amount)
            .ok_or_else(overflow)
    }

    /// Prints minor units as a decimal with trailing zeros removed ("1.5", "200").
    pub fn format_amount(&self, amount: Amount) -> String {
        format_minor_units(amount.0, self.scale)
    }
}

/// Prints `value` minor units of an asset with `scale` decimals.
pub fn format_minor_units(value: u128, scale: u32) -> String {
    let digits = value.to_string();
    let scale = scale as usize;
    if scale == 0 {
        return digits;
    }
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eth() -> Asset {
        Asset {
            symbol: "ETH".into(),
            kind: AssetKind::NativeCoin,
            scale: 18,
            contract: None,
        }
    }

    fn jpy() -> Asset {
        Asset {
            symbol: "JPY".into(),
            kind: AssetKind::Fiat,
            scale: 0,
            contract: None,
        }
    }

    #[test]
    fn parses_and_formats() {
        assert_eq!(
            eth().parse_amount("1.5").unwrap(),
            Amount(1_500_000_000_000_000_000)
        );
        assert_eq!(
            eth().parse_amount("0.000000000000000001").unwrap(),
            Amount(1)
        );
        assert_eq!(jpy().parse_amount("200").unwrap(), Amount(200));
        assert_eq!(jpy().parse_amount("200.00").unwrap(), Amount(200));
        assert_eq!(jpy().parse_amount("-0").unwrap(), Amount(0));
        assert_eq!(
            eth().format_amount(Amount(1_500_000_000_000_000_000)),
            "1.5"
        );
        assert_eq!(eth().format_amount(Amount(1)), "0.000000000000000001");
        assert_eq!(jpy().format_amount(Amount(300)), "300");
        assert_eq!(eth().format_amount(Amount(0)), "0");
    }

    #[test]
    fn too_many_decimals_names_asset_and_limit() {
        let error = jpy().parse_amount("100.5").unwrap_err();
        assert_eq!(
            error,
            AmountError::TooManyDecimals {
                asset: "JPY".into(),
                text: "100.5".into(),
                scale: 0,
                given: 1
            }
        );
        assert!(error.to_string().contains("JPY allows at most 0"));
    }

    #[test]
    fn negative_invalid_and_overflow_are_errors() {
        assert!(matches!(
            jpy().parse_amount("-1"),
            Err(AmountError::Negative { .. })
        ));
        assert!(matches!(
            jpy().parse_amount("1e3"),
            Err(AmountError::Invalid { .. })
        ));
        assert!(matches!(
            jpy().parse_amount("abc"),
            Err(AmountError::Invalid { .. })
        ));
        assert!(matches!(
            jpy().parse_amount(""),
            Err(AmountError::Invalid { .. })
        ));
        // 2^96 - 1 whole ETH is 7.9e46 wei, beyond u128.
        let error = eth()
            .parse_amount("79228162514264337593543950335")
            .unwrap_err();
        assert!(matches!(error, AmountError::Overflow { .. }));
        assert!(error.to_string().contains("too large"));
    }

    #[test]
    fn json_uses_strings_of_minor_units() {
        let json = serde_json::to_string(&Amount(u128::MAX)).unwrap();
        assert_eq!(json, format!("\"{}\"", u128::MAX));
        assert_eq!(
            serde_json::from_str::<Amount>(&json).unwrap(),
            Amount(u128::MAX)
        );
        assert!(serde_json::from_str::<Amount>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Amount>("\"1.5\"").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(value in any::<u64>(), scale in 0u32..=18) {
            let asset = Asset { symbol: "X".into(), kind: AssetKind::Token, scale, contract: None };
            let text = asset.format_amount(Amount(value as u128));
            prop_assert_eq!(asset.parse_amount(&text).unwrap(), Amount(value as u128));
        }
    }
}
