//! What each hardware thread does: its slices of running, the thread on it at an instant,
//! the last hand-over, migrations, and the preempted threads queued for it.

use std::collections::HashMap;

use super::{Replay, ThreadState};
use crate::event::{Ns, OffReason};
use crate::sort::Grown;

/// A slice of running on one hardware thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Start, ns.
    pub start: Ns,
    /// End, ns.
    pub end: Ns,
    /// Run-wide thread id.
    pub tid: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Lane {
    pub(super) slices: Grown<Slice>,
    /// `busy[i]` = running time of `slices[..i]`, once prepared.
    pub(super) busy: Vec<Ns>,
    pub(super) dirty: bool,
}

/// What one hardware thread does at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuFrame {
    /// OS index.
    pub cpu: u32,
    /// The thread running, and since when.
    pub running: Option<(u32, Ns)>,
    /// The last hand-over on this core up to now: the thread that left, when, and whether it
    /// left voluntarily (blocked) or was preempted; `None` when the core was idle before.
    pub last_out: Option<Handover>,
    /// The hardware thread the running thread ran on before, when it moved here.
    pub migrated_from: Option<u32>,
    /// Threads that are runnable but preempted, waiting for this core (the one they last ran
    /// on, where Linux queues them).
    pub queue: Vec<u32>,
    /// Slices started on this core so far (each is a switch in).
    pub switches: u32,
    /// Running time on this core so far, ns.
    pub busy_ns: Ns,
}

/// A thread leaving a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    /// Who left.
    pub tid: u32,
    /// When.
    pub at: Ns,
    /// Why, where known (`Preempted` is an involuntary switch; the others are voluntary).
    pub reason: Option<OffReason>,
}

impl Handover {
    /// Whether the switch was involuntary (the kernel preempted the thread).
    pub fn involuntary(&self) -> bool {
        self.reason == Some(OffReason::Preempted)
    }
}

impl Replay {
    /// Hardware threads that ran something, by OS index.
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.lanes.keys().copied()
    }

    /// The slices of one hardware thread overlapping `[from, to)`, in time order.
    pub fn slices(&self, cpu: u32, from: Ns, to: Ns) -> &[Slice] {
        let Some(lane) = self.lanes.get(&cpu) else {
            return &[];
        };
        // Slices on one core do not overlap (the agent trims them), so ends are sorted too.
        let a = lane.slices.partition_point(|s| s.end <= from);
        let b = lane.slices.partition_point(|s| s.start < to);
        &lane.slices[a..b.max(a)]
    }

    /// How long one hardware thread ran threads of the run within `[from, to)`, ns (what the
    /// agent subtracts from the CPU's busy time to tell what other programs took).
    pub fn busy_ns(&self, cpu: u32, from: Ns, to: Ns) -> Ns {
        self.slices(cpu, from, to)
            .iter()
            .map(|s| s.end.min(to).saturating_sub(s.start.max(from)))
            .sum()
    }

    /// How long the threads of one process (OS pid) ran within `[from, to)`, on every
    /// hardware thread together, ns.
    pub fn process_busy_ns(&self, pid: u32, from: Ns, to: Ns) -> Ns {
        self.lanes
            .keys()
            .flat_map(|&cpu| self.slices(cpu, from, to))
            .filter(|s| self.thread(s.tid).is_some_and(|t| t.pid == pid))
            .map(|s| s.end.min(to).saturating_sub(s.start.max(from)))
            .sum()
    }

    /// Every hardware thread that ran something, at `t`.
    pub fn cpus_at(&self, t: Ns) -> Vec<CpuFrame> {
        self.cpus_at_with(t, &self.thread_states(t))
    }

    /// [`Replay::cpus_at`] with the threads' states at `t` already known (from
    /// [`Replay::thread_states`]).
    pub fn cpus_at_with(&self, t: Ns, states: &[ThreadState]) -> Vec<CpuFrame> {
        let mut frames: Vec<CpuFrame> = self
            .lanes
            .iter()
            .map(|(&cpu, lane)| {
                let i = lane.slices.partition_point(|s| s.start <= t);
                let current = i.checked_sub(1).map(|k| lane.slices[k]);
                let running = current.filter(|s| t < s.end);
                // The last slice that ended at or before t.
                let prev_idx = if running.is_some() {
                    i.checked_sub(2)
                } else {
                    i.checked_sub(1)
                };
                let last_out = prev_idx.map(|k| {
                    let s = lane.slices[k];
                    Handover {
                        tid: s.tid,
                        at: s.end,
                        reason: self.off_reason_at(s.tid, s.end),
                    }
                });
                let migrated_from = running
                    .and_then(|s| self.last_cpu_before(s.tid, s.start).filter(|&c| c != cpu));
                let busy_ns = lane.busy.get(i.saturating_sub(1)).copied().unwrap_or(0)
                    + current.map_or(0, |s| t.min(s.end).saturating_sub(s.start));
                CpuFrame {
                    cpu,
                    running: running.map(|s| (s.tid, s.start)),
                    last_out,
                    migrated_from,
                    queue: Vec::new(),
                    switches: u32::try_from(i).unwrap_or(u32::MAX),
                    busy_ns: if i == 0 { 0 } else { busy_ns },
                }
            })
            .collect();
        // Preempted threads queue for the core they last ran on.
        let index: HashMap<u32, usize> =
            frames.iter().enumerate().map(|(i, f)| (f.cpu, i)).collect();
        for (th, state) in self.threads.iter().zip(states) {
            if *state == ThreadState::Off(OffReason::Preempted)
                && let Some(cpu) = self.last_cpu_before(th.tid, t)
                && let Some(&i) = index.get(&cpu)
            {
                frames[i].queue.push(th.tid);
            }
        }
        frames
    }

    pub(super) fn off_reason_at(&self, tid: u32, at: Ns) -> Option<OffReason> {
        let th = self.thread(tid)?;
        let j = th.off.partition_point(|s| s.start <= at);
        j.checked_sub(1)
            .and_then(|j| th.off.get(j))
            .filter(|o| o.start == at || (o.start <= at && at < o.end))
            .map(|o| o.reason)
    }
}
