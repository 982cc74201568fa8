//! Invoices as documents: seller and customer, gap-free numbers, VAT, corrections that name
//! what they correct, and each issued tax document as EN 16931 XML that the standard's
//! schema and Schematron rules accept (validated by tests/clients/einvoice_check.py).

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::books::{d, of, Books};
use common::wire::{registered, status, transferred, usage};
use simtally::billing::legal::{DocumentKind, TaxDocument};
use simtally::billing::{invoice, Invoice, InvoiceOptions, Period, TaxTreatment};

const A: i64 = 101;
const B: i64 = 102;
const SIM: &str = "8988303000010000117";
const SIM2: &str = "8988303000010000125";
const SIM3: &str = "8988303000010000133";

const PRICES: &str = concat!(
    crate::standard_tariff!(),
    r#"
[[workspace]]
id = 101
time_zone = "Europe/Berlin"
legal_name = "Nordlicht Logistik GmbH"
address = ["Speicherstadt 4"]
postcode = "20457"
city = "Hamburg"
country = "DE"
vat_id = "DE811234567"
payment_terms_days = 14

[[workspace]]
id = 102
legal_name = "Acme Fleet SAS"
address = ["12 rue de la Paix"]
postcode = "75002"
city = "Paris"
country = "FR"
vat_id = "FR40303265045"

[seller]
name = "Example Connectivity GmbH"
address = ["Hauptstrasse 1"]
postcode = "10115"
city = "Berlin"
country = "DE"
vat_id = "DE123456789"
iban = "DE02120300000000202051"
number_prefix = "ST-"
vat_rate = "19"
vat_rates = { sim_fee = "7" }
"#
);

/// The Python with the EN 16931 validators (scripts/test.sh installs them).
fn python() -> String {
    std::env::var("SIMTALLY_TEST_PYTHON").expect(
        "SIMTALLY_TEST_PYTHON: a Python with factur-x, xmlschema and saxonche \
         (scripts/test.sh installs them)",
    )
}

/// Runs the validator over `files`; its report when any is invalid.
fn validate(files: &[PathBuf]) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/einvoice_check.py");
    let output = Command::new(python())
        .arg(script)
        .args(files)
        .output()
        .expect("run the e-invoice validator");
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    match output.status.success() {
        true => Ok(()),
        false => Err(report),
    }
}

fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    files
}

fn documents(invoice: &Invoice) -> &[TaxDocument] {
    &invoice
        .billing
        .as_ref()
        .expect("a seller is configured")
        .documents
}

fn numbers<'a>(invoices: impl Iterator<Item = &'a Invoice>) -> Vec<u64> {
    let mut numbers: Vec<u64> = invoices
        .flat_map(documents)
        .map(|d| d.sequence.expect("issued documents are numbered"))
        .collect();
    numbers.sort();
    numbers
}

/// A issues in Germany at 19 % on usage and allowances and 7 % on SIM fees; B is a French
/// business and reverse-charged. After November is issued, late events withdraw A's fee for
/// SIM2 and move SIM to B: A's December is a credit note naming November's invoice.
#[tokio::test]
async fn issued_invoices_are_numbered_taxed_and_valid_en16931() {
    let mut books = Books::new(PRICES);
    let events = vec![
        registered("e1", "2026-11-01T00:00:00Z", SIM, A),
        status("e2", "2026-11-01T00:00:00Z", SIM, A, "ACTIVATED"),
        registered("e10", "2026-10-01T00:00:00Z", SIM2, A),
        status("e11", "2026-11-02T00:00:00Z", SIM2, A, "ACTIVATED"),
        registered("e20", "2026-10-01T00:00:00Z", SIM3, B),
        status("e21", "2026-10-01T00:00:00Z", SIM3, B, "ACTIVATED"),
    ];
    let first = usage(
        1,
        SIM,
        "2026-11-05T00:00:00Z",
        "2026-11-05T01:00:00Z",
        "1.0",
    );
    let b_usage = usage(
        5,
        SIM3,
        "2026-11-05T00:00:00Z",
        "2026-11-05T01:00:00Z",
        "0.3",
    );
    books.ingest(&[first, b_usage], &events).await;
    let november = books.issue("2026-11").await;

    let a = of(&november, A).unwrap();
    let billing = a.billing.as_ref().unwrap();
    assert_eq!(billing.buyer.name, "Nordlicht Logistik GmbH");
    assert_eq!(billing.tax_treatment, TaxTreatment::Standard);
    assert_eq!(
        (billing.supply_from.as_str(), billing.supply_to.as_str()),
        ("2026-11-01", "2026-11-30")
    );
    let [doc] = documents(a) else {
        panic!("one currency, one document")
    };
    assert_eq!(doc.kind, DocumentKind::Invoice);
    let lines: Vec<(&str, String, &str, String)> = (doc.lines.iter())
        .map(|l| {
            (
                l.description.as_str(),
                l.quantity.to_string(),
                l.unit.code.as_str(),
                l.net_amount.to_string(),
            )
        })
        .collect();
    // 2 MB of data within the allowances (1.00 credited), 2 SIM fees, 2 allowances.
    assert_eq!(
        lines,
        [
            ("Data, 2026-11 (1 records)", "2".into(), "4L", "1.00".into()),
            ("SIM fee, 2026-11", "2".into(), "C62", "3.00".into()),
            (
                "Data allowance of 500 MB, 2026-11",
                "2".into(),
                "C62",
                "8.00".into()
            ),
            (
                "Data included in allowances",
                "-2".into(),
                "4L",
                "-1.00".into()
            ),
        ]
    );
    let vat: Vec<(String, String, String, String)> = (doc.vat.iter())
        .map(|v| {
            (
                v.category.clone(),
                v.rate.to_string(),
                v.taxable_amount.to_string(),
                v.tax_amount.to_string(),
            )
        })
        .collect();
    assert_eq!(
        vat,
        [
            ("S".into(), "7".into(), "3.00".into(), "0.21".into()),
            ("S".into(), "19".into(), "8.00".into(), "1.52".into()),
        ]
    );
    assert_eq!(
        (doc.net_total, doc.tax_total, doc.gross_total),
        (d("11.00"), d("1.73"), d("12.73"))
    );
    let b = of(&november, B).unwrap();
    assert_eq!(
        b.billing.as_ref().unwrap().tax_treatment,
        TaxTreatment::ReverseCharge
    );
    let [b_doc] = documents(b) else {
        panic!("one document")
    };
    assert!(b_doc
        .vat
        .iter()
        .all(|v| v.category == "AE" && v.tax_amount.is_zero()));
    assert_eq!(b_doc.gross_total, b_doc.net_total);
    // Issue and due dates are the customer's local days.
    let issued_day = doc.issue_date.clone().unwrap();
    let due = chrono::NaiveDate::parse_from_str(&issued_day, "%Y-%m-%d").unwrap()
        + chrono::Duration::days(14);
    assert_eq!(doc.due_date.as_deref(), Some(due.to_string().as_str()));
    assert_eq!(numbers(november.invoices.iter().map(|(i, _)| i)), [1, 2]);

    // The annex: per SIM, its data, fee, allowance and covered data.
    let annex_path = books.out("2026-11").join("101-2026-11.sims.csv");
    let annex = std::fs::read_to_string(&annex_path).unwrap();
    assert_eq!(
        annex,
        format!(
            "iccid,charge,currency,records,quantity,unit,amount\n\
             {SIM},data,EUR,1,2.000000,MB,1.0000000000\n\
             {SIM},sim_fee,EUR,,1,SIM,1.50\n\
             {SIM},allowance,EUR,,500,MB included,4.00\n\
             {SIM},allowance_cover,EUR,,-2.000000,MB,-1.0000000000\n\
             {SIM2},sim_fee,EUR,,1,SIM,1.50\n\
             {SIM2},allowance,EUR,,500,MB included,4.00\n"
        )
    );

    // Late events: SIM2 was never ACTIVATED in A (it went to B on 1 November), SIM moved to
    // B; late usage of SIM in November.
    let late = [
        transferred("e3", "2026-11-20T00:00:00Z", SIM, A, B),
        transferred("e12", "2026-11-01T00:00:00Z", SIM2, A, B),
    ];
    let late_usage = usage(
        2,
        SIM,
        "2026-11-06T00:00:00Z",
        "2026-11-06T01:00:00Z",
        "0.25",
    );
    books.ingest(&[late_usage], &late).await;
    let xml_path = books.out("2026-11").join("101-2026-11.xml");
    let html_path = books.out("2026-11").join("101-2026-11.html");
    let (xml, html) = (
        std::fs::read(&xml_path).unwrap(),
        std::fs::read(&html_path).unwrap(),
    );
    books.draft("2026-11").await;
    let annex_now = std::fs::read_to_string(&annex_path).unwrap();
    assert_eq!(annex_now, annex, "an issued annex stays");
    assert_eq!(
        std::fs::read(&xml_path).unwrap(),
        xml,
        "an issued e-invoice stays"
    );
    assert_eq!(std::fs::read(&html_path).unwrap(), html);
    let december = books.issue("2026-12").await;
    let a_dec = of(&december, A).unwrap();
    let [credit] = documents(a_dec) else {
        panic!("one document")
    };
    assert_eq!(credit.kind, DocumentKind::CreditNote, "{credit:?}");
    assert!(credit.gross_total.is_sign_negative());
    let corrected: Vec<_> = credit
        .corrects
        .iter()
        .map(|c| (c.period.as_str(), c.number.as_deref()))
        .collect();
    assert_eq!(corrected, [("2026-11", doc.number.as_deref())]);
    assert!(credit.lines.iter().all(|l| l.corrects.is_some()));
    let all = november
        .invoices
        .iter()
        .chain(&december.invoices)
        .map(|(i, _)| i);
    let issued = numbers(all);
    assert_eq!(issued, (1..=issued.len() as u64).collect::<Vec<_>>());

    let mut files = xml_files(&books.out("2026-11"));
    files.extend(xml_files(&books.out("2026-12")));
    assert!(files.len() >= 3, "{files:?}");
    validate(&files).unwrap_or_else(|report| panic!("{report}"));
    let credit_xml = std::fs::read_to_string(books.out("2026-12").join("101-2026-12.xml")).unwrap();
    assert!(credit_xml.contains("<ram:TypeCode>381</ram:TypeCode>"));
    assert!(credit_xml.contains(&format!(
        "<ram:IssuerAssignedID>{}</ram:IssuerAssignedID>",
        doc.number.as_deref().unwrap()
    )));
}

/// The validator is not a formality: a document whose VAT does not add up is refused.
#[tokio::test]
async fn the_validator_refuses_a_document_whose_vat_does_not_add_up() {
    let mut books = Books::new(PRICES);
    let events = vec![
        registered("e1", "2026-11-01T00:00:00Z", SIM, A),
        status("e2", "2026-11-01T00:00:00Z", SIM, A, "ACTIVATED"),
    ];
    books.ingest(&[], &events).await;
    books.issue("2026-11").await;
    let path = books.out("2026-11").join("101-2026-11.xml");
    let xml = std::fs::read_to_string(&path).unwrap();
    validate(std::slice::from_ref(&path)).unwrap_or_else(|report| panic!("{report}"));
    let tampered = xml.replacen("<ram:CalculatedAmount>", "<ram:CalculatedAmount>1", 1);
    assert_ne!(tampered, xml);
    let bad = books.dir.path().join("tampered.xml");
    std::fs::write(&bad, tampered).unwrap();
    let report = validate(&[bad]).unwrap_err();
    assert!(report.contains("BR-"), "{report}");
}

/// Issues that run at once never share a number or leave one out: whichever stores its
/// invoices second read the first's and continues its sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issues_never_share_or_skip_a_number() {
    let mut books = Books::new(PRICES);
    let workspaces = [101, 102, 103, 104, 105, 106];
    let mut events = Vec::new();
    for (i, workspace) in workspaces.iter().enumerate() {
        let iccid = format!("89883030000100{:05}", 1000 + i);
        events.push(registered(
            &format!("r{i}"),
            "2026-10-01T00:00:00Z",
            &iccid,
            *workspace,
        ));
        events.push(status(
            &format!("s{i}"),
            "2026-10-01T00:00:00Z",
            &iccid,
            *workspace,
            "ACTIVATED",
        ));
    }
    books.ingest(&[], &events).await;
    let run = |chosen: Vec<i64>, period: &str| {
        let options = InvoiceOptions {
            period: period.parse::<Period>().unwrap(),
            workspaces: chosen,
            ..books.options(period, true)
        };
        let lake = &books.lake;
        async move { invoice(lake, &options).await.expect("issue") }
    };
    // Three runs over different Workspaces and months, and two over the same, at once.
    let (r1, r2, r3, r4, r5) = tokio::join!(
        run(vec![101, 102], "2026-10"),
        run(vec![103, 104], "2026-10"),
        run(vec![105, 106], "2026-11"),
        run(Vec::new(), "2026-12"),
        run(Vec::new(), "2026-12"),
    );
    let stored = simtally::billing::issued_invoices(
        &books.lake,
        &simtally::billing::IssuedFilter {
            period: None,
            workspaces: None,
        },
    )
    .await
    .unwrap();
    let issued = numbers(stored.iter());
    assert_eq!(
        issued,
        (1..=issued.len() as u64).collect::<Vec<_>>(),
        "{issued:?}"
    );
    // 2 + 2 + 2 in October and November, 6 in December issued once.
    assert_eq!(issued.len(), 12);
    let unique: BTreeSet<String> = stored
        .iter()
        .flat_map(documents)
        .filter_map(|d| d.number.clone())
        .collect();
    assert_eq!(unique.len(), 12);
    for run in [r1, r2, r3, r4, r5] {
        for (invoice, _) in &run.invoices {
            assert!(
                stored.contains(invoice),
                "{} was reported but not stored",
                invoice.invoice_id
            );
        }
    }
}

fn chromium() -> PathBuf {
    std::env::var("SIMTALLY_TEST_CHROMIUM")
        .unwrap_or_else(|_| "/usr/bin/chromium".into())
        .into()
}

/// `--pdf-with`: the issued invoice printed by headless Chromium, opened by a PDF reader
/// (pypdf); printed once, so a rerun keeps the same file.
#[tokio::test]
async fn an_issued_invoice_prints_to_a_pdf_that_a_reader_opens() {
    let mut books = Books::new(PRICES);
    let events = vec![
        registered("e1", "2026-11-01T00:00:00Z", SIM, A),
        status("e2", "2026-11-01T00:00:00Z", SIM, A, "ACTIVATED"),
    ];
    books.ingest(&[], &events).await;
    let options = InvoiceOptions {
        pdf: Some(chromium()),
        ..books.options("2026-11", true)
    };
    let run = invoice(&books.lake, &options).await.unwrap();
    let number = documents(of(&run, A).unwrap())[0].number.clone().unwrap();
    let pdf = books.out("2026-11").join("101-2026-11.pdf");
    let read = |path: &Path| {
        let script = "import sys, pypdf\nr = pypdf.PdfReader(sys.argv[1])\nprint(len(r.pages))\nprint(' '.join(p.extract_text() for p in r.pages))";
        let output = Command::new(python())
            .args(["-c", script])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let text = read(&pdf);
    assert!(text.contains(&format!("Invoice {number}")), "{text}");
    assert!(
        text.contains("Amount due") && text.contains("Nordlicht Logistik GmbH"),
        "{text}"
    );
    let printed = std::fs::read(&pdf).unwrap();
    invoice(&books.lake, &options).await.unwrap();
    assert_eq!(
        std::fs::read(&pdf).unwrap(),
        printed,
        "an issued invoice's PDF is kept"
    );
}
