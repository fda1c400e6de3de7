//! The one well-formedness check of a run's events: what every trace must satisfy to be drawn
//! as the truth. The trace readers (the page's and the agent's), `coreplay check`, the tests
//! and the fuzzer all use it, so a damaged or hand-edited file cannot be shown as if it were
//! fine, and the tests cannot hold traces to a different standard than the readers do.
//!
//! The rules (each a [`ProblemKind`]):
//! - a CPU that is not a hardware thread of the recorded machine;
//! - a thread or task named but never started/spawned, started twice, ended twice, never
//!   ended; a thread event before the thread started or after it ended; a thread before its
//!   process;
//! - an interval that ends before it starts, an on-CPU slice of no length;
//! - one thread on two CPUs at once; two threads on one CPU at once;
//! - a lock released by a thread that does not hold it, or taken while another holds it
//!   (locks are per process: each process has its own).
//!
//! The check does not depend on the order of the events (threads flush their buffers
//! independently, so files are not sorted by time). It is about as fast as reading the file:
//! a few hash lookups per event and one sort per thread and per CPU.

use std::collections::{HashMap, HashSet};

use crate::{
    Topology,
    event::{Event, LockOp, Ns},
};

/// Problems kept with their details; beyond it only the count of bad events grows.
pub const MAX_DETAILED: usize = 1_000;

/// What is wrong with one event (or, for a thread never ended, with its start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// A CPU outside the topology.
    #[error("CPU {cpu} is not a hardware thread of the recorded machine")]
    CpuOutside {
        /// The OS index named.
        cpu: u32,
    },
    /// A thread id without a `thread_start`.
    #[error("thread {tid} never started")]
    UnknownThread {
        /// Run-wide thread id.
        tid: u32,
    },
    /// A second `thread_start` for one id.
    #[error("thread {tid} started twice")]
    StartedTwice {
        /// Run-wide thread id.
        tid: u32,
    },
    /// A second `thread_end` for one id.
    #[error("thread {tid} ended twice")]
    EndedTwice {
        /// Run-wide thread id.
        tid: u32,
    },
    /// A thread without a `thread_end` (reported on its start).
    #[error("thread {tid} never ended")]
    NeverEnded {
        /// Run-wide thread id.
        tid: u32,
    },
    /// A second `process_start` for one pid.
    #[error("process {pid} started twice")]
    ProcessStartedTwice {
        /// OS process id.
        pid: u32,
    },
    /// A thread that starts before its process does.
    #[error("thread {tid} starts at {at} ns, before its process {pid} ({process_at} ns)")]
    BeforeProcess {
        /// Run-wide thread id.
        tid: u32,
        /// When the thread started.
        at: Ns,
        /// Its process.
        pid: u32,
        /// When the process started.
        process_at: Ns,
    },
    /// An event of a thread before the thread started.
    #[error("thread {tid} is seen at {at} ns, before it started ({start} ns)")]
    BeforeStart {
        /// Run-wide thread id.
        tid: u32,
        /// The event's time.
        at: Ns,
        /// The thread's start.
        start: Ns,
    },
    /// An event of a thread after the thread ended.
    #[error("thread {tid} is seen at {at} ns, after it ended ({end} ns)")]
    AfterEnd {
        /// Run-wide thread id.
        tid: u32,
        /// The event's time.
        at: Ns,
        /// The thread's end.
        end: Ns,
    },
    /// An interval whose end is before its start.
    #[error("it ends ({end} ns) before it starts ({start} ns)")]
    EndsBeforeStart {
        /// Start.
        start: Ns,
        /// End.
        end: Ns,
    },
    /// An on-CPU slice of no length.
    #[error("an on-CPU slice of no length (at {at} ns)")]
    EmptySlice {
        /// Its start and end.
        at: Ns,
    },
    /// Two on-CPU slices of one thread overlap (one thread on two CPUs at once).
    #[error("thread {tid} runs twice at once ({start} ns, while its slice until {until} ns)")]
    ThreadOverlap {
        /// Run-wide thread id.
        tid: u32,
        /// This slice's start.
        start: Ns,
        /// The end of the slice it overlaps.
        until: Ns,
    },
    /// Two threads on one CPU at once.
    #[error("CPU {cpu} runs threads {tid} and {other} at once ({start} ns)")]
    CpuOverlap {
        /// OS index.
        cpu: u32,
        /// This slice's thread.
        tid: u32,
        /// The other slice's thread.
        other: u32,
        /// This slice's start.
        start: Ns,
    },
    /// A lock released by a thread that does not hold it.
    #[error("thread {tid} releases the lock of process {pid} at {at} ns without holding it")]
    ReleaseNotHeld {
        /// Run-wide thread id.
        tid: u32,
        /// The process whose lock it is.
        pid: u32,
        /// When.
        at: Ns,
    },
    /// A lock taken while another thread holds it.
    #[error(
        "thread {tid} takes the lock of process {pid} at {at} ns while thread {holder} holds it"
    )]
    AcquireHeld {
        /// Run-wide thread id.
        tid: u32,
        /// The process whose lock it is.
        pid: u32,
        /// When.
        at: Ns,
        /// Who holds it.
        holder: u32,
    },
    /// A task id without a `task_spawn`.
    #[error("task {task} was never spawned")]
    UnknownTask {
        /// Task id.
        task: u32,
    },
    /// A second `task_spawn` for one id.
    #[error("task {task} was spawned twice")]
    SpawnedTwice {
        /// Task id.
        task: u32,
    },
}

/// One problem: which event (0-based, in file order) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Index of the event in the run's event list.
    pub event: usize,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "event {}: {}", self.event + 1, self.kind)
    }
}

/// A set of event indices, a bit per event of the list checked (a `BTreeSet` would compile its
/// tree code into the page for this one type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSet {
    words: Vec<u64>,
    len: usize,
}

impl EventSet {
    /// Adds event `i`; whether it was new.
    pub fn insert(&mut self, i: usize) -> bool {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let new = self.words[word] & bit == 0;
        self.words[word] |= bit;
        self.len += usize::from(new);
        new
    }

    /// Whether event `i` is in the set.
    pub fn contains(&self, i: &usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// Events in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The events in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64)
                .filter(move |b| bits & (1u64 << b) != 0)
                .map(move |b| w * 64 + b)
        })
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events checked.
    pub events: usize,
    /// Every event with at least one problem (indices into the event list).
    pub bad: EventSet,
    /// Of those, the ones [`Report::keep_good`] keeps all the same: a thread's first start,
    /// which every other event of the thread needs (e.g. of a thread that never ended).
    pub kept_anyway: EventSet,
    /// The first [`MAX_DETAILED`] problems, in event order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// No event has a problem.
    pub fn is_clean(&self) -> bool {
        self.bad.is_empty()
    }

    /// One line for people: "N events of this file are inconsistent (first: …)".
    pub fn headline(&self) -> Option<String> {
        let first = self.problems.first()?;
        let n = self.bad.len();
        let events = if n == 1 { "event" } else { "events" };
        let are = if n == 1 { "is" } else { "are" };
        Some(format!(
            "{n} {events} of {} in this run {are} inconsistent (first: {first})",
            self.events
        ))
    }

    /// How many events [`Report::keep_good`] leaves out.
    pub fn left_out(&self) -> usize {
        self.bad.len() - self.kept_anyway.len()
    }

    /// The events without those that have a problem (but for [`Report::kept_anyway`]), in
    /// their order.
    pub fn keep_good(&self, events: Vec<Event>) -> Vec<Event> {
        if self.left_out() == 0 {
            return events;
        }
        events
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !self.bad.contains(i) || self.kept_anyway.contains(i))
            .map(|(_, e)| e)
            .collect()
    }

    fn add(&mut self, event: usize, kind: ProblemKind) {
        self.bad.insert(event);
        if self.problems.len() < MAX_DETAILED {
            self.problems.push(Problem { event, kind });
        }
    }
}

/// A lock step as the check sorts it: (at, rank at equal times, tid, op, event index).
type LockStep = (Ns, u8, u32, LockOp, usize);

/// A thread as the check learns it in its first pass.
#[derive(Debug, Clone, Copy)]
struct Thread {
    pid: u32,
    start: Ns,
    end: Option<Ns>,
}

impl crate::trace_file::TraceFile {
    /// Checks its events for sense against its own topology (every rule of this module).
    pub fn check(&self) -> Report {
        check(&self.header.topology, &self.events, true)
    }
}

/// Checks `events` recorded on `topology` against every rule in this module's header.
/// `complete`: the run ended (a file with its summary), so every thread must have ended; a
/// file cut short, or a run still going, has threads that have not ended yet.
pub fn check(topology: &Topology, events: &[Event], complete: bool) -> Report {
    let cpus: HashSet<u32> = topology.pu_os_indices().into_iter().collect();
    let mut report = Report {
        events: events.len(),
        ..Report::default()
    };

    // First pass: who exists (the first start or end of each counts; later ones are problems).
    let mut threads: HashMap<u32, Thread> = HashMap::new();
    let mut started_at: HashMap<u32, usize> = HashMap::new();
    let mut processes: HashMap<u32, Ns> = HashMap::new();
    let mut tasks: HashSet<u32> = HashSet::new();
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::ProcessStart { pid, at, .. } if processes.insert(*pid, *at).is_some() => {
                report.add(i, ProblemKind::ProcessStartedTwice { pid: *pid });
            }
            Event::ThreadStart { tid, pid, at, .. } => {
                if threads.contains_key(tid) {
                    report.add(i, ProblemKind::StartedTwice { tid: *tid });
                } else {
                    threads.insert(
                        *tid,
                        Thread {
                            pid: *pid,
                            start: *at,
                            end: None,
                        },
                    );
                    started_at.insert(*tid, i);
                }
            }
            Event::TaskSpawn { task, .. } if !tasks.insert(*task) => {
                report.add(i, ProblemKind::SpawnedTwice { task: *task });
            }
            _ => {}
        }
    }
    let mut ended: HashSet<u32> = HashSet::new();
    for (i, e) in events.iter().enumerate() {
        if let Event::ThreadEnd { tid, at, .. } = e {
            if !ended.insert(*tid) {
                report.add(i, ProblemKind::EndedTwice { tid: *tid });
            } else if let Some(t) = threads.get_mut(tid) {
                t.end = Some(*at);
            }
        }
    }

    // Second pass: each event on its own, collecting what needs a sort.
    let mut per_thread: HashMap<u32, Vec<(Ns, Ns, usize)>> = HashMap::new();
    let mut per_cpu: HashMap<u32, Vec<(Ns, Ns, u32, usize)>> = HashMap::new();
    let mut locks: HashMap<u32, Vec<LockStep>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let cpu_ok = |cpu: &u32| cpus.contains(cpu);
        match e {
            Event::OnCpu { cpu, .. } | Event::Poll { cpu, .. } if !cpu_ok(cpu) => {
                report.add(i, ProblemKind::CpuOutside { cpu: *cpu });
            }
            Event::Migrate { from, to, .. } if !cpu_ok(from) || !cpu_ok(to) => {
                let cpu = if cpu_ok(from) { *to } else { *from };
                report.add(i, ProblemKind::CpuOutside { cpu });
            }
            _ => {}
        }
        if let Some((start, end)) = interval(e)
            && end < start
        {
            report.add(i, ProblemKind::EndsBeforeStart { start, end });
        }
        match e {
            Event::Poll { task, .. }
            | Event::Wake { task, .. }
            | Event::TaskCancelled { task, .. }
                if !tasks.contains(task) =>
            {
                report.add(i, ProblemKind::UnknownTask { task: *task });
            }
            _ => {}
        }
        let Some(tid) = e.tid() else { continue };
        let Some(thread) = threads.get(&tid).copied() else {
            report.add(i, ProblemKind::UnknownThread { tid });
            continue;
        };
        let at = e.time();
        match e {
            Event::ThreadStart { pid, at, .. } if started_at.get(&tid) == Some(&i) => {
                if let Some(&process_at) = processes.get(pid)
                    && *at < process_at
                {
                    let (tid, at, pid) = (tid, *at, *pid);
                    report.add(
                        i,
                        ProblemKind::BeforeProcess {
                            tid,
                            at,
                            pid,
                            process_at,
                        },
                    );
                }
                if complete && thread.end.is_none() {
                    report.add(i, ProblemKind::NeverEnded { tid });
                }
                continue;
            }
            Event::ThreadStart { .. } => continue,
            _ => {}
        }
        if at < thread.start {
            report.add(
                i,
                ProblemKind::BeforeStart {
                    tid,
                    at,
                    start: thread.start,
                },
            );
        } else if let Some(end) = thread.end
            && at > end
        {
            report.add(i, ProblemKind::AfterEnd { tid, at, end });
        }
        match e {
            Event::OnCpu {
                cpu, start, end, ..
            } => {
                if start == end {
                    report.add(i, ProblemKind::EmptySlice { at: *start });
                } else if start < end {
                    per_thread.entry(tid).or_default().push((*start, *end, i));
                    if cpus.contains(cpu) {
                        per_cpu
                            .entry(*cpu)
                            .or_default()
                            .push((*start, *end, tid, i));
                    }
                }
            }
            Event::Lock { at, op, .. } => {
                locks
                    .entry(thread.pid)
                    .or_default()
                    .push((*at, lock_rank(*op), tid, *op, i));
            }
            _ => {}
        }
    }

    // Sorted checks: slices of a thread, slices on a CPU, each process's lock.
    for (tid, mut slices) in per_thread {
        crate::sort::natural(&mut slices);
        let mut until = 0;
        for (start, end, i) in slices {
            if start < until {
                report.add(i, ProblemKind::ThreadOverlap { tid, start, until });
            }
            until = until.max(end);
        }
    }
    for (cpu, mut slices) in per_cpu {
        crate::sort::natural(&mut slices);
        let (mut until, mut last) = (0, u32::MAX);
        for (start, end, tid, i) in slices {
            if start < until && tid != last {
                report.add(
                    i,
                    ProblemKind::CpuOverlap {
                        cpu,
                        tid,
                        other: last,
                        start,
                    },
                );
            }
            if end > until {
                (until, last) = (end, tid);
            }
        }
    }
    for (pid, mut steps) in locks {
        crate::sort::by_key(&mut steps, |s| (s.0, s.1, s.4));
        let mut holder: Option<u32> = None;
        for (at, _, tid, op, i) in steps {
            match op {
                LockOp::Acquire => match holder {
                    Some(h) if h != tid => report.add(
                        i,
                        ProblemKind::AcquireHeld {
                            tid,
                            pid,
                            at,
                            holder: h,
                        },
                    ),
                    _ => holder = Some(tid),
                },
                LockOp::Release => {
                    if holder == Some(tid) {
                        holder = None;
                    } else {
                        report.add(i, ProblemKind::ReleaseNotHeld { tid, pid, at });
                    }
                }
                LockOp::Request | LockOp::DropRequest => {}
            }
        }
    }
    crate::sort::by_key(&mut report.problems, |p| p.event);
    // Inserted one by one: collect() into a set sorts, and a sort is a lot of wasm.
    for &i in started_at.values() {
        if report.bad.contains(&i) {
            report.kept_anyway.insert(i);
        }
    }
    report
}

/// The interval an event spans, if it spans one.
fn interval(e: &Event) -> Option<(Ns, Ns)> {
    match e {
        Event::OnCpu { start, end, .. }
        | Event::OffCpu { start, end, .. }
        | Event::Compute { start, end, .. }
        | Event::Poll { start, end, .. }
        | Event::LoopWait { start, end, .. }
        | Event::Request { start, end, .. } => Some((*start, *end)),
        _ => None,
    }
}

/// Orders lock steps that share a timestamp: a release before the next acquire.
pub(crate) fn lock_rank(op: LockOp) -> u8 {
    match op {
        LockOp::Release => 0,
        LockOp::Request => 1,
        LockOp::DropRequest => 2,
        LockOp::Acquire => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::{OffReason, ProcessEnd, Role},
        testkit::{lock, on, thread_end as end, thread_start},
        topology::{MachineInfo, Node, NodeKind, TopologySource},
    };

    fn machine(pus: u32) -> Topology {
        let pu = |i| Node {
            kind: NodeKind::Pu,
            os_index: Some(i),
            pus: vec![i],
            children: vec![],
        };
        Topology {
            machine: MachineInfo {
                hostname: None,
                cpu_model: None,
                os: None,
                source: TopologySource::Live,
            },
            root: Node {
                kind: NodeKind::Machine,
                os_index: None,
                pus: (0..pus).collect(),
                children: (0..pus).map(pu).collect(),
            },
            numa_nodes: vec![],
        }
    }

    fn start(tid: u32, pid: u32, at: Ns) -> Event {
        thread_start(tid, pid, &format!("t{tid}"), at)
    }

    /// Two threads of one process taking turns with its lock, a third in another process with
    /// its own lock, on two CPUs: every rule holds.
    fn good() -> Vec<Event> {
        vec![
            Event::ProcessStart {
                pid: 7,
                at: 0,
                name: "w".into(),
                role: Role::Worker,
            },
            start(1, 5, 0),
            start(2, 5, 0),
            start(3, 7, 5),
            on(1, 0, 10, 50),
            on(2, 1, 10, 20),
            on(2, 0, 50, 90),
            on(3, 1, 20, 90),
            lock(1, 10, LockOp::Request),
            lock(1, 10, LockOp::Acquire),
            lock(2, 12, LockOp::Request),
            lock(1, 50, LockOp::Release),
            lock(2, 50, LockOp::Acquire),
            lock(3, 30, LockOp::Acquire),
            lock(2, 90, LockOp::Release),
            lock(3, 90, LockOp::Release),
            Event::OffCpu {
                tid: 2,
                start: 20,
                end: 50,
                reason: OffReason::Lock,
            },
            end(3, 95),
            end(2, 95),
            end(1, 95),
            Event::ProcessExit {
                pid: 7,
                at: 96,
                peak_rss_bytes: None,
                end: ProcessEnd::Exited { code: 0 },
            },
        ]
    }

    #[test]
    fn an_event_set_holds_indices_as_a_set_does() {
        let mut set = EventSet::default();
        let mut theirs = std::collections::BTreeSet::new();
        for i in [5usize, 0, 63, 64, 700, 5, 129, 0] {
            assert_eq!(set.insert(i), theirs.insert(i), "{i}");
        }
        assert_eq!(set.len(), theirs.len());
        assert!(set.iter().eq(theirs.iter().copied()), "ascending");
        assert!(set.contains(&700) && !set.contains(&701) && !set.contains(&100_000));
        assert!(EventSet::default().is_empty());
    }

    #[test]
    fn a_good_run_is_clean_in_any_order() {
        let mut events = good();
        assert_eq!(
            check(&machine(2), &events, true),
            Report {
                events: events.len(),
                ..Report::default()
            }
        );
        events.reverse();
        assert!(check(&machine(2), &events, true).is_clean());
    }

    /// Each damage the readers must catch, with the problem it must be reported as.
    #[test]
    fn each_kind_of_damage_is_found_and_named() {
        let cases: Vec<(Vec<Event>, ProblemKind)> = vec![
            (vec![on(1, 9, 60, 70)], ProblemKind::CpuOutside { cpu: 9 }),
            (
                vec![Event::Migrate {
                    tid: 1,
                    at: 60,
                    from: 0,
                    to: 4,
                }],
                ProblemKind::CpuOutside { cpu: 4 },
            ),
            (
                vec![on(8, 0, 91, 92)],
                ProblemKind::UnknownThread { tid: 8 },
            ),
            (vec![start(1, 5, 0)], ProblemKind::StartedTwice { tid: 1 }),
            (vec![end(1, 95)], ProblemKind::EndedTwice { tid: 1 }),
            (vec![start(4, 5, 0)], ProblemKind::NeverEnded { tid: 4 }),
            (
                vec![lock(2, 30, LockOp::Release)],
                ProblemKind::ReleaseNotHeld {
                    tid: 2,
                    pid: 5,
                    at: 30,
                },
            ),
            (
                vec![lock(2, 30, LockOp::Acquire)],
                ProblemKind::AcquireHeld {
                    tid: 2,
                    pid: 5,
                    at: 30,
                    holder: 1,
                },
            ),
            (
                vec![on(1, 1, 93, 91)],
                ProblemKind::EndsBeforeStart { start: 93, end: 91 },
            ),
            (vec![on(1, 1, 93, 93)], ProblemKind::EmptySlice { at: 93 }),
            (
                vec![on(3, 0, 40, 45)],
                ProblemKind::CpuOverlap {
                    cpu: 0,
                    tid: 3,
                    other: 1,
                    start: 40,
                },
            ),
            (
                vec![on(3, 1, 2, 4)],
                ProblemKind::BeforeStart {
                    tid: 3,
                    at: 2,
                    start: 5,
                },
            ),
            (
                vec![Event::Switch {
                    tid: 3,
                    at: 99,
                    voluntary: 1,
                    involuntary: 0,
                }],
                ProblemKind::AfterEnd {
                    tid: 3,
                    at: 99,
                    end: 95,
                },
            ),
            (
                vec![Event::Wake {
                    task: 3,
                    at: 20,
                    by: crate::event::WakeBy::Io,
                }],
                ProblemKind::UnknownTask { task: 3 },
            ),
        ];
        for (extra, want) in cases {
            let mut events = good();
            let first_bad = events.len();
            events.extend(extra.clone());
            let report = check(&machine(2), &events, true);
            assert!(
                report.problems.iter().any(|p| p.kind == want),
                "{extra:?}: wanted {want:?}, got {:?}",
                report.problems
            );
            assert!(
                report.bad.iter().all(|i| i >= first_bad),
                "{extra:?}: a good event blamed: {:?}",
                report.problems
            );
            let line = report.headline().expect("a headline");
            assert!(line.contains("inconsistent (first: event"), "{line}");
            // What is left after dropping the bad events is clean again (but for a thread
            // that never ended, whose start is the bad event).
            let kept = report.keep_good(events);
            let again = check(&machine(2), &kept, true);
            assert!(
                again.bad.iter().all(|i| again.kept_anyway.contains(&i)),
                "{extra:?}: {:?}",
                again.problems
            );
        }
    }

    #[test]
    fn one_thread_on_two_cpus_at_once_is_found() {
        let mut events = good();
        events.push(on(1, 1, 30, 40));
        let report = check(&machine(2), &events, true);
        assert!(
            report
                .problems
                .iter()
                .any(|p| matches!(p.kind, ProblemKind::ThreadOverlap { tid: 1, .. })),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn locks_are_per_process() {
        // Threads 1 and 3 hold a lock at the same time (10..50 and 30..90): they are in
        // different processes, each with its own, so that is fine; in one process it is not.
        let mut events = good();
        assert!(check(&machine(2), &events, true).is_clean());
        for e in &mut events {
            if let Event::ThreadStart { tid: 3, pid, .. } = e {
                *pid = 5;
            }
        }
        let report = check(&machine(2), &events, true);
        assert!(
            report
                .problems
                .iter()
                .any(|p| matches!(p.kind, ProblemKind::AcquireHeld { tid: 3, .. })),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn the_headline_counts_events_not_problems() {
        let mut events = good();
        // One event, two problems (unknown CPU and ends before it starts).
        events.push(on(1, 9, 93, 91));
        let report = check(&machine(2), &events, true);
        assert_eq!(report.problems.len(), 2);
        assert_eq!(report.bad.len(), 1);
        let line = report.headline().expect("headline");
        assert!(
            line.starts_with("1 event of 22 in this run is inconsistent"),
            "{line}"
        );
    }

    #[test]
    fn a_run_cut_short_may_have_threads_still_running_and_keeps_their_starts() {
        let mut events = good();
        events.retain(|e| !matches!(e, Event::ThreadEnd { tid: 2, .. }));
        assert!(check(&machine(2), &events, false).is_clean());
        let report = check(&machine(2), &events, true);
        assert_eq!(report.bad.len(), 1);
        assert_eq!(
            report.left_out(),
            0,
            "the start is kept: the thread's events need it"
        );
        assert_eq!(report.keep_good(events.clone()), events);
    }
}
