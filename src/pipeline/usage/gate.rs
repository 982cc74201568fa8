//! What the usage pass waits for from the events pass. The usage threads start with the
//! events pass and decode ahead; attribution needs the ownership book, so it waits here
//! until the events pass opens the gate with it, or gives up when the events pass ends
//! without doing so (an error, a shutdown).

use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// Opened once with a value, or closed without one when its [`Opener`] is dropped.
pub struct Gate<T> {
    value: OnceLock<T>,
    /// Set when the opener is gone, with or without a value.
    settled: Mutex<bool>,
    changed: Condvar,
}

/// The one side that may open the gate; dropping it unopened closes the gate.
pub struct Opener<T>(Arc<Gate<T>>);

pub fn gate<T>() -> (Opener<T>, Arc<Gate<T>>) {
    let gate = Arc::new(Gate {
        value: OnceLock::new(),
        settled: Mutex::new(false),
        changed: Condvar::new(),
    });
    (Opener(gate.clone()), gate)
}

impl<T> Opener<T> {
    pub fn open(self, value: T) {
        // The only setter: `set` cannot find a value already there.
        let _ = self.0.value.set(value);
    }
}

impl<T> Drop for Opener<T> {
    fn drop(&mut self) {
        let mut settled = self.0.settled.lock().unwrap_or_else(|e| e.into_inner());
        *settled = true;
        self.0.changed.notify_all();
    }
}

impl<T> Gate<T> {
    /// The value, if the gate is open now.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// Blocks until the gate opens (the value) or closes unopened (`None`).
    pub fn wait(&self) -> Option<&T> {
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        while !*settled {
            settled = self
                .changed
                .wait(settled)
                .unwrap_or_else(|e| e.into_inner());
        }
        self.value.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_get_the_value_the_gate_opens_with() {
        let (opener, gate) = gate::<u32>();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| gate.wait().copied());
            assert_eq!(gate.get(), None);
            opener.open(7);
            assert_eq!(waiter.join().ok(), Some(Some(7)));
        });
        assert_eq!(gate.get(), Some(&7));
    }

    #[test]
    fn a_dropped_opener_closes_the_gate_without_a_value() {
        let (opener, gate) = gate::<u32>();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| gate.wait().copied());
            drop(opener);
            assert_eq!(waiter.join().ok(), Some(None));
        });
    }
}
