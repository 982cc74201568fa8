//! The tax documents of an invoice as data: who bills whom, one document per currency with
//! its lines, VAT breakdown and totals. `legal` builds them from the statement; the
//! statement (`document::Invoice`) carries them, and `render_legal` and `cii` render them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::profile::{Party, TaxTreatment};

/// Who bills whom for which days, and the tax documents (one per currency billed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    pub seller: Party,
    pub buyer: Party,
    pub tax_treatment: TaxTreatment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_reference: Option<String>,
    /// The supply period in the customer's time zone: its first and last day.
    pub supply_from: String,
    pub supply_to: String,
    pub payment_terms_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bic: Option<String>,
    pub documents: Vec<TaxDocument>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Invoice,
    /// The total is in the customer's favour (corrections outweigh what is billed).
    CreditNote,
}

/// One currency's invoice (or credit note). Number, issue and due date are set at issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxDocument {
    pub kind: DocumentKind,
    pub number: Option<String>,
    /// The number's place in the seller's sequence.
    pub sequence: Option<u64>,
    pub issue_date: Option<String>,
    pub due_date: Option<String>,
    pub currency: String,
    pub lines: Vec<DocumentLine>,
    pub vat: Vec<VatBreakdown>,
    /// The sum of the lines' rounded net amounts.
    pub net_total: Decimal,
    pub tax_total: Decimal,
    pub gross_total: Decimal,
    /// `net_total` minus what the exact amounts add up to.
    pub rounding: Decimal,
    /// The issued invoices whose periods the adjustment lines correct.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrects: Vec<Corrected>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentLine {
    pub id: u32,
    pub description: String,
    pub quantity: Decimal,
    pub unit: Unit,
    /// The net price of one unit (for usage: the average, since records carry their own).
    pub unit_price: Decimal,
    /// `exact_amount` rounded to the minor unit.
    pub net_amount: Decimal,
    pub exact_amount: Decimal,
    pub vat_category: String,
    pub vat_rate: Decimal,
    /// The period and invoice an adjustment corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<Corrected>,
}

/// A unit by its UN/ECE Recommendation 20 code, with the name the document prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub code: String,
    pub name: String,
}

impl Unit {
    pub(super) fn new(code: &str, name: &str) -> Self {
        Unit {
            code: code.to_owned(),
            name: name.to_owned(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatBreakdown {
    pub category: String,
    pub rate: Decimal,
    pub taxable_amount: Decimal,
    pub tax_amount: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemption_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemption_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Corrected {
    pub period: String,
    /// The corrected period's invoice number in this currency, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_date: Option<String>,
}
