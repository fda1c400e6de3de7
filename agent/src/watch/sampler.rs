//! The sampler thread of `coreplay watch`: ticks at absolute deadlines, finds the processes
//! and threads the program creates, schedules each thread's samples (idle ones less and less
//! often), reads their `/proc` files (through [`crate::trace::procfs`]) and the clock, and
//! hands what it read to the pure step ([`super::infer`], [`super::exact`]); it ends threads
//! and processes, announces them, and flushes the events to the recorder.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    process::Child,
    sync::Arc,
};

use coreplay_shared::{
    event::{Event, Ns, ProcessEnd, Role},
    summary::ProcessSummary,
};

use super::procfs::{self, Descendants, ProcError, TaskFiles};
use super::{
    MAX_THREADS, NAME_GRACE_NS, SamplerStats,
    exact::{self, ExactTask},
    infer::{Need, Sample, Sampled, Thread, Unreadable, exited},
    launch::{decode_wait_status, process_end},
    python::{Converter, Known, ProbeFeed, gil, waits_on_gil},
};
use crate::{
    trace::{
        Recorder,
        clock::{monotonic_ns, thread_cpu_ns},
    },
    workloads::Output,
};

/// New threads of followed processes are looked for at most this often, ns (and only when a
/// process or thread was created somewhere since the last look)…
const THREADS_EVERY_NS: u64 = 1_000_000;
/// …and new processes (a listing of `/proc`, the costlier look) at most this often, ns.
const SCAN_EVERY_NS: u64 = 5_000_000;
/// A thread found idle (off CPU, nothing changed) this many samples in a row is sampled less
/// and less often…
const IDLE_SAMPLES: u32 = 2;
/// …down to once per this many ns, until it runs again.
const IDLE_EVERY_NS: u64 = 10_000_000;
/// Events are handed to the run's collector at least this often, ns.
const FLUSH_EVERY_NS: u64 = 10_000_000;
/// After a stop, how long the killed program has to go before the watch ends anyway, ns.
const KILL_GRACE_NS: u64 = 3_000_000_000;

/// A followed thread: its open files, its switch records when exact, what the samples told
/// so far, and when to sample it next.
#[derive(Debug)]
struct Task {
    files: TaskFiles,
    exact: Option<ExactTask>,
    thread: Thread,
    /// Next tick to sample it at, the current interval in ticks, idle samples in a row.
    next_tick: u64,
    every: u64,
    idle: u32,
}

#[derive(Debug)]
struct Proc {
    pid: u32,
    discovered: Ns,
    announced: bool,
    threads_hint: Option<u64>,
    /// OS ids of its threads that ended (a zombie main thread stays listed).
    ended: HashSet<u32>,
    live: usize,
    end: Option<ProcessEnd>,
    peak_rss_bytes: Option<u64>,
    exited: bool,
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

fn sleep_until(deadline_monotonic: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_monotonic / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_monotonic % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; a null remainder is allowed with TIMER_ABSTIME.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

/// One `/proc` sample of a thread: `schedstat`, then `stat` and `status` only where the
/// thread's numbers say they are needed; the pure step does the rest.
fn sample_procfs(
    thread: &mut Thread,
    files: &mut TaskFiles,
    rec: &Recorder,
    gil: Option<&[u64]>,
    out: &mut Vec<Event>,
) -> Sampled {
    let at = rec.now();
    let mut sample = Sample {
        at,
        sched: files.schedstat().map_err(|_| Unreadable),
        stat: None,
        status: None,
        gil_wait: false,
    };
    let need = thread.needs(at, &sample.sched);
    if need != Need::Nothing {
        let stat = files.stat().map_err(|_| Unreadable);
        if let Ok(s) = &stat
            && need.wants_status(s)
        {
            sample.status = Some(files.status().map(|s| s.counts).map_err(|_| Unreadable));
        }
        // Asleep: on the GIL's futex, or on something else?
        if let (Ok(s), Some(gil)) = (&stat, gil)
            && s.state == b'S'
        {
            sample.gil_wait = std::fs::read_to_string(format!(
                "/proc/{}/task/{}/syscall",
                thread.pid, thread.os_tid
            ))
            .is_ok_and(|text| waits_on_gil(&text, gil));
        }
        sample.stat = Some(stat);
    }
    thread.step(&sample, out)
}

/// The name the Python probe gives its helper threads.
const PROBE_HELPER: &str = "coreplay-gil";

/// What the Python probe's records need of a thread.
fn known(t: &Thread) -> Known {
    Known {
        tid: t.tid,
        pid: t.pid,
        cpu: t.cpu,
        seen: t.last_at,
        since: t.discovered,
    }
}

/// The sampler: what is followed, and the loop that follows it.
pub(super) struct Sampler<'a> {
    rec: &'a Arc<Recorder>,
    root: u32,
    period_ns: u64,
    exact: bool,
    child: Option<Child>,
    own_group: bool,
    procs: BTreeMap<u32, Proc>,
    tasks: HashMap<u32, Task>,
    descendants: Descendants,
    last_pid: Option<procfs::LastPid>,
    last_pid_seen: Option<u64>,
    discovery_pending: bool,
    next_threads_scan: Ns,
    out: Vec<Event>,
    next_scan: Ns,
    last_flush: Ns,
    /// How it did.
    pub stats: SamplerStats,
    /// Threads that could not get switch records (exact) and were sampled.
    pub exact_fallbacks: u32,
    /// Which (the first few), and why.
    pub exact_refusals: Vec<String>,
    /// `--fidelity exact`: a thread that cannot be recorded exactly stops the watch.
    pub strict_exact: bool,
    not_followed: u64,
    read_errors: u64,
    summaries: Vec<ProcessSummary>,
    ended_notes: Vec<String>,
    clk_tck: u64,
    /// The Python probe's records, when the program runs it.
    python: Option<Python>,
    /// Threads that ended, by OS id, for the probe's late records.
    gone: HashMap<u32, Known>,
    /// The Python probe's helper threads left out.
    probe_helpers: u32,
}

/// The Python probe's side of a watch: its pipe and the step that turns records into events.
#[derive(Debug)]
struct Python {
    feed: Option<ProbeFeed>,
    conv: Converter,
    gil: gil::Ledger,
}

impl<'a> Sampler<'a> {
    pub fn new(
        rec: &'a Arc<Recorder>,
        hz: u32,
        exact: bool,
        child: Option<Child>,
        own_group: bool,
    ) -> Sampler<'a> {
        Sampler {
            rec,
            root: 0,
            period_ns: 1_000_000_000 / u64::from(hz.max(1)),
            exact,
            child,
            own_group,
            procs: BTreeMap::new(),
            tasks: HashMap::new(),
            descendants: Descendants::default(),
            last_pid: procfs::LastPid::open(),
            last_pid_seen: None,
            discovery_pending: true,
            next_threads_scan: 0,
            out: Vec::new(),
            next_scan: 0,
            last_flush: 0,
            stats: SamplerStats {
                hz_asked: hz,
                ..SamplerStats::default()
            },
            exact_fallbacks: 0,
            exact_refusals: Vec::new(),
            strict_exact: false,
            not_followed: 0,
            read_errors: 0,
            summaries: Vec::new(),
            ended_notes: Vec::new(),
            clk_tck: clock_ticks_per_sec(),
            python: None,
            gone: HashMap::new(),
            probe_helpers: 0,
        }
    }

    /// Reads the Python probe's records from `feed` while following.
    pub fn with_python(&mut self, feed: ProbeFeed) {
        self.python = Some(Python {
            feed: Some(feed),
            conv: Converter::new(self.rec.origin_ns()),
            gil: gil::Ledger::default(),
        });
    }

    /// What the run's summary should say about the Python probe (nothing without one).
    pub fn python_notes(&self) -> Vec<String> {
        let mut notes = self
            .python
            .as_ref()
            .map_or_else(Vec::new, |p| p.conv.notes());
        if self.probe_helpers > 0 {
            notes.push(format!(
                "the Python probe's {} helper threads ({PROBE_HELPER}), which ran for a moment \
                 at start-up to find where the GIL is waited for, are left out",
                self.probe_helpers
            ));
        }
        notes
    }

    /// Turns the probe's records read so far into events, for the threads announced so far;
    /// `last`: the program has ended, so waits for the pipe to close and gives up on the rest.
    fn python_drain(&mut self, last: bool) {
        let Some(py) = self.python.as_mut() else {
            return;
        };
        if last {
            if let Some(feed) = py.feed.take() {
                feed.finish(&mut py.conv, std::time::Duration::from_millis(300));
            }
        } else if let Some(feed) = &py.feed {
            feed.drain_into(&mut py.conv);
        }
        let (tasks, gone) = (&self.tasks, &self.gone);
        let lookup = |os_tid: u32| {
            tasks
                .get(&os_tid)
                .filter(|t| t.thread.announced)
                .map(|t| known(&t.thread))
                .or_else(|| gone.get(&os_tid).copied())
        };
        if last {
            py.conv.finish(&lookup, &mut self.out);
        } else {
            py.conv.drain(&lookup, &mut self.out);
        }
    }

    /// The GIL steps the threads' samples gave this tick (in `out[from..]`) go to the
    /// ledger, which emits them in one order per process once they are [`gil::Ledger::lag`] old
    /// (all of them when `last`).
    fn gil_order(&mut self, from: usize, now: Ns, last: bool) {
        let Some(py) = self.python.as_mut() else {
            return;
        };
        let pids: HashMap<u32, u32> = self
            .tasks
            .values()
            .map(|t| (t.thread.tid, t.thread.pid))
            .chain(self.gone.values().map(|k| (k.tid, k.pid)))
            .collect();
        let from = from.min(self.out.len());
        let mut kept = Vec::with_capacity(self.out.len() - from);
        for e in self.out.drain(from..) {
            match e {
                Event::Lock { tid, at, op } if pids.contains_key(&tid) => {
                    py.gil.step(pids[&tid], tid, at, op);
                }
                e => kept.push(e),
            }
        }
        self.out.extend(kept);
        let until = if last {
            Ns::MAX
        } else {
            now.saturating_sub(py.gil.lag())
        };
        let (tasks, gone) = (&self.tasks, &self.gone);
        // A thread still followed may go on past any step emitted now (its end, when it comes,
        // is later than the ledger's horizon); one that ended is bounded by its last moment.
        let seen = |tid: u32| {
            if tasks.values().any(|t| t.thread.tid == tid) {
                return None;
            }
            gone.values().find(|k| k.tid == tid).map(|k| k.seen)
        };
        py.gil.emit(until, &seen, &mut self.out);
    }

    /// The follow loop.
    pub fn follow(&mut self, root: u32) -> Output {
        // Wake-ups as close to the deadlines as the period needs.
        let slack = (self.period_ns / 20).clamp(1_000, 50_000);
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only this thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack as libc::c_ulong, 0, 0, 0) };
        let cpu0 = thread_cpu_ns();
        let start = self.rec.now();
        let hz_asked = self.stats.hz_asked;
        self.stats = SamplerStats {
            hz_asked,
            ..SamplerStats::default()
        };
        self.root = root;
        self.add_process(root, start);
        // Descendants that exist already (a running process given by --pid).
        self.descendants_scan(start);
        let mut deadline = monotonic_ns();
        let mut kill_deadline: Option<Ns> = None;
        let end = loop {
            let end = self.tick();
            if self.all_done() {
                break end;
            }
            if self.rec.cancelled() {
                if self.child.is_none() && !self.own_group {
                    // A process we did not start: stop following, leave it running.
                    break end;
                }
                match kill_deadline {
                    None => {
                        self.kill_all();
                        kill_deadline = Some(end + KILL_GRACE_NS);
                    }
                    Some(d) if end >= d => break end,
                    Some(_) => {}
                }
            }
            let now = monotonic_ns();
            deadline += self.period_ns;
            if deadline + self.period_ns < now {
                // Fell behind by more than a period (a busy machine): skip, do not burst.
                deadline = now;
            }
            sleep_until(deadline);
        };
        let mark = self.out.len();
        self.stop_following(end);
        self.python_drain(true);
        self.gil_order(mark, end, true);
        self.flush();
        self.stats.wall_ns = end.saturating_sub(start);
        self.stats.cpu_ns = thread_cpu_ns().saturating_sub(cpu0);
        let mut notes = std::mem::take(&mut self.ended_notes);
        if self.not_followed > 0 {
            notes.push(format!(
                "{} threads were not followed (more than {MAX_THREADS} at once, or out of \
                 file descriptors)",
                self.not_followed
            ));
        }
        if self.read_errors > 0 {
            notes.push(format!(
                "{} threads' /proc files could not be read (permissions) and were not followed",
                self.read_errors
            ));
        }
        Output {
            wall_ns: self.stats.wall_ns,
            processes: std::mem::take(&mut self.summaries),
            notes,
            ..Output::default()
        }
    }

    fn all_done(&self) -> bool {
        self.procs.values().all(|p| p.exited) && self.child.is_none()
    }

    fn kill_all(&mut self) {
        if self.own_group
            && let Ok(group) = libc::pid_t::try_from(self.root)
            && group > 0
        {
            // SAFETY: signalling the process group we created for the program.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
        for p in self.procs.values().filter(|p| !p.exited) {
            if let Ok(pid) = libc::pid_t::try_from(p.pid) {
                // SAFETY: signalling a process this watch started (or its descendants).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
    }

    /// One sampling tick; returns its time.
    fn tick(&mut self) -> Ns {
        let now = self.rec.now();
        self.stats.ticks += 1;
        let tick = self.stats.ticks;
        let created = match self.last_pid.as_mut().and_then(procfs::LastPid::read) {
            Some(last) => {
                let changed = self.last_pid_seen != Some(last);
                self.last_pid_seen = Some(last);
                changed
            }
            None => true,
        };
        self.discovery_pending |= created;
        let pids: Vec<u32> = self
            .procs
            .values()
            .filter(|p| !p.exited)
            .map(|p| p.pid)
            .collect();
        if self.discovery_pending && now >= self.next_threads_scan {
            self.next_threads_scan = now + THREADS_EVERY_NS.max(self.period_ns);
            if now >= self.next_scan {
                // Processes last: they need the costlier listing.
                self.discovery_pending = false;
                self.descendants_scan(now);
            }
            for pid in &pids {
                let hint = procfs::thread_count_hint(*pid);
                // A count that differs from the last one, or from the threads followed: a
                // thread that ends while another starts leaves the count as it was (seen: a
                // Python thread started as another exited was never followed).
                let changed = self
                    .procs
                    .get(pid)
                    .is_some_and(|p| p.threads_hint != hint || hint != Some(p.live as u64));
                if changed {
                    if let Some(p) = self.procs.get_mut(pid) {
                        p.threads_hint = hint;
                    }
                    self.add_threads(*pid, now);
                }
            }
        }
        let idle_every = (IDLE_EVERY_NS / self.period_ns).max(1);
        let mark = self.out.len();
        let tids: Vec<u32> = self.tasks.keys().copied().collect();
        self.stats.max_threads = self.stats.max_threads.max(tids.len());
        for os_tid in tids {
            let Some(task) = self.tasks.get_mut(&os_tid) else {
                continue;
            };
            if task.next_tick > tick {
                continue;
            }
            self.stats.samples += 1;
            let gil = self
                .python
                .as_ref()
                .and_then(|p| p.conv.gil(task.thread.pid));
            task.thread.gil_seen = gil.is_some();
            let sampled = match task.exact.as_mut() {
                Some(exact) => exact::sample(
                    &mut task.thread,
                    &mut task.files,
                    exact,
                    self.rec,
                    gil,
                    &mut self.out,
                ),
                None => sample_procfs(
                    &mut task.thread,
                    &mut task.files,
                    self.rec,
                    gil,
                    &mut self.out,
                ),
            };
            match sampled {
                Sampled::Gone(at, exit_code) => self.end_task(os_tid, at, exit_code),
                Sampled::Alive(true) => {
                    task.idle = 0;
                    task.every = 1;
                    task.next_tick = tick + 1;
                }
                Sampled::Alive(false) => {
                    task.idle = task.idle.saturating_add(1);
                    if task.idle >= IDLE_SAMPLES {
                        task.every = (task.every * 2).min(idle_every);
                    }
                    task.next_tick = tick + task.every;
                }
            }
        }
        self.reap_child();
        for pid in pids {
            self.maybe_end_process(pid, now);
        }
        self.announce_due(now);
        self.python_drain(false);
        if self.python.as_ref().is_some_and(|p| !p.conv.no_gil()) {
            self.gil_order(mark, now, false);
        }
        if now.saturating_sub(self.last_flush) >= FLUSH_EVERY_NS {
            self.flush();
        }
        now
    }

    fn descendants_scan(&mut self, now: Ns) {
        self.next_scan = now + SCAN_EVERY_NS.max(self.period_ns);
        let followed: HashSet<u32> = self.procs.keys().copied().collect();
        for pid in self.descendants.new_children(&followed) {
            self.add_process(pid, now);
        }
    }

    fn add_process(&mut self, pid: u32, now: Ns) {
        if self.procs.contains_key(&pid) {
            return;
        }
        self.procs.insert(
            pid,
            Proc {
                pid,
                discovered: now,
                announced: false,
                threads_hint: procfs::thread_count_hint(pid),
                ended: HashSet::new(),
                live: 0,
                end: None,
                peak_rss_bytes: None,
                exited: false,
            },
        );
        self.add_threads(pid, now);
    }

    fn add_threads(&mut self, pid: u32, now: Ns) {
        for os_tid in procfs::threads_of(pid) {
            let known = self.tasks.contains_key(&os_tid)
                || self
                    .procs
                    .get(&pid)
                    .is_some_and(|p| p.ended.contains(&os_tid));
            if !known {
                self.add_task(pid, os_tid, now);
            }
        }
    }

    fn add_task(&mut self, pid: u32, os_tid: u32, now: Ns) {
        if self.tasks.len() >= MAX_THREADS {
            self.not_followed += 1;
            return;
        }
        let mut files = match TaskFiles::open(pid, os_tid) {
            Ok(f) => f,
            Err(ProcError::Gone(_)) => return,
            Err(ProcError::Io { source, .. }) if source.raw_os_error() == Some(libc::EMFILE) => {
                self.not_followed += 1;
                return;
            }
            Err(_) => {
                self.read_errors += 1;
                return;
            }
        };
        let (Ok(stat), Ok(status), Ok(sched)) = (files.stat(), files.status(), files.schedstat())
        else {
            return;
        };
        if exited(stat.state) {
            return;
        }
        let exact = if self.exact {
            match ExactTask::open(os_tid) {
                Ok(exact) => Some(exact),
                // Gone before it could be followed (a wrapper's short-lived helper): nothing
                // of it to record, exactly or not.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return,
                Err(e) => {
                    self.exact_fallbacks += 1;
                    if self.exact_refusals.len() < 5 {
                        self.exact_refusals.push(format!(
                            "{} (process {pid}, thread {os_tid}): {e}",
                            stat.comm
                        ));
                    }
                    if self.strict_exact {
                        // --fidelity exact: stop rather than record it otherwise.
                        self.rec
                            .cancel_flag()
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    None
                }
            }
        } else {
            None
        };
        if let Some(p) = self.procs.get_mut(&pid) {
            p.live += 1;
            if os_tid == pid {
                p.peak_rss_bytes = status.peak_rss_bytes;
            }
        }
        let thread = Thread::new(
            self.rec.next_tid(),
            pid,
            os_tid,
            now,
            &stat,
            status.counts,
            sched,
        );
        self.tasks.insert(
            os_tid,
            Task {
                files,
                exact,
                thread,
                next_tick: 0,
                every: 1,
                idle: 0,
            },
        );
    }

    fn end_task(&mut self, os_tid: u32, at: Ns, exit_code: Option<i32>) {
        if self.probe_helper(os_tid) {
            self.hide(os_tid);
            self.discovery_pending = true;
            return;
        }
        let Some(mut task) = self.tasks.remove(&os_tid) else {
            return;
        };
        let pid = task.thread.pid;
        if !task.thread.announced {
            self.announce_process(pid);
        }
        task.thread
            .end(at, task.files.has_schedstat(), self.clk_tck, &mut self.out);
        self.gone.insert(os_tid, known(&task.thread));
        if let Some(py) = self.python.as_mut() {
            // A thread that ends holding the GIL lets it go then.
            py.gil.step(
                pid,
                task.thread.tid,
                at,
                coreplay_shared::event::LockOp::Release,
            );
        }
        // Look again at the process's threads: one may have started while this one ended.
        self.discovery_pending = true;
        if let Some(p) = self.procs.get_mut(&pid) {
            p.ended.insert(os_tid);
            p.live = p.live.saturating_sub(1);
            if os_tid == pid
                && let Some(code) = exit_code
            {
                p.end.get_or_insert(decode_wait_status(code));
            }
        }
    }

    fn reap_child(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(Some(status)) = child.try_wait() {
            let pid = child.id();
            if let Some(p) = self.procs.get_mut(&pid) {
                p.end = Some(process_end(status));
            }
            self.child = None;
        }
    }

    /// Ends a process whose threads have all ended (our own child only once reaped, so its
    /// exit status is known).
    fn maybe_end_process(&mut self, pid: u32, now: Ns) {
        let own_child_unreaped = self.child.as_ref().is_some_and(|c| c.id() == pid);
        let Some(p) = self.procs.get(&pid) else {
            return;
        };
        if p.exited || p.live > 0 || own_child_unreaped {
            return;
        }
        // Threads it may have started since the last look.
        let unseen: Vec<u32> = procfs::threads_of(pid)
            .into_iter()
            .filter(|t| !p.ended.contains(t) && !self.tasks.contains_key(t))
            .collect();
        if !unseen.is_empty() && procfs::process_exists(pid) {
            let alive = unseen.iter().any(|&t| {
                TaskFiles::open(pid, t)
                    .and_then(|mut f| f.stat())
                    .is_ok_and(|s| !exited(s.state))
            });
            if alive {
                self.add_threads(pid, now);
                return;
            }
        }
        self.announce_process(pid);
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        p.exited = true;
        let end = p.end.unwrap_or(ProcessEnd::Unknown);
        if let ProcessEnd::Signaled { signal } = end {
            self.ended_notes
                .push(format!("process {pid} was killed by signal {signal}"));
        } else if let ProcessEnd::Exited { code } = end
            && code != 0
        {
            self.ended_notes
                .push(format!("process {pid} exited with status {code}"));
        }
        self.out.push(Event::ProcessExit {
            pid,
            at: now,
            peak_rss_bytes: p.peak_rss_bytes,
            end,
        });
        self.summaries.push(ProcessSummary {
            pid,
            startup_ns: None,
            peak_rss_bytes: p.peak_rss_bytes,
        });
    }

    /// Ends the trace of everything still followed (stopped, or timed out).
    fn stop_following(&mut self, now: Ns) {
        let tids: Vec<u32> = self.tasks.keys().copied().collect();
        for tid in tids {
            self.end_task(tid, now, None);
        }
        let live = self.procs.values().filter(|p| !p.exited).count();
        if live > 0 {
            self.ended_notes.push(format!(
                "{live} processes were still running when the watch ended"
            ));
        }
        // Their threads ended in the trace; the processes did not exit, so no ProcessExit.
        let pids: Vec<u32> = self.procs.keys().copied().collect();
        for pid in pids {
            self.announce_process(pid);
            if let Some(p) = self.procs.get(&pid)
                && !p.exited
            {
                self.summaries.push(ProcessSummary {
                    pid,
                    startup_ns: None,
                    peak_rss_bytes: p.peak_rss_bytes,
                });
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn announce_process(&mut self, pid: u32) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if p.announced {
            return;
        }
        p.announced = true;
        let name = procfs::cmdline(pid)
            .or_else(|| {
                std::fs::read(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|t| procfs::parse_stat(&t))
                    .map(|s| s.comm)
            })
            .unwrap_or_else(|| format!("process {pid}"));
        let name: String = name.chars().take(160).collect();
        self.out.push(Event::ProcessStart {
            pid,
            at: p.discovered,
            name,
            role: Role::Worker,
        });
    }

    fn announce_due(&mut self, now: Ns) {
        let due: Vec<u32> = self
            .procs
            .values()
            .filter(|p| !p.announced && now.saturating_sub(p.discovered) >= NAME_GRACE_NS)
            .map(|p| p.pid)
            .collect();
        for pid in due {
            self.announce_process(pid);
        }
        let due: Vec<u32> = self
            .tasks
            .values()
            .filter(|t| t.thread.announce_due(now))
            .map(|t| t.thread.os_tid)
            .collect();
        for os_tid in due {
            let pid = self.tasks.get(&os_tid).map_or(0, |t| t.thread.pid);
            self.announce_process(pid);
            if let Some(task) = self.tasks.get_mut(&os_tid) {
                // The name it has now: the one it gave itself since it was found.
                if let Ok(stat) = task.files.stat() {
                    task.thread.name = stat.comm;
                }
                if self.probe_helper(os_tid) {
                    self.hide(os_tid);
                    continue;
                }
                if let Some(task) = self.tasks.get_mut(&os_tid) {
                    task.thread.announce(&mut self.out);
                }
            }
        }
    }

    /// Whether a thread not announced yet is one of the Python probe's own helpers (it learns
    /// where the GIL is with a few threads for a moment): the instrument, not the program.
    fn probe_helper(&self, os_tid: u32) -> bool {
        self.python.is_some()
            && self
                .tasks
                .get(&os_tid)
                .is_some_and(|t| !t.thread.announced && t.thread.name == PROBE_HELPER)
    }

    /// Stops following a probe helper and leaves it out of the run, counted in a note.
    fn hide(&mut self, os_tid: u32) {
        let Some(task) = self.tasks.remove(&os_tid) else {
            return;
        };
        let pid = task.thread.pid;
        if let Some(p) = self.procs.get_mut(&pid) {
            p.ended.insert(os_tid);
            p.live = p.live.saturating_sub(1);
        }
        self.probe_helpers += 1;
    }

    fn flush(&mut self) {
        self.last_flush = self.rec.now();
        if !self.out.is_empty() {
            self.rec.send(std::mem::take(&mut self.out));
        }
    }
}
