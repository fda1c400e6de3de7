//! The pure step of `coreplay watch`: a followed thread's inferred state, and what a `/proc`
//! sample of it means. Samples in, events out: nothing here reads a file or the clock or talks
//! to the recorder, so every decision is unit-tested with hand-made samples.
//!
//! A sample is placed within its tick: the CPU time a thread gained is an on-CPU slice, the
//! rest an off-CPU interval whose reason comes from the thread's state (`S` sleeping → asleep,
//! `D` → I/O, runnable but not running → preempted), the runnable wait the kernel accounts
//! when a thread gets a CPU back is shown as preempted, switches come from the kernel's
//! counters, and a changed CPU is a migration. Until the thread is announced (after
//! [`NAME_GRACE_NS`], with the name it has then) its events wait with it.

use coreplay_shared::event::{Event, LockOp, Ns, OffReason, Role};

use super::NAME_GRACE_NS;
use super::procfs::{SchedStat, Stat};
use crate::trace::clock::SwitchCounts;

/// A thread's switch counters (`status`, the costliest file) are read at most this often
/// unless a running thread stopped (then they tell preempted from blocked), ns.
pub(super) const STATUS_EVERY_NS: u64 = 50_000_000;
/// A running thread's CPU time moves only at the kernel's scheduler tick (4 ms at 250 Hz) or
/// when it switches, so whether it still runs is judged from its state every sample and from
/// its switch counters at most this often, ns.
pub(super) const RUNNING_STATUS_NS: u64 = 4_000_000;

/// Where a thread is, as far as the samples tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    On { since: Ns },
    Off { since: Ns, reason: OffReason },
}

/// What a sample says about a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sampled {
    /// Still there; whether anything happened since the last sample.
    Alive(bool),
    /// Gone at this time (ns), with its exit status (`waitpid` form) when it was a process's
    /// main thread.
    Gone(Ns, Option<i32>),
}

/// A file of the thread's that could not be read: to the sampler, the thread is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unreadable;

/// What the sampler read of one thread at one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sample {
    /// When it was read (the run's clock).
    pub at: Ns,
    /// `schedstat`: `Ok(None)` where the kernel has none.
    pub sched: Result<Option<SchedStat>, Unreadable>,
    /// `stat`, when [`Thread::needs`] asked for it (`None`: not read).
    pub stat: Option<Result<Stat, Unreadable>>,
    /// The switch counters of `status`, when [`Need::wants_status`] asked for them.
    pub status: Option<Result<SwitchCounts, Unreadable>>,
    /// Asleep in `futex` on its process's GIL (a Python program whose probe told the GIL's
    /// futex words; read from `/proc/…/syscall` when `stat` says it sleeps).
    pub gil_wait: bool,
}

/// A Python thread and its process's GIL, as far as the samples tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Gil {
    /// Neither waiting for it nor known to hold it.
    #[default]
    Free,
    /// Asleep on the GIL's futex.
    Waiting,
    /// Ran after a wait for it, and has not blocked since: CPython's `take_gil` returns
    /// holding the GIL, and a thread blocking in a system call releases it first.
    Holding,
}

/// Which files a sample needs beyond `schedstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// Nothing more: the numbers say nothing happened (or the thread is gone).
    Nothing,
    /// `stat`, and `status` when `status` (or when `stat` says the thread exited).
    Detail { status: bool },
}

impl Need {
    /// Whether `status` is to be read once `stat` is known: when asked for, and always for a
    /// thread that exited (its last counters).
    pub fn wants_status(self, stat: &Stat) -> bool {
        match self {
            Need::Nothing => false,
            Need::Detail { status } => status || exited(stat.state),
        }
    }
}

/// Whether a `stat` state is a thread that has exited.
pub(super) fn exited(state: u8) -> bool {
    matches!(state, b'Z' | b'X')
}

/// The off-CPU reason a `stat` state means.
pub(super) fn reason_of(state: u8) -> OffReason {
    match state {
        b'R' => OffReason::Preempted,
        b'S' | b'I' => OffReason::Sleep,
        b'D' => OffReason::Io,
        _ => OffReason::Unknown,
    }
}

/// A followed thread as the samples tell it.
#[derive(Debug)]
pub(super) struct Thread {
    /// Its run-wide id.
    pub tid: u32,
    pub pid: u32,
    pub os_tid: u32,
    /// Its name as last read (a thread may name itself after it starts).
    pub name: String,
    pub discovered: Ns,
    pub announced: bool,
    /// Events waiting for its announcement.
    pub pending: Vec<Event>,
    pub last_read: Ns,
    pub sched: SchedStat,
    pub start_run_ns: u64,
    pub start_ticks: u64,
    pub ticks: u64,
    pub counts: SwitchCounts,
    pub start_counts: SwitchCounts,
    /// When `status` (or, exact, `schedstat`) was last read.
    pub status_at: Ns,
    pub sched_at: Ns,
    /// Exact: when the off-CPU reason was last checked against the state, and whether the
    /// current off period's reason has been.
    pub refine_at: Ns,
    pub refined: bool,
    pub cpu: u32,
    pub mode: Mode,
    /// The latest time any of its events reaches (its end comes after).
    pub last_at: Ns,
    /// Its part in its process's GIL.
    pub gil: Gil,
    /// Whether its process's GIL waits can be seen (the Python probe told where).
    pub gil_seen: bool,
}

/// What a sample's numbers say before any other file is read.
#[derive(Debug, Clone, Copy)]
struct Plan {
    t0: Ns,
    t1: Ns,
    iv: u64,
    gone_at: Ns,
    was_on: bool,
    d_run: u64,
    d_wait: u64,
    ins: Option<u64>,
    /// Kept running or kept off: nothing to read, nothing to say.
    quiet: bool,
    want_status: bool,
}

impl Thread {
    /// A thread found at `now` (run-wide id `tid`) in the state its files show.
    pub fn new(
        tid: u32,
        pid: u32,
        os_tid: u32,
        now: Ns,
        stat: &Stat,
        counts: SwitchCounts,
        sched: Option<SchedStat>,
    ) -> Thread {
        let sched = sched.unwrap_or_default();
        let mode = if stat.state == b'R' {
            Mode::On { since: now }
        } else {
            Mode::Off {
                since: now,
                reason: reason_of(stat.state),
            }
        };
        Thread {
            tid,
            pid,
            os_tid,
            name: stat.comm.clone(),
            discovered: now,
            announced: false,
            pending: Vec::new(),
            last_read: now,
            sched,
            start_run_ns: sched.run_ns,
            start_ticks: stat.cpu_ticks,
            ticks: stat.cpu_ticks,
            counts,
            start_counts: counts,
            status_at: now,
            sched_at: now,
            refine_at: now,
            refined: false,
            cpu: stat.processor,
            mode,
            last_at: now,
            gil: Gil::Free,
            gil_seen: false,
        }
    }

    /// Whether it is time to announce it (its name has had [`NAME_GRACE_NS`] to settle).
    pub fn announce_due(&self, now: Ns) -> bool {
        !self.announced && now.saturating_sub(self.discovered) >= NAME_GRACE_NS
    }

    fn plan(&self, at: Ns, sched: Option<SchedStat>) -> Plan {
        let t0 = self.last_read;
        let t1 = at.max(t0);
        let iv = (t1 - t0).max(1);
        let was_on = matches!(self.mode, Mode::On { .. });
        let (d_run, d_wait, ins) = match sched {
            Some(s) => (
                s.run_ns.saturating_sub(self.sched.run_ns).min(iv),
                s.wait_ns.saturating_sub(self.sched.wait_ns),
                Some(s.slices.saturating_sub(self.sched.slices)),
            ),
            None => (0, 0, None),
        };
        // Kept running (CPU time grew by the whole interval, never scheduled in again) or kept
        // off (no CPU time, never scheduled in).
        let tolerance = (iv / 8).max(30_000);
        let quiet = ins == Some(0) && (!was_on || d_run + tolerance >= iv);
        // A running thread that gained less CPU time than the interval may have stopped (or
        // its CPU time waits for the next scheduler tick): if its state says runnable, only the
        // counters tell preempted from still running. Otherwise they can wait.
        let since_status = t1.saturating_sub(self.status_at);
        let want_status = ins.is_none()
            || since_status >= STATUS_EVERY_NS
            || (was_on && ins == Some(0) && since_status >= RUNNING_STATUS_NS);
        Plan {
            t0,
            t1,
            iv,
            gone_at: t0 + iv / 2,
            was_on,
            d_run,
            d_wait,
            ins,
            quiet,
            want_status,
        }
    }

    /// Which files a sample at `at` with these `schedstat` numbers needs read too.
    pub fn needs(&self, at: Ns, sched: &Result<Option<SchedStat>, Unreadable>) -> Need {
        let Ok(sched) = sched else {
            return Need::Nothing;
        };
        let plan = self.plan(at, *sched);
        if plan.quiet {
            Need::Nothing
        } else {
            Need::Detail {
                status: plan.want_status,
            }
        }
    }

    /// One `/proc` sample, turned into events (a file [`Thread::needs`] asked for and the
    /// sample lacks counts as unreadable).
    pub fn step(&mut self, sample: &Sample, out: &mut Vec<Event>) -> Sampled {
        let plan = self.plan(sample.at, sample.sched.ok().flatten());
        let Ok(sched) = sample.sched else {
            return Sampled::Gone(plan.gone_at, None);
        };
        let Plan {
            t0,
            t1,
            iv,
            was_on,
            d_run,
            d_wait,
            ins,
            ..
        } = plan;
        self.last_read = t1;
        if let Some(s) = sched {
            self.sched = s;
        }
        if plan.quiet {
            return Sampled::Alive(was_on);
        }
        let old_counts = self.counts;
        let (stat, counts) = match self.detail(&plan, sample) {
            Ok((stat, counts)) => {
                self.renamed(out, &stat.comm, t1, false);
                (stat, counts)
            }
            Err((at, code)) => {
                let vol = self.counts.voluntary.saturating_sub(old_counts.voluntary);
                let inv = self
                    .counts
                    .involuntary
                    .saturating_sub(old_counts.involuntary);
                self.switch(out, at, vol, inv);
                return Sampled::Gone(at, code);
            }
        };
        let counts = match counts {
            None if was_on && ins == Some(0) && stat.state == b'R' => {
                // Runnable and not scheduled in again: still running, until the counters say
                // otherwise (read at most every RUNNING_STATUS_NS).
                return Sampled::Alive(true);
            }
            c => c,
        };
        let (vol, inv) = counts.map_or((0, 0), |c| {
            (
                c.voluntary.saturating_sub(old_counts.voluntary),
                c.involuntary.saturating_sub(old_counts.involuntary),
            )
        });
        // Asleep on the GIL's futex: waiting for the lock, not for something else.
        let reason = if sample.gil_wait && stat.state == b'S' {
            OffReason::Lock
        } else {
            reason_of(stat.state)
        };
        let d_ticks = stat.cpu_ticks.saturating_sub(self.ticks);
        self.ticks = stat.cpu_ticks;
        let now_on = stat.state == b'R'
            && match (ins, counts) {
                // Each switch out is followed by a switch in: on now exactly when it was
                // scheduled in once more than it left, counting where it started.
                (Some(ins), Some(_)) => ins + u64::from(was_on) == vol + inv + 1,
                // Runnable and it ran: taken as running (a preemption since shows at the next
                // sample, when it gained no CPU time).
                _ => true,
            };
        // Switches out: counted, or as many as the switches in imply.
        let outs = if counts.is_some() {
            vol + inv
        } else {
            (ins.unwrap_or(0) + u64::from(was_on)).saturating_sub(u64::from(now_on))
        };
        let d_run = match ins {
            Some(_) => d_run,
            // No schedstat: CPU time only in clock ticks; estimate from the states.
            None if was_on && now_on => iv,
            None if was_on || now_on || d_ticks > 0 => iv / 2,
            None => 0,
        };
        let cpu = stat.processor;
        match (was_on, now_on) {
            (true, true) => {
                if outs == 0 {
                    if cpu != self.cpu {
                        self.close_slice(out, t1);
                        self.migrate(out, t1, cpu);
                    }
                } else {
                    // Left and came back within the interval: the time off in the middle.
                    let a = t0 + d_run / 2;
                    let b = (t1 - d_run / 2).max(a);
                    self.close_slice(out, a);
                    self.switch(out, a, vol, inv);
                    self.mode = Mode::Off {
                        since: a,
                        // Unknown counters: asleep, with the runnable wait shown as preempted.
                        reason: if vol == 0 && inv > 0 {
                            OffReason::Preempted
                        } else {
                            OffReason::Sleep
                        },
                    };
                    self.close_off(out, b, d_wait);
                    self.migrate(out, b, cpu);
                    self.mode = Mode::On { since: b };
                }
            }
            (true, false) => {
                let e = (t0 + d_run).min(t1);
                self.close_slice(out, e);
                self.switch(out, e, vol, inv);
                self.migrate(out, e, cpu);
                self.mode = Mode::Off { since: e, reason };
            }
            (false, true) => {
                let since = match self.mode {
                    Mode::Off { since, .. } | Mode::On { since } => since,
                };
                let b = t1.saturating_sub(d_run).max(since);
                self.close_off(out, b, d_wait);
                self.switch(out, b, vol, inv);
                self.migrate(out, b, cpu);
                self.mode = Mode::On { since: b };
            }
            (false, false) => {
                if d_run > 0 || ins.is_some_and(|i| i > 0) {
                    // Ran briefly between two samples.
                    let x = t0 + (iv - d_run) / 2;
                    let y = x + d_run;
                    self.close_off(out, x, d_wait);
                    self.migrate(out, x, cpu);
                    self.mode = Mode::On { since: x };
                    self.close_slice(out, y);
                    self.switch(out, y, vol, inv);
                    self.mode = Mode::Off { since: y, reason };
                } else if let Mode::Off { reason: old, .. } = self.mode
                    && old != reason
                {
                    let m = t0 + iv / 2;
                    self.close_off(out, m, 0);
                    self.mode = Mode::Off { since: m, reason };
                }
            }
        }
        self.gil_steps(out);
        Sampled::Alive(true)
    }

    /// Lets the GIL go at `at` (a sleep found, afterwards, to have been a blocking call).
    pub fn gil_released_at(&mut self, at: Ns, out: &mut Vec<Event>) {
        let e = Event::Lock {
            tid: self.tid,
            at,
            op: LockOp::Release,
        };
        self.emit(out, e);
        self.gil = Gil::Free;
    }

    /// The GIL steps its new state means: a wait on the GIL's futex starts a request; running
    /// after one is taking the GIL; blocking in anything else after holding it (or after
    /// waiting, having taken it for a moment) is letting it go. Being preempted keeps it.
    pub fn gil_steps(&mut self, out: &mut Vec<Event>) {
        let (since, off) = match self.mode {
            Mode::On { since } => (since, None),
            Mode::Off { since, reason } => (since, Some(reason)),
        };
        let ops: &[LockOp] = match (self.gil, off) {
            (Gil::Free, Some(OffReason::Lock)) => &[LockOp::Request],
            (Gil::Holding, Some(OffReason::Lock)) => &[LockOp::Release, LockOp::Request],
            (Gil::Waiting, None) => &[LockOp::Acquire],
            (Gil::Waiting, Some(OffReason::Sleep | OffReason::Io | OffReason::Unknown)) => {
                &[LockOp::Acquire, LockOp::Release]
            }
            (Gil::Holding, Some(OffReason::Sleep | OffReason::Io | OffReason::Unknown)) => {
                &[LockOp::Release]
            }
            _ => &[],
        };
        for (i, &op) in ops.iter().enumerate() {
            // A release right after a take is a nanosecond later (at one instant a release
            // sorts before a take).
            let at = if i > 0 && op == LockOp::Release {
                since + 1
            } else {
                since
            };
            let e = Event::Lock {
                tid: self.tid,
                at,
                op,
            };
            self.emit(out, e);
            self.gil = match op {
                LockOp::Request | LockOp::DropRequest => Gil::Waiting,
                LockOp::Acquire => Gil::Holding,
                LockOp::Release => Gil::Free,
            };
        }
    }

    /// The sample's `stat` (and `status`, when wanted or when the thread exited); `Err` with
    /// the end time and exit status when it is gone or a zombie.
    fn detail(
        &mut self,
        plan: &Plan,
        sample: &Sample,
    ) -> Result<(Stat, Option<SwitchCounts>), (Ns, Option<i32>)> {
        let gone = (plan.gone_at, None);
        let stat = match &sample.stat {
            Some(Ok(stat)) => stat.clone(),
            _ => return Err(gone),
        };
        let zombie = exited(stat.state);
        if zombie {
            // Its last name, for a start not announced yet; no rename at its exit.
            self.renamed(&mut Vec::new(), &stat.comm, plan.t1, true);
        }
        if !(plan.want_status || zombie) {
            return Ok((stat, None));
        }
        self.status_at = plan.t1;
        let status = sample.status.unwrap_or(Err(Unreadable));
        if let Ok(counts) = status {
            self.counts = SwitchCounts {
                voluntary: counts.voluntary.max(self.counts.voluntary),
                involuntary: counts.involuntary.max(self.counts.involuntary),
            };
        }
        if zombie {
            return Err((plan.gone_at, stat.exit_code));
        }
        let counts = status.map_err(|_| gone)?;
        Ok((stat, Some(counts)))
    }

    /// Ends it at `at` (or later, where its events reach further): announces it if it was
    /// not yet, closes its slice or off-CPU interval and emits its end with its CPU time
    /// (from `schedstat` where the kernel has it, else from clock ticks of `clk_tck` a second)
    /// and the kernel's counters since it was found.
    pub fn end(&mut self, at: Ns, has_schedstat: bool, clk_tck: u64, out: &mut Vec<Event>) {
        if !self.announced {
            self.announce(out);
        }
        let at = at.max(self.discovered).max(self.last_at);
        match self.mode {
            Mode::On { .. } => self.close_slice(out, at),
            Mode::Off { .. } => self.close_off(out, at, 0),
        }
        let cpu_ns = if has_schedstat {
            self.sched.run_ns.saturating_sub(self.start_run_ns)
        } else {
            self.ticks.saturating_sub(self.start_ticks) * 1_000_000_000 / clk_tck.max(1)
        };
        out.push(Event::ThreadEnd {
            tid: self.tid,
            at,
            cpu_ns,
            kernel_voluntary: self
                .counts
                .voluntary
                .saturating_sub(self.start_counts.voluntary),
            kernel_involuntary: self
                .counts
                .involuntary
                .saturating_sub(self.start_counts.involuntary),
        });
    }

    /// Emits the thread's start (with its current name) and what waited for it.
    pub fn announce(&mut self, out: &mut Vec<Event>) {
        self.announced = true;
        out.push(Event::ThreadStart {
            tid: self.tid,
            pid: self.pid,
            os_tid: self.os_tid,
            name: self.name.clone(),
            role: Role::Worker,
            at: self.discovered,
        });
        out.append(&mut self.pending);
    }

    /// Takes the name the thread has now (`comm`, seen at `at`): a thread renamed after it was
    /// announced (it named itself, or `exec` replaced its program) gets a
    /// [`Event::ThreadRename`]; before that, its start will carry the name. A thread seen
    /// `exiting` only takes the name for a start not announced yet (an event then would move
    /// its end to `at`).
    pub fn renamed(&mut self, out: &mut Vec<Event>, comm: &str, at: Ns, exiting: bool) {
        if comm == self.name || (exiting && self.announced) {
            return;
        }
        self.name = comm.to_string();
        if self.announced {
            let event = Event::ThreadRename {
                tid: self.tid,
                at,
                name: self.name.clone(),
            };
            self.emit(out, event);
        }
    }

    fn emit(&mut self, out: &mut Vec<Event>, event: Event) {
        let reaches = match &event {
            Event::OnCpu { end, .. } | Event::OffCpu { end, .. } => *end,
            e => e.time(),
        };
        self.last_at = self.last_at.max(reaches);
        if self.announced {
            out.push(event);
        } else {
            self.pending.push(event);
        }
    }

    pub fn close_slice(&mut self, out: &mut Vec<Event>, end: Ns) {
        if let Mode::On { since } = self.mode {
            if end > since {
                let e = Event::OnCpu {
                    tid: self.tid,
                    cpu: self.cpu,
                    start: since,
                    end,
                };
                self.emit(out, e);
            }
            self.mode = Mode::On {
                since: end.max(since),
            };
        }
    }

    /// Closes an off-CPU interval at `end`; its last `wait_ns` (the runnable wait the kernel
    /// accounted when the thread got a CPU back) is shown as preempted.
    pub fn close_off(&mut self, out: &mut Vec<Event>, end: Ns, wait_ns: u64) {
        if let Mode::Off { since, reason } = self.mode {
            let end = end.max(since);
            let split = if reason != OffReason::Preempted && wait_ns > 0 {
                end.saturating_sub(wait_ns).max(since)
            } else {
                end
            };
            let tid = self.tid;
            if split > since {
                self.emit(
                    out,
                    Event::OffCpu {
                        tid,
                        start: since,
                        end: split,
                        reason,
                    },
                );
            }
            if end > split {
                self.emit(
                    out,
                    Event::OffCpu {
                        tid,
                        start: split,
                        end,
                        reason: OffReason::Preempted,
                    },
                );
            }
        }
    }

    pub fn migrate(&mut self, out: &mut Vec<Event>, at: Ns, cpu: u32) {
        if cpu != self.cpu {
            let e = Event::Migrate {
                tid: self.tid,
                at,
                from: self.cpu,
                to: cpu,
            };
            self.emit(out, e);
            self.cpu = cpu;
        }
    }

    pub fn switch(&mut self, out: &mut Vec<Event>, at: Ns, voluntary: u64, involuntary: u64) {
        if voluntary + involuntary > 0 {
            let e = Event::Switch {
                tid: self.tid,
                at,
                voluntary: u32::try_from(voluntary).unwrap_or(u32::MAX),
                involuntary: u32::try_from(involuntary).unwrap_or(u32::MAX),
            };
            self.emit(out, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    /// The run-wide id every test thread gets.
    const TID: u32 = 7;

    fn stat(state: u8, cpu: u32, comm: &str) -> Stat {
        Stat {
            comm: comm.to_string(),
            state,
            ppid: 1,
            cpu_ticks: 0,
            processor: cpu,
            exit_code: None,
        }
    }

    fn sched(run_ns: u64, wait_ns: u64, slices: u64) -> SchedStat {
        SchedStat {
            run_ns,
            wait_ns,
            slices,
        }
    }

    fn counts(voluntary: u64, involuntary: u64) -> SwitchCounts {
        SwitchCounts {
            voluntary,
            involuntary,
        }
    }

    /// A thread found at 0 in `state` on `cpu`: scheduled in 10 times so far, 5 voluntary
    /// and 2 involuntary switches.
    fn found(state: u8, cpu: u32) -> Thread {
        Thread::new(
            TID,
            100,
            101,
            0,
            &stat(state, cpu, "worker"),
            counts(5, 2),
            Some(sched(0, 0, 10)),
        )
    }

    /// As [`found`], and announced already.
    fn started(state: u8, cpu: u32) -> Thread {
        let mut t = found(state, cpu);
        let mut out = Vec::new();
        t.announce(&mut out);
        assert_eq!(out.len(), 1);
        t
    }

    /// What a thread's files say at one instant.
    struct Files {
        sched: Result<Option<SchedStat>, Unreadable>,
        stat: Result<Stat, Unreadable>,
        status: Result<SwitchCounts, Unreadable>,
    }

    fn files(sched_now: SchedStat, stat_now: Stat, status_now: SwitchCounts) -> Files {
        Files {
            sched: Ok(Some(sched_now)),
            stat: Ok(stat_now),
            status: Ok(status_now),
        }
    }

    /// Samples `thread` at `at` as the sampler does: `schedstat`, then only the files the
    /// pure step asks for.
    fn take(thread: &mut Thread, at: Ns, files: Files, out: &mut Vec<Event>) -> (Need, Sampled) {
        let need = thread.needs(at, &files.sched);
        let mut sample = Sample {
            at,
            sched: files.sched,
            stat: None,
            status: None,
            gil_wait: false,
        };
        if need != Need::Nothing {
            if let Ok(s) = &files.stat
                && need.wants_status(s)
            {
                sample.status = Some(files.status);
            }
            sample.stat = Some(files.stat);
        }
        (need, thread.step(&sample, out))
    }

    fn on(cpu: u32, start: Ns, end: Ns) -> Event {
        Event::OnCpu {
            tid: TID,
            cpu,
            start,
            end,
        }
    }

    fn off(start: Ns, end: Ns, reason: OffReason) -> Event {
        Event::OffCpu {
            tid: TID,
            start,
            end,
            reason,
        }
    }

    fn switch(at: Ns, voluntary: u32, involuntary: u32) -> Event {
        Event::Switch {
            tid: TID,
            at,
            voluntary,
            involuntary,
        }
    }

    fn end(at: Ns, cpu_ns: u64, kernel_voluntary: u64, kernel_involuntary: u64) -> Event {
        Event::ThreadEnd {
            tid: TID,
            at,
            cpu_ns,
            kernel_voluntary,
            kernel_involuntary,
        }
    }

    #[test]
    fn a_wait_on_the_gil_futex_is_a_request_then_running_takes_it_and_blocking_lets_it_go() {
        let mut t = started(b'R', 1);
        let mut out = Vec::new();
        let mut at = |t: &mut Thread, at: Ns, run: u64, slices: u64, state: u8, vol: u64, gil| {
            let sample = Sample {
                at,
                sched: Ok(Some(sched(run, 0, slices))),
                stat: Some(Ok(stat(state, 1, "worker"))),
                status: Some(Ok(counts(vol, 2))),
                gil_wait: gil,
            };
            t.step(&sample, &mut out);
        };
        // Runs to 0.5 ms, then sleeps on the GIL's futex.
        at(&mut t, MS, MS / 2, 10, b'S', 6, true);
        // Woken and running again from 1.6 ms: it took the GIL.
        at(&mut t, 2 * MS, 9 * MS / 10, 11, b'R', 6, true);
        // Blocks in something else at 2.2 ms: it let the GIL go first.
        at(&mut t, 3 * MS, 11 * MS / 10, 11, b'S', 7, false);
        let lock: Vec<(Ns, LockOp)> = out
            .iter()
            .filter_map(|e| match e {
                Event::Lock { at, op, .. } => Some((*at, *op)),
                _ => None,
            })
            .collect();
        assert_eq!(
            lock,
            vec![
                (MS / 2, LockOp::Request),
                (16 * MS / 10, LockOp::Acquire),
                (22 * MS / 10, LockOp::Release),
            ],
            "{out:?}"
        );
        assert!(
            out.contains(&off(MS / 2, 16 * MS / 10, OffReason::Lock)),
            "{out:?}"
        );
        assert_eq!(t.gil, Gil::Free);
    }

    #[test]
    fn a_thread_that_keeps_running_is_one_slice_and_no_switch() {
        let mut t = started(b'R', 1);
        let mut out = Vec::new();
        // Its CPU time lags at 2 ms (it moves at the scheduler's tick): runnable, never
        // scheduled in again, so still running; only `stat` is read for that.
        for (at, run, need) in [
            (MS, MS, Need::Nothing),
            (2 * MS, 3 * MS / 2, Need::Detail { status: false }),
            (3 * MS, 3 * MS, Need::Nothing),
            (4 * MS, 4 * MS, Need::Nothing),
            (5 * MS, 5 * MS, Need::Nothing),
        ] {
            let sampled = take(
                &mut t,
                at,
                files(sched(run, 0, 10), stat(b'R', 1, "worker"), counts(5, 2)),
                &mut out,
            );
            assert_eq!(sampled, (need, Sampled::Alive(true)), "at {at}");
        }
        assert_eq!(out, vec![]);
        t.end(5 * MS, true, 100, &mut out);
        assert_eq!(out, vec![on(1, 0, 5 * MS), end(5 * MS, 5 * MS, 0, 0)]);
    }

    #[test]
    fn a_thread_that_goes_to_sleep_ends_its_slice_and_switches_voluntarily() {
        let mut t = started(b'R', 1);
        let mut out = Vec::new();
        // 2 ms of CPU time in 5 ms, never scheduled in again, asleep, one voluntary switch
        // more: the counters are due (RUNNING_STATUS_NS has passed).
        let sampled = take(
            &mut t,
            5 * MS,
            files(sched(2 * MS, 0, 10), stat(b'S', 1, "worker"), counts(6, 2)),
            &mut out,
        );
        assert_eq!(
            sampled,
            (Need::Detail { status: true }, Sampled::Alive(true))
        );
        assert_eq!(out, vec![on(1, 0, 2 * MS), switch(2 * MS, 1, 0)]);
        out.clear();
        // Still asleep, nothing moved: nothing read, nothing said.
        let sampled = take(
            &mut t,
            10 * MS,
            files(sched(2 * MS, 0, 10), stat(b'S', 1, "worker"), counts(6, 2)),
            &mut out,
        );
        assert_eq!(sampled, (Need::Nothing, Sampled::Alive(false)));
        assert_eq!(out, vec![]);
        t.end(10 * MS, true, 100, &mut out);
        assert_eq!(
            out,
            vec![
                off(2 * MS, 10 * MS, OffReason::Sleep),
                end(10 * MS, 2 * MS, 1, 0)
            ]
        );
    }

    #[test]
    fn a_runnable_thread_that_is_not_running_is_preempted() {
        let mut t = started(b'R', 1);
        let mut out = Vec::new();
        // Runnable, 2 ms of CPU time in 5 ms, one involuntary switch more, runnable wait grew.
        let sampled = take(
            &mut t,
            5 * MS,
            files(
                sched(2 * MS, 3 * MS, 10),
                stat(b'R', 1, "worker"),
                counts(5, 3),
            ),
            &mut out,
        );
        assert_eq!(
            sampled,
            (Need::Detail { status: true }, Sampled::Alive(true))
        );
        assert_eq!(out, vec![on(1, 0, 2 * MS), switch(2 * MS, 0, 1)]);
        out.clear();
        // Back on the CPU for its last 1 ms: the whole time off was preempted.
        let sampled = take(
            &mut t,
            10 * MS,
            files(
                sched(3 * MS, 6 * MS, 11),
                stat(b'R', 1, "worker"),
                counts(5, 3),
            ),
            &mut out,
        );
        assert_eq!(
            sampled,
            (Need::Detail { status: false }, Sampled::Alive(true))
        );
        assert_eq!(out, vec![off(2 * MS, 9 * MS, OffReason::Preempted)]);
    }

    #[test]
    fn the_runnable_wait_before_a_sleeper_runs_is_shown_as_preempted() {
        let mut t = started(b'S', 1);
        let mut out = Vec::new();
        // Woke, waited 2 ms for a CPU, ran its last 1 ms.
        let sampled = take(
            &mut t,
            10 * MS,
            files(sched(MS, 2 * MS, 11), stat(b'R', 1, "worker"), counts(5, 2)),
            &mut out,
        );
        assert_eq!(
            sampled,
            (Need::Detail { status: false }, Sampled::Alive(true))
        );
        assert_eq!(
            out,
            vec![
                off(0, 7 * MS, OffReason::Sleep),
                off(7 * MS, 9 * MS, OffReason::Preempted)
            ]
        );
    }

    #[test]
    fn a_cpu_change_is_a_migration() {
        let mut t = started(b'R', 1);
        let mut out = Vec::new();
        let sampled = take(
            &mut t,
            5 * MS,
            files(sched(3 * MS, 0, 10), stat(b'R', 3, "worker"), counts(5, 2)),
            &mut out,
        );
        assert_eq!(
            sampled,
            (Need::Detail { status: true }, Sampled::Alive(true))
        );
        assert_eq!(
            out,
            vec![
                on(1, 0, 5 * MS),
                Event::Migrate {
                    tid: TID,
                    at: 5 * MS,
                    from: 1,
                    to: 3
                }
            ]
        );
        out.clear();
        t.end(6 * MS, true, 100, &mut out);
        assert_eq!(out, vec![on(3, 5 * MS, 6 * MS), end(6 * MS, 3 * MS, 0, 0)]);
    }

    #[test]
    fn a_name_taken_within_the_grace_is_its_start_and_a_later_one_a_rename() {
        let mut t = Thread::new(
            TID,
            100,
            101,
            0,
            &stat(b'S', 0, "python3"),
            counts(0, 0),
            Some(sched(0, 0, 0)),
        );
        let mut out = Vec::new();
        // It ran 1 ms and named itself within the grace: its events wait, nothing is renamed.
        let sampled = take(
            &mut t,
            10 * MS,
            files(sched(MS, 0, 1), stat(b'S', 0, "worker"), counts(0, 0)),
            &mut out,
        );
        assert_eq!(
            sampled,
            (Need::Detail { status: false }, Sampled::Alive(true))
        );
        assert_eq!(out, vec![]);
        assert!(!t.announce_due(10 * MS));
        assert!(!t.announce_due(NAME_GRACE_NS - 1));
        assert!(t.announce_due(NAME_GRACE_NS));
        t.announce(&mut out);
        assert!(!t.announce_due(NAME_GRACE_NS));
        let (a, b) = (9 * MS / 2, 11 * MS / 2);
        assert_eq!(
            out,
            vec![
                Event::ThreadStart {
                    tid: TID,
                    pid: 100,
                    os_tid: 101,
                    name: "worker".into(),
                    role: Role::Worker,
                    at: 0
                },
                off(0, a, OffReason::Sleep),
                on(0, a, b),
            ]
        );
        out.clear();
        // Renamed after it was announced: a rename where the sample saw it.
        let at = NAME_GRACE_NS + 10 * MS;
        let sampled = take(
            &mut t,
            at,
            files(sched(2 * MS, 0, 2), stat(b'S', 0, "worker-2"), counts(2, 0)),
            &mut out,
        );
        assert_eq!(
            sampled,
            (Need::Detail { status: true }, Sampled::Alive(true))
        );
        let (x, y) = (10 * MS + 49 * MS / 2, 10 * MS + 51 * MS / 2);
        assert_eq!(
            out,
            vec![
                Event::ThreadRename {
                    tid: TID,
                    at,
                    name: "worker-2".into()
                },
                off(b, x, OffReason::Sleep),
                on(0, x, y),
                switch(y, 2, 0),
            ]
        );
    }

    #[test]
    fn a_thread_that_is_gone_closes_its_slice() {
        // Never announced: its end announces it.
        let mut t = found(b'R', 1);
        let mut out = Vec::new();
        let gone = Files {
            sched: Err(Unreadable),
            stat: Err(Unreadable),
            status: Err(Unreadable),
        };
        let sampled = take(&mut t, 2 * MS, gone, &mut out);
        assert_eq!(sampled, (Need::Nothing, Sampled::Gone(MS, None)));
        assert_eq!(out, vec![]);
        t.end(MS, true, 100, &mut out);
        assert_eq!(
            out,
            vec![
                Event::ThreadStart {
                    tid: TID,
                    pid: 100,
                    os_tid: 101,
                    name: "worker".into(),
                    role: Role::Worker,
                    at: 0
                },
                on(1, 0, MS),
                end(MS, 0, 0, 0)
            ]
        );
    }

    #[test]
    fn an_exited_thread_closes_its_off_cpu_span_with_its_last_counters() {
        let mut t = started(b'S', 1);
        let mut out = Vec::new();
        let mut zombie = stat(b'Z', 1, "worker");
        zombie.exit_code = Some(3 << 8);
        let sampled = take(
            &mut t,
            10 * MS,
            files(sched(MS, 0, 11), zombie, counts(6, 2)),
            &mut out,
        );
        // Its counters are read because it exited, though they were not due.
        assert_eq!(
            sampled,
            (
                Need::Detail { status: false },
                Sampled::Gone(5 * MS, Some(3 << 8))
            )
        );
        assert_eq!(out, vec![switch(5 * MS, 1, 0)]);
        out.clear();
        t.end(5 * MS, true, 100, &mut out);
        assert_eq!(
            out,
            vec![off(0, 5 * MS, OffReason::Sleep), end(5 * MS, MS, 1, 0)]
        );
    }

    #[test]
    fn what_is_read_depends_on_what_moved() {
        let running = started(b'R', 1);
        let asleep = started(b'S', 1);
        let quiet_run = Ok(Some(sched(MS, 0, 10)));
        assert_eq!(running.needs(MS, &quiet_run), Need::Nothing);
        // Within the tolerance (an eighth of the interval) of the whole interval.
        let nearly = Ok(Some(sched(MS - MS / 8, 0, 10)));
        assert_eq!(running.needs(MS, &nearly), Need::Nothing);
        let short = Ok(Some(sched(MS - MS / 8 - 1, 0, 10)));
        assert_eq!(running.needs(MS, &short), Need::Detail { status: false });
        assert_eq!(
            running.needs(RUNNING_STATUS_NS, &Ok(Some(sched(0, 0, 10)))),
            Need::Detail { status: true }
        );
        assert_eq!(asleep.needs(MS, &Ok(Some(sched(0, 0, 10)))), Need::Nothing);
        assert_eq!(
            asleep.needs(MS, &Ok(Some(sched(0, 0, 11)))),
            Need::Detail { status: false }
        );
        assert_eq!(
            asleep.needs(STATUS_EVERY_NS, &Ok(Some(sched(0, 0, 11)))),
            Need::Detail { status: true }
        );
        // No schedstat on this kernel: always the state and the counters.
        assert_eq!(asleep.needs(MS, &Ok(None)), Need::Detail { status: true });
        assert_eq!(asleep.needs(MS, &Err(Unreadable)), Need::Nothing);
        let detail = Need::Detail { status: false };
        assert!(!detail.wants_status(&stat(b'S', 0, "x")));
        assert!(detail.wants_status(&stat(b'Z', 0, "x")));
        assert!(!Need::Nothing.wants_status(&stat(b'Z', 0, "x")));
    }
}
