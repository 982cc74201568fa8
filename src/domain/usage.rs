use super::{Iccid, Money, RecordId, Text, UtcMillis, Volume};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrafficType {
    Data,
    Sms,
}

impl TrafficType {
    pub fn from_wire_id(id: i64) -> Option<Self> {
        match id {
            5 => Some(TrafficType::Data),
            6 => Some(TrafficType::Sms),
            _ => None,
        }
    }

    pub fn wire_id(self) -> i64 {
        match self {
            TrafficType::Data => 5,
            TrafficType::Sms => 6,
        }
    }

    /// Reads the lake's `traffic_type` column back.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "data" => Some(TrafficType::Data),
            "sms" => Some(TrafficType::Sms),
            _ => None,
        }
    }

    /// The value of the lake's `traffic_type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficType::Data => "data",
            TrafficType::Sms => "sms",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Operator {
    pub name: Option<Text>,
    pub mnc: Option<Text>,
    pub mcc: Option<Text>,
    pub country_name: Option<Text>,
}

/// ISO 4217 code: three upper-case ASCII letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Option<Self> {
        let b = code.as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_uppercase)).then(|| Currency([b[0], b[1], b[2]]))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: `parse` stores only ASCII upper-case letters, which are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

/// Money in several currencies, kept apart: amounts in different currencies are never
/// added. Shown as `1.7500000000 EUR, 3.0000000000 USD` (by code), `0` when empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Costs(std::collections::BTreeMap<Currency, Money>);

impl Costs {
    pub fn add(&mut self, currency: Currency, amount: Money) {
        *self.0.entry(currency).or_default() += amount;
    }

    pub fn absorb(&mut self, other: &Costs) {
        for (currency, amount) in &other.0 {
            self.add(*currency, *amount);
        }
    }

    pub fn get(&self, currency: Currency) -> Money {
        self.0.get(&currency).copied().unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Currency, Money)> + '_ {
        self.0.iter().map(|(c, m)| (*c, *m))
    }
}

impl std::fmt::Display for Costs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("0");
        }
        let parts: Vec<String> = self
            .iter()
            .map(|(currency, amount)| format!("{amount} {}", currency.as_str()))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// rx and tx, with `total` = rx + tx guaranteed by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Volumes {
    rx: Volume,
    tx: Volume,
}

impl Volumes {
    pub const ZERO: Volumes = Volumes {
        rx: Volume::ZERO,
        tx: Volume::ZERO,
    };

    /// `None` if either part is negative.
    pub fn new(rx: Volume, tx: Volume) -> Option<Self> {
        (!rx.is_negative() && !tx.is_negative()).then_some(Volumes { rx, tx })
    }

    pub fn rx(&self) -> Volume {
        self.rx
    }

    pub fn tx(&self) -> Volume {
        self.tx
    }

    pub fn total(&self) -> Volume {
        self.rx + self.tx
    }
}

/// One validated usage record: the interval [start, end) of a SIM's traffic and its charge.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsageRecord {
    pub id: RecordId,
    pub traffic_type: TrafficType,
    pub start: UtcMillis,
    pub end: UtcMillis,
    pub iccid: Iccid,
    pub imsi: Option<Text>,
    pub operator: Option<Operator>,
    pub volume: Volumes,
    pub cost: Money,
    pub currency: Currency,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn costs_show_each_currency_apart() {
        let mut costs = Costs::default();
        assert_eq!(costs.to_string(), "0");
        let (eur, usd) = (
            Currency::parse("EUR").unwrap(),
            Currency::parse("USD").unwrap(),
        );
        costs.add(usd, Money::parse("3").unwrap());
        costs.add(eur, Money::parse("1.25").unwrap());
        costs.add(eur, Money::parse("0.5").unwrap());
        assert_eq!(costs.to_string(), "1.7500000000 EUR, 3.0000000000 USD");
    }

    proptest! {
        /// Whatever the order, each currency's total is the sum of its own amounts only.
        #[test]
        fn costs_add_up_per_currency(amounts in prop::collection::vec((0usize..3, -1_000_000i64..1_000_000), 0..50)) {
            let codes = ["CHF", "EUR", "USD"].map(|c| Currency::parse(c).unwrap());
            let mut costs = Costs::default();
            let mut halves = (Costs::default(), Costs::default());
            for (i, (code, units)) in amounts.iter().enumerate() {
                let money = Money::from_units(i128::from(*units));
                costs.add(codes[*code], money);
                let half = if i % 2 == 0 { &mut halves.0 } else { &mut halves.1 };
                half.add(codes[*code], money);
            }
            for (c, currency) in codes.iter().enumerate() {
                let want: i128 = amounts.iter().filter(|(code, _)| *code == c).map(|(_, u)| i128::from(*u)).sum();
                prop_assert_eq!(costs.get(*currency), Money::from_units(want));
            }
            halves.0.absorb(&halves.1);
            prop_assert_eq!(halves.0.iter().filter(|(_, m)| *m != Money::ZERO).collect::<Vec<_>>(),
                            costs.iter().filter(|(_, m)| *m != Money::ZERO).collect::<Vec<_>>());
        }
    }
}
