//! Folds a run's events (and what the workload reported) into its [`Summary`].
//!
//! Switch counts are the kernel's, as read by each thread at its end; the stand-in server's
//! threads are listed but not counted in the totals, which describe the scenario's own work.

use std::collections::BTreeMap;

use coreplay_shared::{
    event::{Event, Fidelity, LockOp, OffReason, Role},
    scenario::ScenarioId,
    summary::{LatencyStats, Outcome, Summary, ThreadSummary},
};

use crate::{run::RunSpec, workloads::Output};

/// Builds the summary.
pub fn summarize(
    spec: &RunSpec,
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
    let counted = || threads.values().filter(|t| t.role != Role::Server);
    let sum = |f: fn(&ThreadSummary) -> u64| counted().map(f).sum::<u64>();
    let lock_scenario = matches!(spec.scenario, ScenarioId::Gil | ScenarioId::ProcessPool);
    let speedup = output
        .baseline
        .as_ref()
        .filter(|_| output.wall_ns > 0 && outcome == Outcome::Completed)
        .map(|b| b.wall_ns as f64 / output.wall_ns as f64);
    Summary {
        scenario: spec.scenario,
        params: spec.params.clone(),
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
        lock_handovers: (spec.scenario == ScenarioId::Gil).then_some(lock_handovers),
        peak_rss_bytes,
        events: events.len() as u64,
        dropped,
        fidelity,
        threads: threads.into_values().collect(),
        processes: output.processes,
        requests: LatencyStats::from_latencies(output.latencies),
        result: output.result,
        notes: output.notes,
        outcome,
    }
}
