//! Issued invoices as the API serves them: read from `invoices` alone, filtered in the query.

use datafusion::prelude::SessionContext;

use super::document::Invoice;
use super::{BillingError, Period};
use crate::lake::{Lake, LakeError, LakeTable};
use crate::tables;

/// Which issued invoices to read. `workspaces: None` reads every Workspace's.
#[derive(Clone, Debug, Default)]
pub struct IssuedFilter {
    pub period: Option<Period>,
    pub workspaces: Option<Vec<i64>>,
}

/// `101-2026-11` as (Workspace, period); `None` for anything else.
pub fn parse_invoice_id(text: &str) -> Option<(i64, Period)> {
    let (workspace, period) = text.split_once('-')?;
    if workspace.starts_with('+') || workspace.starts_with('0') {
        return None;
    }
    let workspace: i64 = workspace.parse().ok().filter(|w| *w > 0)?;
    let period: Period = period.parse().ok()?;
    (format!("{workspace}-{period}") == text).then_some((workspace, period))
}

/// The issued invoices the filter selects, by period and Workspace.
pub async fn issued_invoices(
    lake: &Lake,
    filter: &IssuedFilter,
) -> Result<Vec<Invoice>, BillingError> {
    if filter.workspaces.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let ctx = SessionContext::new();
    let table = LakeTable::Invoices;
    if lake
        .register_table(&ctx, table, "invoices")
        .await?
        .is_none()
    {
        return Ok(Vec::new());
    }
    // Only typed values reach the SQL: a parsed period and integers.
    let mut conditions = vec!["TRUE".to_owned()];
    if let Some(period) = filter.period {
        conditions.push(format!("period = '{period}'"));
    }
    if let Some(workspaces) = &filter.workspaces {
        let ids: Vec<String> = workspaces.iter().map(i64::to_string).collect();
        conditions.push(format!("workspace_id IN ({})", ids.join(", ")));
    }
    let sql = format!(
        "SELECT document FROM invoices WHERE {} ORDER BY period, workspace_id",
        conditions.join(" AND ")
    );
    let frame = ctx.sql(&sql).await.map_err(BillingError::query(&sql))?;
    let batches = frame.collect().await.map_err(BillingError::query(&sql))?;
    let corrupt = |detail: String| LakeError::Corrupt {
        table: "invoices",
        detail,
    };
    let mut out = Vec::new();
    for batch in &batches {
        let documents = tables::invoices::documents(batch).map_err(corrupt)?;
        for document in documents.iter().flatten() {
            let invoice = serde_json::from_str(document)
                .map_err(|e| corrupt(format!("an invoice document: {e}")))?;
            out.push(invoice);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_invoice_ids_parse() {
        let november: Period = "2026-11".parse().unwrap();
        assert_eq!(parse_invoice_id("101-2026-11"), Some((101, november)));
        for bad in [
            "",
            "101",
            "101-2026-13",
            "0101-2026-11",
            "-1-2026-11",
            "101-2026-11 ",
            "x-2026-11",
            "+1-2026-11",
            "0-2026-11",
        ] {
            assert_eq!(parse_invoice_id(bad), None, "{bad}");
        }
    }
}
