//! Event-loop instrumentation of a real tokio runtime: the module's public face, and a map of
//! its parts. Every task spawned on the loop is wrapped in [`Traced`] (by [`traced()`]), which
//! times each poll and wraps the task's waker, and the runtime's park hooks ([`park`],
//! [`unpark`]) mark the loop's waits in the selector (epoll). From these come the task
//! lifecycle (spawn → poll → pending → wake → … → poll → ready), who woke whom, the ready
//! queue's depth and the tasks parked on I/O and timers — all from the real tokio runtime.
//!
//! The loop's hot path only writes down what happened: 24-byte records with raw counter
//! stamps (see [`super::stamp`]) in a plain vector, handed over in batches. Everything that
//! can wait — which tasks are queued or parked, which wakes the runtime ignores, the queue
//! depths, stamp conversion — is worked out by the recorder's consumer, off the loop's
//! thread, by a `Consumer` (one per loop, kept across that loop's batches).
//!
//! The hot state lives in a thread local of the loop's thread: a current-thread runtime
//! polls and wakes on that thread, so no locking is needed. A wake from another thread is
//! passed on to the runtime but not recorded.
//!
//! - `records`: the 24-byte records and their hand-over ([`LoopBatch`]).
//! - `hot`: the loop thread's state ([`LoopState`]): [`enter`], [`exit`], [`with`],
//!   [`park`], [`unpark`], and the flush that hands records over.
//! - `waker`: the waker wrapping (forwarding wakers, a waker of our own); every `unsafe`
//!   block of the instrumentation is there.
//! - `traced`: the [`Traced`] future.
//! - `consumer`: records → events, off the loop's thread.
//!
//! Dependencies go one way: the recorder carries a [`LoopBatch`], and nothing here imports
//! the recorder (the loop hands its batches over through its tracer's recorder).

mod consumer;
mod hot;
mod records;
mod traced;
mod waker;

pub use hot::{LoopState, enter, exit, park, unpark, with};
pub use records::LoopBatch;
pub use traced::{Traced, traced};

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        sync::{Arc, atomic::AtomicBool},
    };

    use coreplay_shared::event::{Event, Role, WaitKind, WakeBy};

    use super::*;
    use crate::trace::{Recorder, ThreadTracer, recorder::Batch};

    /// A real current-thread loop: one task wakes another through a channel (a wake inside a
    /// poll), the other yields (a wake tokio defers past the poll). Every wake gets a stamp
    /// between the poll before it and the poll after it.
    #[test]
    fn a_real_loop_records_ordered_lifecycles() {
        let (rec, rx) = Recorder::new(true, Arc::new(AtomicBool::new(false)));
        let events = std::thread::spawn(move || {
            enter(ThreadTracer::start(&rec, "loop", Role::EventLoop), true);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(park)
                .on_thread_unpark(unpark)
                .build()
                .expect("runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
                let consumer =
                    tokio::task::spawn_local(traced("consumer", WaitKind::Io, async move {
                        let mut sum = 0;
                        while let Some(v) = rx.recv().await {
                            sum += v;
                        }
                        sum
                    }));
                let producer =
                    tokio::task::spawn_local(traced("producer", WaitKind::Io, async move {
                        for v in 0..20 {
                            let _ = tx.send(v).await;
                            tokio::task::yield_now().await;
                        }
                    }));
                let _ = producer.await;
                assert_eq!(consumer.await.ok(), Some(190));
            });
            drop(local);
            drop(rt);
            if let Some(t) = exit() {
                t.finish();
            }
        });
        assert!(events.join().is_ok());
        let mut events: Vec<Event> = rx.iter().flat_map(Batch::into_events).collect();
        events.sort_by_key(Event::time);
        let polls: Vec<(u64, u64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Poll { start, end, .. } => Some((*start, *end)),
                _ => None,
            })
            .collect();
        assert!(polls.len() >= 40, "{} polls", polls.len());
        assert!(polls.windows(2).all(|w| w[0].1 <= w[1].0), "polls overlap");
        let wakes: Vec<(u64, WakeBy)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Wake { at, by, .. } => Some((*at, *by)),
                _ => None,
            })
            .collect();
        assert!(
            wakes
                .iter()
                .any(|(_, by)| matches!(by, WakeBy::Task { .. })),
            "the producer woke the consumer"
        );
        let last_end = polls.last().map_or(0, |p| p.1);
        for (at, by) in &wakes {
            assert!(*at <= last_end, "{by:?} wake at {at} after the last poll");
        }
        // Every task: spawn, then polls each preceded by a spawn or a wake.
        let mut ready: HashMap<u32, bool> = HashMap::new();
        for e in &events {
            match e {
                Event::TaskSpawn { task, .. } | Event::Wake { task, .. } => {
                    ready.insert(*task, true);
                }
                Event::Poll {
                    task, ready: done, ..
                } => {
                    assert_eq!(
                        ready.insert(*task, false),
                        Some(true),
                        "task {task} polled unwoken"
                    );
                    if *done {
                        ready.remove(task);
                    }
                }
                _ => {}
            }
        }
        assert!(ready.is_empty(), "every task finished: {ready:?}");
    }
}
