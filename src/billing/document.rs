//! The invoice document: what is billed, line by line, with exact amounts. JSON is its
//! stored form; CSV and HTML are renderings of it.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::tax_document::Billing;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub invoice_id: String,
    pub workspace_id: i64,
    pub period: String,
    pub time_zone: String,
    /// The period's instants in UTC: [start, end).
    pub period_start: String,
    pub period_end: String,
    pub status: InvoiceStatus,
    pub issued_at: Option<String>,
    /// The lake table versions every line was computed from.
    pub computed_from: LakeVersions,
    pub tariff: TariffApplied,
    pub usage: Vec<UsageLine>,
    pub sim_fees: Vec<SimFeeLine>,
    pub allowances: Vec<AllowanceLine>,
    /// The data usage the allowances include, credited (see `cover`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowance_cover: Vec<AllowanceCoverLine>,
    pub adjustments: Vec<AdjustmentLine>,
    pub totals: Vec<CurrencyTotal>,
    /// Seller, customer, numbers, VAT: present when the billing file names a seller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Billing>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Issued,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LakeVersions {
    pub usage: Option<i64>,
    pub sim_events: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffApplied {
    pub name: String,
    pub effective_from: String,
    pub currency: String,
    pub sim_fee: Decimal,
    pub allowance_fee: Decimal,
    pub allowance_volume_mb: Decimal,
    /// The allowances of a Workspace's SIMs form one pool.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allowance_pooled: bool,
    /// A SIM activated during the month includes its share of the month from then.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allowance_prorated: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Usage of one traffic type on one network, in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageLine {
    pub traffic_type: String,
    pub operator: Option<String>,
    pub mcc: Option<String>,
    pub mnc: Option<String>,
    pub currency: String,
    pub records: u64,
    pub slices: u64,
    /// MB for data, messages for SMS.
    pub volume: Decimal,
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimFeeLine {
    pub iccid: String,
    pub activated_at: String,
    pub activation_event: String,
    pub currency: String,
    pub amount: Decimal,
    /// The tariff version (effective from) that priced the line, when not the invoice's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff_version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowanceLine {
    pub iccid: String,
    pub activated_at: String,
    pub included_volume_mb: Decimal,
    pub currency: String,
    pub amount: Decimal,
    /// The tariff version (effective from) that priced the line, when not the invoice's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariff_version: Option<String>,
}

/// What one allowance (a SIM's, or the Workspace's pool) covered of the data usage in one
/// currency: that usage's cost, credited (a negative amount).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowanceCoverLine {
    /// The ICCID, or `pool`.
    pub reference: String,
    pub included_volume_mb: Decimal,
    pub covered_volume_mb: Decimal,
    pub currency: String,
    pub amount: Decimal,
}

/// A change to a sealed period found after it was issued, billed on a later invoice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AdjustmentLine {
    pub period: String,
    pub kind: AdjustmentKind,
    /// What changed: `record_id/slice` for usage, the ICCID for fees and allowances.
    pub reference: String,
    pub description: String,
    pub currency: String,
    pub amount: Decimal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentKind {
    Usage,
    SimFee,
    Allowance,
    /// What an allowance covers changed: late usage it now includes, or usage it no
    /// longer does.
    AllowanceCover,
}

/// The unit of a usage volume: MB for data, messages for SMS.
pub fn volume_unit(traffic_type: &str) -> &'static str {
    match traffic_type {
        "sms" => "messages",
        _ => "MB",
    }
}

impl AdjustmentKind {
    /// The kind as the documents print it.
    pub fn label(self) -> &'static str {
        match self {
            AdjustmentKind::Usage => "usage",
            AdjustmentKind::SimFee => "SIM fee",
            AdjustmentKind::Allowance => "allowance",
            AdjustmentKind::AllowanceCover => "allowance cover",
        }
    }
}

/// One currency's sums. `total` is `exact_total` rounded half-even to the currency's minor
/// unit; `rounding_difference = total - exact_total`, shown rather than hidden.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotal {
    pub currency: String,
    pub usage: Decimal,
    pub sim_fees: Decimal,
    pub allowances: Decimal,
    /// The allowances' cover of data usage (negative).
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub allowance_cover: Decimal,
    pub adjustments: Decimal,
    pub exact_total: Decimal,
    pub total: Decimal,
    pub rounding_difference: Decimal,
}

impl Invoice {
    /// The totals its lines add up to, per currency (in currency order).
    pub fn totals_of_lines(&self) -> Vec<CurrencyTotal> {
        let mut by_currency: BTreeMap<&str, CurrencyTotal> = BTreeMap::new();
        for line in &self.usage {
            add(
                &mut by_currency,
                &line.currency,
                |t| &mut t.usage,
                line.amount,
            );
        }
        for line in &self.sim_fees {
            add(
                &mut by_currency,
                &line.currency,
                |t| &mut t.sim_fees,
                line.amount,
            );
        }
        for line in &self.allowances {
            add(
                &mut by_currency,
                &line.currency,
                |t| &mut t.allowances,
                line.amount,
            );
        }
        for line in &self.allowance_cover {
            add(
                &mut by_currency,
                &line.currency,
                |t| &mut t.allowance_cover,
                line.amount,
            );
        }
        for line in &self.adjustments {
            add(
                &mut by_currency,
                &line.currency,
                |t| &mut t.adjustments,
                line.amount,
            );
        }
        by_currency
            .into_iter()
            .map(|(currency, mut t)| {
                t.currency = currency.to_owned();
                t.exact_total =
                    t.usage + t.sim_fees + t.allowances + t.allowance_cover + t.adjustments;
                t.total = round_to_minor_unit(t.exact_total, currency);
                t.rounding_difference = t.total - t.exact_total;
                t
            })
            .collect()
    }
}

fn add<'a>(
    totals: &mut BTreeMap<&'a str, CurrencyTotal>,
    currency: &'a str,
    part: fn(&mut CurrencyTotal) -> &mut Decimal,
    amount: Decimal,
) {
    *part(totals.entry(currency).or_default()) += amount;
}

/// Digits after the decimal point of a currency's minor unit (ISO 4217).
pub fn minor_unit_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

pub fn round_to_minor_unit(amount: Decimal, currency: &str) -> Decimal {
    amount.round_dp_with_strategy(
        minor_unit_digits(currency),
        RoundingStrategy::MidpointNearestEven,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn totals_round_half_even_and_show_the_difference() {
        assert_eq!(round_to_minor_unit(d("0.125"), "EUR"), d("0.12"));
        assert_eq!(round_to_minor_unit(d("0.135"), "EUR"), d("0.14"));
        assert_eq!(round_to_minor_unit(d("2.5"), "JPY"), d("2"));
        assert_eq!(round_to_minor_unit(d("1.0005"), "KWD"), d("1.000"));
        let mut invoice = empty();
        invoice.sim_fees.push(SimFeeLine {
            iccid: "8988303000010000117".into(),
            activated_at: String::new(),
            activation_event: String::new(),
            currency: "EUR".into(),
            amount: d("1.50"),
            tariff_version: None,
        });
        invoice.usage.push(UsageLine {
            traffic_type: "Data".into(),
            operator: None,
            mcc: None,
            mnc: None,
            currency: "EUR".into(),
            records: 1,
            slices: 1,
            volume: d("1"),
            amount: d("0.0404039320"),
        });
        let totals = invoice.totals_of_lines();
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].exact_total, d("1.5404039320"));
        assert_eq!(totals[0].total, d("1.54"));
        assert_eq!(totals[0].rounding_difference, d("-0.0004039320"));
    }

    #[test]
    fn amounts_are_strings_in_json() {
        let mut invoice = empty();
        invoice.tariff.sim_fee = d("1.50");
        let json = serde_json::to_string(&invoice).unwrap();
        assert!(json.contains(r#""sim_fee":"1.50""#), "{json}");
        let back: Invoice = serde_json::from_str(&json).unwrap();
        assert_eq!(back, invoice);
    }

    fn empty() -> Invoice {
        Invoice {
            invoice_id: "101-2026-11".into(),
            workspace_id: 101,
            period: "2026-11".into(),
            time_zone: "UTC".into(),
            period_start: String::new(),
            period_end: String::new(),
            status: InvoiceStatus::Draft,
            issued_at: None,
            computed_from: LakeVersions::default(),
            tariff: TariffApplied {
                name: "default".into(),
                effective_from: "2026-01-01".into(),
                currency: "EUR".into(),
                sim_fee: Decimal::ZERO,
                allowance_fee: Decimal::ZERO,
                allowance_volume_mb: Decimal::ZERO,
                allowance_pooled: false,
                allowance_prorated: false,
            },
            usage: Vec::new(),
            sim_fees: Vec::new(),
            allowances: Vec::new(),
            allowance_cover: Vec::new(),
            adjustments: Vec::new(),
            totals: Vec::new(),
            billing: None,
        }
    }
}
