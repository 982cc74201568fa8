//! `ingest --brokers --exit-at-end`: the topics to their end, in passes of at most the read
//! budget each (`--pass-max-records`, `--pass-max-mib`). Each pass commits and the next
//! resumes from the positions it recorded, so a backfill of any size holds at most one pass
//! in memory, and a run stopped midway keeps what it committed. The run ends with the first
//! pass that reaches the end of every partition within its budget (not at end offsets
//! fetched up front: some brokers report them behind their logs). As a follower does, each
//! pass starts from the SIM events the previous one left instead of loading them again.

use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::{
    ingest_pass, open_topics, retry_when_fenced, IngestError, IngestOptions, KafkaIngest,
    PassState, RunSummary, StoredFrom,
};
use crate::lake::Lake;
use crate::source::kafka::check_co_partitioned;
use crate::source::ChunkSource;

pub(super) async fn drain_topics(
    lake: &Lake,
    options: &IngestOptions,
    kafka: &KafkaIngest,
    shutdown: CancellationToken,
) -> Result<RunSummary, IngestError> {
    let started = std::time::Instant::now();
    let partitions = check_co_partitioned(&kafka.brokers, &kafka.topics).await?;
    let mut total: Option<RunSummary> = None;
    let mut passes = 0u64;
    let mut stored = None;
    loop {
        let mut kept = stored.take();
        let pass = retry_when_fenced(true, || {
            let kept = kept.take();
            let shutdown = shutdown.clone();
            async move {
                let (events, mut usage) = open_topics(lake, kafka, partitions, None).await?;
                if let Some(budget) = kafka.pass_budget {
                    usage = usage.with_budget(budget);
                }
                let stopped_short = usage.stopped_short();
                let stored = kept.map_or(StoredFrom::Lake, |kept| {
                    StoredFrom::Kept(kept, Box::new(StoredFrom::Lake), None)
                });
                let sources: (Box<dyn ChunkSource>, Box<dyn ChunkSource>) =
                    (Box::new(events), Box::new(usage));
                let state = PassState { stored, hold: None };
                let (pass, after) = ingest_pass(lake, options, sources, state, shutdown).await?;
                Ok((pass, after, stopped_short))
            }
        })
        .await;
        let (pass, stored_after, stopped_short) = match pass {
            Err(IngestError::Interrupted) if passes > 0 => {
                return Err(IngestError::InterruptedAfterPasses(passes))
            }
            other => other?,
        };
        stored = Some(stored_after);
        passes += 1;
        tracing::info!(
            pass = passes,
            records = pass.usage.records,
            seconds = pass.elapsed.as_secs_f64(),
            "pass committed"
        );
        match &mut total {
            Some(total) => total.absorb(pass),
            None => total = Some(pass),
        }
        if !stopped_short.load(Ordering::Acquire) {
            break;
        }
    }
    let mut total = total.unwrap_or_default();
    total.elapsed = started.elapsed();
    Ok(total)
}
