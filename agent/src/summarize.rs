//! Folds a run's events (and what the workload reported) into its [`Summary`].
//!
//! Switch counts are the kernel's, as read by each thread at its end; the stand-in server's
//! threads are listed but not counted in the totals, which describe the scenario's own work.

use std::collections::{BTreeMap, HashMap};

use coreplay_shared::{
    event::{Event, Fidelity, LockOp, OffReason, Role},
    scenario::{Params, ScenarioId},
    summary::{LatencyStats, Outcome, Summary, TaskTotals, ThreadSummary},
};

use crate::workloads::Output;

/// Builds the summary.
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
    let mut threads: BTreeMap<u32, ThreadSummary> = BTreeMap::new();
    let mut started: BTreeMap<u32, u64> = BTreeMap::new();
    let mut lock_handovers = 0u64;
    let mut last_holder = None;
    for event in events {
        match event {
            Event::ThreadStart {
                tid,
                pid,
                name,
                role,
                at,
                ..
            } => {
                started.insert(*tid, *at);
                threads.insert(
                    *tid,
                    ThreadSummary {
                        tid: *tid,
                        pid: *pid,
                        name: name.clone(),
                        role: *role,
                        cpu_ns: 0,
                        wall_ns: 0,
                        voluntary_switches: 0,
                        involuntary_switches: 0,
                        migrations: 0,
                        runnable_wait_ns: 0,
                        lock_wait_ns: 0,
                    },
                );
            }
            // The summary's table names a thread as it was last called.
            Event::ThreadRename { tid, name, .. } => {
                if let Some(t) = threads.get_mut(tid) {
                    t.name.clone_from(name);
                }
            }
            Event::ThreadEnd {
                tid,
                at,
                cpu_ns,
                kernel_voluntary,
                kernel_involuntary,
            } => {
                if let Some(t) = threads.get_mut(tid) {
                    t.cpu_ns = *cpu_ns;
                    t.wall_ns = at.saturating_sub(started.get(tid).copied().unwrap_or(*at));
                    t.voluntary_switches = *kernel_voluntary;
                    t.involuntary_switches = *kernel_involuntary;
                }
            }
            Event::Migrate { tid, .. } => {
                if let Some(t) = threads.get_mut(tid) {
                    t.migrations += 1;
                }
            }
            Event::OffCpu {
                tid,
                start,
                end,
                reason,
            } => {
                if let Some(t) = threads.get_mut(tid) {
                    match reason {
                        OffReason::Preempted => t.runnable_wait_ns += end.saturating_sub(*start),
                        OffReason::Lock => t.lock_wait_ns += end.saturating_sub(*start),
                        _ => {}
                    }
                }
            }
            Event::Lock {
                tid,
                op: LockOp::Acquire,
                ..
            } => {
                if last_holder.is_some_and(|h| h != *tid) {
                    lock_handovers += 1;
                }
                last_holder = Some(*tid);
            }
            _ => {}
        }
    }
    let tasks = task_totals(events);
    let counted = || threads.values().filter(|t| t.role != Role::Server);
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
        lock_handovers: (scenario == ScenarioId::Gil).then_some(lock_handovers),
        peak_rss_bytes,
        events: events.len() as u64,
        dropped,
        fidelity,
        threads: threads.into_values().collect(),
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

/// Per-task totals from the event-loop events: busy (polled), scheduled (woken, waiting to be
/// polled), idle (parked on I/O or a timer); `None` when the run had no traced tasks.
fn task_totals(events: &[Event]) -> Option<TaskTotals> {
    #[derive(Default)]
    struct Task {
        queued_since: Option<u64>,
        idle_since: Option<u64>,
    }
    let mut tasks: HashMap<u32, Task> = HashMap::new();
    let mut t = TaskTotals {
        tasks: 0,
        polls: 0,
        wakes: 0,
        busy_ns: 0,
        scheduled_ns: 0,
        idle_ns: 0,
        longest_poll_ns: 0,
        max_ready: 0,
    };
    for e in events {
        match e {
            Event::TaskSpawn { task, at, .. } => {
                t.tasks += 1;
                tasks.insert(
                    *task,
                    Task {
                        queued_since: Some(*at),
                        idle_since: None,
                    },
                );
            }
            Event::Wake { task, at, .. } => {
                t.wakes += 1;
                let s = tasks.entry(*task).or_default();
                if let Some(idle) = s.idle_since.take() {
                    t.idle_ns += at.saturating_sub(idle);
                }
                s.queued_since.get_or_insert(*at);
            }
            Event::Poll {
                task,
                start,
                end,
                ready,
                ..
            } => {
                t.polls += 1;
                t.busy_ns += end.saturating_sub(*start);
                t.longest_poll_ns = t.longest_poll_ns.max(end.saturating_sub(*start));
                let s = tasks.entry(*task).or_default();
                if let Some(q) = s.queued_since.take() {
                    t.scheduled_ns += start.saturating_sub(q);
                }
                if !ready {
                    s.idle_since = Some(*end);
                }
            }
            Event::QueueDepth { ready, .. } => t.max_ready = t.max_ready.max(*ready),
            _ => {}
        }
    }
    (t.tasks > 0).then_some(t)
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
