//! `coreplay watch`: following real programs, in both fidelities, from the library, the
//! command line and the page's WebSocket.
//!
//! Timing assertions are loose on purpose: the machine may be busy with other work.

mod common;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{Agent, BIN, children_of, example, python, serial};
use coreplay_agent::{
    topology::{self, Source},
    watch::{self, FidelityChoice, ProgramOutput, Target, WatchFinished, WatchSpec},
};
use coreplay_shared::{
    ClientMsg, ErrorCode, PROTOCOL_VERSION, ServerMsg, decode_server,
    event::{Event, Fidelity, OffReason, ProcessEnd},
    scenario::ScenarioId,
    summary::Outcome,
    validate,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{connect_async, tungstenite::Message};

fn spec(command: Vec<String>, fidelity: FidelityChoice) -> WatchSpec {
    WatchSpec {
        target: Target::Command(command),
        program: None,
        hz: 1_000,
        fidelity,
        cap: Duration::from_secs(60),
        output: ProgramOutput::Capture,
        python_probe: true,
    }
}

fn watch_now(spec: &WatchSpec) -> WatchFinished {
    let watched = watch::start(spec).expect("watch starts");
    watched.run(Arc::new(AtomicBool::new(false)), |_| {})
}

fn fidelities() -> Vec<FidelityChoice> {
    // Sampled always; exact too where this machine permits it.
    let mut f = vec![FidelityChoice::Sampled];
    if coreplay_agent::trace::perf::probe().is_ok() {
        f.push(FidelityChoice::Exact);
    }
    f
}

/// Checks what every watch must satisfy (the one validator the trace readers use, plus the
/// kernel's own counters), returns threads by run-wide id: (pid, name).
fn check_well_formed(done: &WatchFinished) -> BTreeMap<u32, (u32, String)> {
    let topology = topology::load(&Source::Live).expect("topology");
    let events = &done.finished.events;
    let report = validate::check(&topology, events, true);
    assert!(
        report.is_clean(),
        "{}: {:#?}",
        report.headline().unwrap_or_default(),
        &report.problems[..report.problems.len().min(10)]
    );
    let mut threads: BTreeMap<u32, (u32, String)> = BTreeMap::new();
    let mut started_at: HashMap<u32, u64> = HashMap::new();
    let mut ended: HashMap<u32, (u64, u64)> = HashMap::new();
    let mut switches: HashMap<u32, (u64, u64)> = HashMap::new();
    for e in events {
        match e {
            Event::ThreadStart {
                tid, pid, name, at, ..
            } => {
                threads.insert(*tid, (*pid, name.clone()));
                started_at.insert(*tid, *at);
            }
            Event::Switch {
                tid,
                voluntary,
                involuntary,
                ..
            } => {
                let s = switches.entry(*tid).or_default();
                s.0 += u64::from(*voluntary);
                s.1 += u64::from(*involuntary);
            }
            _ => {}
        }
    }
    for e in events {
        if let Event::ThreadEnd {
            tid,
            at,
            cpu_ns,
            kernel_voluntary,
            kernel_involuntary,
        } = e
        {
            ended.insert(*tid, (*kernel_voluntary, *kernel_involuntary));
            assert!(*cpu_ns <= at - started_at[tid] + 50_000_000, "{e:?}");
        }
    }
    for tid in threads.keys() {
        let (vol, inv) = ended[tid];
        // The kernel's counters never go back: what the switch events add up to is at most
        // what the thread's last reading says (sampled: equal, but for switches after it).
        let (sv, si) = switches.get(tid).copied().unwrap_or_default();
        if done.finished.summary.fidelity != Fidelity::Exact {
            assert!(
                sv <= vol && si <= inv,
                "thread {tid}: {sv}/{si} > {vol}/{inv}"
            );
        }
    }
    threads
}

const THREADS_AND_A_CHILD: &str = r#"
import ctypes, os, threading, time
libc = ctypes.CDLL(None)
def name(n):
    libc.prctl(15, n.encode(), 0, 0, 0)
def busy(seconds):
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1
barrier = threading.Barrier(4)
def worker(i):
    name(f"busy-{i}")
    barrier.wait()
    busy(0.3)
threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
for t in threads:
    t.start()
barrier.wait()
pid = os.fork()
if pid == 0:
    name("child")
    busy(0.3)
    os._exit(3)
for t in threads:
    t.join()
os.waitpid(pid, 0)
"#;

#[test]
fn finds_exactly_the_threads_and_processes_a_program_starts() {
    let _serial = serial();
    let Some(py) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    for fidelity in fidelities() {
        let done = watch_now(&spec(
            vec![py.clone(), "-c".into(), THREADS_AND_A_CHILD.into()],
            fidelity,
        ));
        let summary = &done.finished.summary;
        assert_eq!(summary.outcome, Outcome::Completed, "{summary:?}");
        assert_eq!(summary.scenario, ScenarioId::Watch);
        match fidelity {
            FidelityChoice::Exact => assert_eq!(summary.fidelity, Fidelity::Exact),
            _ => assert!(
                matches!(summary.fidelity, Fidelity::Sampled { hz } if hz >= 100),
                "{:?}",
                summary.fidelity
            ),
        }
        let root = summary.watch.as_ref().expect("watch target").pid;
        let threads = check_well_formed(&done);
        let in_root: Vec<&String> = threads
            .values()
            .filter(|(pid, _)| *pid == root)
            .map(|(_, n)| n)
            .collect();
        let busy: Vec<&&String> = in_root.iter().filter(|n| n.starts_with("busy-")).collect();
        assert_eq!(busy.len(), 3, "{fidelity:?}: {threads:?}");
        assert_eq!(in_root.len(), 4, "main and three busy threads: {threads:?}");
        let others: Vec<&(u32, String)> = threads.values().filter(|(p, _)| *p != root).collect();
        assert_eq!(others.len(), 1, "one forked child, one thread: {threads:?}");
        assert_eq!(others[0].1, "child");
        let child = others[0].0;
        let exits: HashMap<u32, ProcessEnd> = done
            .finished
            .events
            .iter()
            .filter_map(|e| match e {
                Event::ProcessExit { pid, end, .. } => Some((*pid, *end)),
                _ => None,
            })
            .collect();
        assert_eq!(exits.get(&root), Some(&ProcessEnd::Exited { code: 0 }));
        assert!(
            matches!(
                exits.get(&child),
                Some(ProcessEnd::Exited { code: 3 } | ProcessEnd::Unknown)
            ),
            "{exits:?}"
        );
        // The busy threads computed, and it shows.
        for t in summary
            .threads
            .iter()
            .filter(|t| t.name.starts_with("busy-"))
        {
            assert!(t.cpu_ns > 30_000_000, "{t:?}");
            assert!(t.voluntary_switches + t.involuntary_switches > 0, "{t:?}");
        }
        assert!(
            done.finished
                .events
                .iter()
                .any(|e| matches!(e, Event::OnCpu { tid, .. } if threads[tid].1 == "child"))
        );
        assert!(
            done.stats.ticks > 50 && done.stats.achieved_hz() > 100.0,
            "{:?}",
            done.stats
        );
    }
}

#[test]
fn shell_background_jobs_are_followed_as_processes() {
    let _serial = serial();
    for fidelity in fidelities() {
        let script = "busy() { i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; }; \
                      busy & busy & wait";
        let done = watch_now(&spec(
            vec!["sh".into(), "-c".into(), script.into()],
            fidelity,
        ));
        let threads = check_well_formed(&done);
        let root = done.finished.summary.watch.as_ref().expect("target").pid;
        let pids: HashSet<u32> = threads.values().map(|(p, _)| *p).collect();
        assert_eq!(pids.len(), 3, "sh and its two jobs: {threads:?}");
        assert_eq!(threads.len(), 3, "one thread each: {threads:?}");
        assert!(pids.contains(&root));
        let busy_children = done
            .finished
            .summary
            .threads
            .iter()
            .filter(|t| t.pid != root && t.cpu_ns > 20_000_000)
            .count();
        assert_eq!(busy_children, 2, "{:?}", done.finished.summary.threads);
    }
}

#[test]
fn a_thread_that_renames_itself_later_is_renamed_in_the_run() {
    let _serial = serial();
    for fidelity in fidelities() {
        // Well after the start is announced (with "sh"), the shell names itself.
        // Ends with a builtin: bash runs a last external command in place of itself (exec),
        // which would rename the thread once more, to "sleep".
        let script = "sleep 0.3; printf renamed-sh > /proc/$$/comm; sleep 0.5; :";
        let done = watch_now(&spec(
            vec!["sh".into(), "-c".into(), script.into()],
            fidelity,
        ));
        check_well_formed(&done);
        let events = &done.finished.events;
        let root = done.finished.summary.watch.as_ref().expect("target").pid;
        let started = events.iter().find_map(|e| match e {
            Event::ThreadStart {
                tid, pid, name, at, ..
            } if *pid == root => Some((*tid, name.clone(), *at)),
            _ => None,
        });
        let (tid, first_name, start) = started.expect("the shell's thread started");
        assert_eq!(first_name, "sh", "{fidelity:?}");
        let renames: Vec<(u64, String)> = events
            .iter()
            .filter_map(|e| match e {
                Event::ThreadRename { tid: t, at, name } if *t == tid => Some((*at, name.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(renames.len(), 1, "{fidelity:?}: {renames:?}");
        assert_eq!(renames[0].1, "renamed-sh");
        assert!(
            renames[0].0 >= start + 150_000_000,
            "{fidelity:?}: renamed at {} ns, started at {start}",
            renames[0].0
        );
        let row = done
            .finished
            .summary
            .threads
            .iter()
            .find(|t| t.tid == tid)
            .expect("the shell's row");
        assert_eq!(row.name, "renamed-sh", "{fidelity:?}");
        // The page's model names the thread by its latest name.
        let mut replay = coreplay_shared::replay::Replay::new();
        replay.extend(events);
        replay.prepare();
        assert_eq!(
            replay.thread(tid).map(|t| t.name.to_string()),
            Some("renamed-sh".to_string())
        );
    }
}

/// Five times over, a thread ends and the next starts right after it: the process's thread
/// count stays the same, which once hid every such new thread from the watcher.
const RELAY: &str = r#"
import threading, time
t = threading.Thread(target=time.sleep, args=(0.15,))
t.start()
for _ in range(5):
    t.join()
    t = threading.Thread(target=time.sleep, args=(0.15,))
    t.start()
t.join()
"#;

#[test]
fn a_thread_started_as_another_ends_is_followed() {
    let _serial = serial();
    let Some(py) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    for fidelity in fidelities() {
        let done = watch_now(&spec(vec![py.clone(), "-c".into(), RELAY.into()], fidelity));
        let threads = check_well_formed(&done);
        assert_eq!(
            threads.len(),
            7,
            "{fidelity:?}: main and six relay threads: {:?}",
            done.finished.summary.threads
        );
    }
}

/// How long two or more of `tids` were on a CPU at once (with `wanting`: on a CPU or
/// runnable, waiting for one), as a share of the time at least one was; and the longest such
/// stretch, ns. With `overlap`, judged only over the part of the run where every one of `tids`
/// is alive and has work (each exits when its work is done): from the last of their first
/// slices to the first of their last, so that start-up (processes start one by one) and the
/// tail (one done, the other still busy) do not count as not running together.
fn together(events: &[Event], tids: &HashSet<u32>, wanting: bool, overlap: bool) -> (f64, u64) {
    let mut first: HashMap<u32, u64> = HashMap::new();
    let mut last: HashMap<u32, u64> = HashMap::new();
    for e in events {
        if let Event::OnCpu {
            tid, start, end, ..
        } = e
            && tids.contains(tid)
        {
            let f = first.entry(*tid).or_insert(*start);
            *f = (*f).min(*start);
            let l = last.entry(*tid).or_insert(*end);
            *l = (*l).max(*end);
        }
    }
    let (from, to) = if overlap {
        (
            first.values().copied().max().unwrap_or(0),
            last.values().copied().min().unwrap_or(0),
        )
    } else {
        (0, u64::MAX)
    };
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for e in events {
        let span = match e {
            Event::OnCpu {
                tid, start, end, ..
            } => Some((tid, start, end)),
            Event::OffCpu {
                tid,
                start,
                end,
                reason: OffReason::Preempted,
            } if wanting => Some((tid, start, end)),
            _ => None,
        };
        if let Some((tid, start, end)) = span
            && tids.contains(tid)
            && *start < to
            && *end > from
        {
            edges.push(((*start).max(from), 1));
            edges.push(((*end).min(to), -1));
        }
    }
    edges.sort();
    let (mut depth, mut last, mut any, mut both, mut longest, mut run) = (0, 0, 0, 0, 0, 0);
    for (t, d) in edges {
        if depth >= 1 {
            any += t - last;
        }
        if depth >= 2 {
            both += t - last;
            run += t - last;
            longest = longest.max(run);
        } else {
            run = 0;
        }
        depth += d;
        last = t;
    }
    (both as f64 / any.max(1) as f64, longest)
}

/// Two processes, each with its own interpreter and GIL, doing the same work from the same
/// moment and exiting when done: both have work from the later start to the earlier end.
const TWO_PROCESSES: &str = r#"
import ctypes, multiprocessing as mp
def work():
    ctypes.CDLL(None).prctl(15, b"proc-worker", 0, 0, 0)
    x = 0
    for i in range(3_000_000):
        x += i * i % 7
if __name__ == "__main__":
    ps = [mp.get_context("fork").Process(target=work) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
"#;

/// Over the part of the run where each of `tids` has work (each worker process computes from
/// the moment it joins the run until it exits: from the last of their starts to the first of
/// their ends) and each one's state is known (a recorded on- or off-CPU span: sampling leaves
/// blind spots where two threads' slices blurred over one CPU and were trimmed), the share of
/// time all of them wanted a CPU (on one, or runnable while another thread had it).
///
/// The window comes from the threads' lives, not from their on-CPU slices: on a busy machine
/// a worker may be runnable, not running, for a long stretch, and that is wanting a CPU too
/// (a CI run judged by slices found a worker whose last slice ended before the other's first).
fn all_want_where_known(events: &[Event], tids: &HashSet<u32>) -> f64 {
    let mut born: HashMap<u32, u64> = HashMap::new();
    let mut died: HashMap<u32, u64> = HashMap::new();
    // (time, tid, Δ known, Δ wanting)
    let mut edges: Vec<(u64, u32, i32, i32)> = Vec::new();
    let mut seen: HashMap<u32, [u64; 5]> = HashMap::new();
    for e in events {
        let (tid, start, end, wants, slot) = match e {
            Event::ThreadStart { tid, at, .. } => {
                born.insert(*tid, *at);
                continue;
            }
            Event::ThreadEnd { tid, at, .. } => {
                died.insert(*tid, *at);
                continue;
            }
            Event::OnCpu {
                tid, start, end, ..
            } => (tid, start, end, 1, 0),
            Event::OffCpu {
                tid,
                start,
                end,
                reason,
            } => {
                let slot = match reason {
                    OffReason::Preempted => 1,
                    OffReason::Sleep => 2,
                    OffReason::Io => 3,
                    _ => 4,
                };
                (
                    tid,
                    start,
                    end,
                    i32::from(*reason == OffReason::Preempted),
                    slot,
                )
            }
            _ => continue,
        };
        if tids.contains(tid) {
            edges.push((*start, *tid, 1, wants));
            edges.push((*end, *tid, -1, -wants));
            seen.entry(*tid).or_default()[slot] += end.saturating_sub(*start);
        }
    }
    let lives: Vec<String> = tids
        .iter()
        .map(|t| {
            let ms = |v: Option<&u64>| v.map_or(f64::NAN, |v| *v as f64 / 1e6);
            let s = seen.get(t).copied().unwrap_or_default();
            format!(
                "thread {t}: {:.1}..{:.1} ms, on CPU {:.1} ms, off (preempted {:.1}, asleep {:.1}, \
                 I/O {:.1}, other {:.1}) ms",
                ms(born.get(t)),
                ms(died.get(t)),
                s[0] as f64 / 1e6,
                s[1] as f64 / 1e6,
                s[2] as f64 / 1e6,
                s[3] as f64 / 1e6,
                s[4] as f64 / 1e6
            )
        })
        .collect();
    assert!(
        tids.iter()
            .all(|t| born.contains_key(t) && died.contains_key(t)),
        "every worker starts and ends in the run: {lives:#?}"
    );
    let from = born.values().copied().max().unwrap_or(0);
    let to = died.values().copied().min().unwrap_or(0);
    assert!(
        from < to,
        "the workers were never alive at once: {lives:#?}"
    );
    edges.sort_unstable_by_key(|e| (e.0, e.2));
    let mut state: HashMap<u32, (i32, i32)> = tids.iter().map(|t| (*t, (0, 0))).collect();
    let (mut prev, mut known, mut all) = (from, 0u64, 0u64);
    for (t, tid, dk, dw) in edges {
        let (a, b) = (prev.clamp(from, to), t.clamp(from, to));
        if b > a {
            if state.values().all(|s| s.0 > 0) {
                known += b - a;
            }
            if state.values().all(|s| s.1 > 0) {
                all += b - a;
            }
        }
        prev = t;
        if let Some(s) = state.get_mut(&tid) {
            s.0 += dk;
            s.1 += dw;
        }
    }
    // Blind spots are short (a blurred tick); a worker whose state is unknown for most of
    // its life is a watch that lost it, not a measurement.
    assert!(
        known * 2 > to - from,
        "the workers' states are known for only {:.1} of {:.1} ms of their common life: {lives:#?}",
        known as f64 / 1e6,
        (to - from) as f64 / 1e6
    );
    all as f64 / known.max(1) as f64
}

#[test]
fn the_gil_keeps_threads_apart_while_processes_run_in_parallel() {
    let _serial = serial();
    let Some(py) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    for fidelity in fidelities() {
        let threads = watch_now(&spec(vec![py.clone(), example("cpu_threads.py")], fidelity));
        check_well_formed(&threads);
        let compute: HashSet<u32> = threads
            .finished
            .summary
            .threads
            .iter()
            .filter(|t| t.name.starts_with("compute-"))
            .map(|t| t.tid)
            .collect();
        assert_eq!(compute.len(), 4, "{:?}", threads.finished.summary.threads);
        // The GIL holds at every instant: judged over the whole run.
        let (gil_on, gil_longest) = together(&threads.finished.events, &compute, false, false);
        let (gil_want, _) = together(&threads.finished.events, &compute, true, false);

        let pools = watch_now(&spec(
            vec![py.clone(), "-c".into(), TWO_PROCESSES.into()],
            fidelity,
        ));
        check_well_formed(&pools);
        let workers: HashSet<u32> = pools
            .finished
            .summary
            .threads
            .iter()
            .filter(|t| t.name == "proc-worker")
            .map(|t| t.tid)
            .collect();
        assert_eq!(workers.len(), 2, "{:?}", pools.finished.summary.threads);
        let root = pools.finished.summary.watch.as_ref().expect("target").pid;
        assert!(
            pools.finished.summary.threads.iter().any(|t| t.pid != root),
            "worker processes are followed"
        );
        // Processes: judged where both have work.
        let (pool_on, pool_longest) = together(&pools.finished.events, &workers, false, true);
        let pool_want = all_want_where_known(&pools.finished.events, &workers);
        eprintln!(
            "{fidelity:?}: GIL threads: two on CPUs at once {:.1} % of the time (longest {:.1} ms), \
             two wanting a CPU {:.1} %; processes: {:.1} % (longest {:.1} ms), {:.1} %",
            gil_on * 100.0,
            gil_longest as f64 / 1e6,
            gil_want * 100.0,
            pool_on * 100.0,
            pool_longest as f64 / 1e6,
            pool_want * 100.0
        );
        // One thread at a time holds the GIL; the others sleep waiting for it, so they do not
        // run together (overlaps are hand-overs, or sampling blur). A busy machine only makes
        // overlaps rarer.
        let (gil_max, gil_max_run) = match fidelity {
            FidelityChoice::Exact => (0.10, 10_000_000),
            _ => (0.25, 25_000_000),
        };
        assert!(gil_on < gil_max, "GIL threads ran together {gil_on:.3}");
        assert!(
            gil_longest < gil_max_run,
            "GIL threads ran together for {gil_longest} ns"
        );
        // Processes have a GIL each: while both have work, both want a CPU (running, or
        // runnable while another program has it) nearly all the time, busy machine or not;
        // GIL threads far less (a waiter wants a CPU only to ask for or take the lock).
        assert!(
            pool_want > 0.8,
            "processes wanted CPUs together only {pool_want:.3} of the time both had work"
        );
        assert!(
            gil_want + 0.3 < pool_want,
            "GIL threads wanted CPUs together {gil_want:.3}, processes {pool_want:.3}"
        );
    }
}

#[test]
fn a_program_killed_mid_watch_ends_the_run_cleanly() {
    let _serial = serial();
    for fidelity in fidelities() {
        let script = "sh -c 'while :; do :; done' & while :; do sleep 0.01; done";
        let watched = watch::start(&spec(
            vec!["sh".into(), "-c".into(), script.into()],
            fidelity,
        ))
        .expect("starts");
        let root = watched.target().pid;
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            // SAFETY: killing the program this test started.
            unsafe { libc::kill(root as libc::pid_t, libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(300));
            // The orphaned busy job too (it is still followed, so the watch waits for it).
            for pid in children_of(1) {
                let cmd =
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if cmd.contains("while :; do :; done") {
                    // SAFETY: a process this test started, by its command line.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
            }
        });
        let started = Instant::now();
        let done = watched.run(Arc::new(AtomicBool::new(false)), |_| {});
        let _ = killer.join();
        assert!(started.elapsed() < Duration::from_secs(20));
        assert_eq!(done.finished.summary.outcome, Outcome::Completed);
        check_well_formed(&done);
        let root_end = done.finished.events.iter().find_map(|e| match e {
            Event::ProcessExit { pid, end, .. } if *pid == root => Some(*end),
            _ => None,
        });
        assert_eq!(root_end, Some(ProcessEnd::Signaled { signal: 9 }));
        assert!(
            done.finished
                .summary
                .notes
                .iter()
                .any(|n| n.contains("killed by signal 9")),
            "{:?}",
            done.finished.summary.notes
        );
    }
}

#[test]
fn a_stopped_watch_kills_what_it_started_and_a_pid_watch_leaves_it_running() {
    let _serial = serial();
    let watched = watch::start(&spec(
        vec![
            "sh".into(),
            "-c".into(),
            "sleep 30 & sleep 30 & wait".into(),
        ],
        FidelityChoice::Sampled,
    ))
    .expect("starts");
    let root = watched.target().pid;
    let cancel = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&cancel);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        stop.store(true, Ordering::Relaxed);
    });
    let done = watched.run(cancel, |_| {});
    assert_eq!(done.finished.summary.outcome, Outcome::Stopped);
    check_well_formed(&done);
    let pids: HashSet<u32> = done
        .finished
        .summary
        .threads
        .iter()
        .map(|t| t.pid)
        .collect();
    assert_eq!(pids.len(), 3, "sh and two sleeps were followed");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "process {pid} (root {root}) left running"
        );
    }

    // --pid: follow a process this test started, stop, and it is still there.
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let watched = watch::start(&WatchSpec {
        target: Target::Pid(sleeper.id()),
        ..spec(vec![], FidelityChoice::Sampled)
    })
    .expect("follows a running process");
    let cancel = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&cancel);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
    });
    let done = watched.run(cancel, |_| {});
    assert_eq!(done.finished.summary.outcome, Outcome::Stopped);
    assert_eq!(done.finished.summary.threads.len(), 1);
    assert!(
        matches!(sleeper.try_wait(), Ok(None)),
        "a followed process is left running"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn command_line_watch() {
    let _serial = serial();
    // A missing pid is a clear error.
    let out = Command::new(BIN)
        .args(["watch", "--pid", "4000000000"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no process with id 4000000000"), "{err}");
    // Nothing to watch, a bad rate.
    let out = Command::new(BIN).args(["watch"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["watch", "--hz", "5", "--", "true"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("10..=10000"));
    // A program that does not exist.
    let out = Command::new(BIN)
        .args(["watch", "--", "/nonexistent/program"])
        .output()
        .expect("runs");
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not start"));
    // A real one, sampled, with a trace file.
    let dir = std::env::temp_dir().join(format!("coreplay-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("watch.trace");
    let out = Command::new(BIN)
        .args(["watch", "--fidelity", "sampled", "--hz", "500", "--out"])
        .arg(&file)
        .args([
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sampled at"), "{stdout}");
    assert!(
        stdout.contains("CPU ms") && stdout.contains(" sh "),
        "{stdout}"
    );
    assert!(std::fs::metadata(&file).is_ok_and(|m| m.len() > 100));
    let _ = std::fs::remove_dir_all(&dir);
    // --json prints the summary as one object.
    let out = Command::new(BIN)
        .args(["watch", "--json", "--fidelity", "sampled", "--", "true"])
        .output()
        .expect("runs");
    let summary: coreplay_shared::summary::Summary =
        coreplay_shared::json::from_slice(&out.stdout).expect("one JSON summary");
    assert_eq!(summary.scenario, ScenarioId::Watch);
    assert_eq!(
        summary.watch.map(|w| w.command),
        Some(vec!["true".to_string()])
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_msg(ws: &mut Ws) -> ServerMsg {
    let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("a message within 30 s")
        .expect("connection open")
        .expect("frame");
    match frame {
        Message::Text(text) => decode_server(text.as_str()).expect("valid server message"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
// The guard is held across awaits on purpose: the test's busy programs must not run beside
// another test's measured watch (a current-thread runtime, so nothing else waits on it here).
#[allow(clippy::await_holding_lock)]
async fn the_page_starts_only_the_operators_programs() {
    let _serial = serial();
    let agent = Agent::start(&[
        "--watch-program",
        "spin=sh -c 'busy(){ i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done; }; busy & busy; wait'",
        "--watch-program",
        "forever=sleep 60",
    ]);
    let (mut ws, _) = connect_async(agent.ws_url()).await.expect("ws connects");
    let hello = match next_msg(&mut ws).await {
        ServerMsg::Hello(h) => h,
        other => panic!("first message is not a hello: {other:?}"),
    };
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    let names: Vec<&str> = hello
        .watch_programs
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert!(
        names.contains(&"spin") && names.contains(&"forever"),
        "{names:?}"
    );

    // Unknown names are refused, naming the choices; nothing runs.
    for bad in ["rm -rf /", "nope", ""] {
        ws.send(Message::text(
            ClientMsg::Watch {
                program: bad.into(),
            }
            .to_json(),
        ))
        .await
        .expect("send");
        match next_msg(&mut ws).await {
            ServerMsg::Error {
                code,
                message,
                field,
            } => {
                assert_eq!(code, ErrorCode::BadParam);
                assert_eq!(field.as_deref(), Some("program"));
                assert!(message.contains("spin"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // A command smuggled in as a field is not a message at all.
    ws.send(Message::text(
        r#"{"type":"watch","program":"spin","command":["sh"]}"#,
    ))
    .await
    .expect("send");
    assert!(matches!(
        next_msg(&mut ws).await,
        ServerMsg::Error {
            code: ErrorCode::BadMessage,
            ..
        }
    ));

    // A listed program runs as a run: started, events, ended with its summary.
    ws.send(Message::text(
        ClientMsg::Watch {
            program: "spin".into(),
        }
        .to_json(),
    ))
    .await
    .expect("send");
    let run = match next_msg(&mut ws).await {
        ServerMsg::RunStarted {
            run,
            scenario,
            yours,
            watch,
            fidelity,
            ..
        } => {
            assert_eq!(scenario, ScenarioId::Watch);
            assert!(yours);
            let w = watch.expect("watch target");
            assert_eq!(w.program.as_deref(), Some("spin"));
            assert_eq!(w.command.first().map(String::as_str), Some("sh"));
            assert!(matches!(
                fidelity,
                Fidelity::Exact | Fidelity::Sampled { .. }
            ));
            run
        }
        other => panic!("expected run_started, got {other:?}"),
    };
    let mut events = 0;
    let summary = loop {
        match next_msg(&mut ws).await {
            ServerMsg::Events {
                run: r, events: e, ..
            } => {
                assert_eq!(r, run);
                events += e.len();
            }
            ServerMsg::RunEnded {
                run: r, summary, ..
            } => {
                assert_eq!(r, run);
                break summary;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(events > 0);
    assert_eq!(summary.outcome, Outcome::Completed);
    assert_eq!(
        summary.watch.and_then(|w| w.program).as_deref(),
        Some("spin")
    );
    let pids: HashSet<u32> = summary.threads.iter().map(|t| t.pid).collect();
    assert_eq!(
        pids.len(),
        2,
        "sh and its background job: {:?}",
        summary.threads
    );

    // Stop works, and leaves nothing behind.
    ws.send(Message::text(
        ClientMsg::Watch {
            program: "forever".into(),
        }
        .to_json(),
    ))
    .await
    .expect("send");
    let run = match next_msg(&mut ws).await {
        ServerMsg::RunStarted { run, watch, .. } => {
            assert_eq!(watch.and_then(|w| w.program).as_deref(), Some("forever"));
            run
        }
        other => panic!("expected run_started, got {other:?}"),
    };
    // Busy while it runs.
    ws.send(Message::text(
        ClientMsg::Watch {
            program: "spin".into(),
        }
        .to_json(),
    ))
    .await
    .expect("send");
    loop {
        match next_msg(&mut ws).await {
            ServerMsg::Error { code, message, .. } => {
                assert_eq!(code, ErrorCode::Busy);
                assert!(message.contains("forever"), "{message}");
                break;
            }
            ServerMsg::Events { .. } => {}
            other => panic!("expected busy, got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws.send(Message::text(ClientMsg::Stop.to_json()))
        .await
        .expect("send");
    let summary = loop {
        match next_msg(&mut ws).await {
            ServerMsg::RunEnded {
                run: r, summary, ..
            } if r == run => break summary,
            _ => {}
        }
    };
    assert_eq!(summary.outcome, Outcome::Stopped);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !children_of(agent.pid()).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        children_of(agent.pid()).is_empty(),
        "the watched program was stopped"
    );
}

#[tokio::test]
#[allow(clippy::await_holding_lock)]
async fn the_last_client_leaving_stops_a_watch() {
    let _serial = serial();
    let agent = Agent::start(&["--watch-program", "forever=sleep 60"]);
    let (mut ws, _) = connect_async(agent.ws_url()).await.expect("ws connects");
    assert!(matches!(next_msg(&mut ws).await, ServerMsg::Hello(_)));
    ws.send(Message::text(
        ClientMsg::Watch {
            program: "forever".into(),
        }
        .to_json(),
    ))
    .await
    .expect("send");
    assert!(matches!(
        next_msg(&mut ws).await,
        ServerMsg::RunStarted { .. }
    ));
    assert_eq!(children_of(agent.pid()).len(), 1);
    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children_of(agent.pid()).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(children_of(agent.pid()).is_empty(), "the watch was stopped");
}
