//! `/v1/invoices` over real HTTP: who reads which issued invoice, in which format.

use crate::common;

use common::access::write_fixture;
use common::server::{operator_token, serve, token};
use common::{ingest_files, local_lake};
use reqwest::StatusCode;
use simtally::query::QueryLimits;

const PRICES: &str = r#"
[[tariff]]
name = "default"
effective_from = "2026-01-01"
currency = "EUR"
sim_fee = "1.00"
allowance_fee = "0"
allowance_volume_mb = "0"

[seller]
name = "Example Connectivity GmbH"
country = "DE"
vat_id = "DE123456789"
vat_rate = "19"
"#;

fn listed(answer: &common::server::Answer) -> Vec<String> {
    let invoices = answer.json()["invoices"].as_array().cloned();
    (invoices
        .unwrap_or_else(|| panic!("{} {}", answer.status, answer.text()))
        .iter())
    .map(|i| i["invoice_id"].as_str().unwrap().to_owned())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_and_the_superadmin_read_their_workspaces_invoices_and_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    ingest_files(&lake, &[usage], &[events]).await;
    std::fs::write(dir.path().join("prices.toml"), PRICES).unwrap();
    let server = serve(&lake, dir.path(), QueryLimits::default()).await;

    // Only an operator issues; twice issues once.
    let issue = |token: String, body: serde_json::Value| {
        let server = &server;
        async move { server.post("/v1/invoice-runs", &token, body).await }
    };
    let period = serde_json::json!({"period": "2026-10"});
    let refused = issue(token("adam"), period.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let bad = issue(operator_token(), serde_json::json!({"period": "2026-13"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let first = issue(operator_token(), period.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let issued = first.json()["issued"].as_array().unwrap().len();
    assert!(issued >= 5, "{}", first.text());
    let again = issue(operator_token(), period).await.json();
    assert_eq!(
        (
            again["issued"].as_array().unwrap().len(),
            again["issued_before"].as_array().unwrap().len()
        ),
        (0, issued)
    );

    let list = |user: &str| {
        let token = token(user);
        let server = &server;
        async move {
            server
                .get("/v1/invoices?period=2026-10", Some(&token), None)
                .await
        }
    };
    // Adam administers 101 and 102; Sara is the SuperAdmin of 101-103 (and observes 201);
    // Olga only observes 101.
    assert_eq!(listed(&list("adam").await), ["101-2026-10", "102-2026-10"]);
    assert_eq!(
        listed(&list("sara").await),
        ["101-2026-10", "102-2026-10", "103-2026-10"]
    );
    assert!(listed(&list("olga").await).is_empty());
    let all = server
        .get("/v1/invoices", Some(&operator_token()), None)
        .await;
    assert!(listed(&all).contains(&"201-2026-10".to_owned()));

    // One document, in each format; the JSON is the one `invoice` wrote.
    let adam = token("adam");
    let json = server
        .get("/v1/invoices/101-2026-10", Some(&adam), None)
        .await;
    assert_eq!(json.status, StatusCode::OK);
    let written =
        std::fs::read(dir.path().join("served-invoices/2026-10/101-2026-10.json")).unwrap();
    assert_eq!(json.body, written);
    let html = server
        .get("/v1/invoices/101-2026-10", Some(&adam), Some("text/html"))
        .await;
    assert!(html.content_type.starts_with("text/html") && html.text().contains("<table"));
    let csv = server
        .get("/v1/invoices/101-2026-10?format=csv", Some(&adam), None)
        .await;
    assert!(csv.content_type.starts_with("text/csv") && csv.text().starts_with("section,"));
    // The e-invoice, by format or by Accept, is the one `invoice` wrote.
    let xml = server
        .get(
            "/v1/invoices/101-2026-10",
            Some(&adam),
            Some("application/xml"),
        )
        .await;
    assert_eq!(xml.status, StatusCode::OK, "{}", xml.text());
    assert!(xml.content_type.starts_with("application/xml"));
    let written =
        std::fs::read(dir.path().join("served-invoices/2026-10/101-2026-10.xml")).unwrap();
    assert_eq!(xml.body, written);
    let by_format = server
        .get(
            "/v1/invoices/101-2026-10?format=xml&currency=EUR",
            Some(&adam),
            None,
        )
        .await;
    assert_eq!(by_format.body, written);
    let other = server
        .get(
            "/v1/invoices/101-2026-10?format=xml&currency=USD",
            Some(&adam),
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_ACCEPTABLE, "{}", other.text());
    let annex = server
        .get("/v1/invoices/101-2026-10?format=annex", Some(&adam), None)
        .await;
    let written = std::fs::read(
        dir.path()
            .join("served-invoices/2026-10/101-2026-10.sims.csv"),
    )
    .unwrap();
    assert_eq!(
        (annex.status, annex.body.as_slice()),
        (StatusCode::OK, written.as_slice())
    );
    let listed = server
        .get(
            "/v1/invoices?period=2026-10&workspace_id=101",
            Some(&adam),
            None,
        )
        .await
        .json();
    let number = &listed["invoices"][0]["documents"][0]["number"];
    assert!(
        number
            .as_str()
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit())),
        "{listed}"
    );
    assert!(xml
        .text()
        .contains(&format!("<ram:ID>{}</ram:ID>", number.as_str().unwrap())));

    // Not his, not issued, not an id: the same 404; asking for another's list: 403.
    for path in [
        "/v1/invoices/201-2026-10",
        "/v1/invoices/101-2026-12",
        "/v1/invoices/101-2026-1%27",
    ] {
        let answer = server.get(path, Some(&adam), None).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    let olga = token("olga");
    let answer = server
        .get("/v1/invoices/101-2026-10", Some(&olga), None)
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "an Observer");
    let answer = server
        .get("/v1/invoices?workspace_id=201", Some(&adam), None)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    for bad in ["/v1/invoices?period=2026-13", "/v1/invoices?sort=asc"] {
        let answer = server.get(bad, Some(&adam), None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        server.get("/v1/invoices", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}
