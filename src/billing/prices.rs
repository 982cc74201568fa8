//! The billing file: tariffs versioned by effective date, per-Workspace settings (tariff,
//! time zone, billing profile) and the seller (see `profile` for those two). Amounts are
//! TOML strings so they stay exact decimals end to end.
//!
//! ```toml
//! [[tariff]]
//! name = "default"                 # Workspaces without a [[workspace]] entry use "default"
//! effective_from = "2026-01-01"    # from this day: SIMs activated since, and every SIM from the next month
//! currency = "EUR"
//! sim_fee = "1.50"                 # per SIM and month it is ACTIVATED in the Workspace
//! allowance_fee = "4.00"           # per SIM and activation month
//! allowance_volume_mb = "500"      # the data volume the allowance includes: the SIM's data
//!                                  # usage in the Workspace and month, in time order, up to
//!                                  # this many MB, is credited
//! allowance_pooled = false         # true: a Workspace's allowances form one pool that covers
//!                                  # all its SIMs with an allowance (default false)
//! allowance_prorated = false       # true: a SIM activated during the month includes its share
//!                                  # of the month from the activation (default false)
//!
//! [[workspace]]
//! id = 102
//! tariff = "enterprise"            # a tariff may also be one Workspace's own price
//! time_zone = "Europe/Berlin"      # IANA name; periods are calendar months there (default UTC)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::Deserialize;

use super::profile::{parse_profile, parse_seller, BillingProfile, RawProfile, RawSeller, Seller};

pub const DEFAULT_TARIFF: &str = "default";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    tariff: Vec<RawTariff>,
    #[serde(default)]
    workspace: Vec<RawWorkspace>,
    seller: Option<RawSeller>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTariff {
    name: String,
    effective_from: String,
    currency: String,
    sim_fee: toml::Value,
    allowance_fee: toml::Value,
    allowance_volume_mb: toml::Value,
    #[serde(default)]
    allowance_pooled: bool,
    #[serde(default)]
    allowance_prorated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    id: i64,
    tariff: Option<String>,
    time_zone: Option<String>,
    // The billing profile (see `profile`).
    legal_name: Option<String>,
    #[serde(default)]
    address: Vec<String>,
    postcode: Option<String>,
    city: Option<String>,
    country: Option<String>,
    vat_id: Option<String>,
    tax_treatment: Option<String>,
    buyer_reference: Option<String>,
    payment_terms_days: Option<u32>,
}

impl RawWorkspace {
    fn profile(&mut self) -> RawProfile {
        RawProfile {
            legal_name: self.legal_name.take(),
            address: std::mem::take(&mut self.address),
            postcode: self.postcode.take(),
            city: self.city.take(),
            country: self.country.take(),
            vat_id: self.vat_id.take(),
            tax_treatment: self.tax_treatment.take(),
            buyer_reference: self.buyer_reference.take(),
            payment_terms_days: self.payment_terms_days.take(),
        }
    }
}

/// One version of a tariff's prices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tariff {
    pub name: String,
    pub effective_from: NaiveDate,
    pub currency: String,
    pub sim_fee: Decimal,
    pub allowance_fee: Decimal,
    pub allowance_volume_mb: Decimal,
    /// The allowances of a Workspace's SIMs cover their data usage together.
    pub allowance_pooled: bool,
    /// A SIM activated during a month includes its share of the month from then.
    pub allowance_prorated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceSettings {
    pub tariff: String,
    pub time_zone: Tz,
    pub profile: BillingProfile,
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        WorkspaceSettings {
            tariff: DEFAULT_TARIFF.to_owned(),
            time_zone: Tz::UTC,
            profile: BillingProfile::default(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct PriceList {
    /// Per tariff name, its versions by effective date.
    tariffs: BTreeMap<String, BTreeMap<NaiveDate, Tariff>>,
    workspaces: BTreeMap<i64, WorkspaceSettings>,
    seller: Option<Seller>,
}

impl PriceList {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("price list {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("price list {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PriceFile = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut list = PriceList::default();
        for raw in file.tariff {
            let tariff = parse_tariff(raw)?;
            let versions = list.tariffs.entry(tariff.name.clone()).or_default();
            if versions.contains_key(&tariff.effective_from) {
                return Err(format!(
                    "tariff '{}' has two versions effective from {}",
                    tariff.name, tariff.effective_from
                ));
            }
            versions.insert(tariff.effective_from, tariff);
        }
        list.seller = file.seller.map(parse_seller).transpose()?;
        for mut raw in file.workspace {
            let profile = parse_profile(raw.id, raw.profile(), list.seller.as_ref())?;
            let time_zone = match raw.time_zone {
                None => Tz::UTC,
                Some(name) => name.parse().map_err(|_| {
                    format!(
                        "Workspace {}: '{name}' is not an IANA time zone such as Europe/Berlin",
                        raw.id
                    )
                })?,
            };
            let tariff = raw.tariff.unwrap_or_else(|| DEFAULT_TARIFF.to_owned());
            if !list.tariffs.contains_key(&tariff) {
                return Err(format!(
                    "Workspace {} uses tariff '{tariff}', which the file does not define",
                    raw.id
                ));
            }
            let settings = WorkspaceSettings {
                tariff,
                time_zone,
                profile,
            };
            if list.workspaces.insert(raw.id, settings).is_some() {
                return Err(format!("Workspace {} is listed twice", raw.id));
            }
        }
        Ok(list)
    }

    /// The Workspaces billed in a time zone other than UTC.
    pub fn zoned_workspaces(&self) -> impl Iterator<Item = (i64, Tz)> + '_ {
        self.workspaces
            .iter()
            .filter(|(_, s)| s.time_zone != Tz::UTC)
            .map(|(id, s)| (*id, s.time_zone))
    }

    /// The seller, when the file names one; without it invoices are usage statements with
    /// no number, VAT or payment details.
    pub fn seller(&self) -> Option<&Seller> {
        self.seller.as_ref()
    }

    pub fn settings(&self, workspace: i64) -> WorkspaceSettings {
        self.workspaces.get(&workspace).cloned().unwrap_or_default()
    }

    /// The version of the Workspace's tariff in effect on `day`.
    pub fn tariff_on(&self, workspace: i64, day: NaiveDate) -> Result<&Tariff, String> {
        let name = self.settings(workspace).tariff;
        self.tariffs
            .get(&name)
            .and_then(|versions| versions.range(..=day).next_back())
            .map(|(_, tariff)| tariff)
            .ok_or_else(|| {
                format!(
                    "no version of tariff '{name}' (Workspace {workspace}) is effective on {day}"
                )
            })
    }
}

fn parse_tariff(raw: RawTariff) -> Result<Tariff, String> {
    let context = |what: &str| format!("tariff '{}' ({}): {what}", raw.name, raw.effective_from);
    let effective_from = NaiveDate::parse_from_str(&raw.effective_from, "%Y-%m-%d")
        .map_err(|_| context("effective_from must be a date like 2026-01-01"))?;
    if raw.currency.len() != 3 || !raw.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(context("currency must be an ISO 4217 code such as EUR"));
    }
    let amount = |key: &str, value: &toml::Value| -> Result<Decimal, String> {
        let toml::Value::String(text) = value else {
            return Err(context(&format!(
                "{key} must be a string such as \"1.50\", so that it stays exact"
            )));
        };
        Decimal::from_str_exact(text)
            .ok()
            .filter(|d| !d.is_sign_negative())
            .ok_or_else(|| context(&format!("{key} '{text}' is not a non-negative decimal")))
    };
    Ok(Tariff {
        sim_fee: amount("sim_fee", &raw.sim_fee)?,
        allowance_fee: amount("allowance_fee", &raw.allowance_fee)?,
        allowance_volume_mb: amount("allowance_volume_mb", &raw.allowance_volume_mb)?,
        allowance_pooled: raw.allowance_pooled,
        allowance_prorated: raw.allowance_prorated,
        name: raw.name,
        effective_from,
        currency: raw.currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[tariff]]
name = "default"
effective_from = "2026-01-01"
currency = "EUR"
sim_fee = "1.50"
allowance_fee = "4.00"
allowance_volume_mb = "500"

[[tariff]]
name = "default"
effective_from = "2026-11-01"
currency = "EUR"
sim_fee = "1.75"
allowance_fee = "4.00"
allowance_volume_mb = "750"

[[tariff]]
name = "ws-102"
effective_from = "2026-01-01"
currency = "USD"
sim_fee = "2"
allowance_fee = "0"
allowance_volume_mb = "0"

[[workspace]]
id = 102
tariff = "ws-102"
time_zone = "America/New_York"
"#;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_version_in_effect_on_the_first_day_applies() {
        let list = PriceList::parse(FILE).unwrap();
        assert_eq!(
            list.tariff_on(101, day("2026-10-01"))
                .unwrap()
                .sim_fee
                .to_string(),
            "1.50"
        );
        assert_eq!(
            list.tariff_on(101, day("2026-11-01"))
                .unwrap()
                .sim_fee
                .to_string(),
            "1.75"
        );
        assert!(list
            .tariff_on(101, day("2025-12-01"))
            .unwrap_err()
            .contains("no version"));
    }

    #[test]
    fn workspaces_have_their_own_tariff_and_zone() {
        let list = PriceList::parse(FILE).unwrap();
        let tariff = list.tariff_on(102, day("2026-11-01")).unwrap();
        assert_eq!(
            (
                tariff.currency.as_str(),
                tariff.sim_fee.to_string().as_str()
            ),
            ("USD", "2")
        );
        assert_eq!(list.settings(102).time_zone, Tz::America__New_York);
        assert_eq!(list.settings(103), WorkspaceSettings::default());
    }

    #[test]
    fn mistakes_are_named() {
        let float = FILE.replacen("sim_fee = \"1.50\"", "sim_fee = 1.50", 1);
        assert!(PriceList::parse(&float)
            .unwrap_err()
            .contains("stays exact"));
        let zone = FILE.replace("America/New_York", "Mars/Olympus");
        assert!(PriceList::parse(&zone).unwrap_err().contains("IANA"));
        let tariff = FILE.replace("tariff = \"ws-102\"", "tariff = \"gold\"");
        assert!(PriceList::parse(&tariff).unwrap_err().contains("'gold'"));
        let typo = FILE.replace("time_zone", "timezone");
        assert!(PriceList::parse(&typo).unwrap_err().contains("timezone"));
        let negative = FILE.replace("\"4.00\"", "\"-4\"");
        assert!(PriceList::parse(&negative)
            .unwrap_err()
            .contains("non-negative"));
    }
}
