//! The names and time zone of a result as PostgreSQL gives them. PostgreSQL names an
//! unaliased output column after its column or function (`to_char`, `cost` for
//! `cost::float8`) and allows two columns of the same name; DataFusion names it after the
//! whole expression and refuses duplicates ("Projections require unique expression
//! names"). So a query's top-level outputs get PostgreSQL's names as aliases; a name that
//! is already taken gets a marked suffix, which [`client_name`] cuts off before the name
//! reaches the client. `timestamptz` columns are shown in the session's `TimeZone`.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{cast, Expr as PlanExpr, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, Statement};
use datafusion_postgres::pgwire::api::results::{FieldInfo, QueryResponse, Response};

/// Starts the part of a DataFusion name the client does not see.
const MARK: char = '\u{1f}';

/// The name the client sees for a DataFusion output name.
pub fn client_name(name: &str) -> &str {
    name.split(MARK).next().unwrap_or(name)
}

/// Gives `statement`'s unaliased top-level outputs PostgreSQL's names; true if it changed.
pub fn name_outputs(statement: &mut Statement) -> bool {
    match statement {
        Statement::Query(query) => name_query_outputs(query),
        _ => false,
    }
}

fn name_query_outputs(query: &mut Query) -> bool {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    // Columns and aliases keep their names; expressions take what is left.
    let mut taken: HashSet<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::UnnamedExpr(e) => column_name(e),
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            _ => None,
        })
        .collect();
    let mut changed = false;
    for item in &mut select.projection {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        if column_name(expr).is_some() {
            continue;
        }
        let wanted = pg_name(expr);
        let mut alias = wanted.clone();
        let mut n = 1;
        while !taken.insert(alias.clone()) {
            n += 1;
            alias = format!("{wanted}{MARK}{n}");
        }
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: Ident::with_quote('"', alias),
        };
        changed = true;
    }
    changed
}

/// The name of a plain column reference, as DataFusion will name it.
fn column_name(expr: &Expr) -> Option<String> {
    let ident = match expr {
        Expr::Identifier(ident) => ident,
        Expr::CompoundIdentifier(parts) => parts.last()?,
        _ => return None,
    };
    Some(match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    })
}

/// The name PostgreSQL gives an unaliased output expression.
pub fn output_name(expr: &Expr) -> String {
    column_name(expr).unwrap_or_else(|| pg_name(expr))
}

/// PostgreSQL's name for an unaliased output expression (its `FigureColname` rules, for
/// the expressions people write).
fn pg_name(expr: &Expr) -> String {
    match expr {
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map_or_else(|| "?column?".to_owned(), |i| i.value.to_lowercase()),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => match column_name(expr) {
            Some(name) => name,
            None => pg_name(expr),
        },
        Expr::Case { .. } => "case".to_owned(),
        Expr::Extract { .. } => "extract".to_owned(),
        Expr::Substring { .. } => "substring".to_owned(),
        Expr::Trim { .. } => "btrim".to_owned(),
        Expr::Position { .. } => "position".to_owned(),
        Expr::Ceil { .. } => "ceil".to_owned(),
        Expr::Floor { .. } => "floor".to_owned(),
        Expr::AtTimeZone { .. } => "timezone".to_owned(),
        Expr::Array(_) => "array".to_owned(),
        Expr::Exists { .. } => "exists".to_owned(),
        _ => "?column?".to_owned(),
    }
}

/// `plan` with its `timestamptz` outputs in `time_zone` (unchanged if there are none or the
/// zone is not one arrow knows; `SET TIME ZONE` refuses those).
pub fn in_time_zone(plan: LogicalPlan, time_zone: &str) -> DfResult<LogicalPlan> {
    if Tz::from_str(time_zone).is_err() {
        return Ok(plan);
    }
    let zone: Arc<str> = Arc::from(time_zone);
    let needs = |t: &DataType| matches!(t, DataType::Timestamp(_, Some(tz)) if **tz != *zone);
    if !plan.schema().fields().iter().any(|f| needs(f.data_type())) {
        return Ok(plan);
    }
    let outputs: Vec<PlanExpr> = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let column = PlanExpr::Column(Column::new(qualifier.cloned(), field.name()));
            match field.data_type() {
                DataType::Timestamp(unit, Some(_)) if needs(field.data_type()) => {
                    let shown = DataType::Timestamp(*unit, Some(zone.clone()));
                    cast(column, shown).alias_qualified(qualifier.cloned(), field.name())
                }
                _ => column,
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(outputs)?.build()
}

/// `fields` as the client sees them (see [`client_name`]).
pub fn client_fields(fields: Vec<FieldInfo>) -> Vec<FieldInfo> {
    fields.into_iter().map(client_field).collect()
}

fn client_field(field: FieldInfo) -> FieldInfo {
    if !field.name().contains(MARK) {
        return field;
    }
    FieldInfo::new(
        client_name(field.name()).to_owned(),
        field.table_id(),
        field.column_id(),
        field.datatype().clone(),
        field.format(),
    )
    .with_format_options(field.format_options().clone())
    .with_type_size(field.type_size())
    .with_type_modifier(field.type_modifier())
}

/// `response` with its columns named as the client sees them.
pub fn client_response(response: Response) -> Response {
    let Response::Query(query) = response else {
        return response;
    };
    if !query.row_schema.iter().any(|f| f.name().contains(MARK)) {
        return Response::Query(query);
    }
    let QueryResponse {
        command_tag,
        row_schema,
        data_rows,
        ..
    } = query;
    let fields = Arc::new(client_fields(row_schema.as_ref().clone()));
    let mut renamed = QueryResponse::new(fields, data_rows);
    renamed.set_command_tag(&command_tag);
    Response::Query(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn named(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        name_outputs(&mut statement);
        statement.to_string().replace(MARK, "#")
    }

    #[test]
    fn outputs_take_postgresql_names() {
        assert_eq!(
            named("SELECT to_char(t, 'YYYY'), cost::float8, cost::numeric(10,2) FROM u"),
            "SELECT to_char(t, 'YYYY') AS \"to_char\", cost::FLOAT8 AS \"cost\", \
             cost::NUMERIC(10,2) AS \"cost#2\" FROM u"
        );
        // Columns and aliases keep their names; an expression yields to them.
        assert_eq!(
            named("SELECT cost, cost * 2, sum(x) AS sum, sum(y) FROM u"),
            "SELECT cost, cost * 2 AS \"?column?\", sum(x) AS sum, sum(y) AS \"sum#2\" FROM u"
        );
        assert_eq!(named("SELECT a FROM u"), "SELECT a FROM u");
    }

    #[test]
    fn client_names_drop_the_mark() {
        assert_eq!(client_name("cost\u{1f}2"), "cost");
        assert_eq!(client_name("cost"), "cost");
    }
}
