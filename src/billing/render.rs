//! Renderings of an invoice: JSON (the stored form), CSV (one row per line item) and HTML
//! (print-ready). Each is a pure function of the document, so the same document always gives
//! the same bytes.

use std::fmt::Write;

use rust_decimal::Decimal;

use super::document::{volume_unit, Invoice};
use super::html::{esc, section};

pub fn to_json(invoice: &Invoice) -> String {
    // Serializing plain structs of strings, integers and decimals cannot fail.
    let mut json = serde_json::to_string_pretty(invoice).unwrap_or_default();
    json.push('\n');
    json
}

const CSV_HEADER: &str =
    "section,period,description,reference,currency,quantity,volume,unit,amount";

pub fn to_csv(invoice: &Invoice) -> String {
    let mut csv = Csv(format!("{CSV_HEADER}\n"));
    let period = invoice.period.as_str();
    charge_rows(invoice, period, &mut csv);
    allowance_rows(invoice, period, &mut csv);
    for total in &invoice.totals {
        for (label, amount) in [
            ("exact total", total.exact_total),
            ("rounding difference", total.rounding_difference),
            ("total", total.total),
        ] {
            csv.row([
                "total",
                period,
                label,
                "",
                &total.currency,
                "",
                "",
                "",
                &amount.to_string(),
            ]);
        }
    }
    csv.0
}

/// The statement's CSV as it is written, a row at a time.
struct Csv(String);

impl Csv {
    fn row(&mut self, fields: [&str; 9]) {
        let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        self.0.push_str(&quoted.join(","));
        self.0.push('\n');
    }
}

/// Usage lines and SIM fees.
fn charge_rows(invoice: &Invoice, period: &str, csv: &mut Csv) {
    for line in &invoice.usage {
        csv.row([
            "usage",
            period,
            &usage_description(&line.traffic_type, &line.operator, &line.mcc, &line.mnc),
            "",
            &line.currency,
            &line.records.to_string(),
            &line.volume.to_string(),
            volume_unit(&line.traffic_type),
            &line.amount.to_string(),
        ]);
    }
    for line in &invoice.sim_fees {
        csv.row([
            "sim_fee",
            period,
            &format!(
                "SIM fee, activated {}{}",
                line.activated_at,
                version_note(&line.tariff_version)
            ),
            &line.iccid,
            &line.currency,
            "1",
            "",
            "",
            &line.amount.to_string(),
        ]);
    }
}

/// Allowances, what they covered, and adjustments of earlier periods.
fn allowance_rows(invoice: &Invoice, period: &str, csv: &mut Csv) {
    for line in &invoice.allowances {
        csv.row([
            "allowance",
            period,
            &format!(
                "Data allowance, activated {}{}",
                line.activated_at,
                version_note(&line.tariff_version)
            ),
            &line.iccid,
            &line.currency,
            "1",
            &line.included_volume_mb.to_string(),
            "MB",
            &line.amount.to_string(),
        ]);
    }
    for line in &invoice.allowance_cover {
        csv.row([
            "allowance_cover",
            period,
            &format!(
                "Data included in allowance {}: {} of {} MB",
                line.reference, line.covered_volume_mb, line.included_volume_mb
            ),
            &line.reference,
            &line.currency,
            "",
            &line.covered_volume_mb.to_string(),
            "MB",
            &line.amount.to_string(),
        ]);
    }
    for line in &invoice.adjustments {
        csv.row([
            "adjustment",
            &line.period,
            &line.description,
            &line.reference,
            &line.currency,
            "",
            "",
            "",
            &line.amount.to_string(),
        ]);
    }
}

/// Names the tariff version of a line priced by another version than the invoice's.
fn version_note(version: &Option<String>) -> String {
    version
        .as_ref()
        .map_or_else(String::new, |v| format!(" (tariff version of {v})"))
}

pub(super) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

pub fn usage_description(
    traffic_type: &str,
    operator: &Option<String>,
    mcc: &Option<String>,
    mnc: &Option<String>,
) -> String {
    match (operator, mcc, mnc) {
        (Some(name), Some(mcc), Some(mnc)) => format!("{traffic_type} on {name} ({mcc}-{mnc})"),
        (Some(name), _, _) => format!("{traffic_type} on {name}"),
        _ => format!("{traffic_type}, network not reported"),
    }
}

pub fn to_html(invoice: &Invoice) -> String {
    let mut h = String::new();
    let kind = match invoice.billing {
        Some(_) => "Statement",
        None => "Invoice",
    };
    let title = format!(
        "{kind} {} - Workspace {} - {}",
        invoice.invoice_id, invoice.workspace_id, invoice.period
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let heading = match &invoice.billing {
        Some(billing) => {
            super::render_legal::documents(&mut h, invoice, billing);
            "h2 class=\"statement\""
        }
        None => "h1",
    };
    let status = match invoice.issued_at {
        Some(ref at) => format!("Issued {}", esc(at)),
        None => "DRAFT (not issued)".to_owned(),
    };
    let _ = write!(
        h,
        "<{heading}>{}</{}>\n<p class=\"meta\">{status}<br>Period {} ({}): {} to {} UTC<br>Tariff {} effective {}<br>Computed from lake versions: usage {}, sim_events {}</p>\n",
        esc(&title),
        &heading[..2],
        esc(&invoice.period),
        esc(&invoice.time_zone),
        esc(&invoice.period_start),
        esc(&invoice.period_end),
        esc(&invoice.tariff.name),
        esc(&invoice.tariff.effective_from),
        version(invoice.computed_from.usage),
        version(invoice.computed_from.sim_events),
    );
    section(
        &mut h,
        "Usage by traffic type and network",
        &["Usage", "Currency", "Records", "Volume", "Unit", "Amount"],
        invoice.usage.iter().map(|l| {
            vec![
                usage_description(&l.traffic_type, &l.operator, &l.mcc, &l.mnc),
                l.currency.clone(),
                l.records.to_string(),
                l.volume.to_string(),
                volume_unit(&l.traffic_type).to_owned(),
                l.amount.to_string(),
            ]
        }),
    );
    // With a tax document the per-SIM lines are its annex (the CSV); the statement keeps
    // them otherwise.
    if invoice.billing.is_some() {
        let _ = writeln!(
            h,
            "<p class=\"meta\">SIM fees, allowances and usage per SIM: annex {}.sims.csv ({} SIM fees, {} allowances).</p>",
            esc(&invoice.invoice_id),
            invoice.sim_fees.len(),
            invoice.allowances.len()
        );
    } else {
        sim_sections(&mut h, invoice);
    }
    statement_rest(&mut h, invoice);
    h.push_str("</body></html>\n");
    h
}

fn sim_sections(h: &mut String, invoice: &Invoice) {
    section(
        h,
        "SIM fees",
        &["ICCID", "Activated", "Currency", "Amount"],
        invoice.sim_fees.iter().map(|l| {
            vec![
                l.iccid.clone(),
                format!("{}{}", l.activated_at, version_note(&l.tariff_version)),
                l.currency.clone(),
                l.amount.to_string(),
            ]
        }),
    );
    section(
        h,
        "Data allowances",
        &["ICCID", "Activated", "Included MB", "Currency", "Amount"],
        invoice.allowances.iter().map(|l| {
            vec![
                l.iccid.clone(),
                format!("{}{}", l.activated_at, version_note(&l.tariff_version)),
                l.included_volume_mb.to_string(),
                l.currency.clone(),
                l.amount.to_string(),
            ]
        }),
    );
}

fn statement_rest(h: &mut String, invoice: &Invoice) {
    // Shown only when an allowance covered usage, so documents issued before allowances
    // covered any render as they did.
    if !invoice.allowance_cover.is_empty() {
        section(
            h,
            "Data included in allowances",
            &[
                "Allowance",
                "Included MB",
                "Covered MB",
                "Currency",
                "Amount",
            ],
            invoice.allowance_cover.iter().map(|l| {
                vec![
                    l.reference.clone(),
                    l.included_volume_mb.to_string(),
                    l.covered_volume_mb.to_string(),
                    l.currency.clone(),
                    l.amount.to_string(),
                ]
            }),
        );
    }
    section(
        h,
        "Adjustments to issued periods",
        &[
            "Period",
            "Kind",
            "Reference",
            "Description",
            "Currency",
            "Amount",
        ],
        invoice.adjustments.iter().map(|l| {
            vec![
                l.period.clone(),
                l.kind.label().to_owned(),
                l.reference.clone(),
                l.description.clone(),
                l.currency.clone(),
                l.amount.to_string(),
            ]
        }),
    );
    let covers = !invoice.allowance_cover.is_empty();
    let header: Vec<&str> = ["Currency", "Usage", "SIM fees", "Allowances"]
        .into_iter()
        .chain(covers.then_some("Included data"))
        .chain(["Adjustments", "Exact total", "Rounding", "Total"])
        .collect();
    section(
        h,
        "Totals",
        &header,
        invoice.totals.iter().map(|t| {
            let amounts: Vec<Decimal> = [t.usage, t.sim_fees, t.allowances]
                .into_iter()
                .chain(covers.then_some(t.allowance_cover))
                .chain([t.adjustments, t.exact_total, t.rounding_difference, t.total])
                .collect();
            std::iter::once(t.currency.clone())
                .chain(amounts.iter().map(Decimal::to_string))
                .collect()
        }),
    );
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#111}\
table{border-collapse:collapse;width:100%;margin-bottom:1.5em}\
th,td{border-bottom:1px solid #ccc;padding:.25em .5em;text-align:left}\
td:last-child,th:last-child{text-align:right;font-variant-numeric:tabular-nums}\
.meta{color:#444}.parties{display:flex;gap:4em;margin:1em 0}address{font-style:normal}\
.facts{width:auto}.facts th{padding-right:2em}.due{font-size:1.2em}.note{color:#444;font-size:.9em}\
.statement{break-before:page;margin-top:2em}@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}}";

fn version(v: Option<i64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn html_text_is_escaped() {
        assert_eq!(esc("<b>&'\""), "&lt;b&gt;&amp;&#39;&quot;");
    }
}
