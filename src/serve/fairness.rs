//! Who runs queries when: each caller may run a few at once and queue a few more; beyond
//! that their requests are refused at once, so one person's heavy dashboards or a script in
//! a loop cannot take every query thread from the others. Waiting callers are served in
//! the order they came (tokio's semaphores are fair), so a caller with a long queue holds
//! at most their own share of the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many queries a caller may run and queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FairnessLimits {
    /// Queries one caller may run at the same time.
    pub per_caller: usize,
    /// Queries one caller may have waiting for a slot; more are refused.
    pub queued_per_caller: usize,
}

impl Default for FairnessLimits {
    fn default() -> Self {
        FairnessLimits {
            per_caller: 2,
            queued_per_caller: 8,
        }
    }
}

/// Why a query was not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Busy {
    #[error(
        "you have {running} queries running and {queued} waiting; wait for them to finish \
         (at most {running} run at once per person)"
    )]
    QueueFull { running: usize, queued: usize },
    #[error("your earlier queries kept this one waiting past its deadline ({} s)", .0.as_secs())]
    WaitedTooLong(Duration),
}

struct Caller {
    running: Arc<Semaphore>,
    /// Requests waiting or running.
    admitted: Arc<Semaphore>,
}

/// The slots of every caller.
pub struct Fairness {
    limits: FairnessLimits,
    callers: Mutex<HashMap<String, Arc<Caller>>>,
}

/// A running query's slot; dropping it lets the caller's next query run.
#[derive(Debug)]
pub struct Pass {
    _running: OwnedSemaphorePermit,
    _admitted: OwnedSemaphorePermit,
}

impl Fairness {
    pub fn new(limits: FairnessLimits) -> Fairness {
        Fairness {
            limits: FairnessLimits {
                per_caller: limits.per_caller.max(1),
                queued_per_caller: limits.queued_per_caller,
            },
            callers: Mutex::new(HashMap::new()),
        }
    }

    fn caller(&self, who: &str) -> Arc<Caller> {
        let mut callers = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        if callers.len() > 4096 {
            // Forget callers with nothing running or waiting (their slots are all free).
            callers.retain(|_, c| {
                Arc::strong_count(c) > 1 || c.admitted.available_permits() < self.admitted()
            });
        }
        let made = || {
            Arc::new(Caller {
                running: Arc::new(Semaphore::new(self.limits.per_caller)),
                admitted: Arc::new(Semaphore::new(self.admitted())),
            })
        };
        callers.entry(who.to_owned()).or_insert_with(made).clone()
    }

    fn admitted(&self) -> usize {
        self.limits.per_caller + self.limits.queued_per_caller
    }

    /// A slot for one query of `who`, waiting at most `patience` for it.
    pub async fn enter(&self, who: &str, patience: Duration) -> Result<Pass, Busy> {
        let caller = self.caller(who);
        let admitted =
            caller
                .admitted
                .clone()
                .try_acquire_owned()
                .map_err(|_| Busy::QueueFull {
                    running: self.limits.per_caller,
                    queued: self.limits.queued_per_caller,
                })?;
        let running = tokio::time::timeout(patience, caller.running.clone().acquire_owned())
            .await
            .map_err(|_| Busy::WaitedTooLong(patience))?
            .map_err(|_| Busy::WaitedTooLong(patience))?;
        Ok(Pass {
            _running: running,
            _admitted: admitted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_caller_runs_their_share_queues_a_few_and_others_are_not_held_up() {
        let fairness = Fairness::new(FairnessLimits {
            per_caller: 2,
            queued_per_caller: 1,
        });
        let wait = Duration::from_secs(5);
        let first = fairness.enter("ann", wait).await.unwrap();
        let _second = fairness.enter("ann", wait).await.unwrap();
        // Ann's third waits for a slot; her fourth finds the queue full.
        let fairness = Arc::new(fairness);
        let queued = {
            let fairness = fairness.clone();
            tokio::spawn(async move { fairness.enter("ann", wait).await })
        };
        tokio::task::yield_now().await;
        while fairness.caller("ann").admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            fairness.enter("ann", wait).await,
            Err(Busy::QueueFull { .. })
        ));
        // Bob is not held up by Ann.
        let bob = tokio::time::timeout(Duration::from_millis(100), fairness.enter("bob", wait));
        assert!(bob.await.expect("Bob gets a slot at once").is_ok());
        // When one of Ann's finishes, her queued query runs.
        drop(first);
        assert!(queued.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_wait_past_the_deadline_is_refused() {
        let fairness = Fairness::new(FairnessLimits {
            per_caller: 1,
            queued_per_caller: 4,
        });
        let patience = Duration::from_millis(20);
        let _running = fairness.enter("ann", patience).await.unwrap();
        let waited = fairness.enter("ann", patience).await;
        assert_eq!(waited.unwrap_err(), Busy::WaitedTooLong(patience));
    }
}
