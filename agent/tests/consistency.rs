//! One truth: at hundreds of instants of every gallery run and of a fresh run of every
//! scenario, what the frame shows in one place agrees with what it shows in another. Each
//! thread is in exactly one place (on a core, queued for one, in its process's lock, or in
//! one waiting area), each lock's holder and waiters belong to that lock's process, a holder
//! is never also waiting, and every count equals the items it counts.
//!
//! The page, `coreplay render` and the browser tests all draw from this one frame, so
//! agreement here is agreement on the screen.

mod common;

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    process::Command,
};

use common::BIN;
use coreplay_shared::{
    event::{Event, OffReason},
    frame::{self, Frame, SAMPLE},
    replay::{Replay, ThreadState},
    trace_file::TraceFile,
};

/// Instants checked per run.
const INSTANTS: u64 = 240;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where a thread is drawn in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Core(u32),
    Queue(u32),
    Lock(u32),
    Area(&'static str),
}

/// Every place each sampled token appears in, and whether each place listed all its threads.
fn places(f: &Frame) -> HashMap<u32, Vec<Place>> {
    let mut at: HashMap<u32, Vec<Place>> = HashMap::new();
    for (&cpu, c) in f.cpus.iter() {
        if let Some((t, _)) = &c.running {
            at.entry(t.tid).or_default().push(Place::Core(cpu));
        }
        for t in &c.queue {
            at.entry(t.tid).or_default().push(Place::Queue(cpu));
        }
    }
    for l in &f.locks {
        for t in &l.waiters {
            at.entry(t.tid).or_default().push(Place::Lock(l.pid));
        }
    }
    for a in &f.areas {
        for t in &a.tokens {
            at.entry(t.tid).or_default().push(Place::Area(a.class));
        }
    }
    at
}

/// Checks one frame against the replay's states at its instant; `what` names it in failures.
fn check_frame(replay: &Replay, f: &Frame, what: &str) {
    let t = f.t;
    let states = replay.thread_states(t);
    let threads = replay.threads();
    let pid_of: HashMap<u32, u32> = threads.iter().map(|th| (th.tid, th.pid)).collect();
    let shown = places(f);
    // Each thread drawn at most once, and where its state says.
    for (th, state) in threads.iter().zip(&states) {
        let at = shown.get(&th.tid).cloned().unwrap_or_default();
        assert!(
            at.len() <= 1,
            "{what} at {t}: thread {} ({}) drawn in {} places: {at:?}",
            th.tid,
            th.name,
            at.len()
        );
        let ok = match (state, at.first()) {
            (ThreadState::Running { cpu }, Some(Place::Core(c))) => cpu == c,
            (ThreadState::Running { .. }, _) => false,
            (ThreadState::Off(OffReason::Preempted), Some(Place::Queue(_))) => true,
            (ThreadState::Off(OffReason::Lock), Some(Place::Lock(pid))) => *pid == th.pid,
            (ThreadState::Off(OffReason::Io), Some(Place::Area(a))) => *a == "io",
            (ThreadState::Off(OffReason::Sleep), Some(Place::Area(a))) => *a == "sleep",
            (ThreadState::Off(OffReason::Unknown), Some(Place::Area(a))) => *a == "unknown",
            (ThreadState::Between, Some(Place::Area(a))) => *a == "between",
            // Sampled lists may leave a thread out; the counts below account for it.
            (ThreadState::Off(_) | ThreadState::Between, None) => true,
            (ThreadState::NotStarted | ThreadState::Ended, None) => true,
            _ => false,
        };
        assert!(
            ok,
            "{what} at {t}: thread {} ({}) is {state:?} but drawn at {at:?}",
            th.tid, th.name
        );
    }
    // Counts equal what they count.
    let count = |pred: &dyn Fn(&ThreadState, u32) -> bool| {
        threads
            .iter()
            .zip(&states)
            .filter(|(th, s)| pred(s, th.pid))
            .count()
    };
    for (&cpu, c) in f.cpus.iter() {
        assert_eq!(
            c.queue.len(),
            c.queued.min(SAMPLE),
            "{what} at {t}: CPU {cpu}'s queue lists {} of {}",
            c.queue.len(),
            c.queued
        );
    }
    let all_queued: usize = f.cpus.values().map(|c| c.queued).sum();
    let preempted = count(&|s, _| *s == ThreadState::Off(OffReason::Preempted));
    assert!(
        all_queued <= preempted,
        "{what} at {t}: {all_queued} queued, {preempted} preempted"
    );
    for a in &f.areas {
        let n = count(&|s, _| match s {
            ThreadState::Off(OffReason::Io) => a.class == "io",
            ThreadState::Off(OffReason::Sleep) => a.class == "sleep",
            ThreadState::Off(OffReason::Unknown) => a.class == "unknown",
            ThreadState::Between => a.class == "between",
            _ => false,
        });
        assert_eq!(a.count, n, "{what} at {t}: area {} counts", a.class);
        assert_eq!(
            a.tokens.len(),
            n.min(SAMPLE),
            "{what} at {t}: area {}",
            a.class
        );
        assert!(
            a.count > 0,
            "{what} at {t}: an empty area {} is drawn",
            a.class
        );
    }
    // Locks: one per process that has one, each with its own holder and waiters.
    let pids: BTreeSet<u32> = f.locks.iter().map(|l| l.pid).collect();
    assert_eq!(
        pids.len(),
        f.locks.len(),
        "{what} at {t}: a process drawn with two locks"
    );
    for l in &f.locks {
        let waiting = count(&|s, pid| *s == ThreadState::Off(OffReason::Lock) && pid == l.pid);
        assert_eq!(
            l.waiting, waiting,
            "{what} at {t}: lock of {} counts",
            l.pid
        );
        assert_eq!(l.waiters.len(), waiting.min(SAMPLE));
        if let Some(h) = &l.holder {
            assert_eq!(
                pid_of.get(&h.tid),
                Some(&l.pid),
                "{what} at {t}: the lock of {} held by a thread of another process",
                l.pid
            );
            assert!(
                shown
                    .get(&h.tid)
                    .is_none_or(|p| p.iter().all(|p| !matches!(p, Place::Lock(_)))),
                "{what} at {t}: holder {} also waits for a lock",
                h.tid
            );
        }
        for w in &l.waiters {
            assert_eq!(pid_of.get(&w.tid), Some(&l.pid));
        }
    }
    // No thread waits for a lock its process's box does not show.
    let lock_waiters = count(&|s, _| *s == ThreadState::Off(OffReason::Lock));
    let in_boxes: usize = f.locks.iter().map(|l| l.waiting).sum();
    assert_eq!(
        lock_waiters, in_boxes,
        "{what} at {t}: lock waiters outside any box"
    );
}

fn check_run(trace: &TraceFile, what: &str) -> usize {
    let mut replay = Replay::new();
    replay.extend(&trace.events);
    replay.prepare();
    let (start, end) = (replay.start(), replay.end().max(replay.start() + 1));
    // Evenly spread instants, plus every lock step's own instant and the one just before
    // (where hand-overs and requests happen).
    let mut instants: BTreeSet<u64> = (0..INSTANTS)
        .map(|i| start + (end - start) * i / INSTANTS)
        .collect();
    for e in &trace.events {
        if let Event::Lock { at, .. } = e {
            instants.insert(*at);
            instants.insert(at.saturating_sub(1));
            if instants.len() > 4 * INSTANTS as usize {
                break;
            }
        }
    }
    for &t in &instants {
        let f = frame::build(&replay, t, 50_000);
        check_frame(&replay, &f, what);
    }
    instants.len()
}

fn read(path: &Path) -> TraceFile {
    coreplay_agent::record::read_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_gallery_run_agrees_with_itself_at_every_instant() {
    let dir = repo().join("gallery");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("gallery")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.to_string_lossy().ends_with(".coreplay.gz"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "the gallery is missing");
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let n = check_run(&read(&file), &name);
        assert!(n >= 200, "{name}: only {n} instants");
    }
}

#[test]
fn a_fresh_run_of_every_scenario_agrees_with_itself_at_every_instant() {
    let dir = std::env::temp_dir().join(format!("coreplay-consistency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (scenario, args) in [
        ("parallel-compute", &["--work", "400"][..]),
        ("oversubscribed", &["--threads", "16", "--work", "400"]),
        (
            "gil",
            &[
                "--threads",
                "4",
                "--work",
                "400",
                "--switch-interval-ms",
                "1",
            ],
        ),
        ("process-pool", &["--processes", "4", "--work", "400"]),
        ("io-sequential", &["--requests", "5", "--latency-ms", "2"]),
        (
            "io-threads",
            &["--threads", "4", "--requests", "20", "--latency-ms", "2"],
        ),
        ("io-async", &["--requests", "50", "--latency-ms", "5"]),
        (
            "event-loop-blocked",
            &["--requests", "20", "--latency-ms", "5", "--block-ms", "10"],
        ),
        (
            "async-vs-threads",
            &["--requests", "30", "--threads", "4", "--latency-ms", "5"],
        ),
    ] {
        let file = dir.join(format!("{scenario}.coreplay.gz"));
        let out = Command::new(BIN)
            .args(["run", scenario, "--out"])
            .arg(&file)
            .args(args)
            .output()
            .expect("coreplay runs");
        assert!(
            out.status.success(),
            "{scenario}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let trace = read(&file);
        let n = check_run(&trace, scenario);
        assert!(n >= 200, "{scenario}: only {n} instants");
        if scenario == "process-pool" {
            // Four processes, four locks (not one lock across them).
            let mut replay = Replay::new();
            replay.extend(&trace.events);
            replay.prepare();
            let most = (0..INSTANTS)
                .map(|i| replay.start() + (replay.end() - replay.start()) * i / INSTANTS)
                .map(|t| replay.locks_at(t).len())
                .max()
                .unwrap_or(0);
            assert_eq!(most, 4, "process-pool: one lock per worker process");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
