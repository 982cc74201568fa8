//! The invoice as a finance team sends it: seller and customer, numbers, dates, aggregated
//! lines (quantity x unit price) with VAT, one tax document per currency. Built from the
//! statement's exact lines; amounts on the document are rounded to the currency's minor
//! unit line by line, while the statement keeps them exact.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::document::{minor_unit_digits, round_to_minor_unit, AdjustmentKind, Invoice};
use super::profile::{BillingProfile, Party, RatedKind, Seller, TaxTreatment};
pub use super::tax_document::{
    Billing, Corrected, DocumentKind, DocumentLine, TaxDocument, Unit, VatBreakdown,
};
use super::Period;

/// What the document needs beyond the statement.
pub struct Parties<'a> {
    pub seller: &'a Seller,
    pub profile: &'a BillingProfile,
    /// The Workspace's name in the directory.
    pub directory_name: Option<&'a str>,
    /// The Workspace's issued invoices, for adjustments to reference.
    pub issued: Vec<&'a Invoice>,
}

/// The billing part of `invoice`, with no numbers or dates yet.
pub fn build(invoice: &Invoice, parties: &Parties) -> Option<Billing> {
    let period: Period = invoice.period.parse().ok()?;
    let treatment = parties.profile.treatment(parties.seller);
    let mut buyer = parties.profile.party.clone();
    // A Workspace without a billing profile is billed as a customer in the seller's country.
    if buyer.country.is_none() {
        buyer.country.clone_from(&parties.seller.party.country);
    }
    if buyer.name.is_empty() {
        buyer.name = match parties.directory_name {
            Some(name) => name.to_owned(),
            None => format!("Workspace {}", invoice.workspace_id),
        };
    }
    let last_day = period.next().first_day().pred_opt()?;
    let currencies: Vec<String> = invoice.totals.iter().map(|t| t.currency.clone()).collect();
    let documents = currencies
        .iter()
        .filter_map(|currency| tax_document(invoice, currency, treatment, parties))
        .collect();
    Some(Billing {
        seller: parties.seller.party.clone(),
        buyer,
        tax_treatment: treatment,
        buyer_reference: parties.profile.buyer_reference.clone(),
        supply_from: period.first_day().to_string(),
        supply_to: last_day.to_string(),
        payment_terms_days: (parties.profile.payment_terms_days)
            .unwrap_or(parties.seller.payment_terms_days),
        iban: parties.seller.iban.clone(),
        bic: parties.seller.bic.clone(),
        documents,
    })
}

/// Sets each document's number (from `next`, in currency order), issue date (the local
/// day of `issued_at`) and due date.
pub fn assign_numbers(
    billing: &mut Billing,
    prefix: &str,
    next: &mut u64,
    issued_at: DateTime<Utc>,
    zone: Tz,
) {
    let issue_date = issued_at.with_timezone(&zone).date_naive();
    let due = issue_date + Duration::days(i64::from(billing.payment_terms_days));
    for document in &mut billing.documents {
        document.sequence = Some(*next);
        document.number = Some(format!("{prefix}{next:06}"));
        document.issue_date = Some(issue_date.to_string());
        document.due_date = Some(due.to_string());
        *next += 1;
    }
}

/// The highest sequence number the seller used on the issued invoices.
pub fn last_sequence<'a>(seller: &Party, issued: impl Iterator<Item = &'a Invoice>) -> u64 {
    issued
        .filter_map(|i| i.billing.as_ref())
        .filter(|b| same_seller(&b.seller, seller))
        .flat_map(|b| b.documents.iter().filter_map(|d| d.sequence))
        .max()
        .unwrap_or(0)
}

fn same_seller(a: &Party, b: &Party) -> bool {
    match (&a.vat_id, &b.vat_id) {
        (Some(x), Some(y)) => x == y,
        _ => a.name == b.name,
    }
}

fn tax_document(
    invoice: &Invoice,
    currency: &str,
    treatment: TaxTreatment,
    parties: &Parties,
) -> Option<TaxDocument> {
    let items = (usage_items(invoice, currency).into_iter())
        .chain(fee_items(invoice, currency))
        .chain(cover_item(invoice, currency))
        .chain(correction_items(invoice, currency, parties));
    let lines: Vec<DocumentLine> = items
        .enumerate()
        .map(|(n, item)| {
            let vat = vat_of(treatment, parties.seller.vat_rate(item.kind));
            line(n as u32 + 1, item, currency, vat)
        })
        .collect();
    match lines.is_empty() {
        true => None,
        false => Some(totals(lines, currency, treatment)),
    }
}

/// A line before it is numbered, rounded and taxed.
struct Item {
    description: String,
    quantity: Decimal,
    unit: Unit,
    exact: Decimal,
    kind: RatedKind,
    corrects: Option<Corrected>,
}

impl Item {
    fn new(
        description: String,
        quantity: Decimal,
        unit: Unit,
        exact: Decimal,
        kind: RatedKind,
    ) -> Self {
        Item {
            description,
            quantity,
            unit,
            exact,
            kind,
            corrects: None,
        }
    }
}

/// Usage by traffic type; the statement and the annex break it down by network and SIM.
fn usage_items(invoice: &Invoice, currency: &str) -> Vec<Item> {
    let mut usage: BTreeMap<&str, (Decimal, Decimal, u64)> = BTreeMap::new();
    for l in invoice.usage.iter().filter(|l| l.currency == currency) {
        let entry = usage.entry(l.traffic_type.as_str()).or_default();
        entry.0 += l.volume;
        entry.1 += l.amount;
        entry.2 += l.records;
    }
    (usage.into_iter())
        .map(|(traffic_type, (volume, amount, records))| {
            let label = traffic_label(traffic_type);
            let description = format!("{label}, {} ({records} records)", invoice.period);
            let unit = volume_unit(traffic_type);
            Item::new(description, volume, unit, amount, RatedKind::Usage)
        })
        .collect()
}

/// SIM fees and allowances, one line per price (and tariff version), quantity in SIMs.
fn fee_items(invoice: &Invoice, currency: &str) -> Vec<Item> {
    let sims = || Unit::new("C62", "SIMs");
    let fees = (invoice.sim_fees.iter())
        .filter(|l| l.currency == currency)
        .map(|l| (l.amount, l.tariff_version.clone()));
    let mut items: Vec<Item> = (grouped(fees).into_iter())
        .map(|(price, version, count)| {
            let description = format!("SIM fee, {}{}", invoice.period, version_text(&version));
            Item::new(description, count, sims(), price * count, RatedKind::SimFee)
        })
        .collect();
    let allowances = (invoice.allowances.iter())
        .filter(|l| l.currency == currency)
        .map(|l| ((l.amount, l.included_volume_mb), l.tariff_version.clone()));
    items.extend(
        grouped(allowances)
            .into_iter()
            .map(|((price, volume), version, count)| {
                let description = format!(
                    "Data allowance of {volume} MB, {}{}",
                    invoice.period,
                    version_text(&version)
                );
                Item::new(
                    description,
                    count,
                    sims(),
                    price * count,
                    RatedKind::Allowance,
                )
            }),
    );
    items
}

/// The data the allowances include, credited: a negative quantity of MB.
fn cover_item(invoice: &Invoice, currency: &str) -> Option<Item> {
    let cover: Vec<_> = (invoice.allowance_cover.iter())
        .filter(|l| l.currency == currency)
        .collect();
    if cover.is_empty() {
        return None;
    }
    let volume: Decimal = cover.iter().map(|l| l.covered_volume_mb).sum();
    let amount: Decimal = cover.iter().map(|l| l.amount).sum();
    let description = "Data included in allowances".to_owned();
    Some(Item::new(
        description,
        -volume,
        volume_unit("data"),
        amount,
        RatedKind::Usage,
    ))
}

/// Adjustments to issued periods, one lump sum per corrected period and kind, each naming
/// the invoice it corrects.
fn correction_items(invoice: &Invoice, currency: &str, parties: &Parties) -> Vec<Item> {
    let mut adjustments: BTreeMap<(&str, AdjustmentKind), (Decimal, usize)> = BTreeMap::new();
    for a in invoice
        .adjustments
        .iter()
        .filter(|l| l.currency == currency)
    {
        let entry = adjustments.entry((a.period.as_str(), a.kind)).or_default();
        entry.0 += a.amount;
        entry.1 += 1;
    }
    (adjustments.into_iter())
        .map(|((period, kind), (amount, items))| {
            let corrects = corrected(period, currency, parties);
            let against =
                (corrects.number.as_deref()).map_or_else(String::new, |n| format!(", invoice {n}"));
            let plural = if items == 1 { "" } else { "s" };
            let label = kind.label();
            let description =
                format!("Correction of {period}{against}: {label} ({items} item{plural})");
            let rated = match kind {
                AdjustmentKind::SimFee => RatedKind::SimFee,
                AdjustmentKind::Allowance => RatedKind::Allowance,
                AdjustmentKind::Usage | AdjustmentKind::AllowanceCover => RatedKind::Usage,
            };
            let quantity = match amount.is_sign_negative() {
                true => -Decimal::ONE,
                false => Decimal::ONE,
            };
            let unit = Unit::new("LS", "lump sum");
            Item {
                corrects: Some(corrects),
                ..Item::new(description, quantity, unit, amount, rated)
            }
        })
        .collect()
}

/// Groups equal (price, version) items, counting them, in price order.
fn grouped<K: Ord>(
    items: impl Iterator<Item = (K, Option<String>)>,
) -> Vec<(K, Option<String>, Decimal)> {
    let mut groups: BTreeMap<(Option<String>, K), Decimal> = BTreeMap::new();
    for (key, version) in items {
        *groups.entry((version, key)).or_default() += Decimal::ONE;
    }
    groups
        .into_iter()
        .map(|((version, key), n)| (key, version, n))
        .collect()
}

fn version_text(version: &Option<String>) -> String {
    version
        .as_ref()
        .map_or_else(String::new, |v| format!(" (tariff of {v})"))
}

fn corrected(period: &str, currency: &str, parties: &Parties) -> Corrected {
    let document = (parties.issued.iter())
        .find(|i| i.period == period)
        .and_then(|i| i.billing.as_ref())
        .and_then(|b| b.documents.iter().find(|d| d.currency == currency));
    Corrected {
        period: period.to_owned(),
        number: document.and_then(|d| d.number.clone()),
        issue_date: document.and_then(|d| d.issue_date.clone()),
    }
}

fn traffic_label(traffic_type: &str) -> String {
    match traffic_type {
        "data" => "Data".to_owned(),
        "sms" => "SMS".to_owned(),
        other => other.to_owned(),
    }
}

/// A traffic type's unit: its name as the statement prints it (`document::volume_unit`) and
/// its UN/ECE Recommendation 20 code.
fn volume_unit(traffic_type: &str) -> Unit {
    let name = super::document::volume_unit(traffic_type);
    match name {
        "messages" => Unit::new("C62", name),
        _ => Unit::new("4L", name),
    }
}

/// The VAT category code and rate a line kind gets under a treatment.
fn vat_of(treatment: TaxTreatment, standard: Decimal) -> (&'static str, Decimal) {
    match treatment {
        TaxTreatment::Standard => ("S", standard),
        TaxTreatment::ReverseCharge => ("AE", Decimal::ZERO),
        TaxTreatment::Export => ("G", Decimal::ZERO),
        TaxTreatment::Exempt => ("E", Decimal::ZERO),
    }
}

fn line(id: u32, item: Item, currency: &str, (category, rate): (&str, Decimal)) -> DocumentLine {
    let Item {
        description,
        quantity,
        unit,
        exact,
        corrects,
        ..
    } = item;
    // The exact price where one price applies (it divides evenly), else the average.
    let unit_price = match quantity.is_zero() {
        true => exact.abs(),
        false => {
            let price = (exact / quantity).abs();
            match price.round_dp(6) == price {
                true => money_scale(price, currency),
                false => price.round_dp(6),
            }
        }
    };
    DocumentLine {
        id,
        description,
        quantity: quantity.normalize(),
        unit,
        unit_price,
        net_amount: money(exact, currency),
        exact_amount: exact,
        vat_category: category.to_owned(),
        vat_rate: rate,
        corrects,
    }
}

fn totals(lines: Vec<DocumentLine>, currency: &str, treatment: TaxTreatment) -> TaxDocument {
    let mut by_rate: BTreeMap<(String, Decimal), Decimal> = BTreeMap::new();
    for l in &lines {
        *by_rate
            .entry((l.vat_category.clone(), l.vat_rate))
            .or_default() += l.net_amount;
    }
    let (reason, code) = exemption(treatment);
    let vat: Vec<VatBreakdown> = by_rate
        .into_iter()
        .map(|((category, rate), taxable)| VatBreakdown {
            tax_amount: money(taxable * rate / Decimal::ONE_HUNDRED, currency),
            category,
            rate,
            taxable_amount: money(taxable, currency),
            exemption_reason: reason.map(str::to_owned),
            exemption_code: code.map(str::to_owned),
        })
        .collect();
    let net_total = money(lines.iter().map(|l| l.net_amount).sum(), currency);
    let exact: Decimal = lines.iter().map(|l| l.exact_amount).sum();
    let tax_total = money(vat.iter().map(|v| v.tax_amount).sum(), currency);
    let gross_total = net_total + tax_total;
    let mut corrects: Vec<Corrected> = lines.iter().filter_map(|l| l.corrects.clone()).collect();
    corrects.sort();
    corrects.dedup();
    TaxDocument {
        kind: match gross_total.is_sign_negative() && !gross_total.is_zero() {
            true => DocumentKind::CreditNote,
            false => DocumentKind::Invoice,
        },
        number: None,
        sequence: None,
        issue_date: None,
        due_date: None,
        currency: currency.to_owned(),
        lines,
        vat,
        net_total,
        tax_total,
        gross_total,
        rounding: net_total - exact,
        corrects,
    }
}

/// `amount` rounded to the currency's minor unit, written with all its digits (1.50).
fn money(amount: Decimal, currency: &str) -> Decimal {
    money_scale(round_to_minor_unit(amount, currency), currency)
}

/// `amount` with at least the minor unit's digits.
fn money_scale(amount: Decimal, currency: &str) -> Decimal {
    let digits = minor_unit_digits(currency);
    let mut scaled = amount;
    if scaled.scale() < digits {
        scaled.rescale(digits);
    }
    scaled
}

fn exemption(treatment: TaxTreatment) -> (Option<&'static str>, Option<&'static str>) {
    match treatment {
        TaxTreatment::Standard => (None, None),
        TaxTreatment::ReverseCharge => (Some("Reverse charge"), Some("VATEX-EU-AE")),
        TaxTreatment::Export => (Some("Export outside the EU"), Some("VATEX-EU-G")),
        TaxTreatment::Exempt => (Some("Exempt from VAT"), None),
    }
}
