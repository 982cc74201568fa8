//! Admission: what a statement from outside may be before anything parses or plans it.
//!
//! DataFusion's parser, planner, optimizer and expression evaluation recurse over the
//! expression tree, so a statement's depth becomes stack depth: `SELECT 1+1+...+1` with a
//! few thousand terms, or an `IN` list of tens of thousands of values, overflows a thread's
//! stack, and a stack overflow aborts the whole process. So statements are measured by their
//! tokens (the tokenizer does not recurse) against [`StatementLimits`], and the threads that
//! plan and run queries get stacks of [`QUERY_STACK_BYTES`], sized with a wide margin for
//! the deepest statement the limits admit (`tests` below runs one at the limits).

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// The stack of every thread that parses, plans or runs a query.
pub const QUERY_STACK_BYTES: usize = 64 << 20;

/// How big and how deep one statement may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatementLimits {
    /// Bytes of SQL text.
    pub max_bytes: usize,
    /// Operators (`+`, `||`, `=`, `AND`, `OR`, `NOT`, `LIKE`, `CASE`, ...) in the statement:
    /// each can add a level to an expression tree.
    pub max_operators: usize,
    /// Parentheses inside parentheses.
    pub max_nesting: usize,
    /// Items of one list (an `IN` list, a function's arguments, a `VALUES` row).
    pub max_list_items: usize,
}

impl Default for StatementLimits {
    fn default() -> Self {
        StatementLimits {
            max_bytes: 256 << 10,
            max_operators: 1_000,
            max_nesting: 32,
            max_list_items: 5_000,
        }
    }
}

/// Why a statement was refused before planning.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the statement has {0} bytes; at most {1} are accepted")]
    TooLong(usize, usize),
    #[error("the statement has {0} operators; at most {1} are accepted (use IN (...) or a join instead of long chains)")]
    TooManyOperators(usize, usize),
    #[error("the statement nests parentheses {0} deep; at most {1} are accepted")]
    TooDeep(usize, usize),
    #[error("a list in the statement has {0} items; at most {1} are accepted (filter with a join or a range instead)")]
    ListTooLong(usize, usize),
}

/// Measures `sql` against `limits`. Text the tokenizer cannot read is let through: the
/// parser then says what is wrong with it.
pub fn admit(sql: &str, limits: &StatementLimits) -> Result<(), Refusal> {
    if sql.len() > limits.max_bytes {
        return Err(Refusal::TooLong(sql.len(), limits.max_bytes));
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let mut operators = 0;
    // Items counted in each open parenthesis (and the statement itself, at the bottom).
    let mut lists: Vec<usize> = vec![1];
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket => {
                lists.push(1);
                if lists.len() - 1 > limits.max_nesting {
                    return Err(Refusal::TooDeep(lists.len() - 1, limits.max_nesting));
                }
            }
            Token::RParen | Token::RBracket if lists.len() > 1 => {
                lists.pop();
            }
            Token::Comma => {
                let items = lists.last_mut().map_or(0, |n| {
                    *n += 1;
                    *n
                });
                if items > limits.max_list_items {
                    return Err(Refusal::ListTooLong(items, limits.max_list_items));
                }
            }
            token if is_operator(token) => {
                operators += 1;
                if operators > limits.max_operators {
                    return Err(Refusal::TooManyOperators(operators, limits.max_operators));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `token` can join two expressions into a deeper one.
fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(word) => matches!(
            word.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::BETWEEN
                | Keyword::IS
                | Keyword::CASE
                | Keyword::WHEN
                | Keyword::IN
                | Keyword::SIMILAR
        ),
        Token::EOF
        | Token::Number(..)
        | Token::Char(_)
        | Token::Comma
        | Token::Whitespace(_)
        | Token::LParen
        | Token::RParen
        | Token::LBracket
        | Token::RBracket
        | Token::LBrace
        | Token::RBrace
        | Token::Period
        | Token::SemiColon
        | Token::Colon
        | Token::DoubleColon
        | Token::Placeholder(_) => false,
        token => !is_literal(token),
    }
}

fn is_literal(token: &Token) -> bool {
    matches!(
        token,
        Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize, term: &str, op: &str) -> String {
        vec![term; n].join(op)
    }

    #[test]
    fn long_chains_deep_nesting_and_long_lists_are_refused() {
        let limits = StatementLimits::default();
        let refused = |sql: &str| admit(sql, &limits).unwrap_err();
        assert!(matches!(
            refused(&format!("SELECT {}", chain(2_000, "1", "+"))),
            Refusal::TooManyOperators(1001, 1000)
        ));
        assert!(matches!(
            refused(&format!("SELECT {}", chain(2_000, "'x'", "||"))),
            Refusal::TooManyOperators(..)
        ));
        let or_chain = chain(2_000, "workspace_id = 101", " OR ");
        assert!(matches!(
            refused(&format!("SELECT * FROM usage WHERE {or_chain}")),
            Refusal::TooManyOperators(..)
        ));
        let nested = format!("SELECT {}1{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(refused(&nested), Refusal::TooDeep(33, 32)));
        let list = chain(40_000, "101", ",");
        assert!(matches!(
            refused(&format!(
                "SELECT * FROM usage WHERE workspace_id IN ({list})"
            )),
            Refusal::ListTooLong(5001, 5000)
        ));
        let long = format!("SELECT '{}'", "x".repeat(300_000));
        assert!(matches!(refused(&long), Refusal::TooLong(..)));
    }

    #[test]
    fn ordinary_statements_and_text_in_strings_are_admitted() {
        let limits = StatementLimits::default();
        for sql in [
            "SELECT workspace_id, SUM(cost) FROM usage WHERE usage_date >= '2026-11-01' \
             AND workspace_id IN (101, 102) GROUP BY 1 ORDER BY 2 DESC",
            // Operators inside a string are text, not operators.
            &format!("SELECT '{}'", chain(5_000, "1", "+")),
            "SELECT (((1)))",
        ] {
            assert_eq!(admit(sql, &limits), Ok(()), "{sql}");
        }
    }

    /// The deepest statements the default limits admit plan and run on a thread with
    /// [`QUERY_STACK_BYTES`] of stack (in a debug build, whose frames are the largest).
    #[test]
    fn statements_at_the_limits_run_on_a_query_thread() {
        let limits = StatementLimits::default();
        let at_limit = [
            format!("SELECT {}", chain(limits.max_operators, "1", "+")),
            format!(
                "SELECT x FROM (VALUES (1)) t(x) WHERE {}",
                chain(limits.max_operators / 2, "x = 1", " OR ")
            ),
            format!(
                "SELECT x FROM (VALUES (1)) t(x) WHERE x IN ({})",
                chain(limits.max_list_items, "1", ",")
            ),
            format!(
                "SELECT {}1{}",
                "(".repeat(limits.max_nesting),
                ")".repeat(limits.max_nesting)
            ),
        ];
        for sql in at_limit {
            assert_eq!(admit(&sql, &limits), Ok(()));
            let sql_start: String = sql.chars().take(60).collect();
            let ran = std::thread::Builder::new()
                .stack_size(QUERY_STACK_BYTES)
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        let ctx = datafusion::prelude::SessionContext::new();
                        ctx.sql(&sql).await?.collect().await
                    })
                })
                .unwrap()
                .join()
                .unwrap();
            assert!(ran.is_ok(), "{ran:?}: {}", &sql_start);
        }
    }
}
