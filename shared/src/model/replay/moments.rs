//! Moments worth stopping at, for a lesson's "next interesting moment": the next preemption,
//! the next hand-over of a lock, the next wake of an event loop from its selector, the next
//! long poll.

use super::Replay;
use crate::event::{Ns, OffReason};

impl Replay {
    /// The first time after `t` at which a thread is taken off its CPU while it still wants to
    /// run (the start of a span off the CPU for [`OffReason::Preempted`]).
    pub fn next_preemption(&self, t: Ns) -> Option<Ns> {
        self.threads
            .iter()
            .filter_map(|th| {
                let i = th.off.partition_point(|o| o.start <= t);
                th.off[i..]
                    .iter()
                    .find(|o| o.reason == OffReason::Preempted)
                    .map(|o| o.start)
            })
            .min()
    }

    /// The first time after `t` at which some process's lock passes from one thread to
    /// another.
    pub fn next_handover(&self, t: Ns) -> Option<Ns> {
        self.locks
            .values()
            .filter_map(|lock| {
                let i = lock.at.partition_point(|&a| a <= t);
                // `handovers[k + 1]` counts the hand-overs among the first k + 1 steps.
                (i..lock.at.len())
                    .find(|&k| lock.handovers.get(k + 1) > lock.handovers.get(k))
                    .map(|k| lock.at[k])
            })
            .min()
    }

    /// The first time after `t` at which an event loop wakes from its selector with tasks to
    /// run (the end of a selector wait that woke at least one).
    pub fn next_loop_wake(&self, t: Ns) -> Option<Ns> {
        let i = self.waits.partition_point(|w| w.1 <= t);
        self.waits[i..]
            .iter()
            .filter(|w| w.2 > 0)
            .map(|w| w.1)
            .min()
    }

    /// The start of the first poll after `t` that took at least `min_ns`.
    pub fn next_long_poll(&self, t: Ns, min_ns: Ns) -> Option<Ns> {
        let i = self.polls.partition_point(|p| p.0 <= t);
        self.polls[i..]
            .iter()
            .find(|p| p.1.saturating_sub(p.0) >= min_ns)
            .map(|p| p.0)
    }
}
