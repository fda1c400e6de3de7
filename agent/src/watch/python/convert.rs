//! The pure step from the Python probe's records to the run's events: asyncio tasks, their
//! steps, wakes, selector waits and queues become the same event-loop events the tokio
//! scenarios record ([`Event::TaskSpawn`], [`Event::Poll`], [`Event::Wake`],
//! [`Event::LoopWait`], [`Event::QueueDepth`]), `threading` names become
//! [`Event::ThreadRename`]s, and the GIL's futex addresses are kept for the sampler. Lines in,
//! events out: the sampler says which run-wide thread (and CPU) an OS thread is, nothing here
//! reads a file or a clock, and every rule is unit-tested with hand-made records.
//!
//! Records about a thread the sampler has not announced yet wait (in order) until it has; at
//! the end those still waiting are counted in a note, never guessed.

use std::collections::{BTreeMap, HashMap, VecDeque};

use coreplay_shared::event::{Event, Ns, WaitKind, WakeBy};

use super::records::{self, By, Done, Record};

/// Records kept waiting for their thread at most; beyond, they are dropped and counted.
const MAX_WAITING: usize = 200_000;
/// Notes the probe may add to the run at most (per kind of note).
const MAX_NOTES: usize = 8;
/// Tasks and event loops followed at most (the program's records are outside input: a runaway
/// or hostile one must not grow the agent without bound); past them, records are counted.
const MAX_TASKS: usize = 2_000_000;
const MAX_LOOPS: usize = 10_000;

/// What the sampler knows of an OS thread it announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// Its run-wide id.
    pub tid: u32,
    /// Its process.
    pub pid: u32,
    /// The CPU it was last seen on.
    pub cpu: u32,
    /// When the watch found it (its start in the run).
    pub since: Ns,
    /// The latest time its own events reach.
    pub seen: Ns,
}

/// An event that still needs its OS thread resolved to a run-wide thread.
#[derive(Debug, Clone, PartialEq)]
enum Proto {
    Ready(Event),
    Poll {
        task: u32,
        os_tid: u32,
        start: Ns,
        end: Ns,
        done: Done,
    },
    Wait {
        os_tid: u32,
        start: Ns,
        end: Ns,
        woken: u32,
    },
    Rename {
        os_tid: u32,
        at: Ns,
        name: String,
    },
}

/// One asyncio loop of one process.
#[derive(Debug, Default)]
struct Loop {
    /// The selector wait that ended last, not emitted yet: its wakes are still being counted.
    wait: Option<(u32, Ns, Ns)>,
    /// Tasks its timers and the selector made ready since that wait.
    woken: u32,
    /// Its latest queues: ready, waiting, timers.
    queues: (u32, u32, u32),
}

/// The probe's records of one watch, turned into events as their threads become known.
#[derive(Debug, Default)]
pub struct Converter {
    /// The run's clock origin, `CLOCK_MONOTONIC` ns.
    origin: u64,
    /// The process whose chunk is being read.
    pid: Option<u32>,
    /// (pid, the probe's task id) → run-wide task id.
    tasks: HashMap<(u32, u32), u32>,
    /// Run-wide task id → (pid, its loop).
    task_loop: HashMap<u32, (u32, u32)>,
    loops: BTreeMap<(u32, u32), Loop>,
    waiting: VecDeque<Proto>,
    /// The GIL's futex words, by process.
    gil: HashMap<u32, Vec<u64>>,
    /// Python per process (from its hello).
    pythons: BTreeMap<u32, String>,
    notes: Vec<String>,
    bad_lines: u64,
    first_bad: Option<String>,
    unresolved: u64,
    early: u64,
    /// Records past [`MAX_TASKS`] or [`MAX_LOOPS`].
    beyond: u64,
}

impl Converter {
    /// A converter for a run whose clock started at `origin` (`CLOCK_MONOTONIC` ns).
    pub fn new(origin: u64) -> Converter {
        Converter {
            origin,
            ..Converter::default()
        }
    }

    fn at(&self, t: u64) -> Ns {
        t.saturating_sub(self.origin)
    }

    /// Reads one line the probe wrote.
    pub fn line(&mut self, line: &str) {
        match records::parse(line) {
            Ok(Record::Process(pid)) => self.pid = Some(pid),
            Ok(record) => match self.pid {
                Some(pid) => self.record(pid, record),
                None => self.bad("a record before any process header".into()),
            },
            Err(e) => self.bad(e.to_string()),
        }
    }

    fn bad(&mut self, why: String) {
        self.bad_lines += 1;
        self.first_bad.get_or_insert(why);
    }

    fn task_id(&mut self, pid: u32, task: u32) -> u32 {
        let next = u32::try_from(self.tasks.len()).unwrap_or(u32::MAX);
        *self.tasks.entry((pid, task)).or_insert(next)
    }

    fn note(&mut self, note: String) {
        if self.notes.len() < 3 * MAX_NOTES {
            self.notes.push(note);
        }
    }

    fn record(&mut self, pid: u32, record: Record) {
        let grows = matches!(
            record,
            Record::Spawn { .. }
                | Record::Step { .. }
                | Record::Wake { .. }
                | Record::Wait { .. }
                | Record::Queues { .. }
        );
        if grows && (self.tasks.len() >= MAX_TASKS || self.loops.len() >= MAX_LOOPS) {
            self.beyond += 1;
            return;
        }
        match record {
            Record::Process(_) => {}
            Record::Hello {
                python,
                implementation,
                ..
            } => {
                self.pythons
                    .insert(pid, format!("{implementation} {python}"));
            }
            Record::ThreadName { os_tid, at, name } => {
                // The main thread keeps the process's name (its lane is the program).
                if os_tid != pid && !name.is_empty() {
                    let at = self.at(at);
                    self.wait(Proto::Rename { os_tid, at, name });
                }
            }
            Record::Spawn {
                task,
                at,
                event_loop,
                name,
                coro,
                ..
            } => {
                let id = self.task_id(pid, task);
                self.task_loop.insert(id, (pid, event_loop));
                let at = self.at(at);
                self.wait(Proto::Ready(Event::TaskSpawn {
                    task: id,
                    at,
                    label: label(&name, &coro),
                    waits_on: WaitKind::Any,
                }));
            }
            Record::Step {
                task,
                os_tid,
                start,
                end,
                done,
            } => {
                let task = self.task_id(pid, task);
                let (start, end) = (self.at(start), self.at(end));
                self.wait(Proto::Poll {
                    task,
                    os_tid,
                    start,
                    end,
                    done,
                });
            }
            Record::Wake { task, at, by } => {
                let task = self.task_id(pid, task);
                let by = match by {
                    By::Io => WakeBy::Io,
                    By::Timer => WakeBy::Timer,
                    By::Task(t) => WakeBy::Task {
                        task: self.task_id(pid, t),
                    },
                    By::Other => WakeBy::Other,
                };
                if matches!(by, WakeBy::Io | WakeBy::Timer)
                    && let Some(l) = self
                        .task_loop
                        .get(&task)
                        .copied()
                        .and_then(|key| self.loops.get_mut(&key))
                {
                    l.woken += 1;
                }
                let at = self.at(at);
                self.wait(Proto::Ready(Event::Wake { task, at, by }));
            }
            Record::Wait {
                event_loop,
                os_tid,
                start,
                end,
                ..
            } => {
                let (start, end) = (self.at(start), self.at(end));
                self.end_wait(pid, event_loop);
                let l = self.loops.entry((pid, event_loop)).or_default();
                l.wait = Some((os_tid, start, end));
                l.woken = 0;
            }
            Record::Queues {
                event_loop,
                at,
                ready,
                waiting,
                timers,
                ..
            } => {
                self.end_wait(pid, event_loop);
                self.loops.entry((pid, event_loop)).or_default().queues = (ready, waiting, timers);
                // One queue for the run: every loop's together (almost always there is one).
                let (ready, io, timers) =
                    self.loops
                        .values()
                        .fold((0u32, 0u32, 0u32), |(r, w, t), l| {
                            (
                                r.saturating_add(l.queues.0),
                                w.saturating_add(l.queues.1),
                                t.saturating_add(l.queues.2),
                            )
                        });
                let at = self.at(at);
                self.wait(Proto::Ready(Event::QueueDepth {
                    at,
                    ready,
                    io,
                    timers,
                }));
            }
            Record::Gil { addresses, how } => {
                if addresses.is_empty() {
                    self.note(format!(
                        "python probe: the GIL's waiters cannot be seen in process {pid}: {how}"
                    ));
                } else {
                    self.gil.insert(pid, addresses);
                }
            }
            Record::Note(message) => {
                self.note(format!("python probe (process {pid}): {message}"));
            }
            Record::Failed(message) => {
                self.note(format!(
                    "python probe failed in process {pid} and stopped; the program went on \
                     unchanged, and from then on its tasks were not recorded: {message}"
                ));
            }
            Record::Exit(_) => {
                let open: Vec<u32> = self
                    .loops
                    .keys()
                    .filter(|k| k.0 == pid)
                    .map(|k| k.1)
                    .collect();
                for event_loop in open {
                    self.end_wait(pid, event_loop);
                }
            }
        }
    }

    /// Emits a loop's last selector wait, with the tasks it woke counted.
    fn end_wait(&mut self, pid: u32, event_loop: u32) {
        if let Some(l) = self.loops.get_mut(&(pid, event_loop))
            && let Some((os_tid, start, end)) = l.wait.take()
        {
            let woken = std::mem::take(&mut l.woken);
            self.wait(Proto::Wait {
                os_tid,
                start,
                end,
                woken,
            });
        }
    }

    fn wait(&mut self, proto: Proto) {
        if self.waiting.len() >= MAX_WAITING {
            self.unresolved += 1;
        } else {
            self.waiting.push_back(proto);
        }
    }

    /// Emits every waiting event whose thread is known: `thread(os_tid)` gives the run-wide id
    /// and the CPU it was last seen on. Others keep waiting, in order.
    pub fn drain(&mut self, thread: &dyn Fn(u32) -> Option<Known>, out: &mut Vec<Event>) {
        let mut keep = VecDeque::new();
        while let Some(proto) = self.waiting.pop_front() {
            match resolve(proto, thread) {
                Ok(Some(events)) => out.extend(events),
                // From before the watch found its thread: its timeline starts later.
                Ok(None) => self.early += 1,
                Err(proto) => keep.push_back(proto),
            }
        }
        self.waiting = keep;
    }

    /// Ends the watch: emits what can be, counts what cannot.
    pub fn finish(&mut self, thread: &dyn Fn(u32) -> Option<Known>, out: &mut Vec<Event>) {
        let open: Vec<(u32, u32)> = self.loops.keys().copied().collect();
        for (pid, event_loop) in open {
            self.end_wait(pid, event_loop);
        }
        self.drain(thread, out);
        self.unresolved += self.waiting.len() as u64;
        self.waiting.clear();
    }

    /// The GIL's futex words in `pid`, once the probe learned them.
    pub fn gil(&self, pid: u32) -> Option<&[u64]> {
        self.gil.get(&pid).map(Vec::as_slice)
    }

    /// Whether no process told its GIL's futex words (so no thread can be seen waiting on it).
    pub fn no_gil(&self) -> bool {
        self.gil.is_empty()
    }

    /// What the run's summary should say about the probe.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.pythons.is_empty() {
            let mut by_python: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
            for (pid, python) in &self.pythons {
                by_python.entry(python).or_default().push(*pid);
            }
            for (python, pids) in by_python {
                let list: Vec<String> = pids.iter().take(6).map(u32::to_string).collect();
                let more = pids.len().saturating_sub(6);
                let list: String = list.join(", ");
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                let what = if self.tasks.is_empty() {
                    "its threads' names (no asyncio task was created)"
                } else {
                    "its threads' names, asyncio tasks with their steps and wakes, and each \
                     loop's selector waits and queues (a step's CPU is the one its thread was \
                     last sampled on)"
                };
                out.push(format!(
                    "python probe: {python} in process{} {list}{more} recorded {what}",
                    if pids.len() == 1 { "" } else { "es" },
                ));
            }
            let with_gil: Vec<String> = self.gil.keys().map(u32::to_string).collect();
            if !with_gil.is_empty() {
                out.push(format!(
                    "GIL (process{} {}): a thread asleep in futex on its GIL's address (read \
                     from /proc/TID/syscall when it sleeps) is shown waiting for it; a thread \
                     that runs after such a wait is shown holding it until it blocks or \
                     another thread takes it (inferred from the samples: CPython's take_gil \
                     returns holding the GIL, and blocking calls release it). Between, no \
                     holder is shown: one is known only that way",
                    if with_gil.len() == 1 { "" } else { "es" },
                    with_gil.join(", ")
                ));
            }
        }
        out.extend(self.notes.iter().cloned());
        if self.bad_lines > 0 {
            out.push(format!(
                "python probe: {} records could not be read and were left out (first: {})",
                self.bad_lines,
                self.first_bad.as_deref().unwrap_or("?")
            ));
        }
        if self.beyond > 0 {
            out.push(format!(
                "python probe: more than {MAX_TASKS} tasks or {MAX_LOOPS} event loops; {} \
                 later records were left out",
                self.beyond
            ));
        }
        if self.early > 0 {
            out.push(format!(
                "python probe: {} task steps or selector waits came before the watch found \
                 their thread and were left out",
                self.early
            ));
        }
        if self.unresolved > 0 {
            out.push(format!(
                "python probe: {} records were about threads the watch did not follow and were \
                 left out",
                self.unresolved
            ));
        }
        out
    }
}

/// A task's label: its own name when the program gave it one, else the coroutine's name with
/// asyncio's default name (`Task-3`).
fn label(name: &str, coro: &str) -> String {
    let short = coro.rsplit('.').next().unwrap_or(coro);
    let default = name
        .strip_prefix("Task-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let text = match (default, short.is_empty()) {
        (true, false) => format!("{short} {name}"),
        (_, _) if !name.is_empty() => name.to_string(),
        _ => short.to_string(),
    };
    text.chars().take(40).collect()
}

/// The events of `proto` once its thread is known (`Err`: not yet; `None`: it happened
/// before the watch found its thread).
fn resolve(
    proto: Proto,
    thread: &dyn Fn(u32) -> Option<Known>,
) -> Result<Option<Vec<Event>>, Proto> {
    Ok(Some(match proto {
        Proto::Ready(e) => vec![e],
        Proto::Poll {
            task,
            os_tid,
            start,
            end,
            done,
        } => {
            let Some(Known {
                tid, cpu, since, ..
            }) = thread(os_tid)
            else {
                return Err(proto);
            };
            if start < since {
                return Ok(None);
            }
            let mut out = vec![Event::Poll {
                task,
                tid,
                cpu,
                start,
                end,
                ready: done == Done::Finished,
            }];
            if done == Done::Cancelled {
                out.push(Event::TaskCancelled { task, at: end });
            }
            out
        }
        Proto::Wait {
            os_tid,
            start,
            end,
            woken,
        } => {
            let Some(Known { tid, since, .. }) = thread(os_tid) else {
                return Err(proto);
            };
            if start < since {
                return Ok(None);
            }
            vec![Event::LoopWait {
                tid,
                start,
                end,
                woken,
            }]
        }
        Proto::Rename { os_tid, at, name } => {
            let Some(Known { tid, since, .. }) = thread(os_tid) else {
                return Err(Proto::Rename { os_tid, at, name });
            };
            // Named as it started, perhaps a moment before the watch found it.
            vec![Event::ThreadRename {
                tid,
                at: at.max(since),
                name,
            }]
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: u64 = 1_000_000;

    fn feed(c: &mut Converter, lines: &[&str]) {
        for l in lines {
            c.line(l);
        }
    }

    fn known(os_tid: u32) -> Option<Known> {
        (os_tid == 100 || os_tid == 101).then_some(Known {
            tid: os_tid - 99,
            pid: 100,
            cpu: 3,
            since: 0,
            seen: 0,
        })
    }

    #[test]
    fn a_loop_becomes_tasks_polls_wakes_waits_and_queues() {
        let mut c = Converter::new(O);
        feed(
            &mut c,
            &[
                "P 100",
                "H 1 3.11.2 cpython",
                "S 1 1000010 1 100 Task-1 main",
                "W 1 1000010 task:1",
                "R 1 100 1000020 1000030 0",
                "S 2 1000025 1 100 fetcher main.%3Clocals%3E.fetch",
                "W 2 1000025 task:1",
                "Q 1 100 1000031 1 1 1",
                "L 1 100 1000032 1000090 5000000 1",
                "W 2 1000091 io",
                "R 2 100 1000092 1000095 1",
                "W 1 1000095 task:2",
                "R 1 100 1000096 1000097 2",
                "Q 1 100 1000098 0 0 0",
                "X 1000099",
            ],
        );
        let mut out = Vec::new();
        c.drain(&known, &mut out);
        assert_eq!(
            out,
            vec![
                Event::TaskSpawn {
                    task: 0,
                    at: 10,
                    label: "main Task-1".into(),
                    waits_on: WaitKind::Any
                },
                Event::Wake {
                    task: 0,
                    at: 10,
                    by: WakeBy::Task { task: 0 }
                },
                Event::Poll {
                    task: 0,
                    tid: 1,
                    cpu: 3,
                    start: 20,
                    end: 30,
                    ready: false
                },
                Event::TaskSpawn {
                    task: 1,
                    at: 25,
                    label: "fetcher".into(),
                    waits_on: WaitKind::Any
                },
                Event::Wake {
                    task: 1,
                    at: 25,
                    by: WakeBy::Task { task: 0 }
                },
                Event::QueueDepth {
                    at: 31,
                    ready: 1,
                    io: 1,
                    timers: 1
                },
                Event::Wake {
                    task: 1,
                    at: 91,
                    by: WakeBy::Io
                },
                Event::Poll {
                    task: 1,
                    tid: 1,
                    cpu: 3,
                    start: 92,
                    end: 95,
                    ready: true
                },
                Event::Wake {
                    task: 0,
                    at: 95,
                    by: WakeBy::Task { task: 1 }
                },
                Event::Poll {
                    task: 0,
                    tid: 1,
                    cpu: 3,
                    start: 96,
                    end: 97,
                    ready: false
                },
                Event::TaskCancelled { task: 0, at: 97 },
                // The wait is emitted at the end of its iteration, with the one task it woke.
                Event::LoopWait {
                    tid: 1,
                    start: 32,
                    end: 90,
                    woken: 1
                },
                Event::QueueDepth {
                    at: 98,
                    ready: 0,
                    io: 0,
                    timers: 0
                },
            ]
        );
        assert!(
            c.notes()[0].contains("cpython 3.11.2 in process 100 recorded"),
            "{:?}",
            c.notes()
        );
    }

    #[test]
    fn events_wait_for_their_thread_and_the_rest_are_counted() {
        let mut c = Converter::new(O);
        feed(
            &mut c,
            &[
                "P 7",
                "T 102 1000005 worker-a",
                "T 7 1000005 MainThread",
                "S 1 1000010 1 102 Task-1 main",
                "R 1 102 1000020 1000030 1",
                "T 101 1000040 pool-1",
            ],
        );
        let mut out = Vec::new();
        c.drain(&known, &mut out);
        // Only what needs no thread, and the rename of the known thread (not the main one).
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(out[1], Event::ThreadRename { tid: 2, at: 40, .. }));
        // The thread becomes known: its events come, in order.
        let later = |os_tid: u32| {
            (os_tid == 102)
                .then_some(Known {
                    tid: 9,
                    pid: 7,
                    cpu: 0,
                    since: 15,
                    seen: 15,
                })
                .or_else(|| known(os_tid))
        };
        out.clear();
        c.drain(&later, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        // Renamed at 5, found at 15: named as it was found.
        assert!(matches!(out[0], Event::ThreadRename { tid: 9, at: 15, .. }));
        assert!(matches!(
            out[1],
            Event::Poll {
                tid: 9,
                ready: true,
                ..
            }
        ));
        // One never known: counted, not guessed.
        feed(&mut c, &["R 1 555 1000050 1000060 0"]);
        out.clear();
        c.finish(&known, &mut out);
        assert!(out.is_empty());
        assert!(
            c.notes()
                .iter()
                .any(|n| n.contains("1 records were about threads")),
            "{:?}",
            c.notes()
        );
    }

    #[test]
    fn tasks_of_two_processes_get_their_own_ids_and_queues_add_up() {
        let mut c = Converter::new(O);
        feed(
            &mut c,
            &[
                "P 100",
                "S 1 1000010 1 100 Task-1 a",
                "Q 1 100 1000011 1 0 0",
                "P 101",
                "S 1 1000012 1 101 Task-1 b",
                "Q 1 101 1000013 1 2 3",
            ],
        );
        let mut out = Vec::new();
        c.drain(&known, &mut out);
        assert!(matches!(out[0], Event::TaskSpawn { task: 0, .. }));
        assert!(matches!(out[2], Event::TaskSpawn { task: 1, .. }));
        assert_eq!(
            out[3],
            Event::QueueDepth {
                at: 13,
                ready: 2,
                io: 2,
                timers: 3
            }
        );
    }

    #[test]
    fn gil_addresses_failures_and_bad_lines_are_kept_or_said() {
        let mut c = Converter::new(O);
        feed(
            &mut c,
            &[
                "S 1 1 1 1 x y",
                "P 5",
                "G 0x10,0x14 helper%20threads",
                "P 6",
                "G - free-threaded",
                "E boom",
                "R nonsense",
            ],
        );
        assert_eq!(c.gil(5), Some(&[0x10, 0x14][..]));
        assert_eq!(c.gil(6), None);
        let notes = c.notes().join("\n");
        assert!(
            notes.contains("cannot be seen in process 6: free-threaded"),
            "{notes}"
        );
        assert!(notes.contains("failed in process 6"), "{notes}");
        assert!(notes.contains("2 records could not be read"), "{notes}");
        assert!(notes.contains("before any process header"), "{notes}");
    }

    #[test]
    fn labels_prefer_the_programs_own_names() {
        assert_eq!(label("Task-3", "main.<locals>.fetch"), "fetch Task-3");
        assert_eq!(label("downloader", "fetch"), "downloader");
        assert_eq!(label("", "fetch"), "fetch");
        assert_eq!(label(&"x".repeat(100), "f").len(), 40);
    }
}
