//! A run's events indexed by time, so that the state at any instant — which thread runs on
//! which hardware thread, who queues for which core, who holds the lock, where every
//! event-loop task is — can be asked for in logarithmic time, forwards or backwards.
//!
//! The page (live and replayed runs), `coreplay render` and the tests all use this one model,
//! so what a still frame, a test and the animation show cannot drift apart.
//!
//! Events may arrive in any order (each thread flushes its own buffer); [`Replay::apply`] only
//! appends, and [`Replay::prepare`] sorts what changed since the last call. Queries need a
//! prepared replay (they answer from what was prepared).

use std::{
    collections::{BTreeMap, HashMap},
    rc::Rc,
};

use crate::{
    event::{Event, LockOp, Ns, OffReason, Role, WaitKind},
    validate::lock_rank,
};

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
    name_at: Option<Ns>,
    /// What it is for.
    pub role: Role,
    /// When it joined.
    pub start: Ns,
    /// When it ended, if it did.
    pub end: Option<Ns>,
    /// Running spans: (start, end, cpu), sorted once prepared.
    on: Vec<(Ns, Ns, u32)>,
    /// Off-CPU spans, sorted once prepared.
    off: Vec<OffSpan>,
    /// Lock steps (at, op), sorted once prepared.
    lock: Vec<(Ns, LockOp)>,
    dirty: bool,
}

impl ThreadInfo {
    /// Takes `name`, seen at `at`, unless a later one is known.
    fn rename(&mut self, at: Ns, name: &str) {
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

#[derive(Debug, Clone, Default, PartialEq)]
struct Lane {
    slices: Vec<Slice>,
    /// `busy[i]` = running time of `slices[..i]`, once prepared.
    busy: Vec<Ns>,
    dirty: bool,
}

/// Where an event-loop task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    /// Woken (or new), waiting in the ready queue.
    Ready,
    /// Being polled.
    Running,
    /// Parked until its socket is ready.
    ParkedIo,
    /// Parked until its timer fires.
    ParkedTimer,
    /// Its future resolved.
    Done,
    /// Dropped before it finished.
    Cancelled,
}

/// Every task state, in discriminant order.
const ALL_TASK_STATES: [TaskState; 6] = [
    TaskState::Ready,
    TaskState::Running,
    TaskState::ParkedIo,
    TaskState::ParkedTimer,
    TaskState::Done,
    TaskState::Cancelled,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Spawn,
    Wake,
    PollStart,
    PollEnd { ready: bool },
    Cancel,
}

/// An event-loop task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    /// Task id.
    pub task: u32,
    /// Its label.
    pub label: String,
    /// What it waits for when parked.
    pub waits_on: WaitKind,
    /// The loop thread that polls it, once it has been polled.
    pub tid: Option<u32>,
    steps: Vec<(Ns, Step)>,
    /// Derived once prepared: (from, state), sorted.
    states: Vec<(Ns, TaskState)>,
    dirty: bool,
}

impl TaskInfo {
    fn derive(&mut self) {
        self.steps.sort_by_key(|s| (s.0, step_rank(s.1)));
        self.states.clear();
        let mut state = None;
        let mut woken_in_poll = false;
        for &(at, step) in &self.steps {
            let next = match step {
                Step::Spawn => TaskState::Ready,
                Step::Wake => {
                    if state == Some(TaskState::Running) {
                        woken_in_poll = true;
                        continue;
                    }
                    if matches!(state, Some(TaskState::Done | TaskState::Cancelled)) {
                        continue;
                    }
                    TaskState::Ready
                }
                Step::PollStart => {
                    woken_in_poll = false;
                    TaskState::Running
                }
                Step::PollEnd { ready: true } => TaskState::Done,
                Step::PollEnd { ready: false } if woken_in_poll => TaskState::Ready,
                Step::PollEnd { ready: false } => match self.waits_on {
                    WaitKind::Io => TaskState::ParkedIo,
                    WaitKind::Timer => TaskState::ParkedTimer,
                },
                Step::Cancel => TaskState::Cancelled,
            };
            if state != Some(next) || next == TaskState::Ready {
                self.states.push((at, next));
                state = Some(next);
            }
        }
        self.dirty = false;
    }

    /// Where the task is at `t` and since when (`None` before it was spawned).
    pub fn state_at(&self, t: Ns) -> Option<(TaskState, Ns)> {
        let i = self.states.partition_point(|s| s.0 <= t);
        let (since, state) = *self.states.get(i.checked_sub(1)?)?;
        Some((state, since))
    }
}

/// Orders steps that share a timestamp so that a zero-length poll still ends after it starts.
fn step_rank(s: Step) -> u8 {
    match s {
        Step::Spawn => 0,
        Step::Wake => 1,
        Step::PollStart => 2,
        Step::PollEnd { .. } => 3,
        Step::Cancel => 4,
    }
}

/// Everything recorded of one run, indexed for time queries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    threads: Vec<ThreadInfo>,
    by_tid: IdMap,
    processes: Vec<ProcessInfo>,
    lanes: BTreeMap<u32, Lane>,
    /// Every lock step, (at, tid, op), sorted once prepared.
    lock: Vec<(Ns, u32, LockOp)>,
    /// Each process's own lock (like each Python process's own GIL), by pid, once prepared:
    /// its steps' times and, for each prefix, the hand-overs among them.
    locks: BTreeMap<u32, ProcessLock>,
    tasks: Vec<TaskInfo>,
    by_task: IdMap,
    /// Every time any task changes state, sorted once prepared.
    task_changes: Vec<Ns>,
    /// Polls of the event loop: (start, end, task), sorted once prepared.
    polls: Vec<(Ns, Ns, u32)>,
    /// Selector waits: (start, end, woken), sorted once prepared.
    waits: Vec<(Ns, Ns, u32)>,
    /// Per event loop (its thread's run-wide id): poll starts, sorted once prepared. A run may
    /// hold several loops (a scenario's variants one after the other): the event-loop view
    /// counts the shown loop's polls only.
    loop_polls: BTreeMap<u32, Vec<Ns>>,
    /// Per event loop: its selector waits, (start, end, woken), sorted once prepared.
    loop_waits: BTreeMap<u32, Vec<(Ns, Ns, u32)>>,
    /// The agent's queue counts: (at, ready, io, timers), sorted once prepared.
    depth: Vec<(Ns, u32, u32, u32)>,
    /// Requests: (start, end, tid).
    requests: Vec<(Ns, Ns, u32)>,
    events: u64,
    end: Ns,
    dirty: bool,
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

/// One process's lock steps, indexed.
#[derive(Debug, Clone, Default, PartialEq)]
struct ProcessLock {
    /// Step times, sorted.
    at: Vec<Ns>,
    /// `handovers[i]`: hand-overs among the first `i` steps.
    handovers: Vec<u32>,
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

/// The event loop at an instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopFrame {
    /// The loop shown: the run-wide id of the thread that polled last (none before any poll).
    pub thread: Option<u32>,
    /// Event loops (threads that polled tasks) in the whole run.
    pub loops: u32,
    /// The task being polled, and since when.
    pub running: Option<(u32, Ns)>,
    /// Ready task ids, in the order they became ready (up to the sample size).
    pub ready: Vec<u32>,
    /// Tasks by state.
    pub counts: HashMap<TaskState, u32>,
    /// Up to the sample size of tasks in each parked or finished state, by id.
    pub samples: HashMap<TaskState, Vec<u32>>,
    /// The selector wait in progress: its start and how many tasks it will wake.
    pub waiting: Option<(Ns, u32)>,
    /// The last finished selector wait before now: slept ns, tasks woken.
    pub last_wait: Option<(Ns, u32)>,
    /// The shown loop's polls so far.
    pub polls: u32,
    /// The shown loop's selector waits so far.
    pub waits: u32,
    /// The agent's own queue counts at this instant: (ready, io, timers).
    pub depth: Option<(u32, u32, u32)>,
}

impl LoopFrame {
    /// Tasks in `state`.
    pub fn count(&self, state: TaskState) -> u32 {
        self.counts.get(&state).copied().unwrap_or(0)
    }
}

/// Run-wide ids (threads, tasks) to indices: a plain vector for the small dense ids the agent
/// hands out, a hash map for any others (a trace file may hold anything). Lookups run
/// thousands of times per animation frame.
#[derive(Debug, Clone, Default, PartialEq)]
struct IdMap {
    dense: Vec<u32>,
    sparse: HashMap<u32, usize>,
}

/// Ids below this are kept in the vector.
const DENSE_IDS: u32 = 1 << 20;

impl IdMap {
    fn get(&self, id: u32) -> Option<usize> {
        if id < DENSE_IDS {
            self.dense
                .get(id as usize)
                .filter(|&&i| i != u32::MAX)
                .map(|&i| i as usize)
        } else {
            self.sparse.get(&id).copied()
        }
    }

    fn insert(&mut self, id: u32, index: usize) {
        if id < DENSE_IDS {
            let i = id as usize;
            if self.dense.len() <= i {
                self.dense.resize(i + 1, u32::MAX);
            }
            self.dense[i] = u32::try_from(index).unwrap_or(u32::MAX);
        } else {
            self.sparse.insert(id, index);
        }
    }
}

fn lower(v: &[(Ns, Ns, u32)], t: Ns) -> usize {
    v.partition_point(|x| x.0 <= t)
}

impl Replay {
    /// An empty replay.
    pub fn new() -> Replay {
        Replay::default()
    }

    /// Folds a batch in (append only; call [`Replay::prepare`] before querying).
    pub fn extend<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events {
            self.apply(e);
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, e: &Event) {
        self.events += 1;
        self.dirty = true;
        let end = match e {
            Event::OnCpu { end, .. }
            | Event::OffCpu { end, .. }
            | Event::Compute { end, .. }
            | Event::Poll { end, .. }
            | Event::LoopWait { end, .. }
            | Event::Request { end, .. } => *end,
            other => other.time(),
        };
        self.end = self.end.max(end);
        match e {
            Event::ProcessStart {
                pid,
                at,
                name,
                role,
            } => {
                if let Some(p) = self.processes.iter_mut().find(|p| p.pid == *pid) {
                    p.name.clone_from(name);
                    p.start = *at;
                } else {
                    self.processes.push(ProcessInfo {
                        pid: *pid,
                        name: name.clone(),
                        role: *role,
                        start: *at,
                        end: None,
                    });
                }
            }
            Event::ProcessExit { pid, at, .. } => {
                if let Some(p) = self.processes.iter_mut().find(|p| p.pid == *pid) {
                    p.end = Some(*at);
                }
            }
            Event::ProcessReady { .. } | Event::Switch { .. } | Event::Migrate { .. } => {}
            Event::ThreadStart {
                tid,
                pid,
                name,
                role,
                at,
                ..
            } => {
                let t = self.thread_mut(*tid);
                t.pid = *pid;
                t.rename(*at, name);
                t.role = *role;
                t.start = *at;
                if !self.processes.iter().any(|p| p.pid == *pid) {
                    self.processes.push(ProcessInfo {
                        pid: *pid,
                        name: format!("process {pid}"),
                        role: *role,
                        start: *at,
                        end: None,
                    });
                }
            }
            Event::ThreadRename { tid, at, name } => self.thread_mut(*tid).rename(*at, name),
            Event::ThreadEnd { tid, at, .. } => self.thread_mut(*tid).end = Some(*at),
            Event::OnCpu {
                tid,
                cpu,
                start,
                end,
            } => {
                let t = self.thread_mut(*tid);
                t.on.push((*start, *end, *cpu));
                t.dirty = true;
                let lane = self.lanes.entry(*cpu).or_default();
                lane.slices.push(Slice {
                    start: *start,
                    end: *end,
                    tid: *tid,
                });
                lane.dirty = true;
            }
            Event::OffCpu {
                tid,
                start,
                end,
                reason,
            } => {
                let t = self.thread_mut(*tid);
                t.off.push(OffSpan {
                    start: *start,
                    end: *end,
                    reason: *reason,
                });
                t.dirty = true;
            }
            Event::Lock { tid, at, op } => {
                let t = self.thread_mut(*tid);
                t.lock.push((*at, *op));
                t.dirty = true;
                self.lock.push((*at, *tid, *op));
            }
            Event::Compute { .. } => {}
            Event::TaskSpawn {
                task,
                at,
                label,
                waits_on,
            } => {
                let t = self.task_mut(*task);
                t.label.clone_from(label);
                t.waits_on = *waits_on;
                t.steps.push((*at, Step::Spawn));
            }
            Event::Poll {
                task,
                tid,
                start,
                end,
                ready,
                ..
            } => {
                self.polls.push((*start, *end, *task));
                self.loop_polls.entry(*tid).or_default().push(*start);
                let t = self.task_mut(*task);
                t.tid = Some(*tid);
                t.steps.push((*start, Step::PollStart));
                t.steps.push((*end, Step::PollEnd { ready: *ready }));
            }
            Event::Wake { task, at, .. } => self.task_mut(*task).steps.push((*at, Step::Wake)),
            Event::TaskCancelled { task, at } => {
                self.task_mut(*task).steps.push((*at, Step::Cancel))
            }
            Event::LoopWait {
                tid,
                start,
                end,
                woken,
            } => {
                self.waits.push((*start, *end, *woken));
                self.loop_waits
                    .entry(*tid)
                    .or_default()
                    .push((*start, *end, *woken));
            }
            Event::QueueDepth {
                at,
                ready,
                io,
                timers,
            } => self.depth.push((*at, *ready, *io, *timers)),
            Event::Request {
                tid, start, end, ..
            } => self.requests.push((*start, *end, *tid)),
        }
    }

    fn thread_mut(&mut self, tid: u32) -> &mut ThreadInfo {
        let i = match self.by_tid.get(tid) {
            Some(i) => i,
            None => {
                self.threads.push(ThreadInfo {
                    tid,
                    pid: 0,
                    name: Rc::from(format!("thread {tid}")),
                    name_at: None,
                    role: Role::Worker,
                    start: 0,
                    end: None,
                    on: Vec::new(),
                    off: Vec::new(),
                    lock: Vec::new(),
                    dirty: false,
                });
                self.by_tid.insert(tid, self.threads.len() - 1);
                self.threads.len() - 1
            }
        };
        &mut self.threads[i]
    }

    fn task_mut(&mut self, task: u32) -> &mut TaskInfo {
        let i = match self.by_task.get(task) {
            Some(i) => i,
            None => {
                self.tasks.push(TaskInfo {
                    task,
                    label: format!("task {task}"),
                    waits_on: WaitKind::Io,
                    tid: None,
                    steps: Vec::new(),
                    states: Vec::new(),
                    dirty: true,
                });
                self.by_task.insert(task, self.tasks.len() - 1);
                self.tasks.len() - 1
            }
        };
        let t = &mut self.tasks[i];
        t.dirty = true;
        t
    }

    /// Sorts and indexes what arrived since the last call (cheap when nothing did).
    pub fn prepare(&mut self) {
        if !self.dirty {
            return;
        }
        for lane in self.lanes.values_mut().filter(|l| l.dirty) {
            lane.slices.sort_by_key(|s| (s.start, s.end));
            lane.busy.clear();
            lane.busy.reserve(lane.slices.len() + 1);
            let mut sum = 0;
            lane.busy.push(0);
            for s in &lane.slices {
                sum += s.end.saturating_sub(s.start);
                lane.busy.push(sum);
            }
            lane.dirty = false;
        }
        for t in self.threads.iter_mut().filter(|t| t.dirty) {
            t.on.sort_unstable();
            t.off.sort_by_key(|o| (o.start, o.end));
            t.lock.sort_by_key(|l| (l.0, lock_rank(l.1)));
            t.dirty = false;
        }
        let mut tasks_changed = false;
        for t in self.tasks.iter_mut().filter(|t| t.dirty) {
            t.derive();
            tasks_changed = true;
        }
        if tasks_changed {
            self.task_changes.clear();
            self.task_changes
                .extend(self.tasks.iter().flat_map(|t| t.states.iter().map(|s| s.0)));
            self.task_changes.sort_unstable();
            self.task_changes.dedup();
        }
        self.lock.sort_by_key(|l| (l.0, lock_rank(l.2)));
        self.locks.clear();
        let mut last: HashMap<u32, (u32, Option<u32>)> = HashMap::new();
        for &(at, tid, op) in &self.lock {
            let pid = self.thread(tid).map_or(0, |t| t.pid);
            let lock = self.locks.entry(pid).or_insert_with(|| ProcessLock {
                at: Vec::new(),
                handovers: vec![0],
            });
            let (n, holder) = last.entry(pid).or_insert((0, None));
            if op == LockOp::Acquire {
                if holder.is_some_and(|h| h != tid) {
                    *n += 1;
                }
                *holder = Some(tid);
            }
            lock.at.push(at);
            lock.handovers.push(*n);
        }
        self.polls.sort_unstable();
        self.waits.sort_unstable();
        for v in self.loop_polls.values_mut() {
            v.sort_unstable();
        }
        for v in self.loop_waits.values_mut() {
            v.sort_unstable();
        }
        self.depth.sort_unstable();
        self.requests.sort_unstable();
        self.dirty = false;
    }

    /// Events folded in.
    pub fn event_count(&self) -> u64 {
        self.events
    }

    /// The latest time any event reaches, ns.
    pub fn end(&self) -> Ns {
        self.end
    }

    /// Threads, in the order they were first seen.
    pub fn threads(&self) -> &[ThreadInfo] {
        &self.threads
    }

    /// A thread by run-wide id.
    pub fn thread(&self, tid: u32) -> Option<&ThreadInfo> {
        self.by_tid.get(tid).map(|i| &self.threads[i])
    }

    /// Processes, in the order they were first seen.
    pub fn processes(&self) -> &[ProcessInfo] {
        &self.processes
    }

    /// Event-loop tasks, in the order they were first seen.
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }

    /// A task by id.
    pub fn task(&self, task: u32) -> Option<&TaskInfo> {
        self.by_task.get(task).map(|i| &self.tasks[i])
    }

    /// Whether the run has an event loop.
    pub fn has_event_loop(&self) -> bool {
        !self.tasks.is_empty()
    }

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
    fn state_of(th: &ThreadInfo, t: Ns) -> ThreadState {
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
    fn lock_step_at(th: &ThreadInfo, t: Ns) -> Option<LockOp> {
        let i = th.lock.partition_point(|l| l.0 <= t);
        i.checked_sub(1).map(|k| th.lock[k].1)
    }

    /// Where a thread is at `t` by its recorded spans alone.
    fn recorded_state_of(th: &ThreadInfo, t: Ns) -> ThreadState {
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
    fn last_cpu_before(&self, tid: u32, t: Ns) -> Option<u32> {
        let th = self.thread(tid)?;
        let i = th.on.partition_point(|s| s.0 < t);
        i.checked_sub(1).map(|i| th.on[i].2)
    }

    /// Every hardware thread that ran something, at `t`.
    pub fn cpus_at(&self, t: Ns) -> Vec<CpuFrame> {
        self.cpus_at_with(t, &self.thread_states(t))
    }

    /// Where every thread is at `t`, in [`Replay::threads`] order.
    pub fn thread_states(&self, t: Ns) -> Vec<ThreadState> {
        self.threads
            .iter()
            .map(|th| Self::state_of(th, t))
            .collect()
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

    fn off_reason_at(&self, tid: u32, at: Ns) -> Option<OffReason> {
        let th = self.thread(tid)?;
        let j = th.off.partition_point(|s| s.start <= at);
        j.checked_sub(1)
            .and_then(|j| th.off.get(j))
            .filter(|o| o.start == at || (o.start <= at && at < o.end))
            .map(|o| o.reason)
    }

    /// Each process's lock at `t`, by pid (empty when the run has no lock).
    pub fn locks_at(&self, t: Ns) -> Vec<LockFrame> {
        self.locks_at_with(t, &self.thread_states(t))
    }

    /// [`Replay::locks_at`] with the threads' states at `t` already known.
    pub fn locks_at_with(&self, t: Ns, states: &[ThreadState]) -> Vec<LockFrame> {
        let mut frames: BTreeMap<u32, (LockFrame, Vec<(Ns, u32)>)> = self
            .locks
            .iter()
            .map(|(&pid, lock)| {
                let n = lock.at.partition_point(|&a| a <= t);
                let frame = LockFrame {
                    pid,
                    handovers: lock.handovers.get(n).copied().unwrap_or(0),
                    ..LockFrame::default()
                };
                (pid, (frame, Vec::new()))
            })
            .collect();
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
                waiting.sort_unstable();
                frame.waiters = waiting.into_iter().map(|w| w.1).collect();
                frame
            })
            .collect()
    }

    /// The event loop at `t`, with up to `sample` task ids per state (`None` when the run has
    /// no event loop). A run with loops one after another (a scenario's variants) shows the
    /// loop that polled last, without the tasks of the others.
    pub fn loop_at(&self, t: Ns, sample: usize) -> Option<LoopFrame> {
        if self.tasks.is_empty() {
            return None;
        }
        let current = lower(&self.polls, t)
            .checked_sub(1)
            .and_then(|i| self.polls.get(i))
            .and_then(|p| self.task(p.2))
            .and_then(|task| task.tid);
        let mut frame = LoopFrame {
            thread: current,
            loops: u32::try_from(self.loop_polls.len()).unwrap_or(u32::MAX),
            ..LoopFrame::default()
        };
        let mut ready: Vec<(Ns, u32)> = Vec::new();
        // Counted in arrays (this runs every frame over up to tens of thousands of tasks).
        let mut counts = [0u32; 6];
        let mut samples: [Vec<u32>; 6] = Default::default();
        for task in &self.tasks {
            if current.is_some() && task.tid.is_some() && task.tid != current {
                continue;
            }
            let Some((state, since)) = task.state_at(t) else {
                continue;
            };
            let i = state as usize;
            counts[i] += 1;
            match state {
                TaskState::Ready => ready.push((since, task.task)),
                TaskState::Running => frame.running = Some((task.task, since)),
                _ => {
                    if samples[i].len() < sample {
                        samples[i].push(task.task);
                    }
                }
            }
        }
        for (state, (count, sample)) in ALL_TASK_STATES
            .into_iter()
            .zip(counts.into_iter().zip(samples))
        {
            if count > 0 {
                frame.counts.insert(state, count);
            }
            if !sample.is_empty() {
                frame.samples.insert(state, sample);
            }
        }
        // Only the front of the queue is shown: pick it in linear time, then order it.
        if ready.len() > sample && sample > 0 {
            ready.select_nth_unstable(sample - 1);
            ready.truncate(sample);
        }
        ready.sort_unstable();
        frame.ready = ready.into_iter().take(sample).map(|r| r.1).collect();
        // The shown loop's own selector waits and polls (all of them before any loop polled).
        let waits = match current {
            Some(tid) => self.loop_waits.get(&tid).map_or(&[][..], |w| &w[..]),
            None => &self.waits[..],
        };
        let w = lower(waits, t);
        if let Some(&(start, end, woken)) = w.checked_sub(1).and_then(|i| waits.get(i)) {
            if t < end {
                frame.waiting = Some((start, woken));
                frame.last_wait = w
                    .checked_sub(2)
                    .and_then(|i| waits.get(i))
                    .map(|&(s, e, n)| (e - s.min(e), n));
            } else {
                frame.last_wait = Some((end - start.min(end), woken));
            }
        }
        frame.waits = u32::try_from(w).unwrap_or(u32::MAX);
        let polls = match current.and_then(|tid| self.loop_polls.get(&tid)) {
            Some(starts) => starts.partition_point(|&s| s <= t),
            None => lower(&self.polls, t),
        };
        frame.polls = u32::try_from(polls).unwrap_or(u32::MAX);
        // Queue counts name no loop: those from before the shown loop's first poll belong to
        // an earlier loop (a scenario's variants run one after the other).
        let first_poll = current
            .and_then(|tid| self.loop_polls.get(&tid))
            .and_then(|starts| starts.first().copied());
        let d = self.depth.partition_point(|d| d.0 <= t);
        frame.depth = d
            .checked_sub(1)
            .and_then(|i| self.depth.get(i))
            .filter(|d| first_poll.is_none_or(|f| d.0 >= f))
            .map(|&(_, r, io, tm)| (r, io, tm));
        Some(frame)
    }

    /// Requests answered by `t`, and in flight at `t`.
    pub fn requests_at(&self, t: Ns) -> (u32, u32) {
        let mut done = 0;
        let mut flight = 0;
        for &(s, e, _) in &self.requests[..lower(&self.requests, t)] {
            if e <= t {
                done += 1;
            } else if s <= t {
                flight += 1;
            }
        }
        (done, flight)
    }

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
        let i = self.task_changes.partition_point(|&c| c <= t);
        if let Some(&c) = self.task_changes.get(i) {
            consider(c);
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
        let i = self.task_changes.partition_point(|&c| c < t);
        if let Some(&c) = i.checked_sub(1).and_then(|i| self.task_changes.get(i)) {
            consider(c);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::WakeBy,
        testkit::{lock, off, on, thread_start},
    };

    fn start(tid: u32, pid: u32, name: &str) -> Event {
        thread_start(tid, pid, name, 0)
    }

    /// Two cores, three threads: t1 on cpu0 is preempted by t3 at 100 and comes back at 200;
    /// t2 runs on cpu1, sleeps from 150 to 250, then migrates to cpu0 at 300.
    fn two_cores() -> Replay {
        let mut r = Replay::new();
        // Deliberately out of order, as per-thread buffers flush.
        let events = vec![
            on(2, 1, 0, 150),
            off(2, 150, 250, OffReason::Sleep),
            on(2, 1, 250, 280),
            on(2, 0, 300, 400),
            start(1, 10, "w1"),
            start(2, 10, "w2"),
            start(3, 11, "other"),
            on(1, 0, 0, 100),
            off(1, 100, 200, OffReason::Preempted),
            on(1, 0, 200, 300),
            on(3, 0, 100, 200),
            Event::ThreadEnd {
                tid: 3,
                at: 210,
                cpu_ns: 100,
                kernel_voluntary: 1,
                kernel_involuntary: 0,
            },
        ];
        r.extend(&events);
        r.prepare();
        r
    }

    fn cpu(frames: &[CpuFrame], cpu: u32) -> &CpuFrame {
        frames.iter().find(|f| f.cpu == cpu).expect("cpu present")
    }

    #[test]
    fn right_thread_on_right_core() {
        let r = two_cores();
        let f = r.cpus_at(50);
        assert_eq!(cpu(&f, 0).running, Some((1, 0)));
        assert_eq!(cpu(&f, 1).running, Some((2, 0)));
        let f = r.cpus_at(120);
        assert_eq!(cpu(&f, 0).running, Some((3, 100)));
        let f = r.cpus_at(200);
        assert_eq!(cpu(&f, 0).running, Some((1, 200)));
        assert_eq!(cpu(&f, 1).running, None, "t2 sleeps");
        assert_eq!(r.thread_state(2, 200), ThreadState::Off(OffReason::Sleep));
        let f = r.cpus_at(350);
        assert_eq!(cpu(&f, 0).running, Some((2, 300)));
        assert_eq!(cpu(&f, 0).migrated_from, Some(1));
        assert_eq!(r.thread_state(3, 250), ThreadState::Ended);
        assert_eq!(
            r.thread_state(1, 150),
            ThreadState::Off(OffReason::Preempted)
        );
    }

    #[test]
    fn preempted_thread_queues_at_its_core_and_switch_kinds_differ() {
        let r = two_cores();
        let f = r.cpus_at(150);
        let c0 = cpu(&f, 0);
        assert_eq!(
            c0.queue,
            vec![1],
            "t1 was preempted on cpu0 and waits for it"
        );
        let out = c0.last_out.expect("a hand-over happened");
        assert_eq!((out.tid, out.at), (1, 100));
        assert!(out.involuntary());
        let f = r.cpus_at(260);
        let c1 = cpu(&f, 1);
        assert_eq!(c1.running, Some((2, 250)));
        let out = c1.last_out.expect("t2 left cpu1 at 150");
        assert_eq!(out.reason, Some(OffReason::Sleep));
        assert!(!out.involuntary());
    }

    #[test]
    fn counters_count_switches_and_busy_time() {
        let r = two_cores();
        let f = r.cpus_at(250);
        let c0 = cpu(&f, 0);
        assert_eq!(c0.switches, 3, "t1, t3, t1 again");
        assert_eq!(c0.busy_ns, 100 + 100 + 50);
        let c1 = cpu(&f, 1);
        assert_eq!(c1.switches, 2);
        assert_eq!(c1.busy_ns, 150);
        let f = r.cpus_at(0);
        assert_eq!(cpu(&f, 0).busy_ns, 0);
        assert_eq!(cpu(&f, 0).switches, 1);
    }

    #[test]
    fn slices_window_and_stepping() {
        let r = two_cores();
        let s: Vec<u32> = r.slices(0, 150, 320).iter().map(|s| s.tid).collect();
        assert_eq!(s, vec![3, 1, 2]);
        assert!(r.slices(7, 0, 100).is_empty());
        assert_eq!(r.next_change(0), Some(100));
        assert_eq!(r.next_change(100), Some(150));
        assert_eq!(r.prev_change(150), Some(100));
        assert_eq!(r.prev_change(0), None);
        let mut t = 0;
        let mut steps = 0;
        while let Some(n) = r.next_change(t) {
            assert!(n > t);
            t = n;
            steps += 1;
        }
        assert_eq!(t, 400);
        assert_eq!(steps, 8, "100 150 200 210 (t3 ends) 250 280 300 400");
    }

    #[test]
    fn lock_holder_and_waiters() {
        let mut r = Replay::new();
        r.extend(&[
            start(1, 1, "a"),
            start(2, 1, "b"),
            start(3, 1, "c"),
            lock(1, 0, LockOp::Request),
            lock(1, 0, LockOp::Acquire),
            lock(2, 10, LockOp::Request),
            lock(3, 20, LockOp::Request),
            lock(2, 60, LockOp::DropRequest),
            lock(1, 70, LockOp::Release),
            lock(2, 70, LockOp::Acquire),
            lock(1, 71, LockOp::Request),
        ]);
        r.prepare();
        let one = |r: &Replay, t| {
            let mut locks = r.locks_at(t);
            assert_eq!(locks.len(), 1, "one process, one lock");
            locks.remove(0)
        };
        let f = one(&r, 30);
        assert_eq!((f.pid, f.holder), (1, Some((1, 0))));
        assert_eq!(f.waiters, vec![2, 3]);
        assert!(!f.drop_requested);
        let f = one(&r, 65);
        assert!(f.drop_requested);
        let f = one(&r, 70);
        assert_eq!(f.holder, Some((2, 70)));
        assert_eq!(f.waiters, vec![3]);
        assert_eq!(f.handovers, 1);
        let f = one(&r, 80);
        assert_eq!(f.waiters, vec![3, 1]);
        assert!(two_cores().locks_at(10).is_empty());
    }

    /// Each process has its own lock: two processes' holders at once, hand-overs counted
    /// apart (a process pool was once drawn as one lock "held by proc-15 · 15 hand-overs").
    #[test]
    fn each_process_has_its_own_lock() {
        let mut r = Replay::new();
        r.extend(&[
            start(1, 100, "p1-a"),
            start(2, 100, "p1-b"),
            start(3, 200, "p2-a"),
            lock(1, 0, LockOp::Request),
            lock(1, 0, LockOp::Acquire),
            lock(3, 5, LockOp::Request),
            lock(3, 5, LockOp::Acquire),
            lock(2, 10, LockOp::Request),
            lock(1, 20, LockOp::Release),
            lock(2, 20, LockOp::Acquire),
        ]);
        r.prepare();
        let locks = r.locks_at(15);
        assert_eq!(locks.len(), 2);
        assert_eq!((locks[0].pid, locks[0].holder), (100, Some((1, 0))));
        assert_eq!(locks[0].waiters, vec![2]);
        assert_eq!((locks[1].pid, locks[1].holder), (200, Some((3, 5))));
        assert!(locks[1].waiters.is_empty());
        let locks = r.locks_at(25);
        assert_eq!((locks[0].handovers, locks[1].handovers), (1, 0));
    }

    /// A thread is in exactly one state, and the lock's waiters are the threads waiting for
    /// it: a waiter on a CPU or queued for one is there, not also in the lock's list; a
    /// waiter whose off-CPU span says it sleeps waits for the lock; a holder is never shown
    /// waiting for it.
    #[test]
    fn lock_waiters_and_thread_states_agree() {
        let mut r = Replay::new();
        r.extend(&[
            start(1, 1, "holder"),
            start(2, 1, "asleep-waiter"),
            start(3, 1, "running-waiter"),
            start(4, 1, "queued-waiter"),
            lock(1, 0, LockOp::Acquire),
            lock(2, 1, LockOp::Request),
            lock(3, 1, LockOp::Request),
            lock(4, 1, LockOp::Request),
            on(1, 0, 0, 100),
            // The holder's last wait for the lock is stamped as ending just after it took it.
            off(1, 100, 102, OffReason::Lock),
            off(2, 1, 100, OffReason::Sleep),
            on(3, 1, 1, 100),
            off(4, 1, 100, OffReason::Preempted),
        ]);
        r.prepare();
        let states = r.thread_states(50);
        assert_eq!(
            states,
            vec![
                ThreadState::Running { cpu: 0 },
                ThreadState::Off(OffReason::Lock),
                ThreadState::Running { cpu: 1 },
                ThreadState::Off(OffReason::Preempted),
            ]
        );
        assert_eq!(r.locks_at(50)[0].waiters, vec![2]);
        // The holder off the CPU with a lock-wait span it no longer has: not waiting.
        assert_eq!(r.thread_state(1, 101), ThreadState::Between);
    }

    #[test]
    fn event_loop_queue_and_parked_sets() {
        let mut r = Replay::new();
        let spawn = |task, at, waits_on| Event::TaskSpawn {
            task,
            at,
            label: format!("req-{task}"),
            waits_on,
        };
        let poll = |task, start, end, ready| Event::Poll {
            task,
            tid: 1,
            cpu: 0,
            start,
            end,
            ready,
        };
        r.extend(&[
            spawn(1, 0, WaitKind::Io),
            spawn(2, 1, WaitKind::Io),
            spawn(3, 2, WaitKind::Timer),
            poll(1, 10, 20, false),
            poll(2, 20, 30, false),
            poll(3, 30, 40, false),
            Event::LoopWait {
                tid: 1,
                start: 40,
                end: 90,
                woken: 1,
            },
            Event::Wake {
                task: 2,
                at: 90,
                by: WakeBy::Io,
            },
            poll(2, 95, 99, true),
            // Woken while being polled: it stays ready.
            Event::Wake {
                task: 1,
                at: 100,
                by: WakeBy::Task { task: 1 },
            },
            poll(1, 100, 105, false),
            Event::Wake {
                task: 1,
                at: 102,
                by: WakeBy::Task { task: 1 },
            },
        ]);
        r.prepare();
        let f = r.loop_at(5, 10).expect("has a loop");
        assert_eq!(f.ready, vec![1, 2, 3], "FIFO by wake time");
        let f = r.loop_at(25, 10).expect("has a loop");
        assert_eq!(f.running, Some((2, 20)));
        assert_eq!(f.ready, vec![3]);
        assert_eq!(f.count(TaskState::ParkedIo), 1);
        let f = r.loop_at(50, 10).expect("has a loop");
        assert_eq!(f.waiting, Some((40, 1)));
        assert_eq!(f.count(TaskState::ParkedIo), 2);
        assert_eq!(f.count(TaskState::ParkedTimer), 1);
        assert_eq!(f.samples[&TaskState::ParkedIo], vec![1, 2]);
        let f = r.loop_at(92, 10).expect("has a loop");
        assert_eq!(f.ready, vec![2]);
        assert_eq!(f.last_wait, Some((50, 1)));
        let f = r.loop_at(110, 10).expect("has a loop");
        assert_eq!(f.count(TaskState::Done), 1);
        assert_eq!(f.ready, vec![1], "woken during its own poll");
        assert_eq!(f.polls, 5);
    }

    /// Two loops one after the other (a scenario's variants): each shows only its own tasks
    /// once it polls, so the first loop's resolved futures do not stand beside the second's.
    #[test]
    fn loops_one_after_another_show_their_own_tasks() {
        let mut r = Replay::new();
        let spawn = |task, at| Event::TaskSpawn {
            task,
            at,
            label: format!("req-{task}"),
            waits_on: WaitKind::Io,
        };
        let poll = |task, tid, start, end, ready| Event::Poll {
            task,
            tid,
            cpu: 0,
            start,
            end,
            ready,
        };
        let events = [
            spawn(1, 0),
            spawn(2, 0),
            poll(1, 7, 10, 20, true),
            poll(2, 7, 20, 30, true),
            Event::LoopWait {
                tid: 7,
                start: 30,
                end: 32,
                woken: 0,
            },
            Event::QueueDepth {
                at: 32,
                ready: 0,
                io: 0,
                timers: 0,
            },
            spawn(3, 40),
            poll(3, 8, 50, 60, false),
            Event::QueueDepth {
                at: 60,
                ready: 0,
                io: 1,
                timers: 0,
            },
            Event::LoopWait {
                tid: 8,
                start: 60,
                end: 70,
                woken: 1,
            },
        ];
        r.extend(&events);
        r.prepare();
        // A second loop that never waited (or not yet, while a run streams) has no waits of
        // its own: it does not borrow the first loop's.
        let mut unwaited = Replay::new();
        unwaited.extend(&events[..events.len() - 1]);
        unwaited.prepare();
        let f = unwaited.loop_at(55, 10).expect("has a loop");
        assert_eq!((f.thread, f.waits, f.last_wait), (Some(8), 0, None));
        let f = r.loop_at(35, 10).expect("has a loop");
        assert_eq!(f.samples[&TaskState::Done], vec![1, 2]);
        assert_eq!((f.polls, f.waits, f.last_wait), (2, 1, Some((2, 0))));
        // Task 3 is spawned on the second loop, which has not polled yet: the first loop,
        // which polled last, is still the one shown.
        let f = r.loop_at(45, 10).expect("has a loop");
        assert_eq!((f.count(TaskState::Done), f.ready.clone()), (2, vec![]));
        let f = r.loop_at(55, 10).expect("has a loop");
        assert_eq!(f.running, Some((3, 50)));
        assert_eq!(f.count(TaskState::Done), 0, "{f:?}");
        assert_eq!((f.thread, f.loops), (Some(8), 2));
        assert_eq!(
            f.depth, None,
            "the first loop's queue counts are not the second's"
        );
        // Its own counts: one poll, no selector wait yet (not the first loop's).
        assert_eq!((f.polls, f.waits, f.last_wait), (1, 0, None));
        let f = r.loop_at(65, 10).expect("has a loop");
        assert_eq!((f.polls, f.waits, f.waiting), (1, 1, Some((60, 1))));
        assert_eq!(f.depth, Some((0, 1, 0)));
    }

    /// A thread's latest name names it, whatever order the batches come in.
    #[test]
    fn a_renamed_thread_takes_its_latest_name_in_any_order() {
        let start = Event::ThreadStart {
            tid: 3,
            pid: 1,
            os_tid: 11,
            name: "sh".into(),
            role: Role::Worker,
            at: 10,
        };
        let rename = |at, name: &str| Event::ThreadRename {
            tid: 3,
            at,
            name: name.into(),
        };
        let orders = [
            vec![start.clone(), rename(50, "first"), rename(90, "second")],
            vec![rename(90, "second"), start.clone(), rename(50, "first")],
            vec![rename(50, "first"), rename(90, "second"), start.clone()],
        ];
        for events in orders {
            let mut r = Replay::new();
            for e in &events {
                r.extend(std::slice::from_ref(e));
            }
            r.prepare();
            let t = r.thread(3).expect("the thread");
            assert_eq!((&*t.name, t.pid, t.start), ("second", 1, 10), "{events:?}");
        }
    }

    #[test]
    fn unprepared_batches_are_sorted_on_prepare() {
        let mut r = two_cores();
        r.apply(&on(1, 0, 500, 600));
        r.apply(&on(1, 0, 450, 480));
        r.prepare();
        let s: Vec<Ns> = r.slices(0, 0, 1000).iter().map(|s| s.start).collect();
        let mut sorted = s.clone();
        sorted.sort_unstable();
        assert_eq!(s, sorted);
        assert_eq!(r.end(), 600);
    }
}
