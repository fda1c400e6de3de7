//! One run from start to summary, scenario or watch: the orchestrator.
//!
//! A [`Job`] is what the hub or the command line launches. [`record`] creates the run's
//! [`Recorder`], starts a collector thread that gathers the tracers' batches into one batch
//! per tick (forwarded live, kept for the summary and the trace file) and runs the work on
//! the calling thread under a hard time cap; [`finish`] trims, labels and summarizes it.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::RecvTimeoutError,
    },
    thread,
    time::{Duration, Instant},
};

use coreplay_shared::{
    event::{Event, Fidelity},
    scenario::{Params, ScenarioId},
    summary::{Outcome, Summary},
    watch::WatchTarget,
};

use crate::{
    summarize,
    trace::{
        Recorder,
        clock::peak_rss_bytes,
        cpustat::{Snapshot, Window},
    },
    workloads::{self, Ctx, Output},
};

/// How often the collector hands a batch on, ms.
pub const TICK_MS: u64 = 25;
/// Most events kept per run; beyond, events are dropped and counted.
pub const MAX_EVENTS: usize = 4_000_000;
/// Default hard cap on a run's duration, seconds.
pub const DEFAULT_CAP_SECS: u32 = 120;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Which scenario.
    pub scenario: ScenarioId,
    /// Resolved parameters.
    pub params: Params,
    /// Hardware threads of the machine.
    pub pus: u32,
    /// The `coreplay` executable (for worker and server processes).
    pub exe: PathBuf,
    /// Hard cap on the run's duration.
    pub cap: Duration,
    /// [`Fidelity::Exact`] to record the kernel's switch records, else self-timed.
    pub fidelity: Fidelity,
}

/// A finished run.
#[derive(Debug)]
pub struct Finished {
    /// Its figures.
    pub summary: Summary,
    /// Every event kept, ordered by time.
    pub events: Vec<Event>,
}

/// The best fidelity this machine allows, and why it is not exact when it is not (detected
/// once, by opening a switch-recording perf event on the calling thread).
pub fn detect_fidelity() -> (Fidelity, Option<String>) {
    static DETECTED: std::sync::OnceLock<(Fidelity, Option<String>)> = std::sync::OnceLock::new();
    DETECTED
        .get_or_init(|| match crate::trace::perf::probe() {
            Ok(()) => (Fidelity::Exact, None),
            Err(why) => (Fidelity::SelfTimed, Some(why)),
        })
        .clone()
}

/// A run the hub or the command line launches: a scenario, or a watch of a real program.
/// Both are recorded by [`record`] and end through [`finish`].
#[derive(Debug)]
pub enum Job {
    /// One of the scenarios.
    Scenario(RunSpec),
    /// A program started or attached to, ready to be followed.
    Watch(Box<crate::watch::Watched>),
}

impl Job {
    /// Runs the job to its end (or until `cancel` is set or the cap passes). `on_batch` sees
    /// each tick's events as they come, on the collector thread.
    pub fn run(
        self,
        cancel: Arc<AtomicBool>,
        on_batch: impl FnMut(&[Event]) + Send + 'static,
    ) -> Finished {
        match self {
            Job::Scenario(spec) => execute(&spec, cancel, on_batch),
            Job::Watch(watched) => watched.run(cancel, on_batch).finished,
        }
    }
}

/// Runs `spec` to the end (or until `cancel` is set or the cap passes). `on_batch` sees each
/// tick's events as they come, on the collector thread.
pub fn execute(
    spec: &RunSpec,
    cancel: Arc<AtomicBool>,
    on_batch: impl FnMut(&[Event]) + Send + 'static,
) -> Finished {
    let ctx_spec = spec.clone();
    let recorded = record(
        spec.cap,
        spec.fidelity == Fidelity::Exact,
        cancel,
        on_batch,
        move |rec| {
            let ctx = Ctx {
                rec: Arc::clone(rec),
                params: ctx_spec.params.clone(),
                pus: ctx_spec.pus,
                exe: ctx_spec.exe.clone(),
            };
            workloads::run(ctx_spec.scenario, &ctx)
        },
    );
    finish(
        recorded,
        Ending {
            scenario: spec.scenario,
            params: spec.params.clone(),
            pus: spec.pus,
            fidelity: spec.fidelity,
            fallback: (
                Fidelity::SelfTimed,
                "could not open exact switch recording and timed themselves, so the run as a \
                 whole is labelled self-timed",
            ),
            overlap_why: "self-timed slices overlapped on one CPU (times are known to one chunk \
                          of work)",
            notes: Vec::new(),
            watch: None,
        },
    )
}

/// How a recorded run is labelled and explained when it ends.
#[derive(Debug)]
pub struct Ending {
    /// The scenario ([`ScenarioId::Watch`] for a watch).
    pub scenario: ScenarioId,
    /// Its parameters.
    pub params: Params,
    /// Hardware threads of the machine.
    pub pus: u32,
    /// The fidelity it was recorded at, if every thread got it.
    pub fidelity: Fidelity,
    /// The label when some threads could not record exactly, and what to say about them
    /// (after "N threads ").
    pub fallback: (Fidelity, &'static str),
    /// Why two threads' slices can overlap on one CPU (after "where two threads' ").
    pub overlap_why: &'static str,
    /// Notes that come before the workload's own.
    pub notes: Vec<String>,
    /// What was watched, for a watch.
    pub watch: Option<WatchTarget>,
}

/// Ends a recorded run, scenario or watch alike: trims the slices that overlap on a CPU,
/// labels its fidelity, gathers the notes, and makes its summary from the replay model.
pub fn finish(mut recorded: Recorded, ending: Ending) -> Finished {
    let trimmed = resolve_cpu_overlaps(&mut recorded.events);
    // Trimming can leave empty slices behind.
    recorded
        .events
        .retain(|e| !matches!(e, Event::OnCpu { start, end, .. } if start >= end));
    let mut notes = ending.notes;
    let mut fidelity = ending.fidelity;
    if fidelity == Fidelity::Exact && recorded.fallbacks > 0 {
        fidelity = ending.fallback.0;
        notes.push(format!(
            "{} threads {}",
            recorded.fallbacks, ending.fallback.1
        ));
    }
    if trimmed.count > 0 {
        notes.push(format!(
            "{} on-CPU slices were trimmed by up to {:.1} µs where two threads' {}",
            trimmed.count,
            trimmed.max_ns as f64 / 1e3,
            ending.overlap_why
        ));
    }
    recorded.output.notes.splice(0..0, notes);
    let mut summary = summarize::summarize(
        ending.scenario,
        &ending.params,
        &recorded.events,
        recorded.output,
        recorded.outcome,
        recorded.dropped,
        peak_rss_bytes(),
        fidelity,
        recorded.window.as_ref(),
    );
    if let Some(note) = summarize::others_on_the_cpus(&summary, ending.pus) {
        summary.notes.push(note);
    }
    summary.watch = ending.watch;
    Finished {
        summary,
        events: recorded.events,
    }
}

/// What [`record`] gathered.
#[derive(Debug)]
pub struct Recorded {
    /// Every event kept, ordered by time.
    pub events: Vec<Event>,
    /// How the work ended.
    pub outcome: Outcome,
    /// What the work reported (only the time it ran when it failed).
    pub output: Output,
    /// Events lost (buffers full, the run's event cap).
    pub dropped: u64,
    /// Threads that fell back from exact to self-timed recording.
    pub fallbacks: u32,
    /// The machine's counters at the start and the end of the measured work (`None` where
    /// `/proc/stat` could not be read).
    pub window: Option<Window>,
}

/// The run machinery shared by scenarios and watches: creates the run's [`Recorder`], starts
/// the collector (one batch per tick to `on_batch`, all kept) and the watchdog (the cap, via
/// `cancel`), runs `work` on the calling thread, and gathers the events when it returns. The
/// machine's counters are read as the work starts and as its measured part ends (when it
/// returns, or earlier when it asks for an untraced baseline), so that the summary can tell
/// what other programs took of the CPUs meanwhile.
pub fn record<E: std::fmt::Display>(
    cap: Duration,
    exact: bool,
    cancel: Arc<AtomicBool>,
    mut on_batch: impl FnMut(&[Event]) + Send + 'static,
    work: impl FnOnce(&Arc<Recorder>) -> Result<Output, E>,
) -> Recorded {
    let (rec, rx) = Recorder::new(true, Arc::clone(&cancel));
    rec.set_exact(exact);
    let collector = thread::Builder::new()
        .name("collector".into())
        .spawn(move || {
            let mut all: Vec<Event> = Vec::new();
            let mut pending: Vec<Event> = Vec::new();
            let mut over_cap = 0u64;
            let tick = Duration::from_millis(TICK_MS);
            let mut next_tick = Instant::now() + tick;
            loop {
                let wait = next_tick.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(batch) => batch.append_to(&mut pending),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if Instant::now() >= next_tick {
                    flush(&mut pending, &mut all, &mut over_cap, &mut on_batch);
                    next_tick = Instant::now() + tick;
                }
            }
            flush(&mut pending, &mut all, &mut over_cap, &mut on_batch);
            (all, over_cap)
        });

    // The watchdog enforces the cap through the same cancel flag a client's Stop uses.
    let timed_out = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (cancel, timed_out, finished) = (
            Arc::clone(&cancel),
            Arc::clone(&timed_out),
            Arc::clone(&finished),
        );
        thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let deadline = Instant::now() + cap;
                while !finished.load(Ordering::Relaxed) {
                    if Instant::now() >= deadline {
                        timed_out.store(true, Ordering::Relaxed);
                        cancel.store(true, Ordering::Relaxed);
                        return;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })
    };

    let start = Snapshot::take(&rec);
    let result = work(&rec);
    rec.end_measured_part();
    let window = Window::new(start, rec.measured_end());
    finished.store(true, Ordering::Relaxed);
    if let Ok(w) = watchdog {
        let _ = w.join();
    }
    let recorder_dropped = rec.dropped();
    let fallbacks = rec.fallbacks();
    drop(rec);
    let (mut events, over_cap) = match collector {
        Ok(c) => c.join().unwrap_or_default(),
        Err(_) => (Vec::new(), 0),
    };
    events.sort_by_key(Event::time);

    let outcome = match &result {
        Err(e) => Outcome::Failed {
            message: e.to_string(),
        },
        Ok(_) if timed_out.load(Ordering::Relaxed) => Outcome::TimedOut {
            cap_secs: u32::try_from(cap.as_secs()).unwrap_or(u32::MAX),
        },
        Ok(_) if cancel.load(Ordering::Relaxed) => Outcome::Stopped,
        Ok(_) => Outcome::Completed,
    };
    Recorded {
        events,
        outcome,
        output: result.unwrap_or_default(),
        dropped: recorder_dropped + over_cap,
        fallbacks,
        window,
    }
}

/// How many slices [`resolve_cpu_overlaps`] trimmed, and by how much at most.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Slices trimmed.
    pub count: u64,
    /// Largest trim, ns.
    pub max_ns: u64,
}

/// Self-timed slices know their ends to within one chunk, so two threads' slices can overlap
/// slightly on one CPU. A thread measures its own resumption only after it is running again,
/// so a later slice's start is never early; the earlier slice's estimated end is what gives
/// way. `events` must be sorted by time.
pub fn resolve_cpu_overlaps(events: &mut [Event]) -> Trimmed {
    let mut last_on_cpu: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut trimmed = Trimmed::default();
    for i in 0..events.len() {
        let Event::OnCpu { cpu, start, .. } = events[i] else {
            continue;
        };
        if let Some(&prev) = last_on_cpu.get(&cpu)
            && let Event::OnCpu {
                end,
                start: prev_start,
                ..
            } = &mut events[prev]
            && *end > start
        {
            trimmed.count += 1;
            trimmed.max_ns = trimmed.max_ns.max(*end - start);
            *end = start.max(*prev_start);
        }
        last_on_cpu.insert(cpu, i);
    }
    trimmed
}

fn flush(
    pending: &mut Vec<Event>,
    all: &mut Vec<Event>,
    over_cap: &mut u64,
    on_batch: &mut impl FnMut(&[Event]),
) {
    if pending.is_empty() {
        return;
    }
    on_batch(pending);
    let room = MAX_EVENTS.saturating_sub(all.len());
    if pending.len() > room {
        *over_cap += (pending.len() - room) as u64;
        pending.truncate(room);
    }
    all.append(pending);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(tid: u32, cpu: u32, start: u64, end: u64) -> Event {
        Event::OnCpu {
            tid,
            cpu,
            start,
            end,
        }
    }

    #[test]
    fn overlapping_slices_on_one_cpu_are_trimmed() {
        let mut events = vec![
            on(1, 0, 0, 100),
            on(2, 1, 10, 50),
            on(2, 0, 80, 200),
            on(1, 0, 300, 400),
        ];
        let trimmed = resolve_cpu_overlaps(&mut events);
        assert_eq!(
            trimmed,
            Trimmed {
                count: 1,
                max_ns: 20
            }
        );
        assert_eq!(events[0], on(1, 0, 0, 80));
        assert_eq!(events[2], on(2, 0, 80, 200));
        assert_eq!(events[1], on(2, 1, 10, 50), "other CPUs untouched");
    }
}
