//! Threads and processes: who they are (latest names), their running and off-CPU spans, and
//! every thread's one state at an instant.

use std::rc::Rc;

use super::Replay;
use crate::sort::Grown;
use crate::{
    event::{LockOp, Ns, OffReason, Role},
    summary::ThreadSummary,
};

/// A span off the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffSpan {
    /// Start, ns.
    pub start: Ns,
    /// End, ns.
    pub end: Ns,
    /// Why.
    pub reason: OffReason,
}

/// A thread as the replay knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadInfo {
    /// Run-wide id.
    pub tid: u32,
    /// OS process id.
    pub pid: u32,
    /// Its name (shared, so that every frame's tokens can point at it without copying): the
    /// latest it gave itself, for the whole run.
    pub name: Rc<str>,
    /// When that name was seen (none for the placeholder of a thread not started yet), so
    /// that batches folded in any order end with the latest name.
    pub(super) name_at: Option<Ns>,
    /// What it is for.
    pub role: Role,
    /// When it joined.
    pub start: Ns,
    /// When it ended, if it did.
    pub end: Option<Ns>,
    /// Running spans: (start, end, cpu), sorted once prepared.
    pub(super) on: Grown<(Ns, Ns, u32)>,
    /// Off-CPU spans, sorted once prepared.
    pub(super) off: Grown<OffSpan>,
    /// Lock steps (at, op), sorted once prepared.
    pub(super) lock: Grown<(Ns, LockOp)>,
    pub(super) dirty: bool,
    /// Whether its start was recorded (a thread known only from other events is not listed
    /// in a summary).
    pub(super) started: bool,
    /// What the kernel said at its end: CPU time, voluntary and involuntary switches.
    pub(super) kernel: Option<(Ns, u64, u64)>,
    /// Times it moved to another hardware thread.
    pub(super) migrations: u64,
    /// Its recorded time on a CPU, ns.
    pub(super) on_ns: Ns,
}

impl ThreadInfo {
    /// Its recorded time on a CPU, ns (all its slices).
    pub fn on_cpu_ns(&self) -> Ns {
        self.on_ns
    }

    /// Takes `name`, seen at `at`, unless a later one is known.
    pub(super) fn rename(&mut self, at: Ns, name: &str) {
        if self.name_at.is_none_or(|known| at >= known) {
            self.name = Rc::from(name);
            self.name_at = Some(at);
        }
    }
}

/// A process as the replay knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// OS process id.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// Spawned at.
    pub start: Ns,
    /// Exited at, if it did.
    pub end: Option<Ns>,
}

/// Where a thread is at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadState {
    /// Not started yet.
    NotStarted,
    /// Running on this hardware thread.
    Running {
        /// OS index.
        cpu: u32,
    },
    /// Off the CPU for this reason.
    Off(OffReason),
    /// Alive, but between recorded spans.
    Between,
    /// Ended.
    Ended,
}

impl Replay {
    /// Off-CPU spans of a thread overlapping `[from, to)`.
    pub fn off_spans(&self, tid: u32, from: Ns, to: Ns) -> &[OffSpan] {
        let Some(t) = self.thread(tid) else {
            return &[];
        };
        let a = t.off.partition_point(|s| s.end <= from);
        let b = t.off.partition_point(|s| s.start < to);
        &t.off[a..b.max(a)]
    }

    /// Running spans of a thread overlapping `[from, to)`: (start, end, cpu).
    pub fn on_spans(&self, tid: u32, from: Ns, to: Ns) -> &[(Ns, Ns, u32)] {
        let Some(t) = self.thread(tid) else {
            return &[];
        };
        let a = t.on.partition_point(|s| s.1 <= from);
        let b = t.on.partition_point(|s| s.0 < to);
        &t.on[a..b.max(a)]
    }

    /// Where a thread is at `t`.
    pub fn thread_state(&self, tid: u32, t: Ns) -> ThreadState {
        match self.thread(tid) {
            Some(th) => Self::state_of(th, t),
            None => ThreadState::NotStarted,
        }
    }

    /// Where a thread is at `t`: exactly one state, from its recorded spans and, for a lock,
    /// its lock steps. A thread that asked for a lock and has not got it yet, and is neither on
    /// a CPU nor runnable waiting for one, waits for the lock (whatever its off-CPU span says:
    /// its span may end a little before or after its step is stamped); one that does not wait
    /// for a lock by its steps is not shown waiting for one.
    pub(super) fn state_of(th: &ThreadInfo, t: Ns) -> ThreadState {
        let recorded = Self::recorded_state_of(th, t);
        let waiting = Self::lock_step_at(th, t)
            .is_some_and(|op| matches!(op, LockOp::Request | LockOp::DropRequest));
        match recorded {
            ThreadState::Off(OffReason::Preempted) | ThreadState::Running { .. } => recorded,
            ThreadState::Off(_) | ThreadState::Between if waiting => {
                ThreadState::Off(OffReason::Lock)
            }
            ThreadState::Off(OffReason::Lock) => ThreadState::Between,
            other => other,
        }
    }

    /// A thread's last lock step at or before `t`.
    pub(super) fn lock_step_at(th: &ThreadInfo, t: Ns) -> Option<LockOp> {
        let i = th.lock.partition_point(|l| l.0 <= t);
        i.checked_sub(1).map(|k| th.lock[k].1)
    }

    /// Where a thread is at `t` by its recorded spans alone.
    pub(super) fn recorded_state_of(th: &ThreadInfo, t: Ns) -> ThreadState {
        let i = th.on.partition_point(|s| s.0 <= t);
        if let Some(&(_, end, cpu)) = i.checked_sub(1).and_then(|i| th.on.get(i))
            && t < end
        {
            return ThreadState::Running { cpu };
        }
        let j = th.off.partition_point(|s| s.start <= t);
        if let Some(o) = j.checked_sub(1).and_then(|j| th.off.get(j))
            && t < o.end
        {
            return ThreadState::Off(o.reason);
        }
        if th.end.is_some_and(|e| t >= e) {
            return ThreadState::Ended;
        }
        // A thread recorded its first span after its start event; before that it is simply
        // alive.
        if t < th.start && th.on.first().is_none_or(|s| t < s.0) {
            return ThreadState::NotStarted;
        }
        ThreadState::Between
    }

    /// The hardware thread `tid` last ran on before `t`.
    pub(super) fn last_cpu_before(&self, tid: u32, t: Ns) -> Option<u32> {
        let th = self.thread(tid)?;
        let i = th.on.partition_point(|s| s.0 < t);
        i.checked_sub(1).map(|i| th.on[i].2)
    }

    /// Where every thread is at `t`, in [`Replay::threads`] order.
    pub fn thread_states(&self, t: Ns) -> Vec<ThreadState> {
        self.threads
            .iter()
            .map(|th| Self::state_of(th, t))
            .collect()
    }

    /// Every thread whose start was recorded, by run-wide id, with what its run adds up to:
    /// the kernel's CPU time and switch counts at its end, its lifetime, migrations, and its
    /// recorded time off the CPU runnable (preempted) and waiting for a lock. A summary's
    /// table and totals come from this.
    pub fn thread_summaries(&self) -> Vec<ThreadSummary> {
        let mut out: Vec<ThreadSummary> = self
            .threads
            .iter()
            .filter(|t| t.started)
            .map(|t| {
                let (cpu_ns, voluntary, involuntary) = t.kernel.unwrap_or((0, 0, 0));
                let off = |reason: OffReason| -> Ns {
                    t.off
                        .iter()
                        .filter(|o| o.reason == reason)
                        .map(|o| o.end.saturating_sub(o.start))
                        .sum()
                };
                ThreadSummary {
                    tid: t.tid,
                    pid: t.pid,
                    name: t.name.to_string(),
                    role: t.role,
                    cpu_ns,
                    wall_ns: t.end.map_or(0, |e| e.saturating_sub(t.start)),
                    voluntary_switches: voluntary,
                    involuntary_switches: involuntary,
                    migrations: t.migrations,
                    runnable_wait_ns: off(OffReason::Preempted),
                    lock_wait_ns: off(OffReason::Lock),
                }
            })
            .collect();
        crate::sort::by_key(&mut out, |t| t.tid);
        out
    }
}

/// What an off-CPU reason means, in the words every view and export uses.
pub fn off_label(reason: OffReason) -> &'static str {
    match reason {
        OffReason::Preempted => "runnable, preempted",
        OffReason::Lock => "waiting for the lock",
        OffReason::Io => "blocked on I/O",
        OffReason::Sleep => "asleep or blocked",
        OffReason::Unknown => "off CPU, no switch counted",
    }
}
