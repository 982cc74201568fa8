//! The HTML of the invoice a customer reads: seller and customer, number and dates, lines
//! with quantity, unit and unit price, VAT by rate, the amount due and how to pay it. One
//! page per currency billed; the statement's detail follows (see `render::to_html`).

use std::fmt::Write;

use super::document::Invoice;
use super::html::{esc, section};
use super::legal::{Billing, DocumentKind, TaxDocument};
use super::profile::{Party, TaxTreatment};

pub(super) fn documents(h: &mut String, invoice: &Invoice, billing: &Billing) {
    for document in &billing.documents {
        h.push_str("<section class=\"document\">\n");
        heading(h, invoice, document);
        parties(h, billing);
        facts(h, invoice, billing, document);
        lines(h, document);
        vat(h, document);
        payment(h, billing, document);
        notes(h, billing, document);
        h.push_str("</section>\n");
    }
    if billing.documents.is_empty() {
        h.push_str("<p class=\"meta\">Nothing is billed for this period.</p>\n");
        parties(h, billing);
    }
}

fn heading(h: &mut String, invoice: &Invoice, d: &TaxDocument) {
    let kind = match d.kind {
        DocumentKind::Invoice => "Invoice",
        DocumentKind::CreditNote => "Credit note",
    };
    let title = match &d.number {
        Some(number) => format!("{kind} {number}"),
        None => format!("{kind} (DRAFT, numbered when issued)"),
    };
    let _ = writeln!(
        h,
        "<h1>{}</h1>\n<p class=\"meta\">Workspace {}, {} ({})</p>",
        esc(&title),
        invoice.workspace_id,
        esc(&d.currency),
        esc(&invoice.time_zone)
    );
}

fn parties(h: &mut String, billing: &Billing) {
    h.push_str("<div class=\"parties\">");
    party(h, "From", &billing.seller);
    party(h, "To", &billing.buyer);
    h.push_str("</div>\n");
}

fn party(h: &mut String, label: &str, p: &Party) {
    let _ = write!(h, "<address><strong>{label}</strong><br>{}", esc(&p.name));
    for line in &p.address {
        let _ = write!(h, "<br>{}", esc(line));
    }
    let place: Vec<&str> = [p.postcode.as_deref(), p.city.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if !place.is_empty() {
        let _ = write!(h, "<br>{}", esc(&place.join(" ")));
    }
    if let Some(country) = &p.country {
        let _ = write!(h, "<br>{}", esc(country));
    }
    if let Some(vat_id) = &p.vat_id {
        let _ = write!(h, "<br>VAT ID {}", esc(vat_id));
    }
    h.push_str("</address>");
}

fn facts(h: &mut String, invoice: &Invoice, billing: &Billing, d: &TaxDocument) {
    let pending = || "on issue".to_owned();
    let mut rows = vec![
        ("Issue date", d.issue_date.clone().unwrap_or_else(pending)),
        (
            "Supply period",
            format!("{} to {}", billing.supply_from, billing.supply_to),
        ),
        ("Statement", invoice.invoice_id.clone()),
    ];
    if d.kind == DocumentKind::Invoice {
        rows.insert(2, ("Due date", d.due_date.clone().unwrap_or_else(pending)));
    }
    if let Some(reference) = &billing.buyer_reference {
        rows.push(("Your reference", reference.clone()));
    }
    h.push_str("<table class=\"facts\"><tbody>");
    for (label, value) in rows {
        let _ = write!(h, "<tr><th>{label}</th><td>{}</td></tr>", esc(&value));
    }
    h.push_str("</tbody></table>\n");
}

fn lines(h: &mut String, d: &TaxDocument) {
    section(
        h,
        "Lines",
        &[
            "#",
            "Description",
            "Quantity",
            "Unit",
            "Unit price",
            "VAT",
            "Net amount",
        ],
        d.lines.iter().map(|l| {
            vec![
                l.id.to_string(),
                l.description.clone(),
                l.quantity.to_string(),
                l.unit.name.clone(),
                l.unit_price.to_string(),
                format!("{} {}%", l.vat_category, l.vat_rate),
                l.net_amount.to_string(),
            ]
        }),
    );
}

fn vat(h: &mut String, d: &TaxDocument) {
    let mut rows: Vec<Vec<String>> = (d.vat.iter())
        .map(|v| {
            vec![
                format!("VAT {} {}%", v.category, v.rate),
                v.taxable_amount.to_string(),
                v.tax_amount.to_string(),
            ]
        })
        .collect();
    rows.push(vec![
        "Total".into(),
        d.net_total.to_string(),
        d.tax_total.to_string(),
    ]);
    section(h, "VAT", &["", "Net", "VAT"], rows.into_iter());
    let label = match d.kind {
        DocumentKind::Invoice => "Amount due",
        DocumentKind::CreditNote => "Amount credited to you",
    };
    let _ = writeln!(
        h,
        "<p class=\"due\">{label}: <strong>{} {}</strong></p>",
        esc(&d.currency),
        d.gross_total.abs()
    );
}

fn payment(h: &mut String, billing: &Billing, d: &TaxDocument) {
    if d.kind == DocumentKind::CreditNote || d.gross_total.is_zero() {
        return;
    }
    let reference = d.number.as_deref().unwrap_or("the invoice number");
    let _ = write!(
        h,
        "<p class=\"meta\">Please pay within {} days",
        billing.payment_terms_days
    );
    if let Some(due) = &d.due_date {
        let _ = write!(h, ", by {}", esc(due));
    }
    if let Some(iban) = &billing.iban {
        let _ = write!(h, ", to IBAN {}", esc(iban));
        if let Some(bic) = &billing.bic {
            let _ = write!(h, " (BIC {})", esc(bic));
        }
    }
    let _ = writeln!(h, ", quoting {}.</p>", esc(reference));
}

fn notes(h: &mut String, billing: &Billing, d: &TaxDocument) {
    let mut notes = Vec::new();
    match billing.tax_treatment {
        TaxTreatment::ReverseCharge => notes.push(
            "Reverse charge: VAT is accounted for by the customer (Article 196, Directive 2006/112/EC)."
                .to_owned(),
        ),
        TaxTreatment::Export => notes.push("Export outside the EU: no VAT charged.".to_owned()),
        TaxTreatment::Exempt => notes.push("Exempt from VAT.".to_owned()),
        TaxTreatment::Standard => {}
    }
    for corrected in &d.corrects {
        let what = match &corrected.number {
            Some(number) => format!("invoice {number}"),
            None => format!("the statement of {}", corrected.period),
        };
        let issued =
            (corrected.issue_date.as_deref()).map_or_else(String::new, |day| format!(" of {day}"));
        notes.push(format!(
            "Corrects {what}{issued} (period {}) with what became known after it was issued.",
            corrected.period
        ));
    }
    if !d.rounding.is_zero() {
        notes.push(format!(
            "Each line is rounded to the cent; the exact amounts (in the statement) add up to {} {}.",
            d.currency,
            d.net_total - d.rounding
        ));
    }
    for note in notes {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&note));
    }
}
