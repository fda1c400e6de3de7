//! A run's [`Summary`]: the facts of its events as the replay model states them, and what the
//! workload reported (wall time, baseline, latencies, result, notes).
//!
//! Switch counts are the kernel's, as read by each thread at its end; the stand-in server's
//! threads are listed but not counted in the totals, which describe the scenario's own work.

use coreplay_shared::{
    event::{Event, Fidelity, Role},
    replay::Replay,
    scenario::{Params, ScenarioId},
    summary::{LatencyStats, Outcome, Summary, ThreadSummary},
};

use crate::workloads::Output;

/// Builds the summary: every figure about threads, the lock and tasks comes from the replay
/// model ([`Replay`]), the one interpretation of a run's events.
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
    }
}

/// A note when the workers of a scenario that needs no more CPUs than the machine has still
/// waited, runnable, for a CPU: another program (a consumer of this command's output starting
/// beside it, the page drawing the run, a build) took CPUs during the measured run, so its
/// speedup is lower than the machine gives when quiet. `None` when they hardly waited (under
/// 3 % of their time), or when waiting is what the scenario shows.
pub fn others_on_the_cpus(summary: &Summary, pus: u32) -> Option<String> {
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
    (share >= 0.03).then(|| {
        format!(
            "the {workers} workers waited {:.1} ms in all ({:.0} % of their time) runnable, for a \
             CPU that another program was using: with no more workers than hardware threads \
             nothing of this run had to wait, so the speedup is lower than this machine gives \
             when it is quiet",
            summary.runnable_wait_ns as f64 / 1e6,
            share * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
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
}
