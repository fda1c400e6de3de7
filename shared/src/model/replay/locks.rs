//! Each process's own lock (as each Python process has its own GIL): who holds it, who waits
//! for it in the order they asked, and the hand-overs so far.

use crate::vec_map::VecMap;

use super::{Replay, ThreadState};
use crate::event::{LockOp, Ns, OffReason};

/// One process's lock steps, indexed.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ProcessLock {
    /// Step times, sorted.
    pub(super) at: Vec<Ns>,
    /// `handovers[i]`: hand-overs among the first `i` steps.
    pub(super) handovers: Vec<u32>,
}

/// A thread waiting for or holding its process's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSpan {
    /// Start, ns.
    pub start: Ns,
    /// End, ns.
    pub end: Ns,
    /// Waiting or holding.
    pub kind: LockSpanKind,
}

/// What a thread does with its process's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockSpanKind {
    /// Asked for it, not given it yet.
    Waiting,
    /// Holds it.
    Holding,
}

/// One process's lock at an instant (each process has its own, as each Python process has
/// its own GIL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockFrame {
    /// The process whose lock it is.
    pub pid: u32,
    /// Who holds it, since when.
    pub holder: Option<(u32, Ns)>,
    /// Who waits off the CPU, in the order they asked: the threads whose state is
    /// [`ThreadState::Off`]`(`[`OffReason::Lock`]`)` (a waiter on a CPU, or runnable and queued
    /// for one, shows there instead).
    pub waiters: Vec<u32>,
    /// Whether a waiter has asked the holder to drop it (waited a whole switch interval).
    pub drop_requested: bool,
    /// Hand-overs from one thread to another so far.
    pub handovers: u32,
}

impl Replay {
    /// Each process's lock at `t`, by pid (empty when the run has no lock).
    pub fn locks_at(&self, t: Ns) -> Vec<LockFrame> {
        self.locks_at_with(t, &self.thread_states(t))
    }

    /// [`Replay::locks_at`] with the threads' states at `t` already known.
    pub fn locks_at_with(&self, t: Ns, states: &[ThreadState]) -> Vec<LockFrame> {
        // Inserted one by one: collecting into a map sorts first, which compiles a sort for
        // this type into the page (`crate::sort`).
        let mut frames: VecMap<u32, (LockFrame, Vec<(Ns, u32)>)> = VecMap::new();
        for (&pid, lock) in self.locks.iter() {
            let n = lock.at.partition_point(|&a| a <= t);
            let frame = LockFrame {
                pid,
                handovers: lock.handovers.get(n).copied().unwrap_or(0),
                ..LockFrame::default()
            };
            frames.insert(pid, (frame, Vec::new()));
        }
        for (th, state) in self.threads.iter().zip(states) {
            let i = th.lock.partition_point(|l| l.0 <= t);
            let Some(k) = i.checked_sub(1) else { continue };
            let Some((frame, waiting)) = frames.get_mut(&th.pid) else {
                continue;
            };
            match th.lock[k].1 {
                LockOp::Acquire => frame.holder = Some((th.tid, th.lock[k].0)),
                op @ (LockOp::Request | LockOp::DropRequest) => {
                    if op == LockOp::DropRequest {
                        frame.drop_requested = true;
                    }
                    if *state == ThreadState::Off(OffReason::Lock) {
                        // Waiting since its request.
                        let since = th.lock[..=k]
                            .iter()
                            .rev()
                            .find(|l| l.1 == LockOp::Request)
                            .map_or(th.lock[k].0, |l| l.0);
                        waiting.push((since, th.tid));
                    }
                }
                LockOp::Release => {}
            }
        }
        frames
            .into_values()
            .map(|(mut frame, mut waiting)| {
                crate::sort::natural(&mut waiting);
                frame.waiters = waiting.into_iter().map(|w| w.1).collect();
                frame
            })
            .collect()
    }

    /// A thread's time with the lock, in time order: waiting for it (from its request to the
    /// acquire that answered it) and holding it (from an acquire to its release). A wait or
    /// hold still open at the end of the run is left out.
    pub fn lock_spans(&self, tid: u32) -> Vec<LockSpan> {
        let Some(th) = self.thread(tid) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let (mut requested, mut acquired) = (None, None);
        for &(at, op) in &th.lock {
            match op {
                LockOp::Request => requested = Some(at),
                LockOp::DropRequest => {}
                LockOp::Acquire => {
                    if let Some(start) = requested.take() {
                        out.push(LockSpan {
                            start,
                            end: at,
                            kind: LockSpanKind::Waiting,
                        });
                    }
                    acquired = Some(at);
                }
                LockOp::Release => {
                    if let Some(start) = acquired.take() {
                        out.push(LockSpan {
                            start,
                            end: at,
                            kind: LockSpanKind::Holding,
                        });
                    }
                }
            }
        }
        out
    }

    /// Hand-overs of a lock from one thread to another in the whole run, over every
    /// process's own lock.
    pub fn lock_handovers(&self) -> u64 {
        self.locks
            .values()
            .map(|l| u64::from(l.handovers.last().copied().unwrap_or(0)))
            .sum()
    }
}
