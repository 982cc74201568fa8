//! The per-SIM annex of an invoice (`<invoice_id>.sims.csv`): each SIM's usage by traffic
//! type, fee, allowance and covered data, the detail behind the document's aggregated lines.
//!
//! An issued invoice's usage comes from the slices it sealed (`billed_slices`), so its annex
//! never changes, whatever arrives later; a draft's from its window as the lake stands.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use rust_decimal::Decimal;

use super::document::volume_unit;
use super::document::{Invoice, InvoiceStatus};
use super::read::Group;
use super::read::{decimal, int64, text, LakeSnapshot, Window};
use super::render::csv_field;
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

const GROUPED: &str = "SELECT workspace_id, iccid, traffic_type, currency, \
                       COUNT(DISTINCT record_id), SUM(volume_total), SUM(cost)";
const ORDER: &str = "GROUP BY workspace_id, iccid, traffic_type, currency \
                     ORDER BY workspace_id, iccid, traffic_type, currency";

/// The usage per SIM behind each of `invoices` (see the module's note), by invoice id: one
/// query per month bounds and status, for all their Workspaces.
pub async fn sim_usage(
    snapshot: &LakeSnapshot,
    invoices: &[&Invoice],
) -> Result<HashMap<String, Vec<SimUsage>>, BillingError> {
    let mut out: HashMap<String, Vec<SimUsage>> = HashMap::new();
    if !snapshot.has(LakeTable::Usage) {
        return Ok(out);
    }
    let mut by_bounds: BTreeMap<(bool, &str, &str), Vec<&Invoice>> = BTreeMap::new();
    for invoice in invoices {
        let issued = invoice.status == InvoiceStatus::Issued;
        let bounds = (
            issued,
            invoice.period_start.as_str(),
            invoice.period_end.as_str(),
        );
        by_bounds.entry(bounds).or_default().push(invoice);
    }
    for ((issued, _, _), group) in by_bounds {
        let first = group[0];
        let window =
            Window::of_invoice(first.workspace_id, &first.period_start, &first.period_end)?;
        let workspaces: Vec<i64> = group.iter().map(|i| i.workspace_id).collect();
        let condition = Group::of(&window, workspaces.clone()).condition();
        let ids: Vec<String> = (workspaces.iter()).map(i64::to_string).collect();
        let sql = match issued {
            false => format!(
                "{GROUPED} FROM {} WHERE {condition} {ORDER}",
                counted_slices_sql("usage")
            ),
            true if !snapshot.has(LakeTable::BilledSlices) => continue,
            // Only typed values reach the SQL: Workspace ids, and the period simtally wrote.
            true => format!(
                "{GROUPED} FROM (SELECT * FROM usage WHERE {condition}) u \
                 LEFT SEMI JOIN (SELECT workspace_id AS w, record_id AS r, slice AS s \
                   FROM billed_slices WHERE workspace_id IN ({}) AND period = '{}' \
                   AND invoice_id IN (SELECT invoice_id FROM invoices)) b \
                 ON u.workspace_id = b.w AND u.record_id = b.r AND u.slice = b.s {ORDER}",
                ids.join(", "),
                sql_text(&first.period),
            ),
        };
        let invoice_of: HashMap<i64, &str> = (group.iter())
            .map(|i| (i.workspace_id, i.invoice_id.as_str()))
            .collect();
        for (workspace, rows) in read_rows(snapshot, &sql).await? {
            if let Some(id) = invoice_of.get(&workspace) {
                out.insert((*id).to_owned(), rows);
            }
        }
    }
    Ok(out)
}

async fn read_rows(
    snapshot: &LakeSnapshot,
    sql: &str,
) -> Result<BTreeMap<i64, Vec<SimUsage>>, BillingError> {
    let t = LakeTable::Usage;
    let mut out: BTreeMap<i64, Vec<SimUsage>> = BTreeMap::new();
    for batch in &snapshot.rows(sql).await? {
        let workspaces = int64(t, batch, 0)?;
        let (iccids, kinds, currencies) =
            (text(t, batch, 1)?, text(t, batch, 2)?, text(t, batch, 3)?);
        let records = int64(t, batch, 4)?;
        for row in 0..batch.num_rows() {
            out.entry(workspaces.value(row))
                .or_default()
                .push(SimUsage {
                    iccid: iccids.value(row).to_owned(),
                    traffic_type: kinds.value(row).to_owned(),
                    currency: currencies.value(row).to_owned(),
                    records: records.value(row),
                    volume: decimal(t, batch, 5, row)?,
                    amount: decimal(t, batch, 6, row)?,
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
