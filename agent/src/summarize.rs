//! A run's [`Summary`]: the facts of its events as the replay model states them, and what the
//! workload reported (wall time, baseline, latencies, result, notes).
//!
//! Switch counts are the kernel's, as read by each thread at its end; the stand-in server's
//! threads are listed but not counted in the totals, which describe the scenario's own work.
//! What other programs took of the CPUs meanwhile is the machine's busy time less the run's
//! own slices ([`cpustat::other_load`]).

use coreplay_shared::{
    event::{Event, Fidelity, Role},
    replay::Replay,
    scenario::{Params, ScenarioId},
    summary::{LatencyStats, Outcome, Summary, ThreadSummary},
};

use crate::{
    trace::cpustat::{self, Window},
    workloads::Output,
};

/// Builds the summary: every figure about threads, the lock and tasks comes from the replay
/// model ([`Replay`]), the one interpretation of a run's events; with the machine's counters
/// around the measured work (`window`), what other programs took of each CPU.
#[allow(clippy::too_many_arguments)]
pub fn summarize(
    scenario: ScenarioId,
    params: &Params,
    events: &[Event],
    output: Output,
    outcome: Outcome,
    dropped: u64,
    peak_rss_bytes: Option<u64>,
    fidelity: Fidelity,
    window: Option<&Window>,
) -> Summary {
    let mut replay = Replay::new();
    replay.extend(events);
    replay.prepare();
    let threads = replay.thread_summaries();
    let tasks = replay.task_totals();
    let counted = || threads.iter().filter(|t| t.role != Role::Server);
    let sum = |f: fn(&ThreadSummary) -> u64| counted().map(f).sum::<u64>();
    let lock_scenario = matches!(scenario, ScenarioId::Gil | ScenarioId::ProcessPool);
    let speedup = output
        .baseline
        .as_ref()
        .filter(|_| output.wall_ns > 0 && outcome == Outcome::Completed)
        .map(|b| b.wall_ns as f64 / output.wall_ns as f64);
    let other_load = window.map(|w| {
        let agent_traced = replay.process_busy_ns(w.pid, w.start.at, w.end.at);
        cpustat::other_load(
            w,
            |cpu, from, to| replay.busy_ns(cpu, from, to),
            agent_traced,
        )
    });
    Summary {
        scenario,
        params: params.clone(),
        wall_ns: output.wall_ns,
        cpu_ns: sum(|t| t.cpu_ns),
        speedup,
        baseline: output.baseline,
        voluntary_switches: sum(|t| t.voluntary_switches),
        involuntary_switches: sum(|t| t.involuntary_switches),
        migrations: sum(|t| t.migrations),
        runnable_wait_ns: sum(|t| t.runnable_wait_ns),
        lock_wait_ns: lock_scenario.then(|| sum(|t| t.lock_wait_ns)),
        // Each worker process has its own lock: hand-overs only mean something for one shared lock.
        lock_handovers: (scenario == ScenarioId::Gil).then(|| replay.lock_handovers()),
        peak_rss_bytes,
        events: events.len() as u64,
        dropped,
        fidelity,
        threads,
        processes: output.processes,
        requests: LatencyStats::from_latencies(output.latencies),
        result: output.result,
        notes: output.notes,
        variants: output.variants,
        tasks,
        outcome,
        watch: None,
        other_load,
    }
}

/// Other programs' share of the machine from which a run gets a note of its own, whatever its
/// scenario: figures that need free CPUs (speedup, waiting to run, latencies) suffer.
pub const OTHERS_NOTE_SHARE: f64 = 0.10;

/// A note on other programs taking CPUs during the measured run, or `None`.
///
/// When the workers of a scenario that needs no more CPUs than the machine has still waited,
/// runnable, for a CPU (3 % of their time or more), another program (a consumer of this
/// command's output starting beside it, the page drawing the run, a build) or coreplay's own
/// recording took CPUs, so the speedup is lower than the machine gives when quiet; the note
/// says how much others took where it was measured. Any other run whose measurement shows
/// other programs using 10 % of the machine or more ([`OTHERS_NOTE_SHARE`]) says so too.
pub fn others_on_the_cpus(summary: &Summary, pus: u32) -> Option<String> {
    let measured = summary.other_load.as_ref();
    let took = measured.map(|l| format!("other programs used {}", l.describe()));
    if let Some(note) = workers_waited(summary, pus, took.as_deref()) {
        return Some(note);
    }
    let load = measured.filter(|l| l.programs_share() >= OTHERS_NOTE_SHARE)?;
    Some(format!(
        "other programs used {} while the run was measured: figures that need free CPUs \
         (speedup, time runnable but waiting, latencies) are worse than this machine gives when \
         it is quiet",
        load.describe()
    ))
}

fn workers_waited(summary: &Summary, pus: u32, took: Option<&str>) -> Option<String> {
    let workers = match summary.scenario {
        ScenarioId::ParallelCompute => summary.params.threads?,
        ScenarioId::ProcessPool => summary.params.processes?,
        _ => return None,
    };
    if workers == 0 || workers > pus || summary.outcome != Outcome::Completed {
        return None;
    }
    let share =
        summary.runnable_wait_ns as f64 / (f64::from(workers) * summary.wall_ns.max(1) as f64);
    let user = match took {
        // Measured: coreplay's own recording may be what they waited for.
        Some(took) => format!("something else was using: {took} during the run. With"),
        None => "another program was using: with".to_string(),
    };
    (share >= 0.03).then(|| {
        format!(
            "the {workers} workers waited {:.1} ms in all ({:.0} % of their time) runnable, for a \
             CPU that {user} no more workers than hardware threads nothing of this run had to \
             wait, so the speedup is lower than this machine gives when it is quiet",
            summary.runnable_wait_ns as f64 / 1e6,
            share * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use coreplay_shared::summary::{CpuOther, OtherLoad};

    use super::*;

    fn compute(threads: u32, wall_ms: u64, waited_ms: u64) -> Summary {
        let params = Params {
            threads: Some(threads),
            ..Params::default()
        };
        let mut s = Summary::empty(
            ScenarioId::ParallelCompute,
            params,
            Outcome::Completed,
            Fidelity::Exact,
        );
        s.wall_ns = wall_ms * 1_000_000;
        s.runnable_wait_ns = waited_ms * 1_000_000;
        s
    }

    #[test]
    fn waiting_workers_on_enough_cpus_are_said_to_have_met_another_program() {
        // Measured: `coreplay run parallel-compute --threads 2 --json | python3 …` on 2 cores,
        // the consumer's start-up beside the run: 69.5 ms waited over 200 ms, 1.55×.
        let note = others_on_the_cpus(&compute(2, 200, 72), 2).expect("a note");
        assert!(note.contains("72.0 ms") && note.contains("18 %"), "{note}");
        // Quiet: 0.6 ms over 160 ms.
        assert_eq!(others_on_the_cpus(&compute(2, 160, 1), 2), None);
        // More workers than hardware threads: waiting is the lesson, not a disturbance.
        assert_eq!(others_on_the_cpus(&compute(4, 200, 300), 2), None);
        let mut gil = compute(2, 200, 70);
        gil.scenario = ScenarioId::Gil;
        assert_eq!(others_on_the_cpus(&gil, 2), None);
    }

    /// Other load measured over a 200 ms window: per CPU, ms taken by others.
    fn load(others_ms: &[u64], agent_ms: u64) -> OtherLoad {
        OtherLoad {
            start_ns: 0,
            window_ns: 200_000_000,
            cpus: others_ms
                .iter()
                .enumerate()
                .map(|(cpu, ms)| CpuOther {
                    cpu: cpu as u32,
                    other_ns: ms * 1_000_000,
                })
                .collect(),
            agent_ns: agent_ms * 1_000_000,
        }
    }

    #[test]
    fn the_note_says_what_other_programs_took_where_it_was_measured() {
        // The page drawing a live run on 2 cores: 160 ms of one CPU, 8 ms coreplay's own.
        let mut s = compute(2, 200, 72);
        s.other_load = Some(load(&[8, 160], 8));
        let note = others_on_the_cpus(&s, 2).expect("a note");
        assert!(note.contains("72.0 ms") && note.contains("18 %"), "{note}");
        assert!(
            note.contains(
                "other programs used 40 % of the 2 hardware threads (coreplay's own recording 2 %)"
            ),
            "{note}"
        );
        // Workers that waited beside little other load: the note does not blame a program.
        s.other_load = Some(load(&[0, 2], 2));
        let note = others_on_the_cpus(&s, 2).expect("a note");
        assert!(
            note.contains("something else") && note.contains(" 0 %"),
            "{note}"
        );
    }

    #[test]
    fn heavy_other_load_gets_a_note_in_any_scenario() {
        for scenario in [ScenarioId::Gil, ScenarioId::IoAsync, ScenarioId::Watch] {
            let mut s = Summary::empty(
                scenario,
                Params::default(),
                Outcome::Completed,
                Fidelity::Exact,
            );
            s.wall_ns = 200_000_000;
            s.other_load = Some(load(&[200, 0, 40, 0], 0));
            let note = others_on_the_cpus(&s, 4).expect("a note");
            assert!(
                note.starts_with(
                    "other programs used 30 % of the 4 hardware threads (coreplay's own \
                     recording 0 %) while the run was measured"
                ),
                "{note}"
            );
            // Under 10 % of the machine (coreplay's own recording not counted): no note.
            s.other_load = Some(load(&[60, 0, 20, 0], 4));
            assert_eq!(others_on_the_cpus(&s, 4), None, "{scenario}");
            // Unmeasured (an older agent's trace): no figure to tell.
            s.other_load = None;
            assert_eq!(others_on_the_cpus(&s, 4), None);
        }
        // A single-threaded quiet run beside a busy machine: the figure, not the waiting.
        let mut quiet = compute(1, 200, 0);
        quiet.other_load = Some(load(&[190, 10], 5));
        let note = others_on_the_cpus(&quiet, 2).expect("a note");
        assert!(note.starts_with("other programs used 49 %"), "{note}");
    }
}
