//! The e-invoice: one tax document as UN/CEFACT Cross Industry Invoice (CII D16B) in the
//! EN 16931 profile, the syntax Factur-X and ZUGFeRD embed and XRechnung accepts. A pure
//! function of the stored document, so an issued invoice always gives the same bytes.
//!
//! A credit note (type 381) states its amounts from the customer's side of the credit: the
//! document's signs are turned over, as EN 16931 expects.

use std::fmt::Write;

use rust_decimal::Decimal;

use super::document::Invoice;
use super::html::esc;
use super::legal::{Billing, DocumentKind, DocumentLine, TaxDocument, VatBreakdown};
use super::profile::Party;

const NAMESPACES: &str = concat!(
    " xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\"",
    " xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\"",
    " xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\"",
    " xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\""
);

/// The XML of `document`, one of `invoice`'s tax documents.
pub fn to_cii(invoice: &Invoice, billing: &Billing, document: &TaxDocument) -> String {
    let sign = match document.kind {
        DocumentKind::Invoice => Decimal::ONE,
        DocumentKind::CreditNote => -Decimal::ONE,
    };
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(x, "<rsm:CrossIndustryInvoice{NAMESPACES}>\n<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>\n");
    let number = document.number.as_deref().unwrap_or("DRAFT");
    let type_code = match document.kind {
        DocumentKind::Invoice => "380",
        DocumentKind::CreditNote => "381",
    };
    let _ = write!(
        x,
        "<rsm:ExchangedDocument><ram:ID>{}</ram:ID><ram:TypeCode>{type_code}</ram:TypeCode><ram:IssueDateTime>{}</ram:IssueDateTime>",
        esc(number),
        date("udt", document.issue_date.as_deref().unwrap_or(&billing.supply_to)),
    );
    let note = format!(
        "Workspace {}, period {} ({}). Statement {}.",
        invoice.workspace_id, invoice.period, invoice.time_zone, invoice.invoice_id
    );
    let _ = write!(
        x,
        "<ram:IncludedNote><ram:Content>{}</ram:Content></ram:IncludedNote></rsm:ExchangedDocument>\n<rsm:SupplyChainTradeTransaction>\n",
        esc(&note)
    );
    for line in &document.lines {
        line_item(&mut x, line, sign);
    }
    agreement(&mut x, billing);
    // The services were delivered through the supply period; its last day stands for it.
    let _ = writeln!(
        x,
        "<ram:ApplicableHeaderTradeDelivery><ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime>{}</ram:OccurrenceDateTime></ram:ActualDeliverySupplyChainEvent></ram:ApplicableHeaderTradeDelivery>",
        date("udt", &billing.supply_to)
    );
    settlement(&mut x, billing, document, number, sign);
    x.push_str("</rsm:SupplyChainTradeTransaction>\n</rsm:CrossIndustryInvoice>\n");
    x
}

fn line_item(x: &mut String, line: &DocumentLine, sign: Decimal) {
    let _ = write!(
        x,
        "<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>{}</ram:LineID></ram:AssociatedDocumentLineDocument><ram:SpecifiedTradeProduct><ram:Name>{}</ram:Name></ram:SpecifiedTradeProduct>",
        line.id,
        esc(&line.description)
    );
    let _ = write!(
        x,
        "<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{}</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement><ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode=\"{}\">{}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>",
        line.unit_price,
        esc(&line.unit.code),
        signed(line.quantity, sign).normalize()
    );
    let _ = writeln!(
        x,
        "<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>{}</ram:CategoryCode><ram:RateApplicablePercent>{}</ram:RateApplicablePercent></ram:ApplicableTradeTax><ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>",
        esc(&line.vat_category),
        line.vat_rate,
        signed(line.net_amount, sign)
    );
}

fn agreement(x: &mut String, billing: &Billing) {
    x.push_str("<ram:ApplicableHeaderTradeAgreement>");
    if let Some(reference) = &billing.buyer_reference {
        let _ = write!(
            x,
            "<ram:BuyerReference>{}</ram:BuyerReference>",
            esc(reference)
        );
    }
    party(x, "SellerTradeParty", &billing.seller);
    party(x, "BuyerTradeParty", &billing.buyer);
    x.push_str("</ram:ApplicableHeaderTradeAgreement>\n");
}

fn party(x: &mut String, element: &str, p: &Party) {
    let _ = write!(x, "<ram:{element}><ram:Name>{}</ram:Name>", esc(&p.name));
    x.push_str("<ram:PostalTradeAddress>");
    if let Some(postcode) = &p.postcode {
        let _ = write!(x, "<ram:PostcodeCode>{}</ram:PostcodeCode>", esc(postcode));
    }
    for (tag, text) in ["LineOne", "LineTwo", "LineThree"].iter().zip(&p.address) {
        let _ = write!(x, "<ram:{tag}>{}</ram:{tag}>", esc(text));
    }
    if let Some(city) = &p.city {
        let _ = write!(x, "<ram:CityName>{}</ram:CityName>", esc(city));
    }
    if let Some(country) = &p.country {
        let _ = write!(x, "<ram:CountryID>{}</ram:CountryID>", esc(country));
    }
    x.push_str("</ram:PostalTradeAddress>");
    if let Some(email) = &p.email {
        let _ = write!(
            x,
            "<ram:URIUniversalCommunication><ram:URIID schemeID=\"EM\">{}</ram:URIID></ram:URIUniversalCommunication>",
            esc(email)
        );
    }
    if let Some(vat_id) = &p.vat_id {
        let _ = write!(
            x,
            "<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">{}</ram:ID></ram:SpecifiedTaxRegistration>",
            esc(vat_id)
        );
    }
    let _ = write!(x, "</ram:{element}>");
}

fn settlement(x: &mut String, b: &Billing, d: &TaxDocument, number: &str, sign: Decimal) {
    let _ = write!(
        x,
        "<ram:ApplicableHeaderTradeSettlement><ram:PaymentReference>{}</ram:PaymentReference><ram:InvoiceCurrencyCode>{}</ram:InvoiceCurrencyCode>",
        esc(number),
        esc(&d.currency)
    );
    if let Some(iban) = &b.iban {
        let _ = write!(
            x,
            "<ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>58</ram:TypeCode><ram:PayeePartyCreditorFinancialAccount><ram:IBANID>{}</ram:IBANID></ram:PayeePartyCreditorFinancialAccount>",
            esc(iban)
        );
        if let Some(bic) = &b.bic {
            let _ = write!(
                x,
                "<ram:PayeeSpecifiedCreditorFinancialInstitution><ram:BICID>{}</ram:BICID></ram:PayeeSpecifiedCreditorFinancialInstitution>",
                esc(bic)
            );
        }
        x.push_str("</ram:SpecifiedTradeSettlementPaymentMeans>");
    }
    for vat in &d.vat {
        tax(x, vat, sign);
    }
    let _ = write!(
        x,
        "<ram:BillingSpecifiedPeriod><ram:StartDateTime>{}</ram:StartDateTime><ram:EndDateTime>{}</ram:EndDateTime></ram:BillingSpecifiedPeriod>",
        date("udt", &b.supply_from),
        date("udt", &b.supply_to)
    );
    let terms = format!(
        "Payable within {} days of the issue date.",
        b.payment_terms_days
    );
    let _ = write!(
        x,
        "<ram:SpecifiedTradePaymentTerms><ram:Description>{}</ram:Description>",
        esc(&terms)
    );
    if let Some(due) = &d.due_date {
        let _ = write!(
            x,
            "<ram:DueDateDateTime>{}</ram:DueDateDateTime>",
            date("udt", due)
        );
    }
    x.push_str("</ram:SpecifiedTradePaymentTerms>");
    let _ = write!(
        x,
        "<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>{}</ram:LineTotalAmount><ram:TaxBasisTotalAmount>{}</ram:TaxBasisTotalAmount><ram:TaxTotalAmount currencyID=\"{}\">{}</ram:TaxTotalAmount><ram:GrandTotalAmount>{}</ram:GrandTotalAmount><ram:DuePayableAmount>{}</ram:DuePayableAmount></ram:SpecifiedTradeSettlementHeaderMonetarySummation>",
        signed(d.net_total, sign),
        signed(d.net_total, sign),
        esc(&d.currency),
        signed(d.tax_total, sign),
        signed(d.gross_total, sign),
        signed(d.gross_total, sign),
    );
    // EN 16931 names one preceding invoice in CII; the lines name each one they correct.
    if let Some(number) = d.corrects.iter().find_map(|c| c.number.as_ref()) {
        let issued = d
            .corrects
            .iter()
            .find(|c| c.number.as_ref() == Some(number));
        let _ = write!(
            x,
            "<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID>",
            esc(number)
        );
        if let Some(day) = issued.and_then(|c| c.issue_date.as_deref()) {
            let _ = write!(
                x,
                "<ram:FormattedIssueDateTime>{}</ram:FormattedIssueDateTime>",
                date("qdt", day)
            );
        }
        x.push_str("</ram:InvoiceReferencedDocument>");
    }
    x.push_str("</ram:ApplicableHeaderTradeSettlement>\n");
}

fn tax(x: &mut String, vat: &VatBreakdown, sign: Decimal) {
    let _ = write!(
        x,
        "<ram:ApplicableTradeTax><ram:CalculatedAmount>{}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>",
        signed(vat.tax_amount, sign)
    );
    if let Some(reason) = &vat.exemption_reason {
        let _ = write!(
            x,
            "<ram:ExemptionReason>{}</ram:ExemptionReason>",
            esc(reason)
        );
    }
    let _ = write!(
        x,
        "<ram:BasisAmount>{}</ram:BasisAmount><ram:CategoryCode>{}</ram:CategoryCode>",
        signed(vat.taxable_amount, sign),
        esc(&vat.category)
    );
    if let Some(code) = &vat.exemption_code {
        let _ = write!(
            x,
            "<ram:ExemptionReasonCode>{}</ram:ExemptionReasonCode>",
            esc(code)
        );
    }
    let _ = write!(
        x,
        "<ram:RateApplicablePercent>{}</ram:RateApplicablePercent></ram:ApplicableTradeTax>",
        vat.rate
    );
}

/// `amount` with `sign`, zero without one.
fn signed(amount: Decimal, sign: Decimal) -> Decimal {
    let value = amount * sign;
    match value.is_zero() {
        true => Decimal::ZERO,
        false => value,
    }
}

/// A date (`YYYY-MM-DD`) in format 102 (`YYYYMMDD`).
fn date(prefix: &str, day: &str) -> String {
    format!(
        "<{prefix}:DateTimeString format=\"102\">{}</{prefix}:DateTimeString>",
        day.replace('-', "")
    )
}
