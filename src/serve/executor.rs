use std::future::Future;
use std::time::Duration;

use super::respond::ApiError;
use crate::query::{QueryError, QUERY_STACK_BYTES};

/// A runtime of its own for DataFusion work, so that a heavy query never holds up the
/// threads that accept connections and answer `/healthz`.
pub struct QueryExecutor {
    runtime: Option<tokio::runtime::Runtime>,
}

impl QueryExecutor {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("simtally-query")
            // Deep enough for any statement admission lets through (`query::admission`).
            .thread_stack_size(QUERY_STACK_BYTES)
            .enable_all()
            .build()?;
        Ok(QueryExecutor {
            runtime: Some(runtime),
        })
    }

    /// Runs `work` on the query runtime under `deadline`. The deadline is kept here, on the
    /// caller's runtime, so it passes on time even while every query thread is busy; when
    /// it passes, or the caller goes away (its request dropped), the work is aborted and
    /// DataFusion's tasks under it with it. A panic in the work is this caller's error only.
    pub async fn run<F, T>(&self, deadline: Duration, work: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| ApiError::internal("the query runtime has stopped"))?;
        let task = runtime.spawn(work);
        let _abort = AbortOnDrop(task.abort_handle());
        match tokio::time::timeout(deadline, task).await {
            Err(_) => {
                tracing::info!(
                    seconds = deadline.as_secs_f64(),
                    "a query passed its deadline: stopped"
                );
                Err(QueryError::Timeout(deadline).into())
            }
            Ok(Err(e)) if e.is_panic() => {
                tracing::error!("a query panicked: {e}");
                Err(ApiError::internal(
                    "the query engine failed on this query (a bug in simtally or DataFusion); \
                     other queries are not affected",
                ))
            }
            Ok(Err(e)) => Err(ApiError::internal(format!("a query task failed: {e}"))),
            Ok(Ok(answer)) => answer,
        }
    }
}

/// Aborts the task when the future waiting for it is dropped or done.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for QueryExecutor {
    fn drop(&mut self) {
        // Dropping a runtime from inside another one blocks, which tokio forbids.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work that never yields (as DataFusion operators in a tight loop) still answers at
    /// its deadline: the deadline is kept on the caller's runtime.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_deadline_holds_while_the_work_never_yields() {
        let executor = QueryExecutor::new(1).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let answer = executor
            .run(Duration::from_millis(200), async move {
                // Busy until the test says so, without an await.
                while done_rx.try_recv().is_err() {
                    std::hint::spin_loop();
                }
                Ok(())
            })
            .await;
        let waited = started.elapsed();
        done_tx.send(()).unwrap();
        assert!(answer.is_err());
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}
