//! Domain types that validate on construction. Once you hold one, it is valid; handlers turn
//! raw input into these at the edge and the rest of the code never re-checks.

use crate::platform::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// The largest amount, in minor units, that any single price, line or total may have
/// (just under 10 billion in a two-decimal currency). Sums are checked against it, so
/// no arithmetic on amounts can overflow an i64.
pub const MAX_AMOUNT: i64 = 999_999_999_999;

/// Trimmed text between `min` and `max` characters, without control characters.
pub fn text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, Error> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        return Err(if min == 1 {
            Error::validation(format!("{field} must not be empty"))
        } else {
            Error::validation(format!("{field} must be at least {min} characters"))
        });
    }
    if len > max {
        return Err(Error::validation(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(Error::validation(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_string())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(Error::validation(format!("{field} must not be empty")));
        }
        if value.len() > 254
            || !email_address::EmailAddress::is_valid(value)
            || !value.contains('.')
        {
            return Err(Error::validation(format!(
                "{field} is not a valid email address"
            )));
        }
        Ok(Email(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed. Bounded above so hashing cost cannot be driven by the caller.
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let len = raw.chars().count();
        if len < Self::MIN {
            return Err(Error::validation(format!(
                "{field} must be at least {} characters",
                Self::MIN
            )));
        }
        if len > Self::MAX {
            return Err(Error::validation(format!(
                "{field} must be at most {} characters",
                Self::MAX
            )));
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An ISO 4217 currency code, stored upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let code = raw.trim().to_ascii_uppercase();
        match iso_currency::Currency::from_code(&code) {
            // XXX and XTS are "no currency" and "testing" codes, not money.
            Some(c) if code != "XXX" && code != "XTS" => Ok(Currency(c)),
            _ => Err(Error::validation(format!(
                "{field} {raw:?} is not an ISO 4217 currency code"
            ))),
        }
    }

    pub fn code(&self) -> String {
        self.0.code().to_string()
    }

    /// Digits after the decimal point (2 for USD, 0 for JPY, 3 for BHD).
    pub fn exponent(&self) -> u16 {
        self.0.exponent().unwrap_or(0)
    }
}

/// A strictly positive amount in minor units, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(i64);

impl Amount {
    pub fn parse(field: &str, raw: i64) -> Result<Self, Error> {
        if raw <= 0 {
            return Err(Error::validation(format!(
                "{field} must be a positive amount in minor units (cents)"
            )));
        }
        if raw > MAX_AMOUNT {
            return Err(Error::validation(format!(
                "{field} must be at most {MAX_AMOUNT}"
            )));
        }
        Ok(Amount(raw))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BillingCycle {
    Monthly,
    Yearly,
}

impl BillingCycle {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingCycle::Monthly => "monthly",
            BillingCycle::Yearly => "yearly",
        }
    }
}

/// `INV-000042`: a per-account sequence number, zero-padded to at least six digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct InvoiceNumber(u64);

impl InvoiceNumber {
    pub fn new(n: u64) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::validation("invoice numbers start at 1"));
        }
        Ok(InvoiceNumber(n))
    }

    pub fn parse(raw: &str) -> Result<Self, Error> {
        let digits = raw
            .strip_prefix("INV-")
            .filter(|d| d.len() >= 6 && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| Error::validation(format!("{raw:?} is not an invoice number")))?;
        let n = digits
            .parse::<u64>()
            .map_err(|_| Error::validation(format!("{raw:?} is out of range")))?;
        // Exactly one spelling per number: no extra leading zeros beyond the padding.
        let number = Self::new(n)?;
        if number.to_string() != raw {
            return Err(Error::validation(format!(
                "{raw:?} is not an invoice number"
            )));
        }
        Ok(number)
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INV-{:06}", self.0)
    }
}

/// An account's URL-safe handle: lower-case letters, digits and inner dashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let v = raw.trim();
        let ok = (1..=63).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !v.starts_with('-')
            && !v.ends_with('-');
        if !ok {
            return Err(Error::validation(format!(
                "{field} must be 1-63 lower-case letters, digits or inner dashes"
            )));
        }
        Ok(Slug(v.to_string()))
    }

    /// The slug a name suggests: "Acme Corp." -> "acme-corp".
    pub fn from_name(name: &str) -> Result<Self, Error> {
        let mut out = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        let slug: String = out.chars().take(63).collect();
        Slug::parse("slug", slug.trim_end_matches('-')).map_err(|_| {
            Error::validation("name has no letters or digits to make a slug from; pass \"slug\"")
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("name", "  Ann  ", 1, 10).unwrap(), "Ann");
        assert!(text("name", "   ", 1, 10).is_err());
        assert!(text("name", "abcdefghijk", 1, 10).is_err());
        assert!(text("name", "a\u{0}b", 1, 10).is_err());
        // Characters, not bytes.
        assert!(text("name", "ééééé", 1, 5).is_ok());
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("email", " a@b.co ").unwrap().as_str(),
            "a@b.co"
        );
        for bad in ["", "plain", "a@", "@b.co", "a b@c.de", "a@localhost"] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse("email", &long).is_err());
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("c", "usd").unwrap().code(), "USD");
        assert_eq!(Currency::parse("c", "JPY").unwrap().exponent(), 0);
        for bad in ["", "US", "ABC", "XXX", "USDD"] {
            assert!(Currency::parse("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts() {
        assert!(Amount::parse("a", 1).is_ok());
        assert!(Amount::parse("a", MAX_AMOUNT).is_ok());
        for bad in [0, -1, MAX_AMOUNT + 1, i64::MAX, i64::MIN] {
            assert!(Amount::parse("a", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invoice_numbers_round_trip() {
        let n = InvoiceNumber::new(42).unwrap();
        assert_eq!(n.to_string(), "INV-000042");
        assert_eq!(InvoiceNumber::parse("INV-000042").unwrap(), n);
        assert_eq!(
            InvoiceNumber::new(1_234_567).unwrap().to_string(),
            "INV-1234567"
        );
        for bad in [
            "INV-42",
            "INV-0000042",
            "INV-000000",
            "inv-000042",
            "INV-00004a",
        ] {
            assert!(InvoiceNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(Slug::from_name("Acme Corp.").unwrap().as_str(), "acme-corp");
        assert_eq!(Slug::from_name("  Demo ").unwrap().as_str(), "demo");
        assert!(Slug::from_name("!!!").is_err());
        assert!(Slug::parse("slug", "-x").is_err());
        assert!(Slug::parse("slug", "A").is_err());
    }
}
