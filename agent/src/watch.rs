//! `coreplay watch`: follow a real program — the one it starts, or a running one — and every
//! process and thread it creates, and record what they do on the cores as the same events the
//! scenarios produce, live and recorded.
//!
//! A sampler thread polls `/proc` at a fixed rate (default 1 kHz, absolute deadlines):
//! - each tick it lists `/proc` for processes new since the last tick whose parent is followed
//!   (children found as they fork), notices new threads of followed processes by the link count
//!   of their `task` directory, and reads every followed thread's `schedstat` (one `pread` of
//!   an open file: CPU time, runnable-wait time, times scheduled in);
//! - only a thread whose numbers moved in a way that can mean a switch gets its `stat` (state,
//!   last CPU) and `status` (switch counters) read too, so a thread that keeps running or keeps
//!   sleeping costs one small read per tick.
//!
//! Samples become on-CPU slices (the CPU time a thread gained, placed within the tick), off-CPU
//! intervals with a reason (`S` sleeping → asleep, `D` → I/O, runnable but not running →
//! preempted; the runnable wait the kernel accounts when a thread gets a CPU back is shown as
//! preempted), switches from the kernel's counters, and migrations when the CPU changes. The
//! run is labelled [`Fidelity::Sampled`] with the rate actually achieved.
//!
//! Where the kernel lets the agent open `perf_event_open` switch records on the followed
//! threads (root, CAP_PERFMON, or `perf_event_paranoid` ≤ 1 for one's own processes), slices and
//! switches come from those records instead and the run is labelled [`Fidelity::Exact`]; `/proc`
//! still finds the threads and gives their CPU time, off-CPU reasons and counters.
//!
//! A thread is announced ([`Event::ThreadStart`]) [`NAME_GRACE_NS`] after it is found, so that
//! a name it gives itself right after starting (`prctl`, `pthread_setname_np`) is the one shown;
//! its first events wait with it. A name it gives itself later is an [`Event::ThreadRename`]
//! when a sample sees it.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    io::{BufRead, BufReader, Read},
    os::unix::process::{CommandExt, ExitStatusExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, atomic::AtomicBool},
    thread::JoinHandle,
    time::Duration,
};

use coreplay_shared::{
    event::{Event, Fidelity, Ns, OffReason, ProcessEnd, Role},
    scenario::{Params, ScenarioId},
    summary::{ProcessSummary, Summary},
    watch::{self, HzError, WatchProgram, WatchTarget},
};

use crate::{
    run::{self, Finished},
    summarize,
    trace::{
        Recorder,
        clock::{SwitchCounts, monotonic_ns, peak_rss_bytes, thread_cpu_ns},
        perf::{PerfSwitches, SwitchRecord},
        procfs::{self, Descendants, ProcError, SchedStat, Stat, TaskFiles},
    },
    workloads::Output,
};

/// How long after a thread is found it is announced (with the name it has then), ns.
pub const NAME_GRACE_NS: u64 = 50_000_000;
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
/// A thread's switch counters (`status`, the costliest file) are read at most this often
/// unless a running thread stopped (then they tell preempted from blocked), ns.
const STATUS_EVERY_NS: u64 = 50_000_000;
/// A running thread's CPU time moves only at the kernel's scheduler tick (4 ms at 250 Hz) or
/// when it switches, so whether it still runs is judged from its state every sample and from
/// its switch counters at most this often, ns.
const RUNNING_STATUS_NS: u64 = 4_000_000;
/// Exact mode: `schedstat` (CPU time) of a thread without switch records is read this often;
/// its state (asleep or in I/O) at most this often, ns.
const EXACT_POLL_NS: u64 = 10_000_000;
/// Events are handed to the run's collector at least this often, ns.
const FLUSH_EVERY_NS: u64 = 10_000_000;
/// After a stop, how long the killed program has to go before the watch ends anyway, ns.
const KILL_GRACE_NS: u64 = 3_000_000_000;
/// Most threads followed at once (each costs three or four open files).
pub const MAX_THREADS: usize = 4_096;
/// Lines of a page-started program's output kept for the summary.
const OUTPUT_LINES: usize = 12;

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Start this command (program and arguments) and follow it.
    Command(Vec<String>),
    /// Follow this running process.
    Pid(u32),
}

/// How to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FidelityChoice {
    /// Exact where the kernel permits, sampled otherwise.
    Auto,
    /// Exact or refuse.
    Exact,
    /// Sampled from `/proc` even where exact is possible.
    Sampled,
}

/// Where a started program's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramOutput {
    /// To the agent's own terminal (the CLI); the program stays in the agent's process group,
    /// so Ctrl-C reaches it too.
    Inherit,
    /// Captured; the last lines go into the summary's notes (page-started watches). The
    /// program gets a process group of its own, killed as a whole on stop.
    Capture,
}

/// A watch to make.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// What to follow.
    pub target: Target,
    /// The program's name from the operator's list, when the page asked for it.
    pub program: Option<String>,
    /// Samples per second ([`watch::MIN_HZ`]..=[`watch::MAX_HZ`]).
    pub hz: u32,
    /// How to record.
    pub fidelity: FidelityChoice,
    /// Hard cap on the watch's duration (a started program is killed then).
    pub cap: Duration,
    /// Where a started program's output goes.
    pub output: ProgramOutput,
}

/// Why a watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// `--pid` named no process.
    #[error("no process with id {0} is running (check it with `ps -p {0}`)")]
    NoSuchProcess(u32),
    /// No command given.
    #[error("no command to watch: give one after `--`, e.g. `coreplay watch -- python3 app.py`")]
    EmptyCommand,
    /// The command could not be started.
    #[error("could not start {command:?}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Exact recording was asked for and is not possible.
    #[error("--fidelity exact is not available for this program: {0}")]
    ExactUnavailable(String),
    /// The sampling rate is out of range.
    #[error("--hz: {0}")]
    Hz(#[from] HzError),
    /// The process's `/proc` files cannot be read.
    #[error("cannot read process {pid}'s threads: {source}")]
    Access {
        /// The process.
        pid: u32,
        /// Why.
        source: ProcError,
    },
}

/// How the sampler did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplerStats {
    /// Ticks taken.
    pub ticks: u64,
    /// From the first tick to the last, ns.
    pub wall_ns: u64,
    /// CPU time the sampler thread used, ns.
    pub cpu_ns: u64,
    /// Most threads followed at once.
    pub max_threads: usize,
    /// Thread samples taken (threads × ticks).
    pub samples: u64,
    /// The rate asked for.
    pub hz_asked: u32,
}

impl SamplerStats {
    /// Ticks per second actually achieved.
    pub fn achieved_hz(&self) -> f64 {
        if self.wall_ns == 0 {
            return 0.0;
        }
        self.ticks.saturating_sub(1) as f64 * 1e9 / self.wall_ns as f64
    }

    /// The sampler's CPU use as a share of one core, percent.
    pub fn cpu_percent(&self) -> f64 {
        if self.wall_ns == 0 {
            return 0.0;
        }
        self.cpu_ns as f64 * 100.0 / self.wall_ns as f64
    }
}

/// A finished watch.
#[derive(Debug)]
pub struct WatchFinished {
    /// The summary and events, as for a scenario run.
    pub finished: Finished,
    /// How the sampler did.
    pub stats: SamplerStats,
}

/// A watch whose program is started (or whose process is found), ready to be followed.
#[derive(Debug)]
pub struct Watched {
    child: Option<Child>,
    own_group: bool,
    root: u32,
    target: WatchTarget,
    exact: bool,
    note: Option<String>,
    hz: u32,
    cap: Duration,
    output: Option<OutputTail>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        // Never followed (the run could not start): do not leave the program behind.
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the command (or finds the process) and decides how to record it.
pub fn start(spec: &WatchSpec) -> Result<Watched, WatchError> {
    let hz = watch::check_hz(spec.hz)?;
    raise_fd_limit();
    let (child, root, command, own_group, output) = match &spec.target {
        Target::Pid(pid) => {
            if !procfs::process_exists(*pid) {
                return Err(WatchError::NoSuchProcess(*pid));
            }
            TaskFiles::open(*pid, *pid).map_err(|source| match source {
                ProcError::Gone(_) => WatchError::NoSuchProcess(*pid),
                source => WatchError::Access { pid: *pid, source },
            })?;
            (None, *pid, Vec::new(), false, None)
        }
        Target::Command(command) => {
            let Some((program, args)) = command.split_first() else {
                return Err(WatchError::EmptyCommand);
            };
            let mut cmd = Command::new(program);
            cmd.args(args);
            let capture = spec.output == ProgramOutput::Capture;
            if capture {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .process_group(0);
            }
            let mut child = cmd.spawn().map_err(|source| WatchError::Spawn {
                command: command.join(" "),
                source,
            })?;
            let output = capture.then(|| OutputTail::start(&mut child));
            let pid = child.id();
            (Some(child), pid, command.clone(), capture, output)
        }
    };
    let mut watched = Watched {
        child,
        own_group,
        root,
        target: WatchTarget {
            program: spec.program.clone(),
            command,
            pid: root,
        },
        exact: false,
        note: None,
        hz,
        cap: spec.cap,
        output,
    };
    match spec.fidelity {
        FidelityChoice::Sampled => {
            watched.note = Some("sampled from /proc by request (--fidelity sampled)".into());
        }
        FidelityChoice::Auto | FidelityChoice::Exact => match PerfSwitches::open_thread(root) {
            Ok(_) => watched.exact = true,
            Err(e) => {
                let why = exact_refused(&e);
                if spec.fidelity == FidelityChoice::Exact {
                    // `watched` drops here and kills what it started.
                    return Err(WatchError::ExactUnavailable(why));
                }
                watched.note = Some(why);
            }
        },
    }
    Ok(watched)
}

fn exact_refused(e: &std::io::Error) -> String {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "sampled from /proc because perf_event_open on the watched threads was refused ({e}; \
         perf_event_paranoid is {paranoid}). For exact switch times run coreplay as root, grant \
         CAP_PERFMON (setcap cap_perfmon+ep coreplay), or lower \
         /proc/sys/kernel/perf_event_paranoid to 1 (`sysctl kernel.perf_event_paranoid=1`)"
    )
}

/// Each followed thread holds three or four files open: lift the soft limit to the hard one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit; RLIMIT_NOFILE is a valid resource.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above; raising the soft limit up to the hard one is always allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

impl Watched {
    /// What is followed.
    pub fn target(&self) -> WatchTarget {
        self.target.clone()
    }

    /// How it will be recorded (the achieved rate replaces the asked one in the summary).
    pub fn fidelity(&self) -> Fidelity {
        if self.exact {
            Fidelity::Exact
        } else {
            Fidelity::Sampled { hz: self.hz }
        }
    }

    /// Why it is not exact, when it is not.
    pub fn fidelity_note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Follows the program until it and everything it started has exited, `cancel` is set or
    /// the cap passes; `on_batch` sees the events as they come.
    pub fn run(
        mut self,
        cancel: Arc<AtomicBool>,
        on_batch: impl FnMut(&[Event]) + Send + 'static,
    ) -> WatchFinished {
        let mut stats = SamplerStats {
            hz_asked: self.hz,
            ..SamplerStats::default()
        };
        let mut fallbacks = 0u32;
        let child = self.child.take();
        let (root, hz, exact, own_group) = (self.root, self.hz, self.exact, self.own_group);
        let mut recorded = run::record(self.cap, exact, cancel, on_batch, |rec| {
            let mut sampler = Sampler::new(rec, hz, exact, child, own_group);
            let output = sampler.follow(root);
            stats = sampler.stats;
            fallbacks = sampler.exact_fallbacks;
            Ok::<Output, WatchError>(output)
        });
        let trimmed = run::resolve_cpu_overlaps(&mut recorded.events);
        // Trimming can leave empty slices behind.
        recorded
            .events
            .retain(|e| !matches!(e, Event::OnCpu { start, end, .. } if start >= end));
        let mut notes = Vec::new();
        if let Some(note) = &self.note {
            notes.push(note.clone());
        }
        let mut fidelity = if exact {
            Fidelity::Exact
        } else {
            Fidelity::Sampled {
                hz: stats.achieved_hz().round() as u32,
            }
        };
        if exact && fallbacks > 0 {
            fidelity = Fidelity::Sampled {
                hz: stats.achieved_hz().round() as u32,
            };
            notes.push(format!(
                "{fallbacks} threads could not get exact switch recording and were sampled, so \
                 the run as a whole is labelled sampled"
            ));
        }
        notes.push(format!(
            "sampler: {} Hz asked, {:.0} Hz achieved, {:.1} % of one core, up to {} threads \
             followed",
            stats.hz_asked,
            stats.achieved_hz(),
            stats.cpu_percent(),
            stats.max_threads
        ));
        if trimmed.count > 0 {
            notes.push(format!(
                "{} on-CPU slices were trimmed by up to {:.1} µs where two threads' slices \
                 overlapped on one CPU (sampled times are known to a sampling period, and a \
                 thread's state where it is first seen is a guess)",
                trimmed.count,
                trimmed.max_ns as f64 / 1e3
            ));
        }
        if let Some(tail) = self.output.take() {
            notes.extend(tail.finish().into_iter().map(|l| format!("output: {l}")));
        }
        recorded.output.notes.splice(0..0, notes);
        let mut summary = summarize::summarize(
            ScenarioId::Watch,
            &Params::default(),
            &recorded.events,
            recorded.output,
            recorded.outcome,
            recorded.dropped,
            peak_rss_bytes(),
            fidelity,
        );
        summary.watch = Some(self.target.clone());
        WatchFinished {
            finished: Finished {
                summary,
                events: recorded.events,
            },
            stats,
        }
    }
}

/// The last lines a captured program printed.
#[derive(Debug)]
struct OutputTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl OutputTail {
    fn start(child: &mut Child) -> OutputTail {
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let mut readers = Vec::new();
        let streams: Vec<Box<dyn Read + Send>> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        for stream in streams {
            let lines = Arc::clone(&lines);
            if let Ok(h) = std::thread::Builder::new()
                .name("watch-output".into())
                .spawn(move || {
                    // Bounded lines, so a program that prints without newlines costs little.
                    let mut reader = BufReader::new(stream.take(64 << 20));
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        match reader.by_ref().take(4096).read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                let text: String = String::from_utf8_lossy(&line)
                                    .trim_end()
                                    .chars()
                                    .take(200)
                                    .collect();
                                if text.is_empty() {
                                    continue;
                                }
                                let mut q = lines.lock().unwrap_or_else(|e| e.into_inner());
                                if q.len() >= OUTPUT_LINES {
                                    q.pop_front();
                                }
                                q.push_back(text);
                            }
                        }
                    }
                })
            {
                readers.push(h);
            }
        }
        OutputTail { lines, readers }
    }

    /// The lines, once the readers are done (or after a short wait: a daemon the program
    /// left behind may hold its pipes open).
    fn finish(self) -> Vec<String> {
        let deadline = monotonic_ns() + 300_000_000;
        while self.readers.iter().any(|h| !h.is_finished()) && monotonic_ns() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let q = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().cloned().collect()
    }
}

/// Where a thread is, as far as the samples tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    On { since: Ns },
    Off { since: Ns, reason: OffReason },
}

/// A thread's exact switch records.
#[derive(Debug)]
struct ExactTask {
    perf: PerfSwitches,
    records: Vec<SwitchRecord>,
    /// The current off period's reason has been checked against the thread's state.
    refined: bool,
}

#[derive(Debug)]
struct Task {
    tid: u32,
    pid: u32,
    os_tid: u32,
    /// Its name as last read (a thread may name itself after it starts).
    name: String,
    files: TaskFiles,
    discovered: Ns,
    announced: bool,
    pending: Vec<Event>,
    last_read: Ns,
    sched: SchedStat,
    start_run_ns: u64,
    start_ticks: u64,
    ticks: u64,
    counts: SwitchCounts,
    start_counts: SwitchCounts,
    /// When `status` (or, exact, `schedstat`) was last read.
    status_at: Ns,
    sched_at: Ns,
    refine_at: Ns,
    cpu: u32,
    mode: Mode,
    exact: Option<ExactTask>,
    /// The latest time any of its events reaches (its end comes after).
    last_at: Ns,
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

/// What a sample says about a thread.
enum Sampled {
    /// Still there; whether anything happened since the last sample.
    Alive(bool),
    /// Gone at this time (ns), with its exit status when it was a process's main thread.
    Gone(Ns, Option<i32>),
}

fn reason_of(state: u8) -> OffReason {
    match state {
        b'R' => OffReason::Preempted,
        b'S' | b'I' => OffReason::Sleep,
        b'D' => OffReason::Io,
        _ => OffReason::Unknown,
    }
}

fn decode_wait_status(status: i32) -> ProcessEnd {
    if libc::WIFSIGNALED(status) {
        ProcessEnd::Signaled {
            signal: libc::WTERMSIG(status),
        }
    } else {
        ProcessEnd::Exited {
            code: libc::WEXITSTATUS(status),
        }
    }
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

struct Sampler<'a> {
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
    stats: SamplerStats,
    exact_fallbacks: u32,
    not_followed: u64,
    read_errors: u64,
    summaries: Vec<ProcessSummary>,
    ended_notes: Vec<String>,
    clk_tck: u64,
}

impl<'a> Sampler<'a> {
    fn new(
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
            not_followed: 0,
            read_errors: 0,
            summaries: Vec::new(),
            ended_notes: Vec::new(),
            clk_tck: clock_ticks_per_sec(),
        }
    }

    /// The follow loop.
    fn follow(&mut self, root: u32) -> Output {
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
        self.stop_following(end);
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
            let sampled = if task.exact.is_some() {
                sample_exact(task, self.rec, &mut self.out)
            } else {
                sample_procfs(task, self.rec, &mut self.out)
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
        if matches!(stat.state, b'Z' | b'X') {
            return;
        }
        let exact = if self.exact {
            match PerfSwitches::open_thread(os_tid) {
                Ok(perf) => Some(ExactTask {
                    perf,
                    records: Vec::with_capacity(64),
                    refined: false,
                }),
                Err(_) => {
                    self.exact_fallbacks += 1;
                    None
                }
            }
        } else {
            None
        };
        let sched = sched.unwrap_or_default();
        let mode = if stat.state == b'R' {
            Mode::On { since: now }
        } else {
            Mode::Off {
                since: now,
                reason: reason_of(stat.state),
            }
        };
        if let Some(p) = self.procs.get_mut(&pid) {
            p.live += 1;
            if os_tid == pid {
                p.peak_rss_bytes = status.peak_rss_bytes;
            }
        }
        self.tasks.insert(
            os_tid,
            Task {
                tid: self.rec.next_tid(),
                pid,
                os_tid,
                name: stat.comm.clone(),
                files,
                discovered: now,
                announced: false,
                pending: Vec::new(),
                last_read: now,
                sched,
                start_run_ns: sched.run_ns,
                start_ticks: stat.cpu_ticks,
                ticks: stat.cpu_ticks,
                counts: status.counts,
                start_counts: status.counts,
                status_at: now,
                sched_at: now,
                refine_at: now,
                cpu: stat.processor,
                mode,
                exact,
                last_at: now,
                next_tick: 0,
                every: 1,
                idle: 0,
            },
        );
    }

    fn end_task(&mut self, os_tid: u32, at: Ns, exit_code: Option<i32>) {
        let Some(mut task) = self.tasks.remove(&os_tid) else {
            return;
        };
        if !task.announced {
            self.announce_process(task.pid);
            announce(&mut task, &mut self.out);
        }
        let at = at.max(task.discovered).max(task.last_at);
        match task.mode {
            Mode::On { .. } => close_slice(&mut task, &mut self.out, at),
            Mode::Off { .. } => close_off(&mut task, &mut self.out, at, 0),
        }
        let cpu_ns = if task.files.has_schedstat() {
            task.sched.run_ns.saturating_sub(task.start_run_ns)
        } else {
            task.ticks.saturating_sub(task.start_ticks) * 1_000_000_000 / self.clk_tck
        };
        self.out.push(Event::ThreadEnd {
            tid: task.tid,
            at,
            cpu_ns,
            kernel_voluntary: task
                .counts
                .voluntary
                .saturating_sub(task.start_counts.voluntary),
            kernel_involuntary: task
                .counts
                .involuntary
                .saturating_sub(task.start_counts.involuntary),
        });
        // Look again at the process's threads: one may have started while this one ended.
        self.discovery_pending = true;
        if let Some(p) = self.procs.get_mut(&task.pid) {
            p.ended.insert(os_tid);
            p.live = p.live.saturating_sub(1);
            if os_tid == task.pid
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
            let end = match (status.code(), status.signal()) {
                (Some(code), _) => ProcessEnd::Exited { code },
                (None, Some(signal)) => ProcessEnd::Signaled { signal },
                (None, None) => ProcessEnd::Unknown,
            };
            if let Some(p) = self.procs.get_mut(&pid) {
                p.end = Some(end);
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
                    .is_ok_and(|s| !matches!(s.state, b'Z' | b'X'))
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
            .filter(|t| !t.announced && now.saturating_sub(t.discovered) >= NAME_GRACE_NS)
            .map(|t| t.os_tid)
            .collect();
        for os_tid in due {
            let pid = self.tasks.get(&os_tid).map_or(0, |t| t.pid);
            self.announce_process(pid);
            if let Some(task) = self.tasks.get_mut(&os_tid) {
                if let Ok(stat) = task.files.stat() {
                    task.name = stat.comm;
                }
                announce(task, &mut self.out);
            }
        }
    }

    fn flush(&mut self) {
        self.last_flush = self.rec.now();
        if !self.out.is_empty() {
            self.rec.send(std::mem::take(&mut self.out));
        }
    }
}

/// Emits the thread's start (with its current name) and what waited for it.
fn announce(task: &mut Task, out: &mut Vec<Event>) {
    task.announced = true;
    out.push(Event::ThreadStart {
        tid: task.tid,
        pid: task.pid,
        os_tid: task.os_tid,
        name: task.name.clone(),
        role: Role::Worker,
        at: task.discovered,
    });
    out.append(&mut task.pending);
}

/// Takes the name the thread has now (`comm`, seen at `at`): a thread renamed after it was
/// announced (it named itself, or `exec` replaced its program) gets a [`Event::ThreadRename`];
/// before that, its start will carry the name. A thread seen `exiting` only takes the name for
/// a start not announced yet (an event then would move its end to `at`).
fn renamed(task: &mut Task, out: &mut Vec<Event>, comm: &str, at: Ns, exiting: bool) {
    if comm == task.name || (exiting && task.announced) {
        return;
    }
    task.name = comm.to_string();
    if task.announced {
        let event = Event::ThreadRename {
            tid: task.tid,
            at,
            name: task.name.clone(),
        };
        emit(task, out, event);
    }
}

fn emit(task: &mut Task, out: &mut Vec<Event>, event: Event) {
    let reaches = match &event {
        Event::OnCpu { end, .. } | Event::OffCpu { end, .. } => *end,
        e => e.time(),
    };
    task.last_at = task.last_at.max(reaches);
    if task.announced {
        out.push(event);
    } else {
        task.pending.push(event);
    }
}

fn close_slice(task: &mut Task, out: &mut Vec<Event>, end: Ns) {
    if let Mode::On { since } = task.mode {
        if end > since {
            let e = Event::OnCpu {
                tid: task.tid,
                cpu: task.cpu,
                start: since,
                end,
            };
            emit(task, out, e);
        }
        task.mode = Mode::On {
            since: end.max(since),
        };
    }
}

/// Closes an off-CPU interval at `end`; its last `wait_ns` (the runnable wait the kernel
/// accounted when the thread got a CPU back) is shown as preempted.
fn close_off(task: &mut Task, out: &mut Vec<Event>, end: Ns, wait_ns: u64) {
    if let Mode::Off { since, reason } = task.mode {
        let end = end.max(since);
        let split = if reason != OffReason::Preempted && wait_ns > 0 {
            end.saturating_sub(wait_ns).max(since)
        } else {
            end
        };
        let tid = task.tid;
        if split > since {
            emit(
                task,
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
            emit(
                task,
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

fn migrate(task: &mut Task, out: &mut Vec<Event>, at: Ns, cpu: u32) {
    if cpu != task.cpu {
        let e = Event::Migrate {
            tid: task.tid,
            at,
            from: task.cpu,
            to: cpu,
        };
        emit(task, out, e);
        task.cpu = cpu;
    }
}

fn switch(task: &mut Task, out: &mut Vec<Event>, at: Ns, voluntary: u64, involuntary: u64) {
    if voluntary + involuntary > 0 {
        let e = Event::Switch {
            tid: task.tid,
            at,
            voluntary: u32::try_from(voluntary).unwrap_or(u32::MAX),
            involuntary: u32::try_from(involuntary).unwrap_or(u32::MAX),
        };
        emit(task, out, e);
    }
}

/// Reads `stat` (and `status` when `want_status`) for a thread whose numbers moved; `Err`
/// with the end time and exit code when it is gone or a zombie.
fn read_detail(
    task: &mut Task,
    gone_at: Ns,
    now: Ns,
    want_status: bool,
) -> Result<(Stat, Option<SwitchCounts>), (Ns, Option<i32>)> {
    let stat = task.files.stat().map_err(|_| (gone_at, None))?;
    let zombie = matches!(stat.state, b'Z' | b'X');
    if zombie {
        // Its last name, for a start not announced yet; no rename at its exit.
        renamed(task, &mut Vec::new(), &stat.comm, now, true);
    }
    if !(want_status || zombie) {
        return Ok((stat, None));
    }
    task.status_at = now;
    let status = task.files.status();
    if let Ok(status) = &status {
        task.counts = SwitchCounts {
            voluntary: status.counts.voluntary.max(task.counts.voluntary),
            involuntary: status.counts.involuntary.max(task.counts.involuntary),
        };
    }
    if zombie {
        return Err((gone_at, stat.exit_code));
    }
    let counts = status.map_err(|_| (gone_at, None))?.counts;
    Ok((stat, Some(counts)))
}

/// One `/proc` sample of a thread, turned into events.
fn sample_procfs(task: &mut Task, rec: &Recorder, out: &mut Vec<Event>) -> Sampled {
    let t0 = task.last_read;
    let t1 = rec.now().max(t0);
    let iv = (t1 - t0).max(1);
    let gone_at = t0 + iv / 2;
    let sched = match task.files.schedstat() {
        Ok(s) => s,
        Err(_) => return Sampled::Gone(gone_at, None),
    };
    let was_on = matches!(task.mode, Mode::On { .. });
    let (d_run, d_wait, ins) = match sched {
        Some(s) => (
            s.run_ns.saturating_sub(task.sched.run_ns).min(iv),
            s.wait_ns.saturating_sub(task.sched.wait_ns),
            Some(s.slices.saturating_sub(task.sched.slices)),
        ),
        None => (0, 0, None),
    };
    task.last_read = t1;
    if let Some(s) = sched {
        task.sched = s;
    }
    // Kept running (CPU time grew by the whole interval, never scheduled in again) or kept
    // off (no CPU time, never scheduled in): nothing to read, nothing to say.
    let tolerance = (iv / 8).max(30_000);
    if let Some(ins) = ins
        && ins == 0
        && (!was_on || d_run + tolerance >= iv)
    {
        return Sampled::Alive(was_on);
    }
    let old_counts = task.counts;
    // A running thread that gained less CPU time than the interval may have stopped (or its
    // CPU time waits for the next scheduler tick): if its state says runnable, only the
    // counters tell preempted from still running. Otherwise they can wait.
    let since_status = t1.saturating_sub(task.status_at);
    let want_status = ins.is_none()
        || since_status >= STATUS_EVERY_NS
        || (was_on && ins == Some(0) && since_status >= RUNNING_STATUS_NS);
    let (stat, counts) = match read_detail(task, gone_at, t1, want_status) {
        Ok((stat, counts)) => {
            renamed(task, out, &stat.comm, t1, false);
            (stat, counts)
        }
        Err((at, code)) => {
            let vol = task.counts.voluntary.saturating_sub(old_counts.voluntary);
            let inv = task
                .counts
                .involuntary
                .saturating_sub(old_counts.involuntary);
            switch(task, out, at, vol, inv);
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
    let d_ticks = stat.cpu_ticks.saturating_sub(task.ticks);
    task.ticks = stat.cpu_ticks;
    let now_on = stat.state == b'R'
        && match (ins, counts) {
            // Each switch out is followed by a switch in: on now exactly when it was scheduled
            // in once more than it left, counting where it started.
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
                if cpu != task.cpu {
                    close_slice(task, out, t1);
                    migrate(task, out, t1, cpu);
                }
            } else {
                // Left and came back within the interval: the time off in the middle.
                let a = t0 + d_run / 2;
                let b = (t1 - d_run / 2).max(a);
                close_slice(task, out, a);
                switch(task, out, a, vol, inv);
                task.mode = Mode::Off {
                    since: a,
                    // Unknown counters: asleep, with the runnable wait shown as preempted.
                    reason: if vol == 0 && inv > 0 {
                        OffReason::Preempted
                    } else {
                        OffReason::Sleep
                    },
                };
                close_off(task, out, b, d_wait);
                migrate(task, out, b, cpu);
                task.mode = Mode::On { since: b };
            }
        }
        (true, false) => {
            let e = (t0 + d_run).min(t1);
            close_slice(task, out, e);
            switch(task, out, e, vol, inv);
            migrate(task, out, e, cpu);
            task.mode = Mode::Off {
                since: e,
                reason: reason_of(stat.state),
            };
        }
        (false, true) => {
            let since = match task.mode {
                Mode::Off { since, .. } | Mode::On { since } => since,
            };
            let b = t1.saturating_sub(d_run).max(since);
            close_off(task, out, b, d_wait);
            switch(task, out, b, vol, inv);
            migrate(task, out, b, cpu);
            task.mode = Mode::On { since: b };
        }
        (false, false) => {
            if d_run > 0 || ins.is_some_and(|i| i > 0) {
                // Ran briefly between two samples.
                let x = t0 + (iv - d_run) / 2;
                let y = x + d_run;
                close_off(task, out, x, d_wait);
                migrate(task, out, x, cpu);
                task.mode = Mode::On { since: x };
                close_slice(task, out, y);
                switch(task, out, y, vol, inv);
                task.mode = Mode::Off {
                    since: y,
                    reason: reason_of(stat.state),
                };
            } else {
                let reason = reason_of(stat.state);
                if let Mode::Off { reason: old, .. } = task.mode
                    && old != reason
                {
                    let m = t0 + iv / 2;
                    close_off(task, out, m, 0);
                    task.mode = Mode::Off { since: m, reason };
                }
            }
        }
    }
    Sampled::Alive(true)
}

/// One tick of a thread recorded exactly: its switch records become events; `/proc` gives
/// CPU time, counters and why it sleeps.
fn sample_exact(task: &mut Task, rec: &Recorder, out: &mut Vec<Event>) -> Sampled {
    let t0 = task.last_read;
    let t1 = rec.now().max(t0);
    task.last_read = t1;
    let Some(mut exact) = task.exact.take() else {
        return Sampled::Alive(true);
    };
    // Records first show whether anything happened: a thread without any is not read at all,
    // but for its CPU time now and then. (A thread that exits leaves a last switch out.)
    let pending = exact.perf.has_records();
    let poll = pending || t1.saturating_sub(task.sched_at) >= EXACT_POLL_NS;
    let sched = if poll {
        task.sched_at = t1;
        task.files.schedstat()
    } else {
        Ok(None)
    };
    exact.records.clear();
    let lost_before = exact.perf.lost;
    exact.perf.drain(&mut exact.records);
    if exact.perf.lost > lost_before {
        rec.note_dropped(exact.perf.lost - lost_before);
    }
    let mut last_out: Option<Ns> = None;
    for r in &exact.records {
        let t = rec.at(r.time).max(task.discovered);
        if r.out {
            if let Mode::On { since } = task.mode {
                // The CPU it ran on, as the kernel says, even if the switch in was missed.
                migrate(task, out, since, r.cpu);
                close_slice(task, out, t);
            }
            switch(
                task,
                out,
                t,
                u64::from(!r.preempted),
                u64::from(r.preempted),
            );
            task.mode = Mode::Off {
                since: t,
                reason: if r.preempted {
                    OffReason::Preempted
                } else {
                    OffReason::Sleep
                },
            };
            exact.refined = r.preempted;
            last_out = Some(t);
        } else {
            // On already means the guess made when it was found was wrong: it was off.
            if let Mode::Off { .. } = task.mode {
                close_off(task, out, t, 0);
            }
            migrate(task, out, t, r.cpu);
            task.mode = Mode::On { since: t };
            last_out = None;
        }
    }
    let had_records = !exact.records.is_empty();
    let refine = !exact.refined && t1.saturating_sub(task.refine_at) >= EXACT_POLL_NS;
    if refine {
        exact.refined = true;
        task.refine_at = t1;
    }
    task.exact = Some(exact);
    match sched {
        Ok(Some(s)) => task.sched = s,
        Ok(None) => {}
        Err(_) => return Sampled::Gone(last_out.unwrap_or(t0 + (t1 - t0) / 2), None),
    }
    if (matches!(task.mode, Mode::Off { .. }) && refine) || (had_records && task_due(task, t1)) {
        let Ok(stat) = task.files.stat() else {
            return Sampled::Gone(last_out.unwrap_or(t1), None);
        };
        let zombie = matches!(stat.state, b'Z' | b'X');
        renamed(task, out, &stat.comm, t1, zombie);
        if zombie {
            if let Ok(status) = task.files.status() {
                task.counts = status.counts;
            }
            let at = match task.mode {
                Mode::Off { since, .. } => since,
                Mode::On { .. } => t1,
            };
            return Sampled::Gone(at, stat.exit_code);
        }
        task.ticks = stat.cpu_ticks;
        if let Mode::Off {
            since,
            reason: OffReason::Sleep,
        } = task.mode
            && refine
            && stat.state == b'D'
        {
            task.mode = Mode::Off {
                since,
                reason: OffReason::Io,
            };
        }
        if had_records && let Ok(status) = task.files.status() {
            task.counts = status.counts;
            task.status_at = t1;
        }
    }
    // Sampled every tick: draining the records costs no system call.
    Sampled::Alive(true)
}

/// Whether an exact thread's counters are due for a read.
fn task_due(task: &Task, now: Ns) -> bool {
    now.saturating_sub(task.status_at) >= STATUS_EVERY_NS
}

/// The example programs in `examples/python/`: (name, file, title).
pub const PYTHON_EXAMPLES: [(&str, &str, &str); 4] = [
    (
        "cpu_threads",
        "cpu_threads.py",
        "Python: CPU-bound work on 4 threads (the GIL lets one run at a time)",
    ),
    (
        "pools",
        "pools.py",
        "Python: the same work on a ThreadPoolExecutor, then a ProcessPoolExecutor",
    ),
    (
        "asyncio_sleeps",
        "asyncio_sleeps.py",
        "Python: 1000 concurrent asyncio sleeps on one thread",
    ),
    (
        "asyncio_loopback",
        "asyncio_loopback.py",
        "Python: asyncio with concurrent loopback TCP requests to its own server",
    ),
];

/// Where `examples/python/` is: beside the sources this agent was built from, under the
/// current directory, or two levels above the executable (`target/release/coreplay`).
pub fn examples_dir() -> Option<PathBuf> {
    let mut candidates = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python")];
    if let Ok(cwd) = std::env::current_dir() {
        candidates.push(cwd.join("examples/python"));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent)
    {
        candidates.push(root.join("examples/python"));
    }
    candidates
        .into_iter()
        .filter(|d| d.join(PYTHON_EXAMPLES[0].1).is_file())
        .find_map(|d| d.canonicalize().ok())
}

/// Whether `program` is an executable file on `PATH`.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The programs the page may start by default: the Python examples, when `python3` is on
/// `PATH` and the examples are found.
pub fn default_programs() -> Vec<WatchProgram> {
    if !on_path("python3") {
        return Vec::new();
    }
    let Some(dir) = examples_dir() else {
        return Vec::new();
    };
    // The interpreter itself rather than `python3`, which may be a version manager's shell
    // shim whose own processes would show up in every watch.
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|p| p.trim().to_string())
        .filter(|p| Path::new(p).is_file())
        .unwrap_or_else(|| "python3".to_string());
    PYTHON_EXAMPLES
        .iter()
        .filter(|(_, file, _)| dir.join(file).is_file())
        .map(|(name, file, title)| WatchProgram {
            name: (*name).to_string(),
            title: (*title).to_string(),
            command: vec![
                python.clone(),
                dir.join(file).to_string_lossy().into_owned(),
            ],
        })
        .collect()
}

/// Splits a command line into words as a shell would, with single and double quotes and
/// backslashes, but nothing else (no variables, globs or operators: use `sh -c '…'` for those).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a backslash at the end".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

/// Parses `NAME=COMMAND ARGS…` (`--watch-program`): a name of letters, digits, `_` and `-`,
/// and a command split into words as a shell would (quotes and backslashes; no variables or
/// operators: wrap those in `sh -c '…'`).
pub fn parse_program(spec: &str) -> Result<WatchProgram, String> {
    let (name, command) = spec
        .split_once('=')
        .ok_or_else(|| format!("{spec:?}: expected NAME=COMMAND, e.g. busy=\"python3 busy.py\""))?;
    let name = name.trim();
    if name.is_empty()
        || name.len() > watch::MAX_PROGRAM_NAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{name:?}: a program name is 1 to {} letters, digits, '_' or '-'",
            watch::MAX_PROGRAM_NAME
        ));
    }
    let command = split_words(command).map_err(|e| format!("{name}: {e}"))?;
    if command.is_empty() {
        return Err(format!("{name}: the command is empty"));
    }
    Ok(WatchProgram {
        name: name.to_string(),
        title: command.join(" "),
        command,
    })
}

/// The summary's threads as a table: one line per thread with its CPU time and switches.
pub fn thread_table(summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5} {:>8} {:<16} {:>11} {:>10} {:>10} {:>6} {:>12}",
        "tid", "pid", "name", "CPU ms", "voluntary", "involunt.", "migr.", "runnable ms"
    );
    for t in &summary.threads {
        let name: String = t.name.chars().take(16).collect();
        let _ = writeln!(
            out,
            "{:>5} {:>8} {:<16} {:>11.2} {:>10} {:>10} {:>6} {:>12.2}",
            t.tid,
            t.pid,
            name,
            t.cpu_ns as f64 / 1e6,
            t.voluntary_switches,
            t.involuntary_switches,
            t.migrations,
            t.runnable_wait_ns as f64 / 1e6
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_specs() {
        let p = parse_program("busy=sh -c  true").expect("valid");
        assert_eq!(p.name, "busy");
        assert_eq!(p.command, vec!["sh", "-c", "true"]);
        assert!(parse_program("busy").is_err());
        assert!(parse_program("=sh").is_err());
        assert!(parse_program("a b=sh").is_err());
        assert!(parse_program("x=  ").is_err());
        let p = parse_program(r#"spin=sh -c 'a & b; wait' "x y" z\ w"#).expect("quoted");
        assert_eq!(p.command, vec!["sh", "-c", "a & b; wait", "x y", "z w"]);
        assert!(parse_program("x=sh -c 'open").is_err());
    }

    #[test]
    fn wait_statuses() {
        assert_eq!(decode_wait_status(3 << 8), ProcessEnd::Exited { code: 3 });
        assert_eq!(decode_wait_status(9), ProcessEnd::Signaled { signal: 9 });
    }

    #[test]
    fn a_missing_pid_is_a_clear_error() {
        let spec = WatchSpec {
            target: Target::Pid(u32::MAX - 7),
            program: None,
            hz: 1_000,
            fidelity: FidelityChoice::Sampled,
            cap: Duration::from_secs(5),
            output: ProgramOutput::Inherit,
        };
        let err = start(&spec).expect_err("no such process");
        assert!(err.to_string().contains("no process with id"), "{err}");
        let bad_hz = WatchSpec {
            hz: 5,
            ..spec.clone()
        };
        assert!(matches!(start(&bad_hz), Err(WatchError::Hz(_))));
        let empty = WatchSpec {
            target: Target::Command(vec![]),
            ..spec
        };
        assert!(matches!(start(&empty), Err(WatchError::EmptyCommand)));
    }
}
