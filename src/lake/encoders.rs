//! The threads that encode Parquet row groups, shared by every table's writer.
//!
//! Why not tokio's blocking pool: it starts a new thread whenever none is idle, and each
//! thread's allocator heap keeps the pages that were freed on it. Encoding on whichever
//! blocking thread was free left a 3 M-record ingest at 1 GiB resident; a few long-lived
//! threads reuse their own memory.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// How many row groups are encoded at once: one per core.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `encode` on an encoder thread; the receiver gets its result, or is closed if the
/// encoder could not be started or the job panicked.
pub(super) fn run<T: Send + 'static>(
    encode: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (result, receiver) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The writer may have given up waiting (an error elsewhere): nothing to tell it.
        let _ = result.send(encode());
    });
    if let Some(jobs) = pool() {
        if let Ok(jobs) = jobs.lock() {
            let _ = jobs.send(job);
        }
    }
    receiver
}

fn pool() -> Option<&'static Mutex<Sender<Job>>> {
    static POOL: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    POOL.get_or_init(start).as_ref()
}

fn start() -> Option<Mutex<Sender<Job>>> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for n in 0..threads() {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("simtally-encode-{n}"))
            .spawn(move || take_jobs(&queue));
        if spawned.is_ok() {
            started += 1;
        }
    }
    (started > 0).then(|| Mutex::new(jobs))
}

fn take_jobs(queue: &Mutex<Receiver<Job>>) {
    loop {
        let next = queue.lock().map(|queue| queue.recv());
        let Ok(Ok(job)) = next else {
            return;
        };
        // A panicking job drops its result sender, which the writer reports as an error;
        // the thread goes on with the next job.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn jobs_run_and_a_panicking_one_is_reported_as_closed() {
        let answer = super::run(|| 6 * 7);
        let failed = super::run(|| -> u8 { panic!("encoder test panic") });
        assert_eq!(answer.await, Ok(42));
        assert!(failed.await.is_err());
        // The encoders survive a panicking job.
        assert_eq!(super::run(|| "still here").await, Ok("still here"));
    }
}
