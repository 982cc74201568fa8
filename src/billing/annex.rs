//! The per-SIM annex of an invoice (`<invoice_id>.sims.csv`): each SIM's usage by traffic
//! type, fee, allowance and covered data, the detail behind the document's aggregated lines.
//!
//! An issued invoice's usage comes from the slices it sealed (`billed_slices`), so its annex
//! never changes, whatever arrives later; a draft's from its window as the lake stands.

use std::collections::BTreeMap;
use std::fmt::Write;

use rust_decimal::Decimal;

use super::document::{Invoice, InvoiceStatus};
use super::read::{decimal, int64, text, LakeSnapshot, Window};
use super::render::{csv_field, volume_unit};
use super::BillingError;
use crate::lake::schema::counted_slices_sql;
use crate::lake::LakeTable;

/// One SIM's usage of one traffic type in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUsage {
    pub iccid: String,
    pub traffic_type: String,
    pub currency: String,
    pub records: i64,
    pub volume: Decimal,
    pub amount: Decimal,
}

const GROUPED: &str = "SELECT iccid, traffic_type, currency, COUNT(DISTINCT record_id), \
                       SUM(volume_total), SUM(cost)";
const ORDER: &str = "GROUP BY iccid, traffic_type, currency ORDER BY iccid, traffic_type, currency";

/// The usage per SIM behind `invoice` (see the module's note).
pub async fn sim_usage(
    snapshot: &LakeSnapshot,
    invoice: &Invoice,
    window: &Window,
) -> Result<Vec<SimUsage>, BillingError> {
    if !snapshot.has(LakeTable::Usage) {
        return Ok(Vec::new());
    }
    let sql = match invoice.status {
        InvoiceStatus::Issued if !snapshot.has(LakeTable::BilledSlices) => return Ok(Vec::new()),
        // Only typed values reach the SQL: the Workspace id, and the invoice id and period
        // this module's caller composed from them.
        InvoiceStatus::Issued => format!(
            "{GROUPED} FROM (SELECT * FROM usage WHERE workspace_id = {}) u \
             LEFT SEMI JOIN (SELECT record_id, slice FROM billed_slices \
               WHERE workspace_id = {} AND invoice_id = '{}' AND period = '{}') b \
             ON u.record_id = b.record_id AND u.slice = b.slice {ORDER}",
            invoice.workspace_id,
            invoice.workspace_id,
            sql_text(&invoice.invoice_id),
            sql_text(&invoice.period),
        ),
        InvoiceStatus::Draft => format!(
            "{GROUPED} FROM {} WHERE {} {ORDER}",
            counted_slices_sql("usage"),
            window.usage_condition()
        ),
    };
    let t = LakeTable::Usage;
    let mut out = Vec::new();
    for batch in &snapshot.rows(&sql).await? {
        let (iccids, kinds, currencies) =
            (text(t, batch, 0)?, text(t, batch, 1)?, text(t, batch, 2)?);
        let records = int64(t, batch, 3)?;
        for row in 0..batch.num_rows() {
            out.push(SimUsage {
                iccid: iccids.value(row).to_owned(),
                traffic_type: kinds.value(row).to_owned(),
                currency: currencies.value(row).to_owned(),
                records: records.value(row),
                volume: decimal(t, batch, 4, row)?,
                amount: decimal(t, batch, 5, row)?,
            });
        }
    }
    Ok(out)
}

fn sql_text(text: &str) -> String {
    text.replace('\'', "''")
}

const HEADER: &str = "iccid,charge,currency,records,quantity,unit,amount";

/// The annex: one row per SIM and charge, in ICCID order.
pub fn to_annex_csv(invoice: &Invoice, usage: &[SimUsage]) -> String {
    let mut rows: BTreeMap<(&str, u8, String), [String; 5]> = BTreeMap::new();
    for u in usage {
        let row = [
            u.currency.clone(),
            u.records.to_string(),
            u.volume.to_string(),
            volume_unit(&u.traffic_type).to_owned(),
            u.amount.to_string(),
        ];
        rows.insert((&u.iccid, 0, u.traffic_type.clone()), row);
    }
    for l in &invoice.sim_fees {
        let row = [
            l.currency.clone(),
            String::new(),
            "1".into(),
            "SIM".into(),
            l.amount.to_string(),
        ];
        rows.insert((&l.iccid, 1, "sim_fee".into()), row);
    }
    for l in &invoice.allowances {
        let row = [
            l.currency.clone(),
            String::new(),
            l.included_volume_mb.to_string(),
            "MB included".into(),
            l.amount.to_string(),
        ];
        rows.insert((&l.iccid, 2, "allowance".into()), row);
    }
    for l in &invoice.allowance_cover {
        let row = [
            l.currency.clone(),
            String::new(),
            (-l.covered_volume_mb).to_string(),
            "MB".into(),
            l.amount.to_string(),
        ];
        rows.insert((&l.reference, 3, "allowance_cover".into()), row);
    }
    let mut out = String::from(HEADER);
    out.push('\n');
    for ((iccid, _, charge), fields) in rows {
        let _ = write!(out, "{},{}", csv_field(iccid), csv_field(&charge));
        for field in fields {
            let _ = write!(out, ",{}", csv_field(&field));
        }
        out.push('\n');
    }
    out
}
