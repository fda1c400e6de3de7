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
//!
//! Split by domain: [`threads`] (every thread's one state, its spans, what a run's threads
//! add up to), [`cpus`] (what each hardware thread runs, its queue), [`locks`] (each
//! process's lock: holder, waiters in order, hand-overs), [`event_loop`] (task lifecycle, the
//! loop at an instant, task totals), [`stepping`] (the next and previous change) and `ids`
//! (run-wide ids to indices). This file folds events in and indexes them.

mod cpus;
mod event_loop;
mod ids;
mod locks;
mod moments;
mod peak;
mod stepping;
mod threads;

use std::{collections::HashMap, rc::Rc};

pub use cpus::{CpuFrame, Handover, Slice};
pub use event_loop::{LoopFrame, TaskInfo, TaskSpan, TaskState};
pub use locks::{LockFrame, LockSpan, LockSpanKind};
pub use threads::{OffSpan, ProcessInfo, ThreadInfo, ThreadState, off_label};

use crate::{
    event::{Event, LockOp, Ns, Role, WaitKind},
    sort::Grown,
    validate::lock_rank,
    vec_map::VecMap,
};
use cpus::Lane;
use event_loop::Step;
use ids::IdMap;
use locks::ProcessLock;

/// Everything recorded of one run, indexed for time queries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    threads: Vec<ThreadInfo>,
    by_tid: IdMap,
    processes: Vec<ProcessInfo>,
    lanes: VecMap<u32, Lane>,
    /// Every lock step, (at, tid, op), sorted once prepared.
    lock: Grown<(Ns, u32, LockOp)>,
    /// Each process's own lock (like each Python process's own GIL), by pid, once prepared:
    /// its steps' times and, for each prefix, the hand-overs among them.
    locks: VecMap<u32, ProcessLock>,
    tasks: Vec<TaskInfo>,
    by_task: IdMap,
    /// Polls of the event loop: (start, end, task), sorted once prepared.
    polls: Grown<(Ns, Ns, u32)>,
    /// Selector waits: (start, end, woken), sorted once prepared.
    waits: Grown<(Ns, Ns, u32)>,
    /// Per event loop (its thread's run-wide id): poll starts, sorted once prepared. A run may
    /// hold several loops (a scenario's variants one after the other): the event-loop view
    /// counts the shown loop's polls only.
    loop_polls: VecMap<u32, Grown<Ns>>,
    /// Per event loop: its selector waits, (start, end, woken), sorted once prepared.
    loop_waits: VecMap<u32, Grown<(Ns, Ns, u32)>>,
    /// The agent's queue counts: (at, ready, io, timers), sorted once prepared.
    depth: Grown<(Ns, u32, u32, u32)>,
    /// Requests: (start, end, tid).
    requests: Grown<(Ns, Ns, u32)>,
    events: u64,
    end: Ns,
    dirty: bool,
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
            Event::ProcessReady { .. } | Event::Switch { .. } => {}
            Event::Migrate { tid, .. } => self.thread_mut(*tid).migrations += 1,
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
                t.started = true;
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
            Event::ThreadEnd {
                tid,
                at,
                cpu_ns,
                kernel_voluntary,
                kernel_involuntary,
            } => {
                let t = self.thread_mut(*tid);
                t.end = Some(*at);
                t.kernel = Some((*cpu_ns, *kernel_voluntary, *kernel_involuntary));
            }
            Event::OnCpu {
                tid,
                cpu,
                start,
                end,
            } => {
                let t = self.thread_mut(*tid);
                t.on.push((*start, *end, *cpu));
                t.on_ns += end.saturating_sub(*start);
                t.dirty = true;
                let lane = self.lanes.get_or_default(*cpu);
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
                self.loop_polls.get_or_default(*tid).push(*start);
                let t = self.task_mut(*task);
                t.tid = Some(*tid);
                t.steps.push((*start, Step::PollStart));
                t.steps.push((*end, Step::PollEnd { ready: *ready }));
            }
            Event::Wake { task, at, by } => self.task_mut(*task).steps.push((*at, Step::Wake(*by))),
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
                    .get_or_default(*tid)
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
                    on: Grown::default(),
                    off: Grown::default(),
                    lock: Grown::default(),
                    dirty: false,
                    started: false,
                    kernel: None,
                    migrations: 0,
                    on_ns: 0,
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
                    steps: Grown::default(),
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
    ///
    /// The indexes are [`Grown`] lists: each sorts only what came since the last call.
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
            t.on.sort();
            t.off.sort_by_key(|o| (o.start, o.end));
            t.lock.sort_by_key(|l| (l.0, lock_rank(l.1)));
            t.dirty = false;
        }
        for t in self.tasks.iter_mut().filter(|t| t.dirty) {
            t.derive();
        }
        self.lock.sort_by_key(|l| (l.0, lock_rank(l.2)));
        self.locks.clear();
        let mut last: HashMap<u32, (u32, Option<u32>)> = HashMap::new();
        for &(at, tid, op) in &self.lock {
            let pid = self.thread(tid).map_or(0, |t| t.pid);
            let lock = self.locks.get_or_insert_with(pid, || ProcessLock {
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
        self.polls.sort();
        self.waits.sort();
        for v in self.loop_polls.values_mut() {
            v.sort();
        }
        for v in self.loop_waits.values_mut() {
            v.sort();
        }
        self.depth.sort();
        self.requests.sort();
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
}

#[cfg(test)]
mod tests;
