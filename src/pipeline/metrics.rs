//! Counters of a following ingest, and the endpoint that serves them: `/metrics`
//! (OpenMetrics text, through the Prometheus project's `prometheus-client`) and `/healthz`.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
use tokio_util::sync::CancellationToken;

use super::RunSummary;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    usage_messages: Counter,
    event_messages: Counter,
    records: Counter,
    slices: Counter,
    quarantined_slices: Counter,
    dead_letters: Counter,
    duplicates: Counter,
    corrected_records: Counter,
    correction_rows: Counter,
    unsent_dead_letters: Counter,
    passes: Counter,
    passes_dropped: Counter,
    ownership_loads: Counter,
    last_pass_seconds: Gauge<f64, AtomicU64>,
    held: Gauge,
    last_commit_seconds: Gauge<f64, AtomicU64>,
    /// Per (topic, partition): messages not yet in the lake when the last pass started.
    lag: Family<Partition, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Partition {
    topic: String,
    partition: i32,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("simtally");
        let r = &mut registry;
        let counter =
            |r: &mut Registry, name: &str, help: &str| add(r, name, help, Counter::default());
        Metrics {
            usage_messages: counter(r, "usage_messages", "Usage messages read (every line, valid or not)"),
            event_messages: counter(r, "event_messages", "Lifecycle event messages read"),
            records: counter(r, "records", "Usage records written for the first time"),
            slices: counter(r, "slices", "Usage slices attributed to a Workspace"),
            quarantined_slices: counter(r, "quarantined_slices", "Usage slices quarantined (no owner, unknown SIM)"),
            dead_letters: counter(r, "dead_letters", "Messages that went to dead_letters"),
            duplicates: counter(r, "duplicates", "Usage messages whose record id was already seen"),
            corrected_records: counter(r, "corrected_records", "Stored records re-attributed after a late transfer or registration"),
            correction_rows: counter(r, "correction_rows", "Correction rows written (reversals and re-attributed slices)"),
            unsent_dead_letters: counter(r, "dead_letter_topic_failures", "Dead letters that could not be sent to the dead-letter topic (they are in the table)"),
            passes: counter(r, "passes", "Passes committed"),
            passes_dropped: counter(r, "passes_dropped", "Passes dropped because another group member committed first"),
            ownership_loads: counter(r, "ownership_loads", "Times the SIM events were loaded from the lake (on assignment; passes in between keep them)"),
            last_pass_seconds: add(r, "last_pass_seconds", "How long the last pass took (read, attribute, write, commit)", Gauge::default()),
            held: add(r, "held_messages", "Usage messages the last pass held for the lifecycle events that cover them", Gauge::default()),
            last_commit_seconds: add(r, "last_commit_timestamp_seconds", "When the last pass committed (Unix time; 0: none yet)", Gauge::default()),
            lag: add(r, "consumer_lag_messages", "Messages of an owned partition not yet in the lake when the last pass started", Family::default()),
            registry,
        }
    }
}

/// Registers `metric` under `name` and returns it (metrics are shared handles).
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    pub fn record_pass(&self, summary: &RunSummary) {
        self.usage_messages.inc_by(summary.usage.lines);
        self.event_messages.inc_by(summary.events.lines);
        self.records.inc_by(summary.usage.records);
        self.slices.inc_by(summary.usage.slices_attributed);
        (self.quarantined_slices).inc_by(summary.quarantine.values().map(|q| q.slices).sum());
        (self.dead_letters).inc_by(summary.usage.dead_letters + summary.events.dead_letters);
        self.duplicates.inc_by(summary.usage.duplicates);
        self.corrected_records.inc_by(summary.corrections.records);
        self.correction_rows.inc_by(summary.corrections.rows);
        self.unsent_dead_letters.inc_by(summary.unsent_dead_letters);
        self.passes.inc();
        self.last_pass_seconds.set(summary.elapsed.as_secs_f64());
        self.held
            .set(i64::try_from(summary.usage.held).unwrap_or(i64::MAX));
        if !summary.lake_versions.is_empty() {
            let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
            self.last_commit_seconds.set(now);
        }
    }

    pub fn record_dropped_pass(&self) {
        self.passes_dropped.inc();
    }

    pub fn record_ownership_load(&self) {
        self.ownership_loads.inc();
    }

    /// The backlog of each owned partition as a pass starts; partitions no longer owned
    /// are forgotten.
    pub fn record_lag(&self, lags: impl IntoIterator<Item = (String, i32, i64)>) {
        self.lag.clear();
        for (topic, partition, n) in lags {
            self.lag
                .get_or_create(&Partition { topic, partition })
                .set(n);
        }
    }

    /// The OpenMetrics text exposition of every counter and gauge.
    pub fn render(&self) -> String {
        crate::openmetrics::text(&self.registry)
    }
}

/// Binds `address` and serves `/metrics` and `/healthz` until `shutdown`. Returns the bound
/// address (useful with port 0).
pub async fn serve_operations(
    address: &str,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let router = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(metrics);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!("the metrics endpoint stopped: {e}");
        }
    });
    Ok(bound)
}

async fn render_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    crate::openmetrics::response(&metrics.registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labelled_lag() {
        let metrics = Metrics::default();
        let mut summary = RunSummary::default();
        summary.usage.lines = 10;
        summary.usage.records = 7;
        summary.usage.duplicates = 2;
        summary.usage.dead_letters = 1;
        summary.corrections.records = 3;
        summary.corrections.rows = 9;
        metrics.record_pass(&summary);
        summary.usage.held = 4;
        metrics.record_pass(&summary);
        metrics.record_lag([("sim-usage".to_owned(), 3, 42)]);
        let text = metrics.render();
        assert!(text.contains("simtally_records_total 14\n"), "{text}");
        assert!(text.contains("simtally_usage_messages_total 20\n"));
        assert!(text.contains("simtally_corrected_records_total 6\n"));
        assert!(text.contains("simtally_correction_rows_total 18\n"));
        assert!(text.contains("# TYPE simtally_passes counter\nsimtally_passes_total 2\n"));
        assert!(text.contains("# TYPE simtally_held_messages gauge\nsimtally_held_messages 4\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
        // The encoder ends each help with a full stop of its own.
        assert!(
            text.contains("# HELP simtally_passes Passes committed.\n"),
            "{text}"
        );
        assert!(text
            .contains("simtally_consumer_lag_messages{topic=\"sim-usage\",partition=\"3\"} 42\n"));
    }
}
