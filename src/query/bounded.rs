//! Functions that allocate as much as their arguments ask, bounded.
//!
//! `repeat('x', 500000000)` makes a 500 MB string in one call, outside the memory pool
//! (the pool accounts for operators' buffers, not for the values functions return). In the
//! sessions of people and operators serving over HTTP and Postgres, `repeat`, `lpad`, `rpad`
//! and `array_repeat` are replaced by wrappers that compute, from the arguments, how many
//! bytes one call would make, and refuse past [`MAX_CALL_BYTES`] with a resources-exhausted
//! error (HTTP 422 `resources_exhausted`, SQLSTATE 53200) before allocating anything.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::kernels::length::length;
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// The most bytes one call of a bounded function may make (over all rows of its batch).
pub const MAX_CALL_BYTES: u64 = 64 << 20;

/// How a function's result size follows from its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: the text's bytes times n.
    Repeat,
    /// `lpad(text, n [, fill])`, `rpad`: n characters of up to 4 bytes.
    Pad,
    /// `array_repeat(element, n)`: n elements.
    ArrayRepeat,
}

const BOUNDED: [(&str, Growth); 4] = [
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("array_repeat", Growth::ArrayRepeat),
];

/// Replaces the session's allocating functions by their bounded wrappers.
pub fn bound_functions(ctx: &SessionContext) {
    for (name, growth) in BOUNDED {
        if let Ok(inner) = ctx.udf(name) {
            let bounded = Bounded {
                inner: inner.as_ref().clone(),
                growth,
            };
            ctx.register_udf(ScalarUDF::new_from_impl(bounded));
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: ScalarUDF,
    growth: Growth,
}

impl Bounded {
    /// The bytes the call would make, summed over the batch's rows.
    fn call_bytes(&self, args: &[ColumnarValue], rows: usize) -> Result<u64> {
        let Some(count) = args.get(1) else {
            return Ok(0);
        };
        let counts = per_row(count, rows, |a| Ok(Arc::clone(a)))?;
        let unit = match self.growth {
            Growth::Repeat => per_row(&args[0], rows, |a| Ok(length(a)?))?,
            Growth::Pad => vec![4; counts.len()],
            Growth::ArrayRepeat => {
                let element = args[0].to_array(1)?;
                let bytes = element.get_array_memory_size() / element.len().max(1);
                vec![bytes.max(8) as u64; counts.len()]
            }
        };
        Ok(counts
            .iter()
            .zip(&unit)
            .fold(0u64, |sum, (n, u)| sum.saturating_add(n.saturating_mul(*u))))
    }
}

/// `measure` of each row's value, as non-negative integers (nulls count 0); a scalar's
/// value for every row.
fn per_row(
    value: &ColumnarValue,
    rows: usize,
    measure: impl Fn(&ArrayRef) -> Result<ArrayRef>,
) -> Result<Vec<u64>> {
    let (array, scalar) = match value {
        ColumnarValue::Array(array) => (Arc::clone(array), false),
        ColumnarValue::Scalar(value) => (value.to_array_of_size(1)?, true),
    };
    let measured = arrow::compute::cast(&measure(&array)?, &DataType::Int64)?;
    let values: Vec<u64> = (measured.as_primitive::<Int64Type>().iter())
        .map(|v| v.unwrap_or(0).max(0) as u64)
        .collect();
    Ok(match scalar {
        true => vec![values.first().copied().unwrap_or(0); rows],
        false => values,
    })
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
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

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = self.call_bytes(&args.args, args.number_rows)?;
        if bytes > MAX_CALL_BYTES {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would make {bytes} bytes; at most {MAX_CALL_BYTES} are allowed per call",
                self.name()
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(sql: &str) -> Result<usize> {
        let ctx = SessionContext::new();
        bound_functions(&ctx);
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    }

    #[tokio::test]
    async fn calls_that_would_allocate_too_much_are_refused_before_allocating() {
        for sql in [
            "SELECT length(repeat('x', 500000000))",
            "SELECT lpad('x', 500000000)",
            "SELECT rpad('x', 500000000, 'ab')",
            "SELECT cardinality(array_repeat(1, 500000000))",
            "SELECT length(repeat(s, 100000000)) FROM (VALUES ('ab'), ('cd')) t(s)",
        ] {
            let refused = answer(sql).await.unwrap_err();
            assert!(
                matches!(refused.find_root(), DataFusionError::ResourcesExhausted(_)),
                "{sql}: {refused}"
            );
        }
    }

    #[tokio::test]
    async fn ordinary_calls_answer_as_before() {
        for sql in [
            "SELECT repeat('ab', 3), lpad('7', 3, '0'), rpad('7', 3), array_repeat(1, 3)",
            "SELECT repeat(s, n) FROM (VALUES ('ab', 2), (NULL, 5), ('c', -1)) t(s, n)",
        ] {
            assert!(answer(sql).await.is_ok(), "{sql}");
        }
    }
}
