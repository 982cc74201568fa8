//! Yield points in every operator, so that a query stops soon after it is cancelled.
//!
//! A query is cancelled by dropping its task (at its deadline, or when its caller goes
//! away), and a tokio task is only dropped when it yields. DataFusion makes its sources and
//! exchanges yield (`EnsureCooperative`), but an operator that makes many batches from one
//! input batch (a cross join, a nested-loop join, `unnest`) can run for seconds between two
//! polls of its input without yielding, and keeps a core busy after its caller got its
//! answer. This rule wraps every operator in `CooperativeExec`, which spends a unit of the
//! task's budget on each batch: every task yields within a bounded number of batches.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::ExecutionPlan;

/// Wraps every operator that has inputs (sources already yield) in [`CooperativeExec`].
#[derive(Debug, Default)]
pub struct YieldEverywhere;

impl PhysicalOptimizerRule for YieldEverywhere {
    fn name(&self) -> &str {
        "simtally_yield_everywhere"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.children().is_empty() || node.is::<CooperativeExec>() {
                return Ok(Transformed::no(node));
            }
            let wrapped: Arc<dyn ExecutionPlan> = Arc::new(CooperativeExec::new(node));
            Ok(Transformed::yes(wrapped))
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}
