//! `to_char(timestamp, pattern)` with PostgreSQL's patterns (`YYYY-MM-DD HH24:MI:SS`) over
//! the Postgres endpoint. DataFusion's `to_char` takes chrono's (`%Y-%m-%d`) and copies a
//! PostgreSQL pattern through as text, a wrong answer a dashboard would show. Patterns
//! chrono can render exactly are translated; the others (`Month`, `FM`, `Q`, ...) are
//! refused by name, so a query never answers something other than PostgreSQL would.

use std::sync::Arc;

use arrow::array::{Array, StringArray};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

/// PostgreSQL patterns and their chrono equivalents; longer ones first where they share a
/// beginning. Case-sensitive ones (names) are listed in their one supported case.
const PATTERNS: &[(&str, &str, bool)] = &[
    // (pattern, chrono, case-insensitive)
    ("HH24", "%H", true),
    ("HH12", "%I", true),
    ("HH", "%I", true),
    ("MI", "%M", true),
    ("SSSSS", "", true),
    ("SSSS", "", true),
    ("SS", "%S", true),
    ("MS", "%3f", true),
    ("US", "%6f", true),
    ("IYYY", "%G", true),
    ("IW", "%V", true),
    ("YYYY", "%Y", true),
    ("Y,YYY", "", true),
    ("YYY", "", true),
    ("YY", "%y", true),
    ("DDD", "%j", true),
    ("DD", "%d", true),
    ("Mon", "%b", false),
    ("Dy", "%a", false),
    ("MM", "%m", true),
    ("AM", "%p", false),
    ("PM", "%p", false),
    ("am", "%P", false),
    ("pm", "%P", false),
];

/// Patterns PostgreSQL knows that chrono cannot render the same way (padding, case,
/// ordinals, fill mode): refused.
const REFUSED: &[&str] = &[
    "MON", "mon", "DY", "dy", "FM", "fm", "TH", "th", "FX", "fx", "TM", "tm", "A.M.", "P.M.",
    "a.m.", "p.m.", "TZH", "TZM", "TZ", "tz", "OF", "RM", "rm", "CC", "cc", "IYY", "IY", "WW",
    "ww", "Q", "q", "J", "W", "D", "I", "Y", "y",
];

/// Names PostgreSQL pads to nine characters; checked before `Mon` and `Dy` would match
/// their beginning.
const PADDED_NAMES: &[&str] = &["MONTH", "Month", "month", "DAY", "Day", "day"];

/// A PostgreSQL pattern as a chrono format, or the first pattern that has none.
pub fn chrono_format(pattern: &str) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = pattern;
    'next: while let Some(c) = rest.chars().next() {
        if c == '"' {
            let quoted = &rest[1..];
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push_str(&quoted[..end].replace('%', "%%"));
            rest = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        if let Some(padded) = PADDED_NAMES.iter().find(|r| rest.starts_with(**r)) {
            return Err((*padded).to_owned());
        }
        for (pg, chrono, any_case) in PATTERNS {
            let head = rest.get(..pg.len());
            let hit = head.is_some_and(|h| match any_case {
                true => h.eq_ignore_ascii_case(pg),
                false => h == *pg,
            });
            if hit {
                if chrono.is_empty() {
                    return Err((*pg).to_owned());
                }
                out.push_str(chrono);
                rest = &rest[pg.len()..];
                continue 'next;
            }
        }
        if let Some(refused) = REFUSED.iter().find(|r| rest.starts_with(**r)) {
            return Err((*refused).to_owned());
        }
        match c {
            '%' => out.push_str("%%"),
            '\\' => {} // PostgreSQL's escape inside patterns: the next character is literal
            _ => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

fn refused(pattern: &str, part: &str) -> DataFusionError {
    DataFusionError::NotImplemented(format!(
        "to_char pattern {part:?} (in {pattern:?}) is not supported; supported: YYYY YY MM DD \
         DDD HH24 HH12 HH MI SS MS US IYYY IW Mon Dy AM PM and \"quoted text\""
    ))
}

fn translate(value: &ColumnarValue) -> Result<ColumnarValue> {
    let one = |pattern: &str| chrono_format(pattern).map_err(|part| refused(pattern, &part));
    Ok(match value {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(p)))
        | ColumnarValue::Scalar(ScalarValue::Utf8View(Some(p)))
        | ColumnarValue::Scalar(ScalarValue::LargeUtf8(Some(p))) => {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(one(p)?)))
        }
        ColumnarValue::Scalar(_) => value.clone(),
        ColumnarValue::Array(array) => {
            let text = arrow::compute::cast(array, &DataType::Utf8)?;
            let patterns = arrow::array::cast::as_string_array(&text);
            let translated: Result<StringArray> = (0..patterns.len())
                .map(|i| match patterns.is_null(i) {
                    true => Ok(None),
                    false => one(patterns.value(i)).map(Some),
                })
                .collect();
            ColumnarValue::Array(Arc::new(translated?))
        }
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct PgToChar {
    inner: ScalarUDF,
}

impl ScalarUDFImpl for PgToChar {
    fn name(&self) -> &str {
        "to_char"
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let Some(pattern) = args.args.get_mut(1) {
            *pattern = translate(pattern)?;
            if let ColumnarValue::Array(_) = pattern {
                if let Some(field) = args.arg_fields.get_mut(1) {
                    *field = Arc::new(field.as_ref().clone().with_data_type(DataType::Utf8));
                }
            }
        }
        self.inner.invoke_with_args(args)
    }
}

/// Replaces `ctx`'s `to_char` with the PostgreSQL-pattern one.
pub fn use_postgres_patterns(ctx: &SessionContext) {
    if let Ok(inner) = ctx.udf("to_char") {
        let inner = inner.as_ref().clone();
        ctx.register_udf(ScalarUDF::new_from_impl(PgToChar { inner }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_patterns_become_chrono_formats() {
        let ok = |p: &str| chrono_format(p).unwrap();
        assert_eq!(ok("YYYY-MM-DD"), "%Y-%m-%d");
        assert_eq!(ok("YYYY-MM-DD\"T\"HH24:MI:SS.MS"), "%Y-%m-%dT%H:%M:%S.%3f");
        assert_eq!(ok("yyyy/mm/dd hh12:mi AM"), "%Y/%m/%d %I:%M %p");
        assert_eq!(ok("Dy, DD Mon YYYY"), "%a, %d %b %Y");
        assert_eq!(ok("IYYY-IW"), "%G-%V");
        assert_eq!(ok("100% \"%d\""), "100%% %%d");
        for refused in [
            "Month",
            "FMDD",
            "Q",
            "YYYY-\"Q\"Q",
            "Day",
            "SSSS",
            "TZ",
            "MON",
        ] {
            assert!(chrono_format(refused).is_err(), "{refused}");
        }
    }

    #[tokio::test]
    async fn to_char_answers_as_postgresql() {
        let ctx = SessionContext::new();
        use_postgres_patterns(&ctx);
        let sql = "SELECT to_char(TIMESTAMP '2026-11-03 14:05:09.250', \
                   'YYYY-MM-DD HH24:MI:SS.MS, Dy DD Mon, HH12 PM') AS t";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let shown = arrow::util::pretty::pretty_format_batches(&batches).unwrap();
        assert!(
            shown
                .to_string()
                .contains("2026-11-03 14:05:09.250, Tue 03 Nov, 02 PM"),
            "{shown}"
        );
        let wrong = ctx
            .sql("SELECT to_char(TIMESTAMP '2026-11-03', 'FMMonth')")
            .await;
        let error = match wrong {
            Ok(frame) => frame.collect().await.unwrap_err(),
            Err(e) => e,
        };
        assert!(error.to_string().contains("FM"), "{error}");
    }
}
