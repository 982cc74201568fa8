//! Who bills whom: the seller (one per billing file) and each Workspace's billing profile,
//! read from the same TOML file as the prices.
//!
//! ```toml
//! [seller]
//! name = "Example Connectivity GmbH"
//! address = ["Hauptstrasse 1"]
//! postcode = "10115"
//! city = "Berlin"
//! country = "DE"                   # ISO 3166-1 alpha-2
//! vat_id = "DE123456789"
//! email = "billing@example.com"
//! iban = "DE02120300000000202051"  # payment by SEPA credit transfer to this account
//! bic = "BYLADEM1001"
//! number_prefix = "ST-"            # invoice numbers: ST-000001, ST-000002, ... gap-free
//! vat_rate = "19"                  # percent, for every line kind unless vat_rates says
//! vat_rates = { sim_fee = "19", allowance = "19", usage = "19" }
//! payment_terms_days = 30          # due date = issue date + this (a profile may differ)
//!
//! [[workspace]]
//! id = 102
//! legal_name = "Acme Logistics SAS"   # default: the Workspace's name in the directory
//! address = ["12 rue de la Paix"]
//! postcode = "75002"
//! city = "Paris"
//! country = "FR"
//! vat_id = "FR12345678901"
//! tax_treatment = "reverse_charge"    # standard | reverse_charge | export | exempt;
//!                                     # default: standard in the seller's country or
//!                                     # without a VAT id, reverse_charge for an EU buyer
//!                                     # with one, export outside the EU
//! buyer_reference = "PO-4711"         # the customer's reference (XRechnung: Leitweg-ID)
//! payment_terms_days = 14
//! ```

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeller {
    name: String,
    #[serde(default)]
    address: Vec<String>,
    postcode: Option<String>,
    city: Option<String>,
    country: String,
    vat_id: Option<String>,
    email: Option<String>,
    iban: Option<String>,
    bic: Option<String>,
    #[serde(default)]
    number_prefix: String,
    vat_rate: String,
    #[serde(default)]
    vat_rates: VatRatesRaw,
    payment_terms_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VatRatesRaw {
    usage: Option<String>,
    sim_fee: Option<String>,
    allowance: Option<String>,
}

/// The billing profile fields of a `[[workspace]]` entry.
#[derive(Debug, Default)]
pub(super) struct RawProfile {
    pub legal_name: Option<String>,
    pub address: Vec<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub vat_id: Option<String>,
    pub tax_treatment: Option<String>,
    pub buyer_reference: Option<String>,
    pub payment_terms_days: Option<u32>,
}

/// A party to an invoice as the document names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2; absent for a customer without a billing profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// How VAT applies to a customer (EN 16931 VAT category codes in brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxTreatment {
    /// The seller's rates (S).
    Standard,
    /// EU business customer in another member state: the customer accounts for VAT (AE).
    ReverseCharge,
    /// Customer outside the EU: no VAT charged (G).
    Export,
    /// Exempt from VAT (E).
    Exempt,
}

impl TaxTreatment {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "standard" => TaxTreatment::Standard,
            "reverse_charge" => TaxTreatment::ReverseCharge,
            "export" => TaxTreatment::Export,
            "exempt" => TaxTreatment::Exempt,
            _ => return None,
        })
    }
}

/// Line kinds that may carry their own VAT rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatedKind {
    Usage,
    SimFee,
    Allowance,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seller {
    pub party: Party,
    pub iban: Option<String>,
    pub bic: Option<String>,
    pub number_prefix: String,
    vat_rate: Decimal,
    usage_rate: Option<Decimal>,
    sim_fee_rate: Option<Decimal>,
    allowance_rate: Option<Decimal>,
    pub payment_terms_days: u32,
}

impl Seller {
    /// The standard VAT rate (percent) of a line kind.
    pub fn vat_rate(&self, kind: RatedKind) -> Decimal {
        let own = match kind {
            RatedKind::Usage => self.usage_rate,
            RatedKind::SimFee => self.sim_fee_rate,
            RatedKind::Allowance => self.allowance_rate,
        };
        own.unwrap_or(self.vat_rate)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BillingProfile {
    /// The customer as the profile names it; the name defaults to the directory's.
    pub party: Party,
    pub tax_treatment: Option<TaxTreatment>,
    pub buyer_reference: Option<String>,
    pub payment_terms_days: Option<u32>,
}

/// Member states of the EU (VAT country codes, Greece as GR in addresses).
const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

impl BillingProfile {
    /// The treatment the profile names, or the one its country and VAT id imply.
    pub fn treatment(&self, seller: &Seller) -> TaxTreatment {
        if let Some(treatment) = self.tax_treatment {
            return treatment;
        }
        match self.party.country.as_deref() {
            None => TaxTreatment::Standard,
            Some(c) if Some(c) == seller.party.country.as_deref() => TaxTreatment::Standard,
            Some(c) if EU.contains(&c) && self.party.vat_id.is_some() => {
                TaxTreatment::ReverseCharge
            }
            Some(c) if EU.contains(&c) => TaxTreatment::Standard,
            Some(_) => TaxTreatment::Export,
        }
    }
}

pub(super) fn parse_seller(raw: RawSeller) -> Result<Seller, String> {
    let context = |what: String| format!("[seller]: {what}");
    let rate = |key: &str, text: &str| {
        Decimal::from_str_exact(text)
            .ok()
            .filter(|r| !r.is_sign_negative() && *r < Decimal::ONE_HUNDRED)
            .ok_or_else(|| context(format!("{key} '{text}' is not a percentage such as \"19\"")))
    };
    let optional_rate =
        |key: &str, text: &Option<String>| text.as_deref().map(|t| rate(key, t)).transpose();
    let party = Party {
        name: non_empty("name", raw.name).map_err(context)?,
        address: raw.address,
        postcode: raw.postcode,
        city: raw.city,
        country: Some(country(&raw.country).map_err(context)?),
        vat_id: raw.vat_id,
        email: raw.email,
    };
    Ok(Seller {
        party,
        iban: raw.iban.map(|i| i.replace(' ', "")),
        bic: raw.bic,
        number_prefix: raw.number_prefix,
        vat_rate: rate("vat_rate", &raw.vat_rate)?,
        usage_rate: optional_rate("vat_rates.usage", &raw.vat_rates.usage)?,
        sim_fee_rate: optional_rate("vat_rates.sim_fee", &raw.vat_rates.sim_fee)?,
        allowance_rate: optional_rate("vat_rates.allowance", &raw.vat_rates.allowance)?,
        payment_terms_days: raw.payment_terms_days.unwrap_or(30),
    })
}

pub(super) fn parse_profile(
    workspace: i64,
    raw: RawProfile,
    seller: Option<&Seller>,
) -> Result<BillingProfile, String> {
    let context = |what: String| format!("Workspace {workspace}: {what}");
    let tax_treatment = match raw.tax_treatment {
        None => None,
        Some(text) => Some(TaxTreatment::parse(&text).ok_or_else(|| {
            context(format!(
                "tax_treatment '{text}' is not one of standard, reverse_charge, export, exempt"
            ))
        })?),
    };
    let profile = BillingProfile {
        party: Party {
            name: raw.legal_name.unwrap_or_default(),
            address: raw.address,
            postcode: raw.postcode,
            city: raw.city,
            country: raw
                .country
                .as_deref()
                .map(country)
                .transpose()
                .map_err(context)?,
            vat_id: raw.vat_id,
            email: None,
        },
        tax_treatment,
        buyer_reference: raw.buyer_reference,
        payment_terms_days: raw.payment_terms_days,
    };
    if let Some(seller) = seller {
        if profile.treatment(seller) == TaxTreatment::ReverseCharge
            && (profile.party.vat_id.is_none() || seller.party.vat_id.is_none())
        {
            return Err(context(
                "reverse charge needs the customer's vat_id and the seller's".into(),
            ));
        }
    }
    Ok(profile)
}

fn country(text: &str) -> Result<String, String> {
    let ok = text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase());
    ok.then(|| text.to_owned())
        .ok_or_else(|| format!("country '{text}' is not an ISO 3166 code such as DE"))
}

fn non_empty(key: &str, text: String) -> Result<String, String> {
    match text.trim().is_empty() {
        true => Err(format!("{key} is empty")),
        false => Ok(text),
    }
}
