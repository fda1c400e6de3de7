//! `process-pool`: the job on P worker processes (the agent re-executed as `__worker`), each
//! with its own global lock, so they run in parallel where threads behind one lock cannot.
//!
//! Each worker streams its events as JSON lines on a pipe; a reader thread per worker gives
//! its threads run-wide ids and feeds them to the run's recorder, on the same clock. Start-up
//! time (spawn to first instruction of work) and peak memory are measured per worker and set
//! against starting a thread, measured in the same run.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read},
    os::unix::process::ExitStatusExt,
    process::{Child, Command, Stdio},
    sync::Arc,
    thread,
    time::Duration,
};

use coreplay_shared::{
    event::{Event, ProcessEnd, Role},
    summary::ProcessSummary,
};

use super::{Ctx, Output, WorkloadError, compute::split, primes_result, worker::WorkerMsg};
use crate::trace::{Recorder, clock::monotonic_ns};

/// Longest line accepted from a worker (a batch of events); longer means a broken worker.
const MAX_LINE_BYTES: u64 = 16 << 20;

/// What the reader of one worker learned.
#[derive(Debug, Default)]
struct WorkerReport {
    startup_ns: Option<u64>,
    primes: Option<u64>,
    peak_rss_bytes: Option<u64>,
    protocol_error: Option<String>,
}

fn spawn_worker(
    ctx: &Ctx,
    index: u32,
    first: u32,
    count: u32,
    trace: bool,
) -> Result<Child, WorkloadError> {
    Command::new(&ctx.exe)
        .args([
            "__worker",
            "--origin-ns",
            &ctx.rec.origin_ns().to_string(),
            "--first",
            &first.to_string(),
            "--count",
            &count.to_string(),
            "--interval-ms",
            "5",
            "--index",
            &index.to_string(),
            "--trace",
            if trace { "1" } else { "0" },
            "--exact",
            if ctx.rec.exact() { "1" } else { "0" },
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| WorkloadError::Spawn {
            what: format!("worker process {index}"),
            source,
        })
}

/// Reads one worker's lines until it closes its stdout.
fn read_worker(rec: &Recorder, pid: u32, spawned_at: u64, out: impl Read) -> WorkerReport {
    let mut report = WorkerReport::default();
    let mut tids: HashMap<u32, u32> = HashMap::new();
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE_BYTES).read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                report.protocol_error = Some(format!("reading worker {pid}: {e}"));
                break;
            }
        }
        match coreplay_shared::json::from_str::<WorkerMsg>(&line) {
            Ok(WorkerMsg::Ready { at }) => {
                let startup = at.saturating_sub(spawned_at);
                report.startup_ns = Some(startup);
                rec.emit(Event::ProcessReady {
                    pid,
                    at,
                    startup_ns: startup,
                });
            }
            Ok(WorkerMsg::Events(mut batch)) => {
                for event in &mut batch {
                    if let Some(tid) = event.tid_mut() {
                        *tid = *tids.entry(*tid).or_insert_with(|| rec.next_tid());
                    }
                }
                rec.send(batch);
            }
            Ok(WorkerMsg::Done {
                primes,
                peak_rss_bytes,
            }) => {
                report.primes = Some(primes);
                report.peak_rss_bytes = peak_rss_bytes;
            }
            Err(e) => {
                report.protocol_error = Some(format!("worker {pid} sent a bad line: {e}"));
                break;
            }
        }
    }
    report
}

/// One pool run: its wall time, each worker's report by pid, and remarks on exits.
struct PoolRun {
    wall_ns: u64,
    reports: Vec<(u32, WorkerReport)>,
    notes: Vec<String>,
}

/// Runs the job on `processes` workers.
fn run_pool(ctx: &Ctx, processes: u32, work: u32) -> Result<PoolRun, WorkloadError> {
    let rec = &ctx.rec;
    let start = monotonic_ns();
    let mut children = Vec::new();
    let mut readers = Vec::new();
    for i in 0..processes {
        let range = split(work, processes, i);
        let spawned_at = rec.now();
        let mut child = match spawn_worker(ctx, i, range.start, range.len() as u32, rec.enabled()) {
            Ok(c) => c,
            Err(e) => {
                for (_, mut c) in children {
                    let _ = Child::kill(&mut c);
                    let _ = c.wait();
                }
                return Err(e);
            }
        };
        let pid = child.id();
        rec.emit(Event::ProcessStart {
            pid,
            at: spawned_at,
            name: format!("worker-proc-{i}"),
            role: Role::Worker,
        });
        if let Some(out) = child.stdout.take() {
            let rec = Arc::clone(rec);
            readers.push((
                pid,
                thread::spawn(move || read_worker(&rec, pid, spawned_at, out)),
            ));
        }
        children.push((pid, child));
    }
    // Wait for every worker; on cancel, kill them all.
    let mut notes = Vec::new();
    let mut pending = children;
    let mut broken = false;
    while !pending.is_empty() {
        // Like Python's BrokenProcessPool: one worker dying ends the pool.
        if rec.cancelled() || broken {
            for (_, c) in &mut pending {
                let _ = c.kill();
            }
        }
        let mut still = Vec::new();
        for (pid, mut child) in pending {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let end = match (status.code(), status.signal()) {
                        (Some(code), _) => ProcessEnd::Exited { code },
                        (None, Some(signal)) => ProcessEnd::Signaled { signal },
                        (None, None) => ProcessEnd::Exited { code: -1 },
                    };
                    if !rec.cancelled() && end != (ProcessEnd::Exited { code: 0 }) {
                        let how = match end {
                            ProcessEnd::Signaled { signal } => {
                                format!("was killed by signal {signal}")
                            }
                            ProcessEnd::Exited { code } => format!("exited with status {code}"),
                            ProcessEnd::Unknown => "ended".to_string(),
                        };
                        if !broken {
                            notes.push(format!(
                                "worker process {pid} ended abnormally: it {how}; the pool was stopped"
                            ));
                        }
                        broken = true;
                    }
                    rec.emit(Event::ProcessExit {
                        pid,
                        at: rec.now(),
                        peak_rss_bytes: None,
                        end,
                    });
                }
                Ok(None) => still.push((pid, child)),
                Err(e) => notes.push(format!("waiting for worker {pid}: {e}")),
            }
        }
        pending = still;
        if !pending.is_empty() {
            thread::sleep(Duration::from_millis(2));
        }
    }
    let wall_ns = monotonic_ns() - start;
    let reports = readers
        .into_iter()
        .map(|(pid, h)| (pid, h.join().unwrap_or_default()))
        .collect();
    Ok(PoolRun {
        wall_ns,
        reports,
        notes,
    })
}

/// Median of `values`, or 0 when empty.
fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Time from asking for a thread to its first instruction, measured `n` times, ns.
fn thread_startup_ns(n: u32) -> Vec<u64> {
    (0..n.max(1))
        .filter_map(|_| {
            let asked = monotonic_ns();
            thread::spawn(move || monotonic_ns().saturating_sub(asked))
                .join()
                .ok()
        })
        .collect()
}

/// `process-pool`: the job on P processes, against the same job on one process.
pub fn run(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let processes = ctx.param(|p| p.processes);
    let work = ctx.param(|p| p.work);
    let PoolRun {
        wall_ns: wall,
        reports,
        mut notes,
    } = run_pool(ctx, processes, work)?;
    if ctx.rec.cancelled() {
        return Ok(Output::stopped(wall));
    }
    // A worker that crashed or was killed fails the run, saying which and how.
    if let Some(abnormal) = notes.iter().find(|n| n.contains("ended abnormally")) {
        return Err(WorkloadError::Peer(abnormal.clone()));
    }
    let base_wall = run_pool(&ctx.untraced(), 1, work)?.wall_ns;
    let mut primes = 0;
    let mut complete = true;
    let mut summaries = Vec::new();
    for (pid, report) in &reports {
        if let Some(err) = &report.protocol_error {
            notes.push(err.clone());
        }
        match report.primes {
            Some(p) => primes += p,
            None => complete = false,
        }
        summaries.push(ProcessSummary {
            pid: *pid,
            startup_ns: report.startup_ns,
            peak_rss_bytes: report.peak_rss_bytes,
        });
    }
    let startups: Vec<u64> = reports.iter().filter_map(|(_, r)| r.startup_ns).collect();
    let rss: Vec<u64> = reports
        .iter()
        .filter_map(|(_, r)| r.peak_rss_bytes)
        .collect();
    let thread_startup = median(thread_startup_ns(processes));
    notes.push(format!(
        "start-up: a worker process {:.2} ms (median of {}), a thread {:.1} µs (median, measured now); \
         memory: a worker process {:.1} MiB resident at its peak, threads share the agent's memory",
        median(startups.clone()) as f64 / 1e6,
        startups.len(),
        thread_startup as f64 / 1e3,
        median(rss) as f64 / f64::from(1 << 20),
    ));
    Ok(Output {
        wall_ns: wall,
        baseline: Some(coreplay_shared::summary::Baseline {
            label: "one worker process".into(),
            wall_ns: base_wall,
            cpu_ns: None,
            involuntary_switches: None,
        }),
        result: complete.then(|| primes_result(work, primes)),
        processes: summaries,
        notes,
        ..Output::default()
    })
}
