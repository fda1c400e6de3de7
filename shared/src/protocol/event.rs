//! What the agent records while a scenario runs: per-thread and per-process events on one
//! clock, nanoseconds since the run started (`CLOCK_MONOTONIC`, which is system-wide, so
//! worker processes land on the same timeline).
//!
//! Threads are named by a small run-wide id (`tid`) given at [`Event::ThreadStart`]; the OS
//! thread id travels there once. CPU numbers are OS indices, as in the topology.
//!
//! Encoding: externally tagged JSON, e.g. `{"on_cpu":{"tid":1,"cpu":0,"start":10,"end":90}}`.

use serde::Serialize;

/// Nanoseconds since the run started.
pub type Ns = u64;

/// What a thread or process is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The agent process itself.
    Agent,
    /// A compute worker (pool thread, plain thread, worker process).
    Worker,
    /// A thread issuing I/O requests.
    Client,
    /// The thread running an event loop.
    EventLoop,
    /// The loopback server standing in for a database.
    Server,
}

/// Why a thread was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OffReason {
    /// Runnable, but the kernel ran something else (involuntary switch).
    Preempted,
    /// Waiting for the global lock.
    Lock,
    /// Waiting for I/O (a socket, the event loop's epoll).
    Io,
    /// Asleep by choice.
    Sleep,
    /// Off CPU without a switch the kernel counted (e.g. the hypervisor ran another VM).
    Unknown,
}

/// Steps of the global-lock protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockOp {
    /// Starts waiting for the lock.
    Request,
    /// Waited a whole switch interval and asks the holder to hand over.
    DropRequest,
    /// Holds the lock.
    Acquire,
    /// Gives the lock up.
    Release,
}

/// What a task waits for when it is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// A socket's readiness.
    Io,
    /// A timer.
    Timer,
    /// Whatever it awaits (an asyncio task: a socket, a timer, another task or a future); what
    /// it was is known when it is woken. Since protocol 8.
    Any,
}

/// Who woke a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WakeBy {
    /// The selector reported its socket ready.
    Io,
    /// Its timer fired.
    Timer,
    /// Another task (or itself, yielding).
    Task {
        /// The waking task's id.
        task: u32,
    },
    /// Something else (another thread).
    Other,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessEnd {
    /// Exited with this status code.
    Exited {
        /// The exit code.
        code: i32,
    },
    /// Killed by this signal.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// It ended, but its status went to its own parent before it could be read (a watched
    /// program's grandchildren).
    Unknown,
}

/// One recorded fact.
///
/// Encoded by serde's derive; decoded by `event_de.rs` (written out to compile small; tested
/// to read back what the encoder writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A process joined the run.
    ProcessStart {
        /// OS process id.
        pid: u32,
        /// When it was spawned (ns).
        at: Ns,
        /// Its name.
        name: String,
        /// What it is for.
        role: Role,
    },
    /// A worker process reported ready; `startup_ns` is from spawn to its first instruction
    /// of work.
    ProcessReady {
        /// OS process id.
        pid: u32,
        /// When (ns).
        at: Ns,
        /// Spawn to ready, ns.
        startup_ns: u64,
    },
    /// A process left the run.
    ProcessExit {
        /// OS process id.
        pid: u32,
        /// When (ns).
        at: Ns,
        /// Peak resident memory (VmHWM), bytes, where known.
        peak_rss_bytes: Option<u64>,
        /// How it ended.
        end: ProcessEnd,
    },
    /// A thread joined the run.
    ThreadStart {
        /// Run-wide thread id.
        tid: u32,
        /// OS process id.
        pid: u32,
        /// OS thread id.
        os_tid: u32,
        /// Thread name.
        name: String,
        /// What it is for.
        role: Role,
        /// When (ns).
        at: Ns,
    },
    /// A thread got a new name after it joined the run (`prctl(PR_SET_NAME)`,
    /// `pthread_setname_np`, a write to `/proc/…/comm`, or `exec` of another program), seen by
    /// `watch`. Since protocol 5.
    ThreadRename {
        /// Run-wide thread id.
        tid: u32,
        /// When it was seen (ns).
        at: Ns,
        /// The new name.
        name: String,
    },
    /// A thread ended; the kernel's own switch counts for it since it joined the run, read from
    /// `/proc/thread-self/status` just before (independently of the [`Event::Switch`] events).
    ThreadEnd {
        /// Run-wide thread id.
        tid: u32,
        /// When (ns).
        at: Ns,
        /// CPU time the thread used, ns (`CLOCK_THREAD_CPUTIME_ID`).
        cpu_ns: u64,
        /// The kernel's voluntary context switches of this thread (`getrusage`).
        kernel_voluntary: u64,
        /// The kernel's involuntary context switches of this thread.
        kernel_involuntary: u64,
    },
    /// The thread ran on `cpu` from `start` to `end`.
    OnCpu {
        /// Run-wide thread id.
        tid: u32,
        /// OS index of the hardware thread.
        cpu: u32,
        /// Start (ns).
        start: Ns,
        /// End (ns).
        end: Ns,
    },
    /// The thread did not run from `start` to `end`.
    OffCpu {
        /// Run-wide thread id.
        tid: u32,
        /// Start (ns).
        start: Ns,
        /// End (ns).
        end: Ns,
        /// Why.
        reason: OffReason,
    },
    /// The kernel switched the thread out (counts since the previous such event).
    Switch {
        /// Run-wide thread id.
        tid: u32,
        /// When (ns).
        at: Ns,
        /// Voluntary switches (it blocked).
        voluntary: u32,
        /// Involuntary switches (it was preempted).
        involuntary: u32,
    },
    /// The thread moved from one hardware thread to another.
    Migrate {
        /// Run-wide thread id.
        tid: u32,
        /// When it was first seen on `to` (ns).
        at: Ns,
        /// OS index it left.
        from: u32,
        /// OS index it arrived on.
        to: u32,
    },
    /// A step of the global-lock protocol.
    Lock {
        /// Run-wide thread id.
        tid: u32,
        /// When (ns).
        at: Ns,
        /// Which step.
        op: LockOp,
    },
    /// A span of pure computation by one thread (recorded where a scenario must show when it
    /// computed, e.g. only while holding the global lock).
    Compute {
        /// Run-wide thread id.
        tid: u32,
        /// Start (ns).
        start: Ns,
        /// End (ns).
        end: Ns,
    },
    /// An event-loop task was spawned.
    TaskSpawn {
        /// Task id, unique in the run.
        task: u32,
        /// When (ns).
        at: Ns,
        /// What it is, e.g. `req-17` or `ticker`.
        label: String,
        /// What it waits for when it is not running.
        waits_on: WaitKind,
    },
    /// The loop polled a task once.
    Poll {
        /// Task id.
        task: u32,
        /// Run-wide id of the loop's OS thread.
        tid: u32,
        /// OS index of the CPU the poll ran on.
        cpu: u32,
        /// Start (ns).
        start: Ns,
        /// End (ns).
        end: Ns,
        /// The task finished in this poll (its future resolved); else it is pending.
        ready: bool,
    },
    /// A task was woken: it joins the ready queue.
    Wake {
        /// Task id.
        task: u32,
        /// When (ns).
        at: Ns,
        /// Who woke it.
        by: WakeBy,
    },
    /// A task ended without finishing (the loop was stopped).
    TaskCancelled {
        /// Task id.
        task: u32,
        /// When (ns).
        at: Ns,
    },
    /// The loop blocked in the selector (epoll) waiting for readiness.
    LoopWait {
        /// Run-wide id of the loop's OS thread.
        tid: u32,
        /// Start (ns).
        start: Ns,
        /// End (ns).
        end: Ns,
        /// Tasks the readiness events and timers it returned woke.
        woken: u32,
    },
    /// The loop's queues changed. For an asyncio loop (its tasks wait on [`WaitKind::Any`]),
    /// `io` counts every task awaiting something and `timers` the timer callbacks scheduled,
    /// as asyncio keeps them.
    QueueDepth {
        /// When (ns).
        at: Ns,
        /// Woken tasks waiting to be polled.
        ready: u32,
        /// Tasks parked waiting for I/O.
        io: u32,
        /// Tasks parked waiting for a timer.
        timers: u32,
    },
    /// One request to the loopback server, from send to answer.
    Request {
        /// Run-wide thread id of the thread that issued it.
        tid: u32,
        /// Request number, 0-based.
        id: u32,
        /// Sent (ns).
        start: Ns,
        /// Answered (ns).
        end: Ns,
    },
}

impl Event {
    /// The time the event is ordered by (its start for intervals).
    pub fn time(&self) -> Ns {
        match self {
            Event::ProcessStart { at, .. }
            | Event::ProcessReady { at, .. }
            | Event::ProcessExit { at, .. }
            | Event::ThreadStart { at, .. }
            | Event::ThreadRename { at, .. }
            | Event::ThreadEnd { at, .. }
            | Event::Switch { at, .. }
            | Event::Migrate { at, .. }
            | Event::Lock { at, .. }
            | Event::TaskSpawn { at, .. }
            | Event::Wake { at, .. }
            | Event::TaskCancelled { at, .. }
            | Event::QueueDepth { at, .. } => *at,
            Event::OnCpu { start, .. }
            | Event::OffCpu { start, .. }
            | Event::Compute { start, .. }
            | Event::Poll { start, .. }
            | Event::LoopWait { start, .. }
            | Event::Request { start, .. } => *start,
        }
    }

    /// The thread id field, for rewriting ids when merging another process's events.
    pub fn tid_mut(&mut self) -> Option<&mut u32> {
        match self {
            Event::ThreadStart { tid, .. }
            | Event::ThreadRename { tid, .. }
            | Event::ThreadEnd { tid, .. }
            | Event::OnCpu { tid, .. }
            | Event::OffCpu { tid, .. }
            | Event::Switch { tid, .. }
            | Event::Migrate { tid, .. }
            | Event::Lock { tid, .. }
            | Event::Compute { tid, .. }
            | Event::Poll { tid, .. }
            | Event::LoopWait { tid, .. }
            | Event::Request { tid, .. } => Some(tid),
            Event::ProcessStart { .. }
            | Event::ProcessReady { .. }
            | Event::ProcessExit { .. }
            | Event::TaskSpawn { .. }
            | Event::Wake { .. }
            | Event::TaskCancelled { .. }
            | Event::QueueDepth { .. } => None,
        }
    }

    /// The thread the event is about, if it is about one.
    pub fn tid(&self) -> Option<u32> {
        match self {
            Event::ThreadStart { tid, .. }
            | Event::ThreadRename { tid, .. }
            | Event::ThreadEnd { tid, .. }
            | Event::OnCpu { tid, .. }
            | Event::OffCpu { tid, .. }
            | Event::Switch { tid, .. }
            | Event::Migrate { tid, .. }
            | Event::Lock { tid, .. }
            | Event::Compute { tid, .. }
            | Event::Poll { tid, .. }
            | Event::LoopWait { tid, .. }
            | Event::Request { tid, .. } => Some(*tid),
            Event::ProcessStart { .. }
            | Event::ProcessReady { .. }
            | Event::ProcessExit { .. }
            | Event::TaskSpawn { .. }
            | Event::Wake { .. }
            | Event::TaskCancelled { .. }
            | Event::QueueDepth { .. } => None,
        }
    }
}

/// How a stream of events was obtained, so the page can say how far to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Fidelity {
    /// From the kernel's own context-switch records.
    Exact,
    /// Threads timed themselves around small chunks of work (tens of µs) and read the kernel's
    /// switch counters; switch *counts* are the kernel's, their *times* are known to a chunk.
    SelfTimed,
    /// Polled from `/proc` at `hz`.
    Sampled {
        /// Polls per second.
        hz: u32,
    },
}

impl std::fmt::Display for Fidelity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fidelity::Exact => f.write_str("exact"),
            Fidelity::SelfTimed => f.write_str("self-timed"),
            Fidelity::Sampled { hz } => write!(f, "sampled at {hz} Hz"),
        }
    }
}
