//! Correlated scalar subqueries over the system catalogs. Clients introspect with them
//! (SQLAlchemy's `inspect()`: `(SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE
//! adrelid = a.attrelid AND adnum = a.attnum)`); DataFusion plans a correlated scalar
//! subquery only if it is aggregated. A catalog row is unique by those keys, so such a
//! subquery that reads only `pg_catalog` or `information_schema` gets its value wrapped in
//! `max()`, which answers the same. A scalar subquery that reads a catalog table which is
//! always empty here (`pg_attrdef`, `pg_sequence`: no defaults, no sequences) is NULL, as
//! it would answer; DataFusion cannot plan some of those (a correlated condition that is
//! not an equality, inside `CASE`). Subqueries over the caller's views are left alone.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, BinaryOperator, CaseWhen, Expr, Function,
    FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, JoinOperator,
    ObjectName, Query, SelectItem, SetExpr, Statement, TableFactor, TableWithJoins, Value,
};

const AGGREGATES: &[&str] = &[
    "max",
    "min",
    "count",
    "sum",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "first_value",
    "last_value",
];

/// Each scalar subquery over the catalogs: NULL if it reads a table in `empty` (names of
/// `pg_catalog` tables that have no rows), else its value wrapped in `max()`.
pub fn adapt_catalog_subqueries(statement: &mut Statement, empty: &HashSet<String>) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Subquery(query) = expr {
            if reads_an_empty_table(query, empty) {
                *expr = null_keeping_parameters(query);
            } else {
                aggregate(query);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// NULL, as an expression that still mentions the subquery's parameters (`$1`, with their
/// casts): the client binds every parameter it sent, and the server describes them by
/// number, so none may disappear from the plan.
fn null_keeping_parameters(query: &Query) -> Expr {
    let mut cast: Vec<(String, Expr)> = Vec::new();
    let mut bare: Vec<(String, Expr)> = Vec::new();
    let _ = visit_expressions(query, |e| {
        match e {
            Expr::Cast { expr, .. } => {
                if let Some(id) = placeholder(expr) {
                    cast.push((id, e.clone()));
                }
            }
            other => {
                if let Some(id) = placeholder(other) {
                    bare.push((id, other.clone()));
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    bare.retain(|(id, _)| !cast.iter().any(|(c, _)| c == id));
    let null = Expr::Value(Value::Null.into());
    let Some(condition) = (cast.into_iter().chain(bare))
        .map(|(_, e)| Expr::IsNull(Box::new(e)))
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        })
    else {
        return null;
    };
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition,
            result: null.clone(),
        }],
        else_result: Some(Box::new(null)),
    }
}

fn placeholder(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(id) => Some(id.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// The subquery's rows all come through a join with a table in `empty`, and it is not an
/// aggregate (which would answer a row, e.g. a count of 0).
fn reads_an_empty_table(query: &Query, empty: &HashSet<String>) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let aggregated = select.projection.iter().any(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => is_aggregate(e),
        _ => true,
    });
    if aggregated || !ungrouped(select) {
        return false;
    }
    select.from.iter().any(|from| {
        let narrowing = from.joins.iter().all(|j| {
            matches!(
                j.join_operator,
                JoinOperator::Join(_)
                    | JoinOperator::Inner(_)
                    | JoinOperator::Left(_)
                    | JoinOperator::LeftOuter(_)
                    | JoinOperator::CrossJoin(_)
            )
        });
        narrowing && catalog_table(&from.relation).is_some_and(|t| empty.contains(&t))
    })
}

fn catalog_table(relation: &TableFactor) -> Option<String> {
    let TableFactor::Table { name, .. } = relation else {
        return None;
    };
    is_catalog(name).then(|| name.0.last()?.as_ident().map(|i| i.value.to_lowercase()))?
}

fn aggregate(query: &mut Query) -> bool {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    if select.from.is_empty() || !select.from.iter().all(reads_catalogs_only) {
        return false;
    }
    if !ungrouped(select) {
        return false;
    }
    let [item] = select.projection.as_mut_slice() else {
        return false;
    };
    let (SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }) = item
    else {
        return false;
    };
    if is_aggregate(value) {
        return false;
    }
    *value = Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("max")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(value.clone()))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
    true
}

fn ungrouped(select: &datafusion::sql::sqlparser::ast::Select) -> bool {
    matches!(
        &select.group_by,
        datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty()
    )
}

fn is_aggregate(expr: &Expr) -> bool {
    match expr {
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| AGGREGATES.contains(&i.value.to_lowercase().as_str())),
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => is_aggregate(inner),
        _ => false,
    }
}

/// The FROM item names only system catalog tables (`pg_catalog.x`, `information_schema.x`
/// or a bare `pg_x`).
fn reads_catalogs_only(from: &TableWithJoins) -> bool {
    std::iter::once(&from.relation)
        .chain(from.joins.iter().map(|j| &j.relation))
        .all(|relation| match relation {
            TableFactor::Table { name, .. } => is_catalog(name),
            _ => false,
        })
}

fn is_catalog(name: &ObjectName) -> bool {
    let parts: Vec<String> = (name.0.iter())
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.to_lowercase())
        .collect();
    match parts.as_slice() {
        [table] => table.starts_with("pg_"),
        [.., schema, _] => schema == "pg_catalog" || schema == "information_schema",
        [] => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        let empty = HashSet::from(["pg_sequence".to_owned()]);
        adapt_catalog_subqueries(&mut statement, &empty);
        statement.to_string()
    }

    #[test]
    fn catalog_subqueries_are_aggregated_and_others_left() {
        assert_eq!(
            rewritten(
                "SELECT (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d \
                 WHERE d.adrelid = a.attrelid) AS dflt FROM pg_catalog.pg_attribute a"
            ),
            "SELECT (SELECT max(pg_get_expr(d.adbin, d.adrelid)) FROM pg_catalog.pg_attrdef d \
             WHERE d.adrelid = a.attrelid) AS dflt FROM pg_catalog.pg_attribute a"
        );
        let own = "SELECT (SELECT cost FROM usage u WHERE u.iccid = s.iccid) FROM sim_events s";
        assert_eq!(rewritten(own), own);
        let counted = "SELECT (SELECT count(*) FROM pg_class c WHERE c.oid = a.attrelid) FROM t a";
        assert_eq!(rewritten(counted), counted);
        assert_eq!(
            rewritten(
                "SELECT CASE WHEN a.x THEN (SELECT s.seqstart FROM pg_catalog.pg_sequence s \
                 WHERE a.x AND s.seqrelid = a.attrelid) END FROM pg_attribute a"
            ),
            "SELECT CASE WHEN a.x THEN NULL END FROM pg_attribute a"
        );
    }
}
