//! Stepping through a run: the next and previous instant at which anything shown changes.

use super::Replay;
use crate::event::Ns;

impl Replay {
    /// The first time after `t` at which anything shown changes (a slice starts or ends, a
    /// lock step, a poll, a wake, a selector wait), for stepping one event at a time.
    pub fn next_change(&self, t: Ns) -> Option<Ns> {
        match (self.next_thread_change(t), self.next_loop_change(t)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first time after `t` at which a thread's place changes (a slice, an off-CPU
    /// span, a lock step, a thread's end): what the cores view shows.
    pub fn next_thread_change(&self, t: Ns) -> Option<Ns> {
        let mut best: Option<Ns> = None;
        let mut consider = |x: Ns| {
            if x > t && best.is_none_or(|b| x < b) {
                best = Some(x);
            }
        };
        for lane in self.lanes.values() {
            let i = lane.slices.partition_point(|s| s.end <= t);
            if let Some(s) = lane.slices.get(i) {
                consider(if s.start > t { s.start } else { s.end });
            }
        }
        let i = self.lock.partition_point(|l| l.0 <= t);
        if let Some(l) = self.lock.get(i) {
            consider(l.0);
        }
        // Off-CPU spans move threads between waiting areas and run queues.
        for th in &self.threads {
            let i = th.off.partition_point(|o| o.end <= t);
            if let Some(o) = th.off.get(i) {
                consider(if o.start > t { o.start } else { o.end });
            }
            if let Some(end) = th.end.filter(|&e| e > t) {
                consider(end);
            }
        }
        best
    }

    /// The first time after `t` at which the event loop changes (a poll, a selector wait, a
    /// task's state).
    pub fn next_loop_change(&self, t: Ns) -> Option<Ns> {
        let mut best: Option<Ns> = None;
        let mut consider = |x: Ns| {
            if x > t && best.is_none_or(|b| x < b) {
                best = Some(x);
            }
        };
        for v in [&self.polls, &self.waits] {
            let i = v.partition_point(|x| x.1 <= t);
            if let Some(&(s, e, _)) = v.get(i) {
                consider(if s > t { s } else { e });
            }
        }
        // Each task's states are in time order: its first change after `t`. (Looked up per
        // step rather than kept as one sorted list, which a live run would re-sort each frame.)
        for task in &self.tasks {
            let i = task.states.partition_point(|s| s.0 <= t);
            if let Some(s) = task.states.get(i) {
                consider(s.0);
            }
        }
        best
    }

    /// The last time before `t` at which anything shown changed.
    pub fn prev_change(&self, t: Ns) -> Option<Ns> {
        let mut best: Option<Ns> = None;
        let mut consider = |x: Ns| {
            if x < t && best.is_none_or(|b| x > b) {
                best = Some(x);
            }
        };
        for lane in self.lanes.values() {
            let i = lane.slices.partition_point(|s| s.start < t);
            if let Some(s) = i.checked_sub(1).and_then(|i| lane.slices.get(i)) {
                consider(if s.end < t { s.end } else { s.start });
            }
        }
        let i = self.lock.partition_point(|l| l.0 < t);
        if let Some(l) = i.checked_sub(1).and_then(|i| self.lock.get(i)) {
            consider(l.0);
        }
        for v in [&self.polls, &self.waits] {
            let i = v.partition_point(|x| x.0 < t);
            if let Some(&(s, e, _)) = i.checked_sub(1).and_then(|i| v.get(i)) {
                consider(if e < t { e } else { s });
            }
        }
        for task in &self.tasks {
            let i = task.states.partition_point(|s| s.0 < t);
            if let Some(s) = i.checked_sub(1).and_then(|i| task.states.get(i)) {
                consider(s.0);
            }
        }
        for th in &self.threads {
            let i = th.off.partition_point(|o| o.start < t);
            if let Some(o) = i.checked_sub(1).and_then(|i| th.off.get(i)) {
                consider(if o.end < t { o.end } else { o.start });
            }
        }
        best
    }

    /// The first event's time (where playback starts).
    pub fn start(&self) -> Ns {
        let lanes = self
            .lanes
            .values()
            .filter_map(|l| l.slices.first().map(|s| s.start));
        let threads = self.threads.iter().map(|t| t.start);
        lanes.chain(threads).min().unwrap_or(0)
    }
}
