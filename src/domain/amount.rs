use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// An exact, non-float decimal with `SCALE` fractional digits, held as integer units of
/// 10^-SCALE. Splitting a record pro rata works on these units, so every part is exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed<const SCALE: u32>(i128);

/// Data volume in MB, or a count of SMS, to the micro-unit (6 decimal places).
pub type Volume = Fixed<6>;
/// A monetary amount to 10 decimal places, in the record's currency.
pub type Money = Fixed<10>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("'{0}' is not a decimal number")]
    NotANumber(String),
    #[error("'{text}' has more than {max_scale} decimal places")]
    TooPrecise { text: String, max_scale: u32 },
    #[error("'{0}' is too large")]
    OutOfRange(String),
}

/// Largest magnitude we accept: fits Decimal128(18, SCALE) columns in the lake.
const MAX_DIGITS: u32 = 18;

impl<const SCALE: u32> Fixed<SCALE> {
    pub const ZERO: Self = Fixed(0);
    pub const SCALE: u32 = SCALE;

    pub const fn from_units(units: i128) -> Self {
        Fixed(units)
    }

    pub const fn units(self) -> i128 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Fixed)
    }

    pub fn to_decimal(self) -> Decimal {
        // Units always fit 96 bits: parse bounds them to 18 digits.
        Decimal::from_i128_with_scale(self.0, SCALE)
    }

    /// Parses the exact text of a JSON number (plain or with an exponent). Never goes
    /// through f64.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        if let Some(units) = parse_plain::<SCALE>(text) {
            return units;
        }
        let decimal = if text.contains(['e', 'E']) {
            Decimal::from_scientific(text)
        } else {
            Decimal::from_str_exact(text)
        }
        .map_err(|_| AmountError::NotANumber(text.to_owned()))?;
        Self::from_decimal(decimal).map_err(|e| match e {
            AmountError::NotANumber(_) => AmountError::NotANumber(text.to_owned()),
            AmountError::TooPrecise { max_scale, .. } => AmountError::TooPrecise {
                text: text.to_owned(),
                max_scale,
            },
            AmountError::OutOfRange(_) => AmountError::OutOfRange(text.to_owned()),
        })
    }

    pub fn from_decimal(decimal: Decimal) -> Result<Self, AmountError> {
        let normalized = decimal.normalize();
        if normalized.scale() > SCALE {
            return Err(AmountError::TooPrecise {
                text: decimal.to_string(),
                max_scale: SCALE,
            });
        }
        // A 96-bit mantissa times 10^SCALE can exceed i128: that is out of range too.
        let units = normalized
            .mantissa()
            .checked_mul(10i128.pow(SCALE - normalized.scale()))
            .filter(|units| units.unsigned_abs() < 10u128.pow(MAX_DIGITS))
            .ok_or_else(|| AmountError::OutOfRange(decimal.to_string()))?;
        Ok(Fixed(units))
    }
}

/// Fast path for the common `-?digits(.digits)?` form; `None` sends anything else to the
/// general parser.
fn parse_plain<const SCALE: u32>(text: &str) -> Option<Result<Fixed<SCALE>, AmountError>> {
    let scale = SCALE;
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    let (int_part, frac_part) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &digits[digits.len()..]),
    };
    if int_part.is_empty()
        || int_part.len() > MAX_DIGITS as usize
        || !int_part.iter().all(u8::is_ascii_digit)
        || !frac_part.iter().all(u8::is_ascii_digit)
        || (digits.len() > int_part.len() && frac_part.is_empty())
    {
        return None;
    }
    let significant = frac_part.len() - frac_part.iter().rev().take_while(|&&b| b == b'0').count();
    if significant > scale as usize {
        return Some(Err(AmountError::TooPrecise {
            text: text.to_owned(),
            max_scale: scale,
        }));
    }
    let mut units: i128 = 0;
    for &b in int_part {
        units = units * 10 + i128::from(b - b'0');
    }
    for i in 0..scale as usize {
        let digit = frac_part.get(i).map_or(0, |b| b - b'0');
        units = units * 10 + i128::from(digit);
    }
    if units >= 10i128.pow(MAX_DIGITS) {
        return Some(Err(AmountError::OutOfRange(text.to_owned())));
    }
    Some(Ok(Fixed(if negative { -units } else { units })))
}

impl<const SCALE: u32> fmt::Display for Fixed<SCALE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_decimal(), f)
    }
}

impl<const SCALE: u32> FromStr for Fixed<SCALE> {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<const SCALE: u32> std::ops::Add for Fixed<SCALE> {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Fixed(self.0 + rhs.0)
    }
}

impl<const SCALE: u32> std::ops::AddAssign for Fixed<SCALE> {
    fn add_assign(&mut self, rhs: Self) {
        self.0 += rhs.0;
    }
}

impl<const SCALE: u32> std::iter::Sum for Fixed<SCALE> {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, |a, b| a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exact_values_without_floats() {
        assert_eq!(Volume::parse("22.816511").unwrap().units(), 22_816_511);
        assert_eq!(Money::parse("0.0404039320").unwrap().units(), 404_039_320);
        assert_eq!(Volume::parse("0").unwrap().units(), 0);
        assert_eq!(Volume::parse("-0.5").unwrap().units(), -500_000);
        assert_eq!(Volume::parse("1.5e-3").unwrap().units(), 1_500);
        assert_eq!(Volume::parse("1.2500000").unwrap().units(), 1_250_000);
    }

    #[test]
    fn rejects_what_cannot_be_held_exactly() {
        assert!(matches!(
            Volume::parse("0.0000001"),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            Volume::parse("abc"),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            Volume::parse("1.2.3"),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            Volume::parse("10000000000000000000"),
            Err(AmountError::OutOfRange(_))
        ));
        // Once overflowed the multiplication to 10 decimal places instead of being refused.
        assert!(matches!(
            Money::parse("2E28"),
            Err(AmountError::OutOfRange(_))
        ));
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(units in -999_999_999_999_999_999i128..999_999_999_999_999_999i128) {
            let v = Money::from_units(units);
            prop_assert_eq!(Money::parse(&v.to_string()).unwrap(), v);
        }

        #[test]
        fn fast_path_agrees_with_rust_decimal(int in 0u64..10_000_000, frac in 0u32..1_000_000, width in 1usize..7) {
            let text = format!("{int}.{frac:0width$}", width = width.max(frac.to_string().len()));
            let expected = Volume::from_decimal(Decimal::from_str_exact(&text).unwrap());
            prop_assert_eq!(Volume::parse(&text), expected);
        }
    }
}
