//! The event loop: each task's lifecycle (spawned, ready, polled, parked, done), the loop at
//! an instant (running task, ready queue, parked tasks, selector waits) and requests.

use std::collections::HashMap;

use super::Replay;
use crate::sort::Grown;
use crate::{
    event::{Ns, WaitKind, WakeBy},
    summary::TaskTotals,
};

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
    /// Awaiting another task or a future (an asyncio task woken by neither the selector nor
    /// a timer, or not woken yet).
    Awaiting,
    /// Its future resolved.
    Done,
    /// Dropped before it finished.
    Cancelled,
}

/// Every task state, in discriminant order.
pub(super) const ALL_TASK_STATES: [TaskState; 7] = [
    TaskState::Ready,
    TaskState::Running,
    TaskState::ParkedIo,
    TaskState::ParkedTimer,
    TaskState::Awaiting,
    TaskState::Done,
    TaskState::Cancelled,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Spawn,
    Wake(WakeBy),
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
    pub(super) steps: Grown<(Ns, Step)>,
    /// Derived once prepared: (from, state), sorted.
    pub(super) states: Vec<(Ns, TaskState)>,
    pub(super) dirty: bool,
}

/// A stretch of a task's life in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSpan {
    /// Start, ns.
    pub start: Ns,
    /// End, ns.
    pub end: Ns,
    /// Where the task was.
    pub state: TaskState,
    /// For a parked task that a wake made ready: what woke it.
    pub woken_by: Option<WakeBy>,
}

impl TaskInfo {
    pub(super) fn derive(&mut self) {
        self.steps.sort_by_key(|s| (s.0, step_rank(s.1)));
        self.states.clear();
        let mut state = None;
        let mut woken_in_poll = false;
        for (i, &(at, step)) in self.steps.iter().enumerate() {
            let next = match step {
                Step::Spawn => TaskState::Ready,
                Step::Wake(_) => {
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
                    // What it awaited is told by what woke it next.
                    WaitKind::Any => match self.steps[i + 1..]
                        .iter()
                        .take_while(|s| !matches!(s.1, Step::PollStart | Step::Cancel))
                        .find_map(|s| match s.1 {
                            Step::Wake(by) => Some(by),
                            _ => None,
                        }) {
                        Some(WakeBy::Io) => TaskState::ParkedIo,
                        Some(WakeBy::Timer) => TaskState::ParkedTimer,
                        _ => TaskState::Awaiting,
                    },
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

    /// The task's life as spans of one state each, in time order: from each change of state to
    /// the next (the state it is in at the end of the run has no end and is left out). A span
    /// of parking that a wake ended says what woke it.
    pub fn spans(&self) -> Vec<TaskSpan> {
        let mut out: Vec<TaskSpan> = Vec::new();
        let mut i = 0;
        while i < self.states.len() {
            let (start, state) = self.states[i];
            // A wake while ready adds no new state: the span goes on to the next other one.
            let mut j = i + 1;
            while self.states.get(j).is_some_and(|s| s.1 == state) {
                j += 1;
            }
            let Some(&(end, next)) = self.states.get(j) else {
                break;
            };
            let parked = matches!(
                state,
                TaskState::ParkedIo | TaskState::ParkedTimer | TaskState::Awaiting
            );
            let woken_by = (parked && next == TaskState::Ready)
                .then(|| self.wake_at(end))
                .flatten();
            out.push(TaskSpan {
                start,
                end,
                state,
                woken_by,
            });
            i = j;
        }
        out
    }

    /// What the wake stamped at `at` said woke the task.
    fn wake_at(&self, at: Ns) -> Option<WakeBy> {
        let i = self.steps.partition_point(|s| s.0 < at);
        self.steps[i..]
            .iter()
            .take_while(|s| s.0 == at)
            .find_map(|s| match s.1 {
                Step::Wake(by) => Some(by),
                _ => None,
            })
    }
}

/// Orders steps that share a timestamp so that a zero-length poll still ends after it starts.
pub(super) fn step_rank(s: Step) -> u8 {
    match s {
        Step::Spawn => 0,
        Step::Wake(_) => 1,
        Step::PollStart => 2,
        Step::PollEnd { .. } => 3,
        Step::Cancel => 4,
    }
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
    /// The agent's own queue counts at this instant: (ready, io, timers); for an asyncio loop
    /// (ready, awaiting anything, timer callbacks), as the program's probe counted them.
    pub depth: Option<(u32, u32, u32)>,
    /// Whether the loop is asyncio's (its tasks wait on [`WaitKind::Any`]).
    pub asyncio: bool,
}

impl LoopFrame {
    /// Tasks in `state`.
    pub fn count(&self, state: TaskState) -> u32 {
        self.counts.get(&state).copied().unwrap_or(0)
    }
}

/// How many of `v`'s spans start at or before `t`.
pub(super) fn lower(v: &[(Ns, Ns, u32)], t: Ns) -> usize {
    v.partition_point(|x| x.0 <= t)
}

impl Replay {
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
        let mut counts = [0u32; ALL_TASK_STATES.len()];
        let mut samples: [Vec<u32>; ALL_TASK_STATES.len()] = Default::default();
        for task in &self.tasks {
            frame.asyncio |= task.waits_on == WaitKind::Any;
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
        // Only the front of the queue is shown: pick it in one pass, in order.
        frame.ready = crate::sort::smallest(ready, sample)
            .into_iter()
            .map(|r| r.1)
            .collect();
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

    /// What the run's event-loop tasks add up to (`None` when the run had none): busy is
    /// being polled, scheduled is ready (woken, waiting for a poll), idle is parked on I/O or
    /// a timer, each summed over tasks from [`TaskInfo::spans`].
    pub fn task_totals(&self) -> Option<TaskTotals> {
        if self.tasks.is_empty() {
            return None;
        }
        let mut t = TaskTotals {
            tasks: self
                .tasks
                .iter()
                .filter(|t| t.steps.iter().any(|s| s.1 == Step::Spawn))
                .count() as u64,
            polls: self.polls.len() as u64,
            wakes: 0,
            busy_ns: 0,
            scheduled_ns: 0,
            idle_ns: 0,
            longest_poll_ns: 0,
            max_ready: self.depth.iter().map(|d| d.1).max().unwrap_or(0),
        };
        for task in &self.tasks {
            t.wakes += task
                .steps
                .iter()
                .filter(|s| matches!(s.1, Step::Wake(_)))
                .count() as u64;
            for span in task.spans() {
                let d = span.end.saturating_sub(span.start);
                match span.state {
                    TaskState::Ready => t.scheduled_ns += d,
                    TaskState::ParkedIo | TaskState::ParkedTimer => t.idle_ns += d,
                    _ => {}
                }
            }
        }
        for &(start, end, _) in &self.polls {
            let d = end.saturating_sub(start);
            t.busy_ns += d;
            t.longest_poll_ns = t.longest_poll_ns.max(d);
        }
        Some(t)
    }
}
