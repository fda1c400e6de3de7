//! `coreplay watch`: follow a real program — the one it starts, or a running one — and every
//! process and thread it creates, and record what they do on the cores as the same events the
//! scenarios produce, live and recorded. This module is the public face (what to watch, how,
//! and what comes back); the work is in its parts:
//!
//! - `launch`: starting the program (or finding the running one), choosing the fidelity,
//!   following it to the end and turning what was recorded into a summary; the output tail of a
//!   captured program; exit statuses.
//! - `sampler`: the sampler thread's loop at a fixed rate (default 1 kHz, absolute
//!   deadlines): each tick it lists `/proc` for processes new since the last tick whose parent
//!   is followed (children found as they fork), notices new threads of followed processes by
//!   the link count of their `task` directory, and reads every followed thread's `schedstat`
//!   (one `pread` of an open file: CPU time, runnable-wait time, times scheduled in); only a
//!   thread whose numbers moved in a way that can mean a switch gets its `stat` (state, last
//!   CPU) and `status` (switch counters) read too, so a thread that keeps running or keeps
//!   sleeping costs one small read per tick. It reads; it does not decide.
//! - `infer`: the pure step from a thread's samples to events: on-CPU slices (the CPU time a
//!   thread gained, placed within the tick), off-CPU intervals with a reason (`S` sleeping →
//!   asleep, `D` → I/O, runnable but not running → preempted; the runnable wait the kernel
//!   accounts when a thread gets a CPU back is shown as preempted), switches from the kernel's
//!   counters, and migrations when the CPU changes. The run is labelled [`Fidelity::Sampled`]
//!   with the rate actually achieved.
//! - `exact`: where the kernel lets the agent open `perf_event_open` switch records on the
//!   followed threads (root, CAP_PERFMON, or `perf_event_paranoid` ≤ 1 for one's own
//!   processes), slices and switches come from those records instead and the run is labelled
//!   [`Fidelity::Exact`]; `/proc` still finds the threads and gives their CPU time, off-CPU
//!   reasons and counters.
//! - `procfs`: the `/proc` files of another program's threads (open once, read with `pread`).
//! - `programs`: the programs the page may start (the operator's list, the Python
//!   examples), and the thread table the command line prints.
//!
//! A thread is announced ([`Event::ThreadStart`]) [`NAME_GRACE_NS`] after it is found, so that
//! a name it gives itself right after starting (`prctl`, `pthread_setname_np`) is the one shown;
//! its first events wait with it. A name it gives itself later is an [`Event::ThreadRename`]
//! when a sample sees it.
//!
//! [`Fidelity::Sampled`]: coreplay_shared::event::Fidelity::Sampled
//! [`Fidelity::Exact`]: coreplay_shared::event::Fidelity::Exact
//! [`Event::ThreadStart`]: coreplay_shared::event::Event::ThreadStart
//! [`Event::ThreadRename`]: coreplay_shared::event::Event::ThreadRename

use std::time::Duration;

use coreplay_shared::watch::HzError;

use crate::run::Finished;
use procfs::ProcError;

mod exact;
mod infer;
mod launch;
pub mod procfs;
mod programs;
mod python;
mod sampler;

pub use launch::{Watched, start};
pub use programs::{
    PYTHON_EXAMPLES, default_programs, examples_dir, on_path, parse_program, python_behind_wrapper,
    split_words, thread_table,
};

/// How long after a thread is found it is announced (with the name it has then), ns.
pub const NAME_GRACE_NS: u64 = 50_000_000;
/// Most threads followed at once (each costs three or four open files).
pub const MAX_THREADS: usize = 4_096;

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
    /// Samples per second ([`MIN_HZ`]..=[`MAX_HZ`]).
    ///
    /// [`MIN_HZ`]: coreplay_shared::watch::MIN_HZ
    /// [`MAX_HZ`]: coreplay_shared::watch::MAX_HZ
    pub hz: u32,
    /// How to record.
    pub fidelity: FidelityChoice,
    /// Hard cap on the watch's duration (a started program is killed then).
    pub cap: Duration,
    /// Where a started program's output goes.
    pub output: ProgramOutput,
    /// Whether a started command gets the Python probe (`--no-python-probe` turns it off).
    pub python_probe: bool,
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
