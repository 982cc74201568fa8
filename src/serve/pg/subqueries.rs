//! Correlated scalar subqueries over the system catalogs. Clients introspect with them
//! (SQLAlchemy's `inspect()`: `(SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE
//! adrelid = a.attrelid AND adnum = a.attnum)`); DataFusion plans a correlated scalar
//! subquery only if it is aggregated. A catalog row is unique by those keys, so such a
//! subquery that reads only `pg_catalog` or `information_schema` gets its value wrapped in
//! `max()`, which answers the same. A scalar subquery that reads a catalog table which is
//! always empty here (`pg_attrdef`, `pg_sequence`: no defaults, no sequences) is NULL, as
//! it would answer; DataFusion cannot plan some of those (a correlated condition that is
//! not an equality, inside `CASE`; `unnest` of a column it has no array type for). The
//! same holds for a derived table over such a table: it selects no rows, under the same
//! column names. Subqueries over the caller's views are left alone. `LIKE ... ESCAPE '/'`
//! (SQLAlchemy's schema listing) becomes the backslash escape DataFusion supports.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, BinaryOperator, CaseWhen, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, JoinOperator, ObjectName, Query, SelectItem,
    SetExpr, Statement, TableFactor, TableWithJoins, Value, ValueWithSpan, Visit, VisitMut,
    VisitorMut,
};

use super::names::output_name;

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

/// Adapts the catalog queries in `statement` (see the module documentation); `empty` names
/// the `pg_catalog` tables that have no rows.
pub fn adapt_catalog_queries(statement: &mut Statement, empty: &HashSet<String>) {
    let uses = parameter_uses(&*statement);
    let _ = statement.visit(&mut Adapt { empty, uses });
}

struct Adapt<'a> {
    empty: &'a HashSet<String>,
    /// How often each parameter appears in the statement.
    uses: HashMap<String, usize>,
}

impl VisitorMut for Adapt<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Derived { subquery, .. } = factor {
            if reads_an_empty_table(subquery, self.empty) {
                no_rows(subquery, &self.uses);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Subquery(query) if reads_an_empty_table(query, self.empty) => {
                *expr = null_keeping_parameters(query, &self.uses);
            }
            Expr::Subquery(query) => {
                aggregate(query);
            }
            Expr::Like {
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                pattern,
                escape_char,
                ..
            } => backslash_escape(pattern, escape_char),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `LIKE ... ESCAPE 'c'` as DataFusion takes it (backslash only): the pattern rewritten so
/// that `c` escapes become backslash escapes.
fn backslash_escape(pattern: &mut Box<Expr>, escape_char: &mut Option<ValueWithSpan>) {
    let Some(escape) = escape_char.as_ref() else {
        return;
    };
    let Value::SingleQuotedString(c) = &escape.value else {
        return;
    };
    if c == "\\" {
        return;
    }
    let text = |s: &str| Expr::Value(Value::SingleQuotedString(s.to_owned()).into());
    let replace = |inner: Expr, from: &str, to: &str| {
        Expr::Function(call("replace", vec![inner, text(from), text(to)]))
    };
    let mut rewritten = replace(*pattern.clone(), "\\", "\\\\");
    rewritten = replace(rewritten, &format!("{c}{c}"), "\u{0}");
    rewritten = replace(rewritten, &format!("{c}_"), "\\_");
    rewritten = replace(rewritten, &format!("{c}%"), "\\%");
    rewritten = replace(rewritten, "\u{0}", c);
    **pattern = rewritten;
    *escape_char = None;
}

fn call(name: &str, args: Vec<Expr>) -> Function {
    Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    }
}

/// Rewrites a derived table that selects from an empty catalog table so that it selects
/// no rows without computing anything: its columns stay where they are plain columns (they
/// keep their types, which the outer query and the parameters compared with them need),
/// the others become NULL under the same name (DataFusion cannot plan some: `unnest` of a
/// column it has no array type for). Left alone if correlated or if a column has no name.
fn no_rows(query: &mut Query, uses: &HashMap<String, usize>) {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    if correlated(select) {
        return;
    }
    let mut projection = Vec::with_capacity(select.projection.len());
    for item in &select.projection {
        let (expr, name) = match item {
            SelectItem::UnnamedExpr(e) => (e, output_name(e)),
            SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value.clone()),
            _ => return,
        };
        let kept = match expr {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => expr.clone(),
            _ => null_keeping_parameters(expr, uses),
        };
        projection.push(SelectItem::ExprWithAlias {
            expr: kept,
            alias: Ident::with_quote('"', name),
        });
    }
    select.projection = projection;
    let never = Expr::Value(Value::Boolean(false).into());
    select.selection = Some(match select.selection.take() {
        Some(own) => Expr::BinaryOp {
            left: Box::new(never),
            op: BinaryOperator::And,
            right: Box::new(Expr::Nested(Box::new(own))),
        },
        None => never,
    });
}

/// NULL, as an expression that still mentions the parameters (`$1`, with their casts) that
/// appear only in `node`: the client binds every parameter it sent, and the server
/// describes them by number, so none may disappear from the plan.
fn null_keeping_parameters<V: Visit>(query: &V, uses: &HashMap<String, usize>) -> Expr {
    let null = Expr::Value(Value::Null.into());
    let Some(condition) = parameters_condition(query, uses) else {
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

/// The select's condition names a column of a table that is not in its FROM (a correlated
/// subquery); only qualified names are recognised, which is how catalog queries write them.
fn correlated(select: &datafusion::sql::sqlparser::ast::Select) -> bool {
    let mut own: HashSet<String> = HashSet::new();
    for from in &select.from {
        let relations =
            std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation));
        for relation in relations {
            if let TableFactor::Table { name, alias, .. } = relation {
                own.insert(name.to_string().to_lowercase());
                if let Some(table) = name.0.last().and_then(|p| p.as_ident()) {
                    own.insert(table.value.to_lowercase());
                }
                if let Some(alias) = alias {
                    own.insert(alias.name.value.to_lowercase());
                }
            }
        }
    }
    let Some(condition) = &select.selection else {
        return false;
    };
    let mut outer = false;
    let _ = visit_expressions(condition, |e| {
        if let Expr::CompoundIdentifier(parts) = e {
            let qualifier: Vec<String> = parts[..parts.len() - 1]
                .iter()
                .map(|p| p.value.to_lowercase())
                .collect();
            let known = own.contains(&qualifier.join("."))
                || qualifier.last().is_some_and(|t| own.contains(t));
            outer |= !qualifier.is_empty() && !known;
        }
        ControlFlow::<()>::Continue(())
    });
    outer
}

/// How often each parameter (`$1`) appears in `node`.
fn parameter_uses<V: Visit>(node: &V) -> HashMap<String, usize> {
    let mut uses = HashMap::new();
    let _ = visit_expressions(node, |e| {
        if let Some(id) = placeholder(e) {
            *uses.entry(id).or_insert(0) += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    uses
}

/// A condition that mentions each parameter that appears only in `query` (`$1`, with its
/// cast): the client binds every parameter it sent, and the server describes them by
/// number, so none may disappear from the plan.
fn parameters_condition<V: Visit>(query: &V, uses: &HashMap<String, usize>) -> Option<Expr> {
    let inside = parameter_uses(query);
    let only_here = |id: &String| inside.get(id) == uses.get(id);
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
    (cast.into_iter().chain(bare))
        .filter(|(id, _)| only_here(id))
        .map(|(_, e)| Expr::IsNull(Box::new(e)))
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: BinaryOperator::And,
            right: Box::new(b),
        })
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
    *value = Expr::Function(call("max", vec![value.clone()]));
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
        adapt_catalog_queries(&mut statement, &empty);
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
        assert_eq!(
            rewritten(
                "SELECT * FROM t JOIN (SELECT s.seqrelid AS r, unnest(s.keys) AS k \
                 FROM pg_catalog.pg_sequence s WHERE s.seqrelid IN ($1)) AS con ON t.x = con.r"
            ),
            "SELECT * FROM t JOIN (SELECT s.seqrelid AS \"r\", NULL AS \"k\" \
             FROM pg_catalog.pg_sequence s WHERE false AND (s.seqrelid IN ($1))) AS con \
             ON t.x = con.r"
        );
    }
}
