//! A counter whose subscribers wake when it moves: the part of `tokio::sync::watch` the world
//! needs (connection resets, controlled-shutdown requests), without its randomness.
//!
//! tokio's watch spreads waiters over eight `Notify`s chosen by a thread-local RNG, seeded
//! from a counter shared by the whole process. The order waiters woke in, and with it the
//! madsim run, depended on how many runs the process had started before: a sweep's seed and
//! the same seed run alone diverged (`swarm` seed 2, whose nemesis drew reset-connections).
//! One `Notify` wakes its waiters in the order they registered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Default)]
struct Shared {
    raised: AtomicU64,
    notify: Notify,
}

/// The raising side, held by the world.
#[derive(Clone, Default)]
pub struct Signal {
    shared: Arc<Shared>,
}

/// One waiter's view: how many raises it has seen.
pub struct Subscriber {
    shared: Arc<Shared>,
    seen: u64,
}

impl Signal {
    pub fn new() -> Signal {
        Signal::default()
    }

    /// Wakes every subscriber (each `raised` call returns once per raise it has not seen).
    pub fn raise(&self) {
        let before = self.shared.raised.fetch_add(1, Ordering::SeqCst);
        assert!(before < u64::MAX, "a signal raised u64::MAX times");
        self.shared.notify.notify_waiters();
    }

    /// A subscriber that has seen every raise so far.
    pub fn subscribe(&self) -> Subscriber {
        let seen = self.shared.raised.load(Ordering::SeqCst);
        Subscriber { shared: self.shared.clone(), seen }
    }
}

impl Subscriber {
    /// Resolves when the signal was raised since this subscriber last saw it.
    pub async fn raised(&mut self) {
        loop {
            // Registered before the check: a raise between the two still wakes it.
            let notified = self.shared.notify.notified();
            let now = self.shared.raised.load(Ordering::SeqCst);
            if now != self.seen {
                self.seen = now;
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_sees_each_raise_after_it_subscribed() {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(1, Default::default());
        runtime.block_on(async {
            let signal = Signal::new();
            signal.raise();
            let mut subscriber = signal.subscribe();
            let waiter = madsim::task::spawn(async move {
                subscriber.raised().await;
                subscriber
            });
            madsim::time::sleep(std::time::Duration::from_millis(5)).await;
            assert!(!waiter.is_finished(), "a raise before subscribing is not seen");
            signal.raise();
            let mut subscriber = waiter.await.expect("the waiter ends");
            signal.raise();
            signal.raise();
            subscriber.raised().await; // both raises, seen at once
            assert_eq!(subscriber.seen, 4, "four raises in all");
        });
    }
}
