//! What the animation draws at one instant, resolved from a run's [`Replay`]: names, colours,
//! who runs where, who waits for what. The page's views and `coreplay render` draw from this
//! one model; pure, so it is tested natively.

use std::rc::Rc;

use crate::json::quote;
use crate::vec_map::VecMap;
use crate::{
    event::{Ns, OffReason, Role},
    replay::{Replay, TaskState, ThreadState},
};

/// Tokens drawn per waiting area, queue or process before the rest is only counted.
pub const SAMPLE: usize = 24;

/// A thread's token: stable colour and short name.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Run-wide id.
    pub tid: u32,
    /// Its name.
    pub name: Rc<str>,
    /// Hue, degrees.
    pub hue: u16,
}

/// A stable, well-spread hue for a thread.
pub fn hue(tid: u32) -> u16 {
    // The golden angle spreads consecutive ids around the wheel.
    ((u64::from(tid) * 137_508 / 1000) % 360) as u16
}

/// One hardware thread at the instant.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuCell {
    /// Running thread and since when.
    pub running: Option<(Token, Ns)>,
    /// A thread that left this core recently: who, whether it was preempted, how long ago.
    pub leaving: Option<(Token, bool, Ns)>,
    /// Where the running thread came from, when it migrated here recently.
    pub migrated_from: Option<u32>,
    /// Runnable threads waiting for this core.
    pub queue: Vec<Token>,
    /// How many wait (the queue may be a sample).
    pub queued: usize,
    /// Switches in so far.
    pub switches: u32,
    /// Busy share of the time so far, 0..=1.
    pub utilisation: f64,
}

/// A waiting area: threads off the CPU for one reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// What they wait for.
    pub title: &'static str,
    /// CSS class.
    pub class: &'static str,
    /// How many.
    pub count: usize,
    /// A sample of them.
    pub tokens: Vec<Token>,
}

/// One process's lock (each process has its own, as each Python process has its own GIL).
#[derive(Debug, Clone, PartialEq)]
pub struct LockCell {
    /// The process whose lock it is.
    pub pid: u32,
    /// That process's name, when the run named it (a worker process); none for the agent's
    /// own threads.
    pub process: Option<String>,
    /// The holder.
    pub holder: Option<Token>,
    /// Waiters off the CPU in the order they asked (a sample; `waiting` counts them all):
    /// the threads waiting for this lock, each shown here and nowhere else.
    pub waiters: Vec<Token>,
    /// How many wait.
    pub waiting: usize,
    /// A waiter asked for a hand-over.
    pub drop_requested: bool,
    /// Hand-overs so far.
    pub handovers: u32,
}

/// A process box.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessBox {
    /// OS pid.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Whether it has exited by now.
    pub exited: bool,
    /// Threads (a sample) with where they are.
    pub threads: Vec<(Token, ThreadState)>,
    /// Threads alive in it now.
    pub alive: usize,
    /// Threads running now.
    pub running: usize,
}

/// Short-lived helper processes that have ended, folded into one box: a wrapper (a pyenv shim
/// is a shell script) starts a dozen processes of one thread that live a moment and use almost
/// no CPU, and they would push the program's own processes out of sight.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Helpers {
    /// How many.
    pub count: usize,
    /// Their names, most frequent first, with how many had each.
    pub names: Vec<(String, usize)>,
}

impl Helpers {
    /// The helpers with these (thread) names, counted: most frequent first, then by name.
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Helpers {
        let mut counted: Vec<(String, usize)> = Vec::new();
        let mut count = 0;
        for name in names {
            count += 1;
            match counted.iter_mut().find(|n| n.0 == name) {
                Some(n) => n.1 += 1,
                None => counted.push((name.to_string(), 1)),
            }
        }
        crate::sort::by(&mut counted, |a, b| {
            b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))
        });
        Helpers {
            count,
            names: counted,
        }
    }

    /// "bash ×6, readlink ×2, …": the first six names, most frequent first.
    pub fn list(&self) -> String {
        let mut list: Vec<String> = self
            .names
            .iter()
            .take(6)
            .map(|(n, k)| {
                if *k > 1 {
                    format!("{n} ×{k}")
                } else {
                    n.clone()
                }
            })
            .collect();
        if self.names.len() > 6 {
            list.push("…".into());
        }
        list.join(", ")
    }
}

/// A one-thread process that has ended, having used less CPU than this, ns, is a helper…
pub const HELPER_CPU_NS: Ns = 5_000_000;
/// …when there are at least this many of them (fewer are shown as they are).
pub const MIN_HELPERS: usize = 3;

/// The event loop at the instant.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopCell {
    /// The name of the loop's thread, or its run-wide id when it has none (none before any
    /// poll).
    pub thread: Option<String>,
    /// Event loops in the whole run (the cell shows the one that polled last).
    pub loops: u32,
    /// The task being polled: label and for how long so far.
    pub running: Option<(String, Ns)>,
    /// Ready queue front (labels), in order.
    pub ready: Vec<String>,
    /// Counts per state.
    pub ready_count: u32,
    /// Parked on I/O.
    pub io: (u32, Vec<String>),
    /// Parked on timers.
    pub timers: (u32, Vec<String>),
    /// Awaiting another task or a future (asyncio).
    pub awaiting: (u32, Vec<String>),
    /// Finished (futures resolved).
    pub done: (u32, Vec<String>),
    /// Cancelled.
    pub cancelled: u32,
    /// The selector wait in progress: for how long so far, and how many it will wake.
    pub waiting: Option<(Ns, u32)>,
    /// The last selector wait: slept, woken.
    pub last_wait: Option<(Ns, u32)>,
    /// Polls so far.
    pub polls: u32,
    /// Selector waits so far.
    pub waits: u32,
    /// The agent's own counts: ready, io, timers (asyncio: ready, awaiting anything, timer
    /// callbacks).
    pub depth: Option<(u32, u32, u32)>,
    /// Whether the loop is asyncio's, seen by the Python probe.
    pub asyncio: bool,
}

/// Everything drawn at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The instant, ns.
    pub t: Ns,
    /// Hardware threads that ran something, by OS index.
    pub cpus: VecMap<u32, CpuCell>,
    /// Waiting areas (I/O, sleep, …), only those with threads: threads waiting for a lock
    /// are in their process's lock instead.
    pub areas: Vec<Area>,
    /// Each process's lock, by pid, when the run has locks.
    pub locks: Vec<LockCell>,
    /// Processes grouping their threads.
    pub processes: Vec<ProcessBox>,
    /// Short-lived helper processes that have ended, folded (not in `processes`).
    pub helpers: Option<Helpers>,
    /// The event loop, when the run has one.
    pub event_loop: Option<LoopCell>,
    /// Requests answered and in flight.
    pub requests: (u32, u32),
    /// Until when (exclusive) this frame still shows the run correctly, apart from the
    /// running totals (busy share, "so far" durations), which may lag by at most the
    /// `recent` span it was built with: nothing shown changes before then, so an animation
    /// may reuse the frame until it.
    pub valid_until: Ns,
}

impl Frame {
    /// Whether this frame can stand for instant `t`.
    pub fn covers(&self, t: Ns) -> bool {
        self.t <= t && t < self.valid_until
    }
}

fn area_of(state: ThreadState) -> Option<(usize, &'static str, &'static str)> {
    Some(match state {
        ThreadState::Off(OffReason::Io) => (0, "Blocked on I/O", "io"),
        ThreadState::Off(OffReason::Sleep) => (1, "Asleep or blocked", "sleep"),
        ThreadState::Off(OffReason::Unknown) => (2, "Off CPU, no switch counted", "unknown"),
        ThreadState::Between => (3, "Alive, between recorded spans", "between"),
        _ => return None,
    })
}

/// Parses a duration: `250ns`, `40us`, `40µs`, `12.5ms`, `2s`; a bare number is ms.
///
/// Read in whole numbers (the fraction is cut to whole nanoseconds), not through `f64`: the
/// page then carries no float parser (its tables are ~15 kB of the wasm).
pub fn parse_duration(s: &str) -> Result<Ns, String> {
    /// The longest duration accepted: about 11.6 days.
    const MAX_NS: u128 = 1_000_000_000_000_000;
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(format!("{} is not a duration like 12.5ms", quote(s)));
    }
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "" | "ms" => 1_000_000,
        "s" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown time unit {} (use ns, us, ms or s)",
                quote(other)
            ));
        }
    };
    let out_of_range = || format!("{} is out of range", quote(s));
    // Digits past the 20th of either part cannot change the result: the whole part is then
    // out of range, and the fraction's 21st digit is below a nanosecond at any unit.
    let whole = whole.trim_start_matches('0');
    if whole.len() > 20 {
        return Err(out_of_range());
    }
    let frac = &frac[..frac.len().min(20)];
    let digits = |d: &str| d.bytes().fold(0u128, |v, b| v * 10 + u128::from(b - b'0'));
    let ns = digits(whole) * scale + digits(frac) * scale / 10u128.pow(frac.len() as u32);
    if ns > MAX_NS {
        return Err(out_of_range());
    }
    Ok(ns as Ns)
}

/// Resolves the instant `t`: [`build_threads`] and [`build_loop`] together.
pub fn build(replay: &Replay, t: Ns, recent: Ns) -> Frame {
    let mut f = build_threads(replay, t, recent);
    if let Some((l, until)) = build_loop(replay, t, recent) {
        f.event_loop = Some(l);
        f.valid_until = f.valid_until.min(until);
    }
    f
}

/// The event loop at `t` and until when it holds (its "so far" durations may lag by up to
/// `recent`), or `None` when the run has no event loop.
pub fn build_loop(replay: &Replay, t: Ns, recent: Ns) -> Option<(LoopCell, Ns)> {
    let label = |task: u32| {
        replay
            .task(task)
            .map_or_else(|| format!("task {task}"), |t| t.label.clone())
    };
    let l = replay.loop_at(t, SAMPLE)?;
    let sample = |s: TaskState| {
        (
            l.count(s),
            l.samples
                .get(&s)
                .map(|v| v.iter().map(|&id| label(id)).collect())
                .unwrap_or_default(),
        )
    };
    let cell = LoopCell {
        thread: l.thread.map(|tid| {
            replay
                .thread(tid)
                .map_or_else(|| tid.to_string(), |t| t.name.to_string())
        }),
        loops: l.loops,
        running: l
            .running
            .map(|(task, s)| (label(task), t.saturating_sub(s))),
        ready: l.ready.iter().map(|&id| label(id)).collect(),
        ready_count: l.count(TaskState::Ready),
        io: sample(TaskState::ParkedIo),
        timers: sample(TaskState::ParkedTimer),
        awaiting: sample(TaskState::Awaiting),
        done: sample(TaskState::Done),
        cancelled: l.count(TaskState::Cancelled),
        waiting: l.waiting.map(|(s, n)| (t.saturating_sub(s), n)),
        last_wait: l.last_wait,
        polls: l.polls,
        waits: l.waits,
        depth: l.depth,
        asyncio: l.asyncio,
    };
    let until = replay
        .next_loop_change(t)
        .unwrap_or(Ns::MAX)
        .min(t.saturating_add(recent.max(1)));
    Some((cell, until))
}

/// Resolves the instant `t` for the cores view (no event loop: see [`build_loop`]). `recent` is how long ago (run time) a hand-over or migration
/// still counts as happening now, so that it stays visible for a moment on screen.
pub fn build_threads(replay: &Replay, t: Ns, recent: Ns) -> Frame {
    // Tokens are made only for the threads drawn (names are shared, not copied).
    let token = |tid: u32| match replay.thread(tid) {
        Some(th) => Token {
            tid,
            name: Rc::clone(&th.name),
            hue: hue(tid),
        },
        None => Token {
            tid,
            name: Rc::from(format!("thread {tid}")),
            hue: hue(tid),
        },
    };
    let states = replay.thread_states(t);
    let cpus = replay
        .cpus_at_with(t, &states)
        .into_iter()
        .map(|c| {
            let leaving = c
                .last_out
                .filter(|h| t.saturating_sub(h.at) <= recent)
                .filter(|h| c.running.is_none_or(|(tid, _)| tid != h.tid))
                .map(|h| (token(h.tid), h.involuntary(), t.saturating_sub(h.at)));
            let migrated_from = c.migrated_from.filter(|_| {
                c.running
                    .is_some_and(|(_, s)| t.saturating_sub(s) <= recent)
            });
            let queued = c.queue.len();
            (
                c.cpu,
                CpuCell {
                    running: c.running.map(|(tid, s)| (token(tid), s)),
                    leaving,
                    migrated_from,
                    queue: c.queue.iter().take(SAMPLE).map(|&q| token(q)).collect(),
                    queued,
                    switches: c.switches,
                    utilisation: if t == 0 {
                        0.0
                    } else {
                        c.busy_ns as f64 / t as f64
                    },
                },
            )
        })
        .collect();

    let mut areas: Vec<Area> = [
        ("Blocked on I/O", "io"),
        ("Asleep or blocked", "sleep"),
        ("Off CPU, no switch counted", "unknown"),
        ("Alive, between recorded spans", "between"),
    ]
    .into_iter()
    .map(|(title, class)| Area {
        title,
        class,
        count: 0,
        tokens: Vec::new(),
    })
    .collect();
    let mut by_pid: VecMap<u32, ProcessBox> = VecMap::new();
    for p in replay.processes() {
        by_pid.insert(
            p.pid,
            ProcessBox {
                pid: p.pid,
                name: p.name.clone(),
                role: p.role,
                exited: p.end.is_some_and(|e| e <= t),
                threads: Vec::new(),
                alive: 0,
                running: 0,
            },
        );
    }
    for (th, &state) in replay.threads().iter().zip(&states) {
        if let Some((i, _, _)) = area_of(state) {
            let a = &mut areas[i];
            a.count += 1;
            if a.tokens.len() < SAMPLE {
                a.tokens.push(token(th.tid));
            }
        }
        let b = by_pid.get_or_insert_with(th.pid, || ProcessBox {
            pid: th.pid,
            name: format!("process {}", th.pid),
            role: th.role,
            exited: false,
            threads: Vec::new(),
            alive: 0,
            running: 0,
        });
        if !matches!(state, ThreadState::NotStarted | ThreadState::Ended) {
            b.alive += 1;
        }
        if matches!(state, ThreadState::Running { .. }) {
            b.running += 1;
        }
        if b.threads.len() < 2 * SAMPLE {
            b.threads.push((token(th.tid), state));
        }
    }
    areas.retain(|a| a.count > 0);
    let mut processes: Vec<ProcessBox> = by_pid.into_values().collect();
    crate::sort::by_key(&mut processes, |p| (p.role != Role::Agent, p.pid));
    processes.retain(|p| !p.threads.is_empty());
    let helpers = fold_helpers(replay, &mut processes);

    let locks = replay
        .locks_at_with(t, &states)
        .into_iter()
        .map(|l| LockCell {
            pid: l.pid,
            process: replay
                .processes()
                .iter()
                .find(|p| p.pid == l.pid)
                .map(|p| p.name.clone()),
            holder: l.holder.map(|(tid, _)| token(tid)),
            waiting: l.waiters.len(),
            waiters: l.waiters.iter().take(SAMPLE).map(|&w| token(w)).collect(),
            drop_requested: l.drop_requested,
            handovers: l.handovers,
        })
        .collect();

    // The next change, a hand-over mark expiring, or the running totals going stale.
    let expiry = cpus_expiry(&cpus, t, recent);
    let valid_until = replay
        .next_thread_change(t)
        .unwrap_or(Ns::MAX)
        .min(t.saturating_add(recent.max(1)))
        .min(expiry);
    Frame {
        t,
        cpus,
        areas,
        locks,
        processes,
        helpers,
        event_loop: None,
        requests: replay.requests_at(t),
        valid_until,
    }
}

/// Takes the ended one-thread processes that used almost no CPU out of `processes`, when there
/// are at least [`MIN_HELPERS`] of them.
fn fold_helpers(replay: &Replay, processes: &mut Vec<ProcessBox>) -> Option<Helpers> {
    let cpu_of = |tid: u32| replay.thread(tid).map_or(0, |t| t.on_cpu_ns());
    let helper = |p: &ProcessBox| {
        p.exited
            && p.threads.len() == 1
            && p.threads
                .iter()
                .all(|(tok, _)| cpu_of(tok.tid) < HELPER_CPU_NS)
    };
    if processes.iter().filter(|p| helper(p)).count() < MIN_HELPERS {
        return None;
    }
    let (helpers, own): (Vec<ProcessBox>, Vec<ProcessBox>) =
        std::mem::take(processes).into_iter().partition(helper);
    *processes = own;
    // The thread's name (`bash`, `readlink`): the command line is a mouthful.
    let names: Vec<String> = helpers
        .iter()
        .map(|p| {
            p.threads
                .first()
                .map_or_else(|| p.name.clone(), |t| t.0.name.to_string())
        })
        .collect();
    Some(Helpers::of(names.iter().map(String::as_str)))
}

/// When the first hand-over mark shown stops being recent.
fn cpus_expiry(cpus: &VecMap<u32, CpuCell>, t: Ns, recent: Ns) -> Ns {
    cpus.values()
        .filter_map(|c| c.leaving.as_ref())
        .map(|(_, _, ago)| recent.saturating_sub(*ago))
        .min()
        .map_or(Ns::MAX, |left| t.saturating_add(left).saturating_add(1))
}

#[cfg(test)]
mod tests {
    use crate::event::{Event, LockOp};

    use super::*;

    fn gil_run() -> Replay {
        let mut r = Replay::new();
        let mut events = vec![Event::ProcessStart {
            pid: 7,
            at: 0,
            name: "coreplay".into(),
            role: Role::Agent,
        }];
        for tid in 1..=3 {
            events.push(Event::ThreadStart {
                tid,
                pid: 7,
                os_tid: 70 + tid,
                name: format!("py-{tid}"),
                role: Role::Worker,
                at: 0,
            });
        }
        events.extend([
            Event::Lock {
                tid: 1,
                at: 0,
                op: LockOp::Acquire,
            },
            Event::OnCpu {
                tid: 1,
                cpu: 0,
                start: 0,
                end: 5_000,
            },
            Event::Lock {
                tid: 2,
                at: 10,
                op: LockOp::Request,
            },
            Event::OffCpu {
                tid: 2,
                start: 10,
                end: 5_000,
                reason: OffReason::Lock,
            },
            Event::OnCpu {
                tid: 3,
                cpu: 1,
                start: 0,
                end: 1_000,
            },
            Event::OffCpu {
                tid: 3,
                start: 1_000,
                end: 3_000,
                reason: OffReason::Preempted,
            },
            Event::Lock {
                tid: 1,
                at: 5_000,
                op: LockOp::Release,
            },
            Event::Lock {
                tid: 2,
                at: 5_000,
                op: LockOp::Acquire,
            },
            Event::OnCpu {
                tid: 2,
                cpu: 0,
                start: 5_000,
                end: 9_000,
            },
        ]);
        r.extend(&events);
        r.prepare();
        r
    }

    #[test]
    fn frame_names_holder_waiters_and_queues() {
        let r = gil_run();
        let f = build(&r, 2_000, 100);
        let [lock] = &f.locks[..] else {
            panic!("one process, one lock: {:?}", f.locks)
        };
        assert_eq!(
            lock.holder.as_ref().map(|t| t.name.to_string()),
            Some("py-1".into())
        );
        assert_eq!((lock.waiters.len(), lock.waiting), (1, 1));
        assert_eq!(&*lock.waiters[0].name, "py-2");
        // The waiter is in the lock's list, and in no waiting area besides.
        assert!(f.areas.iter().all(|a| a.tokens.iter().all(|t| t.tid != 2)));
        // py-3 was preempted on cpu 1 and queues there.
        assert_eq!(f.cpus[&1].queued, 1);
        assert_eq!(&*f.cpus[&1].queue[0].name, "py-3");
        assert_eq!(f.cpus[&0].running.as_ref().map(|r| r.0.tid), Some(1));
        assert_eq!(f.processes.len(), 1);
        assert_eq!(f.processes[0].alive, 3);
        assert_eq!(f.processes[0].running, 1);
    }

    #[test]
    fn handover_is_visible_for_a_moment_then_gone() {
        let r = gil_run();
        let f = build(&r, 5_050, 100);
        let c0 = &f.cpus[&0];
        assert_eq!(c0.running.as_ref().map(|r| &*r.0.name), Some("py-2"));
        let (who, involuntary, ago) = c0.leaving.clone().expect("py-1 just left");
        assert_eq!((&*who.name, involuntary, ago), ("py-1", false, 50));
        assert_eq!(f.locks[0].handovers, 1);
        let f = build(&r, 5_500, 100);
        assert!(f.cpus[&0].leaving.is_none());
    }

    #[test]
    fn a_wrappers_short_lived_helpers_fold_into_one_box_once_ended() {
        use crate::event::{ProcessEnd, Role};
        let mut events = vec![Event::ProcessStart {
            pid: 100,
            at: 0,
            name: "python3 app.py".into(),
            role: Role::Worker,
        }];
        let mut thread = |tid: u32, pid: u32, name: &str, on: (Ns, Ns), end: Option<Ns>| {
            if pid != 100 {
                events.push(Event::ProcessStart {
                    pid,
                    at: on.0,
                    name: format!("/usr/bin/{name} --flag"),
                    role: Role::Worker,
                });
            }
            events.push(Event::ThreadStart {
                tid,
                pid,
                os_tid: pid + tid,
                name: name.into(),
                role: Role::Worker,
                at: on.0,
            });
            events.push(Event::OnCpu {
                tid,
                cpu: 0,
                start: on.0,
                end: on.1,
            });
            if let Some(end) = end {
                events.push(Event::ThreadEnd {
                    tid,
                    at: end,
                    cpu_ns: on.1 - on.0,
                    kernel_voluntary: 0,
                    kernel_involuntary: 0,
                });
                events.push(Event::ProcessExit {
                    pid,
                    at: end,
                    peak_rss_bytes: None,
                    end: ProcessEnd::Exited { code: 0 },
                });
            }
        };
        thread(1, 101, "bash", (10, 20), Some(30));
        thread(2, 102, "readlink", (40, 50), Some(60));
        thread(3, 103, "bash", (70, 80), Some(90));
        // A child that worked is the program's own, helper or not.
        thread(4, 104, "worker", (100, 10_000_000), Some(10_000_010));
        thread(5, 100, "main", (0, 20_000_000), None);
        let mut r = Replay::new();
        r.extend(&events);
        r.prepare();
        // While the third still runs, nothing is folded (two are not worth it).
        let f = build(&r, 75, 1);
        assert_eq!(f.helpers, None);
        assert_eq!(f.processes.len(), 5);
        let f = build(&r, 15_000_000, 1);
        assert_eq!(
            f.helpers,
            Some(Helpers {
                count: 3,
                names: vec![("bash".into(), 2), ("readlink".into(), 1)],
            })
        );
        let left: Vec<u32> = f.processes.iter().map(|p| p.pid).collect();
        assert_eq!(left, vec![100, 104]);
        assert_eq!(
            f.helpers.map(|h| h.list()).as_deref(),
            Some("bash ×2, readlink")
        );
        let many = Helpers::of(["a", "b", "c", "d", "e", "f", "g", "a"]);
        assert_eq!(
            (many.count, many.list().as_str()),
            (8, "a ×2, b, c, d, e, f, …")
        );
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ns"), Ok(250));
        assert_eq!(parse_duration("40µs"), Ok(40_000));
        assert_eq!(parse_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration("3"), Ok(3_000_000));
        assert!(parse_duration("-3ms").is_err());
        assert!(parse_duration("1e400s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("12.5ms"), Ok(12_500_000));
        assert_eq!(parse_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_duration("1.ms"), Ok(1_000_000));
        assert_eq!(parse_duration("0.0000000019s"), Ok(1), "cut to whole ns");
        assert_eq!(parse_duration("1000000s"), Ok(1_000_000_000_000_000));
        assert_eq!(parse_duration(" 007.25us "), Ok(7_250));
        for bad in [
            "",
            ".",
            "ms",
            "1.2.3ms",
            "1000001s",
            "123456789012345678901234567890ns",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let long_fraction = format!("1.{}s", "9".repeat(400));
        assert_eq!(parse_duration(&long_fraction), Ok(1_999_999_999));
    }

    #[test]
    fn a_frame_says_how_long_it_holds() {
        let r = gil_run();
        let f = build(&r, 2_000, 10_000);
        // py-3's preemption ends at 3 000: the next change.
        assert_eq!(f.valid_until, 3_000);
        assert!(f.covers(2_999) && !f.covers(3_000) && !f.covers(1_999));
        let later = build(&r, 2_999, 10_000);
        assert_eq!(later.locks, f.locks);
        assert_eq!(later.areas, f.areas);
        // A hand-over mark expires after `recent`.
        let f = build(&r, 5_050, 100);
        assert_eq!(f.valid_until, 5_101);
    }

    #[test]
    fn hues_are_stable_and_spread() {
        assert_eq!(hue(1), hue(1));
        let hues: std::collections::HashSet<u16> = (0..32).map(hue).collect();
        assert!(hues.len() >= 30);
    }
}
