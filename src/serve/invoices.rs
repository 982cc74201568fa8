//! `/v1/invoices`: issued invoices, to the people who pay them. An Administrator of a
//! Workspace and the SuperAdmin of its organization see its invoices; Users and Observers
//! see usage (the reports), not invoices; operators see all. Drafts are not served: they
//! change until the month is issued (`simtally invoice` writes them for the operator).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::respond::{json_response, ApiError};
use super::state::{audience_of, Access, ApiState};
use crate::billing::cii;
use crate::billing::render::{to_csv, to_html, to_json};
use crate::billing::Invoice;
use crate::billing::{issued_invoices, parse_invoice_id, BillingError, IssuedFilter, Period};
use crate::domain::Role;

/// The Workspaces whose invoices the caller may read (`None`: all, an operator).
fn billing_access(access: &Access) -> Option<BTreeSet<i64>> {
    access.as_ref().map(|roles| {
        (roles.iter())
            .filter(|(_, role)| matches!(role, Role::Administrator | Role::SuperAdmin))
            .map(|(workspace, _)| workspace.get())
            .collect()
    })
}

fn read_failed(e: BillingError) -> ApiError {
    tracing::error!("reading invoices: {e}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the invoices could not be read; try again",
    )
}

/// `period=YYYY-MM`, `workspace_id` (repeated or comma-separated).
fn parse_list_query(query: Option<&str>) -> Result<(Option<Period>, Vec<i64>), ApiError> {
    let (mut period, mut workspaces) = (None, Vec::new());
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "period" => period = Some(value.parse::<Period>().map_err(ApiError::bad_request)?),
            "workspace_id" => {
                for id in value.split(',').filter(|v| !v.is_empty()) {
                    let id = id.trim().parse::<i64>().ok().filter(|w| *w > 0);
                    let id = id.ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "workspace_id: '{value}' is not a Workspace id"
                        ))
                    })?;
                    workspaces.push(id);
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter '{other}'; use period and workspace_id"
                )))
            }
        }
    }
    Ok((period, workspaces))
}

pub(super) async fn list_invoices(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (_, _, _, access) = audience_of(&state, &headers).await?;
    let (period, asked) = parse_list_query(query.as_deref())?;
    let visible = billing_access(&access);
    if let Some(visible) = &visible {
        if let Some(denied) = asked.iter().find(|w| !visible.contains(w)) {
            return Err(ApiError::forbidden(format!(
                "you may not read Workspace {denied}'s invoices (its Administrators and SuperAdmin may)"
            )));
        }
    }
    let workspaces = match (asked.is_empty(), visible) {
        (false, _) => Some(asked),
        (true, visible) => visible.map(|v| v.into_iter().collect()),
    };
    let filter = IssuedFilter { period, workspaces };
    let invoices = issued_invoices(&state.lake, &filter)
        .await
        .map_err(read_failed)?;
    let listed: Vec<_> = (invoices.iter())
        .map(|i| {
            json!({
                "invoice_id": i.invoice_id,
                "workspace_id": i.workspace_id,
                "period": i.period,
                "status": i.status,
                "issued_at": i.issued_at,
                "totals": i.totals,
                "documents": documents_of(i),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "invoices": listed }),
    ))
}

/// Each tax document's number, kind, currency, amount due and due date.
fn documents_of(invoice: &Invoice) -> Vec<serde_json::Value> {
    let documents = invoice.billing.iter().flat_map(|b| &b.documents);
    documents
        .map(|d| {
            json!({
                "number": d.number,
                "kind": d.kind,
                "currency": d.currency,
                "gross_total": d.gross_total,
                "due_date": d.due_date,
            })
        })
        .collect()
}

/// The document formats, by `format=` or else the `Accept` header.
#[derive(Clone, Copy)]
enum DocumentFormat {
    Json,
    Csv,
    Html,
    /// The EN 16931 e-invoice (CII) of one currency's tax document.
    Xml,
    /// The per-SIM annex (CSV).
    Annex,
}

impl DocumentFormat {
    /// The format, and the currency asked for (`currency=`, for the XML of an invoice that
    /// bills several).
    fn choose(
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(Self, Option<String>), ApiError> {
        let (mut asked, mut currency) = (None, None);
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            asked = Some(match (key.as_ref(), value.as_ref()) {
                ("format", "json") => DocumentFormat::Json,
                ("format", "csv") => DocumentFormat::Csv,
                ("format", "html") => DocumentFormat::Html,
                ("format", "xml") => DocumentFormat::Xml,
                ("format", "annex") => DocumentFormat::Annex,
                ("format", other) => {
                    return Err(ApiError::bad_request(format!(
                        "format: '{other}' is not json, csv, html, xml or annex"
                    )))
                }
                ("currency", code) => {
                    currency = Some(code.to_owned());
                    continue;
                }
                (other, _) => {
                    return Err(ApiError::bad_request(format!(
                        "unknown parameter '{other}'; use format and currency"
                    )))
                }
            });
        }
        if let Some(format) = asked {
            return Ok((format, currency));
        }
        Self::accepted(headers).map(|format| (format, currency))
    }

    fn accepted(headers: &HeaderMap) -> Result<Self, ApiError> {
        let accept = (headers.get(header::ACCEPT))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("*/*");
        for media in accept.split(',') {
            match media.split(';').next().unwrap_or("").trim() {
                "application/json" | "*/*" | "application/*" | "" => {
                    return Ok(DocumentFormat::Json)
                }
                "text/csv" => return Ok(DocumentFormat::Csv),
                "text/html" | "text/*" => return Ok(DocumentFormat::Html),
                "application/xml" | "text/xml" => return Ok(DocumentFormat::Xml),
                _ => {}
            }
        }
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!(
                "cannot answer '{accept}'; ask for application/json, text/csv, text/html or application/xml"
            ),
        ))
    }
}

pub(super) async fn get_invoice(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (_, _, _, access) = audience_of(&state, &headers).await?;
    let (format, currency) = DocumentFormat::choose(query.as_deref(), &headers)?;
    // One answer for "no such invoice" and "not yours": existence is not disclosed.
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no issued invoice '{id}' that you may read"),
        )
    };
    let (workspace, period) = parse_invoice_id(&id).ok_or_else(not_found)?;
    if billing_access(&access).is_some_and(|v| !v.contains(&workspace)) {
        return Err(not_found());
    }
    let filter = IssuedFilter {
        period: Some(period),
        workspaces: Some(vec![workspace]),
    };
    let invoices = issued_invoices(&state.lake, &filter)
        .await
        .map_err(read_failed)?;
    let invoice = invoices.first().ok_or_else(not_found)?;
    let (content_type, body) = match format {
        DocumentFormat::Json => ("application/json", to_json(invoice)),
        DocumentFormat::Csv => ("text/csv; charset=utf-8", to_csv(invoice)),
        DocumentFormat::Html => ("text/html; charset=utf-8", to_html(invoice)),
        DocumentFormat::Xml => ("application/xml", e_invoice(invoice, currency)?),
        DocumentFormat::Annex => {
            let annex = crate::billing::annex(&state.lake, invoice).await;
            ("text/csv; charset=utf-8", annex.map_err(read_failed)?)
        }
    };
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The CII XML of the invoice's tax document in `currency` (the only one when not given).
fn e_invoice(invoice: &Invoice, currency: Option<String>) -> Result<String, ApiError> {
    let not_acceptable =
        |detail: String| ApiError::new(StatusCode::NOT_ACCEPTABLE, "no_e_invoice", detail);
    let Some(billing) = &invoice.billing else {
        return Err(not_acceptable(format!(
            "{} was issued as a usage statement (no seller configured): it has no e-invoice",
            invoice.invoice_id
        )));
    };
    let currencies: Vec<&str> = billing
        .documents
        .iter()
        .map(|d| d.currency.as_str())
        .collect();
    let document = match (&currency, billing.documents.as_slice()) {
        (None, [only]) => only,
        (None, _) => {
            return Err(ApiError::bad_request(format!(
                "{} bills {}: name one with currency=",
                invoice.invoice_id,
                match currencies.is_empty() {
                    true => "nothing".to_owned(),
                    false => currencies.join(", "),
                }
            )))
        }
        (Some(code), documents) => {
            (documents.iter().find(|d| &d.currency == code)).ok_or_else(|| {
                not_acceptable(format!(
                    "{} has no tax document in '{code}' (it has: {})",
                    invoice.invoice_id,
                    currencies.join(", ")
                ))
            })?
        }
    };
    Ok(cii::to_cii(invoice, billing, document))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IssueRequest {
    period: String,
}

/// `POST /v1/invoice-runs {"period": "2026-11"}`: an operator seals a month for every
/// Workspace, as `simtally invoice --period 2026-11 --issue` does (and as safely: a month
/// issued already is reproduced, two at once issue it once).
pub(super) async fn issue(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (caller, _, _, _) = audience_of(&state, &headers).await?;
    if !matches!(caller, crate::serve::Caller::Operator(_)) {
        return Err(ApiError::forbidden("issuing invoices is for operators"));
    }
    let request: IssueRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body: {e}")))?;
    let period: Period = request.period.parse().map_err(ApiError::bad_request)?;
    let billing = state.billing.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "billing_not_configured",
            "this server has no price list: start it with --prices",
        )
    })?;
    let options = crate::billing::InvoiceOptions {
        period,
        workspaces: Vec::new(),
        prices: billing.prices.clone(),
        out: billing.out.join(period.to_string()),
        issue: true,
        pdf: None,
    };
    // The issue runs on a blocking thread of its own (its future is not `Send`).
    let lake = state.lake.clone();
    let handle = tokio::runtime::Handle::current();
    let run = tokio::task::spawn_blocking(move || {
        handle.block_on(crate::billing::invoice(&lake, &options))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the issue stopped: {e}")))?
    .map_err(|e| match e {
        BillingError::Prices(detail) => ApiError::new(StatusCode::CONFLICT, "price_list", detail),
        BillingError::Tariff { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "tariff", e.to_string())
        }
        other => read_failed(other),
    })?;
    let ids = |wanted: crate::billing::Provenance| -> Vec<&str> {
        (run.invoices.iter())
            .filter(|(_, p)| *p == wanted)
            .map(|(i, _)| i.invoice_id.as_str())
            .collect()
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "period": period.to_string(),
            "issued": ids(crate::billing::Provenance::IssuedNow),
            "issued_before": ids(crate::billing::Provenance::IssuedBefore),
        }),
    ))
}
