use std::future::Future;

use super::respond::ApiError;

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
            .enable_all()
            .build()?;
        Ok(QueryExecutor {
            runtime: Some(runtime),
        })
    }

    pub async fn run<F, T>(&self, work: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| ApiError::internal("the query runtime has stopped"))?;
        runtime
            .spawn(work)
            .await
            .map_err(|e| ApiError::internal(format!("a query task failed: {e}")))?
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
