//! A pass's commits as data: which tables, in which order, with which `txn` actions.
//!
//! The order is fixed: `sim_events`, `workspaces`, `memberships`, `dead_letters`,
//! `quarantine`, then `usage`, the closing commit. Events come first so usage never refers
//! to an ownership the lake cannot explain; `usage` comes last because it records where the
//! sources resume (a pass killed before it is read again) and closes the pass for the writer
//! fence (`lake::fence`). Every commit carries the fence (a file ingest's pass) or the
//! pass's Kafka positions (a following ingest's); the closing commit is made, with no rows if
//! need be, whenever the pass committed anything before it.

use deltalake::kernel::Transaction;
use futures::stream::{FuturesOrdered, TryStreamExt};

use crate::lake::crash::{CommitPoint, WritePath, PASS_COMMIT_ORDER};
use crate::lake::{Fence, LakeError, LakeTable, TableAppender};

/// One table's commit: its written rows and the `txn` actions it records besides the fence.
pub(super) struct Step {
    pub table: LakeTable,
    pub appender: TableAppender,
    pub txns: Vec<Transaction>,
}

/// `step` with its table's data files finished.
async fn finished(mut step: Step) -> Result<Step, LakeError> {
    step.appender.finish_files().await?;
    Ok(step)
}

/// The commits of one pass, in [`PASS_COMMIT_ORDER`].
pub(super) struct CommitPlan {
    fence: Option<Fence>,
    /// Still to commit, in reverse order.
    steps: Vec<Step>,
    committed: Vec<(&'static str, i64)>,
}

impl CommitPlan {
    /// A plan of `steps`, put in commit order; a table given twice is a bug. A file
    /// ingest's pass records `fence` with every commit; a following ingest's pass (no fence)
    /// records its Kafka positions instead (see `lake::fence`).
    pub fn new(fence: Option<Fence>, mut steps: Vec<Step>) -> Result<Self, LakeError> {
        let position = |table: LakeTable| PASS_COMMIT_ORDER.iter().position(|t| *t == table);
        steps.sort_by_key(|step| std::cmp::Reverse(position(step.table)));
        let mut tables: Vec<LakeTable> = steps.iter().map(|s| s.table).collect();
        tables.dedup();
        if tables.len() != steps.len() || steps.iter().any(|s| position(s.table).is_none()) {
            return Err(LakeError::Internal(format!(
                "a pass's commits must be distinct tables of {PASS_COMMIT_ORDER:?}: {tables:?}"
            )));
        }
        Ok(CommitPlan {
            fence,
            steps,
            committed: Vec::new(),
        })
    }

    /// Commits each table in order; returns the versions committed. Stops at the first
    /// failure, leaving the tables before it committed (as a killed pass would).
    ///
    /// Every table's data files are finished at once, and each table is committed as soon
    /// as its files and the commits before it are done: the small tables commit while the
    /// last row groups of `usage` are still being encoded. It changes nothing a crash
    /// leaves: a data file is part of a table only once a commit names it.
    pub async fn commit(mut self) -> Result<Vec<(&'static str, i64)>, LakeError> {
        let steps = std::mem::take(&mut self.steps);
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
        let finishing = async move {
            let mut in_order: FuturesOrdered<_> = steps.into_iter().rev().map(finished).collect();
            while let Some(step) = in_order.try_next().await? {
                if ready_tx.send(step).is_err() {
                    break;
                }
            }
            Ok::<(), LakeError>(())
        };
        let plan = &mut self;
        let committing = async move {
            while let Some(step) = ready_rx.recv().await {
                plan.commit_step(step).await?;
            }
            Ok::<(), LakeError>(())
        };
        let (finished, committed) = tokio::join!(Box::pin(finishing), Box::pin(committing));
        committed.and(finished)?;
        Ok(self.committed)
    }

    /// Commits the next table's step; `None` once every step is done. One step at a time,
    /// for the tests that interleave the commits of several passes.
    #[cfg(test)]
    pub async fn commit_next(&mut self) -> Result<Option<LakeTable>, LakeError> {
        let Some(step) = self.steps.pop() else {
            return Ok(None);
        };
        let table = step.table;
        self.commit_step(step).await?;
        Ok(Some(table))
    }

    async fn commit_step(&mut self, step: Step) -> Result<(), LakeError> {
        let Step {
            table,
            appender,
            mut txns,
        } = step;
        let closing = table == LakeTable::Usage && !self.committed.is_empty();
        if appender.has_changes() || !txns.is_empty() || closing {
            txns.extend(self.fence.map(|fence| fence.txn()));
        }
        if let Some(version) = appender.commit(txns).await? {
            self.committed.push((table.name(), version));
        }
        CommitPoint::new(WritePath::Pass, table.name()).passed();
        Ok(())
    }

    /// The same plan without the fence: the protocol as it was before it, for the tests
    /// that show what the fence prevents.
    #[cfg(test)]
    fn unfenced(mut self) -> Self {
        self.fence = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UtcMillis;
    use crate::domain::{Reason, Rejection};
    use crate::lake::{Lake, LakeLocation};
    use crate::tables::dead_letters::{DeadLetter, DeadLetterRows};

    /// How a test pass claims its commits: the fence (a file ingest), the positions of one
    /// Kafka partition (a follower), or nothing (the protocol before the fence).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind {
        File,
        Partition(i32),
        Unfenced,
    }

    /// A pass that read the lake and decided to store one dead letter (as a rerun of the
    /// same input decides): its plan, not yet committed.
    async fn decided_pass(lake: &Lake, kind: Kind) -> CommitPlan {
        let mut dead_letters = lake.appender(LakeTable::DeadLetters).await.unwrap();
        let usage = lake.appender(LakeTable::Usage).await.unwrap();
        let quarantine = lake.appender(LakeTable::Quarantine).await.unwrap();
        let mut rows = DeadLetterRows::new(UtcMillis::from_millis(0));
        rows.append(&DeadLetter {
            source: "input.ndjson:1".into(),
            rejection: Rejection::new(Reason::NotJson, "x".into()),
            payload: b"x".to_vec(),
            key: None,
            input: crate::tables::dead_letters::LetterInput::Usage,
        });
        dead_letters.write(rows.finish()).await.unwrap();
        let fence = Fence::read(&usage, &quarantine).await.unwrap();
        let txns = match kind {
            Kind::Partition(p) => {
                vec![Transaction::new(crate::kafka::resume_app_id("usage", p), 1)]
            }
            _ => Vec::new(),
        };
        let step = |table, appender| Step {
            table,
            appender,
            txns: txns.clone(),
        };
        let steps = vec![
            step(LakeTable::DeadLetters, dead_letters),
            step(LakeTable::Usage, usage),
        ];
        let fence = matches!(kind, Kind::File | Kind::Unfenced).then_some(fence);
        let plan = CommitPlan::new(fence, steps).unwrap();
        match kind {
            Kind::Unfenced => plan.unfenced(),
            _ => plan,
        }
    }

    /// Every order in which `writers` writers can take `steps` steps each.
    fn interleavings(writers: usize, steps: usize) -> Vec<Vec<usize>> {
        fn extend(left: &mut Vec<usize>, order: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if left.iter().all(|n| *n == 0) {
                out.push(order.clone());
            }
            for writer in 0..left.len() {
                if left[writer] > 0 {
                    left[writer] -= 1;
                    order.push(writer);
                    extend(left, order, out);
                    order.pop();
                    left[writer] += 1;
                }
            }
        }
        let mut out = Vec::new();
        extend(&mut vec![steps; writers], &mut Vec::new(), &mut out);
        out
    }

    /// Writers that all read the lake before any commits, their commits interleaved in
    /// every order: with the fence, exactly one completes (the others are refused at some
    /// commit, and start again from a fresh read); without it, as before the fence, every
    /// one completes and the same dead letter is stored once per writer. Followers' passes
    /// of different partitions all complete; of the same partition, or beside a file
    /// ingest's pass, one does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_writers_that_read_the_same_lake_exactly_one_completes() {
        use Kind::*;
        // The writers, and how many may complete: the file pass or both followers, never
        // a mix.
        let cases: [(&[Kind], &[usize]); 7] = [
            (&[File, File], &[1]),
            (&[File, File, File], &[1]),
            (&[Unfenced, Unfenced], &[2]),
            (&[Unfenced, Unfenced, Unfenced], &[3]),
            (&[Partition(0), Partition(1)], &[2]),
            (&[Partition(0), Partition(0)], &[1]),
            (&[File, Partition(0), Partition(1)], &[1, 2]),
        ];
        for (kinds, completing) in cases {
            for order in interleavings(kinds.len(), 2) {
                let dir = tempfile::tempdir().unwrap();
                let lake = Lake::new(LakeLocation::parse(dir.path().to_str().unwrap()).unwrap());
                let mut plans = Vec::new();
                for kind in kinds {
                    plans.push(Some(decided_pass(&lake, *kind).await));
                }
                let mut completed = 0;
                for writer in &order {
                    let Some(plan) = plans[*writer].as_mut() else {
                        continue;
                    };
                    match plan.commit_next().await {
                        Ok(Some(LakeTable::Usage)) => completed += 1,
                        Ok(_) => {}
                        Err(e) => {
                            assert!(e.is_concurrent_commit(), "{e}");
                            plans[*writer] = None;
                        }
                    }
                }
                let stored = lake
                    .select(LakeTable::DeadLetters, "SELECT COUNT(*) FROM t")
                    .await
                    .unwrap();
                let stored = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(
                    stored[0].column(0),
                )
                .value(0);
                assert!(completing.contains(&completed), "{kinds:?} {order:?}");
                assert_eq!(stored, completed as i64, "{kinds:?} {order:?}");
            }
        }
    }
}
