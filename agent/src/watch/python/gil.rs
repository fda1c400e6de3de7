//! One GIL per process, one holder at a time. Each followed thread says what its own samples
//! tell (it started waiting on the GIL's futex, it ran after such a wait, it blocked on
//! something else while holding it); those steps reach the sampler out of time order (a
//! thread's off-CPU reason is refined a few ticks late). The ledger keeps them for
//! [`LAG_NS`], then takes them in time order and makes one consistent history: a thread that
//! takes the GIL takes it from the holder (who lets it go then), a release by a thread that no
//! longer holds it is dropped. Steps in, events out: pure and unit-tested.

use std::collections::BTreeMap;

use coreplay_shared::event::{Event, LockOp, Ns};

/// How long steps wait before they are put in order, ns, at first: longer than a thread's step
/// takes to reach the sampler on an idle machine. A step that still comes late (a busy machine
/// delays the sampler) doubles the wait, up to [`MAX_LAG_NS`].
pub const LAG_NS: Ns = 30_000_000;
/// The longest steps wait, ns.
pub const MAX_LAG_NS: Ns = 1_000_000_000;

/// The GIL steps of a watch's Python processes, put in one order per process.
#[derive(Debug)]
pub struct Ledger {
    procs: BTreeMap<u32, Proc>,
    /// How long steps wait now, and up to when they were emitted.
    lag: Ns,
    emitted: Ns,
}

impl Default for Ledger {
    fn default() -> Ledger {
        Ledger {
            procs: BTreeMap::new(),
            lag: LAG_NS,
            emitted: 0,
        }
    }
}

/// One process's GIL.
#[derive(Debug, Default)]
struct Proc {
    /// Steps waiting: (at, rank at equal times, tid, op).
    steps: Vec<(Ns, u8, u32, LockOp)>,
    holder: Option<u32>,
    /// The latest time emitted, and that of the latest take.
    last: Ns,
    take: Option<Ns>,
}

impl Proc {
    /// Emits a step so that the history reads the same in time order (as the trace check and
    /// the page read it) as in the order it was made, and no step of a thread falls outside
    /// its life: a take never before the last take or release emitted (a late one that would
    /// fall after its thread's last known moment is left out: the holder stays unknown); a
    /// release at its own time, but after the take it ends (at one instant a release sorts
    /// before a take); a request at its own time (it changes no holder).
    fn push(&mut self, tid: u32, at: Ns, op: LockOp, seen: Option<Ns>, out: &mut Vec<Event>) {
        let at = match op {
            LockOp::Request | LockOp::DropRequest => at,
            LockOp::Acquire => {
                let at = at.max(self.last);
                // Room for its release after it, within its thread's known life.
                if seen.is_some_and(|s| at >= s) {
                    return;
                }
                self.holder = Some(tid);
                self.take = Some(at);
                at
            }
            LockOp::Release => {
                self.holder = None;
                match self.take {
                    Some(take) if at <= take => take + 1,
                    _ => at,
                }
            }
        };
        if matches!(op, LockOp::Acquire | LockOp::Release) {
            self.last = self.last.max(at);
        }
        out.push(Event::Lock { tid, at, op });
    }
}

impl Ledger {
    /// Takes a thread's step.
    pub fn step(&mut self, pid: u32, tid: u32, at: Ns, op: LockOp) {
        // At one instant: requests, then takes, then releases (a thread's release at the
        // instant of its own take comes after it).
        let rank = match op {
            LockOp::Request | LockOp::DropRequest => 0,
            LockOp::Acquire => 1,
            LockOp::Release => 2,
        };
        self.procs
            .entry(pid)
            .or_default()
            .steps
            .push((at, rank, tid, op));
        // Late: wait longer from now on, so that the next such step is still in time.
        if at < self.emitted {
            let late = self.emitted - at;
            self.lag = self.lag.max(late.saturating_mul(2)).min(MAX_LAG_NS);
        }
    }

    /// How long steps wait before they are put in order, ns.
    pub fn lag(&self) -> Ns {
        self.lag
    }

    /// Emits, in order, the steps up to `until` (all of them with `Ns::MAX`). `seen(tid)`:
    /// for a thread that ended, the latest time its own events reach (`None`: it goes on); a
    /// holder that another thread takes the GIL from lets it go then at the latest.
    pub fn emit(&mut self, until: Ns, seen: &dyn Fn(u32) -> Option<Ns>, out: &mut Vec<Event>) {
        self.emitted = self.emitted.max(until.min(Ns::MAX - 1));
        for p in self.procs.values_mut() {
            p.steps.sort_unstable_by_key(|s| (s.0, s.1, s.2));
            let n = p.steps.partition_point(|s| s.0 <= until);
            let steps: Vec<_> = p.steps.drain(..n).collect();
            for (at, _, tid, op) in steps {
                match op {
                    LockOp::Request | LockOp::DropRequest => p.push(tid, at, op, None, out),
                    LockOp::Acquire => {
                        if p.holder == Some(tid) {
                            continue;
                        }
                        if let Some(h) = p.holder {
                            let until = seen(h).map_or(at, |s| s.min(at));
                            p.push(h, until, LockOp::Release, None, out);
                        }
                        p.push(tid, at, op, seen(tid), out);
                    }
                    LockOp::Release => {
                        if p.holder == Some(tid) {
                            p.push(tid, at, op, None, out);
                        }
                    }
                }
            }
        }
    }

    /// Whether steps are waiting.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.procs.values().all(|p| p.steps.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(out: &[Event]) -> Vec<(u32, Ns, LockOp)> {
        out.iter()
            .filter_map(|e| match e {
                Event::Lock { tid, at, op } => Some((*tid, *at, *op)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn steps_in_any_order_make_one_holder_at_a_time() {
        let mut l = Ledger::default();
        // Thread 2's steps arrive after thread 3's later ones.
        l.step(1, 3, 20, LockOp::Acquire);
        l.step(1, 3, 15, LockOp::Request);
        l.step(1, 2, 5, LockOp::Request);
        l.step(1, 2, 10, LockOp::Acquire);
        // 2 blocks at 30, but 3 took it at 20: 2's release is dropped.
        l.step(1, 2, 30, LockOp::Release);
        // Another process's GIL is its own.
        l.step(9, 7, 12, LockOp::Acquire);
        let mut out = Vec::new();
        l.emit(25, &|_| None, &mut out);
        assert_eq!(
            ops(&out),
            vec![
                (2, 5, LockOp::Request),
                (2, 10, LockOp::Acquire),
                (3, 15, LockOp::Request),
                (2, 20, LockOp::Release),
                (3, 20, LockOp::Acquire),
                (7, 12, LockOp::Acquire),
            ]
        );
        assert!(!l.is_empty());
        out.clear();
        l.emit(Ns::MAX, &|_| None, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert!(l.is_empty());
        // A holder last seen (ended, unnoticed) before another takes it lets it go then.
        l.step(1, 4, 40, LockOp::Acquire);
        l.emit(Ns::MAX, &|tid| (tid == 3).then_some(33), &mut out);
        assert_eq!(
            ops(&out),
            vec![(3, 33, LockOp::Release), (4, 40, LockOp::Acquire)]
        );
        // A release at the instant of its take comes a nanosecond later; a take never goes back
        // before what was emitted; a request keeps its own time.
        out.clear();
        l.step(1, 5, 50, LockOp::Acquire);
        l.step(1, 5, 50, LockOp::Release);
        l.step(1, 6, 45, LockOp::Request);
        l.emit(50, &|_| None, &mut out);
        l.step(1, 7, 30, LockOp::Request);
        l.step(1, 5, 40, LockOp::Release);
        l.emit(Ns::MAX, &|_| None, &mut out);
        assert_eq!(
            ops(&out),
            vec![
                (6, 45, LockOp::Request),
                (4, 50, LockOp::Release),
                (5, 50, LockOp::Acquire),
                (5, 51, LockOp::Release),
                (7, 30, LockOp::Request),
            ]
        );
        // Replayed in time order (as the trace check sorts: releases first at one
        // instant), every release is by the holder and every take of a free lock.
        let mut sorted = ops(&out);
        sorted.sort_by_key(|&(_, at, op)| (at, op != LockOp::Release));
        let mut holder = Some(4);
        for (tid, _, op) in sorted {
            match op {
                LockOp::Acquire => {
                    assert_eq!(holder, None);
                    holder = Some(tid);
                }
                LockOp::Release => {
                    assert_eq!(holder, Some(tid));
                    holder = None;
                }
                _ => {}
            }
        }
        // The history it made is one the trace check accepts.
    }
}
