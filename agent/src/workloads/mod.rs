//! The scenarios' real workloads, one module per kind. Each runs on the calling thread (the
//! run's orchestrator), starts its own threads or processes, traces them through the run's
//! [`Recorder`], and returns what the summary needs beyond the events.

pub mod compute;
pub mod compute_threads;
pub mod event_loop;
pub mod gil;
pub mod io;
pub mod loopback_db;
pub mod process_pool;
pub mod worker;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use coreplay_shared::{
    scenario::{Params, ScenarioId},
    summary::{Baseline, ProcessSummary},
};

use crate::trace::{
    Recorder,
    clock::{thread_cpu_ns, thread_switch_counts},
};

/// What a workload needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The run's recorder.
    pub rec: Arc<Recorder>,
    /// Parameters, defaults filled in.
    pub params: Params,
    /// Hardware threads of the machine.
    pub pus: u32,
    /// The `coreplay` executable, for worker and server processes.
    pub exe: PathBuf,
}

impl Ctx {
    /// A parameter's value (resolved parameters always have the scenario's own).
    pub fn param(&self, get: impl Fn(&Params) -> Option<u32>) -> u32 {
        get(&self.params).unwrap_or(1)
    }

    /// The same context with tracing off, for baselines measured beside the traced run. A
    /// baseline comes after the traced run: asking for it ends the run's measured part
    /// ([`Recorder::end_measured_part`]).
    pub fn untraced(&self) -> Ctx {
        self.rec.end_measured_part();
        let (rec, _rx) = Recorder::new(false, Arc::clone(self.rec.cancel_flag()));
        rec.set_exact(self.rec.exact());
        Ctx {
            rec,
            ..self.clone()
        }
    }
}

/// What a workload reports besides its events.
#[derive(Debug, Default)]
pub struct Output {
    /// Wall time of the measured part, ns (excludes baselines).
    pub wall_ns: u64,
    /// The reference run, if the scenario has one.
    pub baseline: Option<Baseline>,
    /// What the work computed.
    pub result: Option<String>,
    /// Worker processes.
    pub processes: Vec<ProcessSummary>,
    /// Request latencies, ns.
    pub latencies: Vec<u64>,
    /// Remarks for the reader.
    pub notes: Vec<String>,
    /// Variants compared side by side.
    pub variants: Vec<coreplay_shared::summary::Variant>,
}

impl Output {
    /// The output of a run stopped before its end: only the time it ran.
    pub fn stopped(wall_ns: u64) -> Output {
        Output {
            wall_ns,
            ..Output::default()
        }
    }
}

/// Why a workload could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// Threads or processes could not be started.
    #[error("could not start {what}: {source}")]
    Spawn {
        /// What.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The loopback server or a worker misbehaved.
    #[error("{0}")]
    Peer(String),
}

/// Sums CPU time and switch counts of the threads that report to it (for baselines, which
/// record no events).
#[derive(Debug, Default)]
pub struct Totals {
    cpu_ns: AtomicU64,
    voluntary: AtomicU64,
    involuntary: AtomicU64,
    threads: AtomicU64,
}

impl Totals {
    /// Adds the calling thread's CPU time and involuntary switches.
    pub fn add_current_thread(&self) {
        let counts = thread_switch_counts();
        self.cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
        self.voluntary
            .fetch_add(counts.voluntary, Ordering::Relaxed);
        self.involuntary
            .fetch_add(counts.involuntary, Ordering::Relaxed);
        self.threads.fetch_add(1, Ordering::Relaxed);
    }

    /// The CPU time of the threads added so far, ns.
    pub fn cpu_ns(&self) -> u64 {
        self.cpu_ns.load(Ordering::Relaxed)
    }

    /// A comparison variant from these totals.
    pub fn variant(
        &self,
        label: String,
        wall_ns: u64,
        rss_growth_bytes: Option<u64>,
        latencies: Vec<u64>,
    ) -> coreplay_shared::summary::Variant {
        coreplay_shared::summary::Variant {
            label,
            wall_ns,
            cpu_ns: self.cpu_ns.load(Ordering::Relaxed),
            threads: self.threads.load(Ordering::Relaxed) as u32,
            voluntary_switches: self.voluntary.load(Ordering::Relaxed),
            involuntary_switches: self.involuntary.load(Ordering::Relaxed),
            rss_growth_bytes,
            requests: coreplay_shared::summary::LatencyStats::from_latencies(latencies),
        }
    }

    /// A baseline from these totals.
    pub fn baseline(&self, label: String, wall_ns: u64) -> Baseline {
        Baseline {
            label,
            wall_ns,
            cpu_ns: Some(self.cpu_ns.load(Ordering::Relaxed)),
            involuntary_switches: Some(self.involuntary.load(Ordering::Relaxed)),
        }
    }
}

/// Runs `scenario`.
pub fn run(scenario: ScenarioId, ctx: &Ctx) -> Result<Output, WorkloadError> {
    match scenario {
        ScenarioId::ParallelCompute => compute_threads::parallel_compute(ctx),
        ScenarioId::Oversubscribed => compute_threads::oversubscribed(ctx),
        ScenarioId::Gil => compute_threads::gil(ctx),
        ScenarioId::ProcessPool => process_pool::run(ctx),
        ScenarioId::IoSequential => io::sequential(ctx),
        ScenarioId::IoThreads => io::threads(ctx),
        ScenarioId::IoAsync => io::event_loop(ctx),
        ScenarioId::EventLoopBlocked => event_loop::blocked(ctx),
        ScenarioId::AsyncVsThreads => event_loop::async_vs_threads(ctx),
        ScenarioId::Watch => Err(WorkloadError::Peer(
            "watch is not a scenario: use `coreplay watch` or a watch request".into(),
        )),
    }
}

/// Formats the prime count result line.
pub fn primes_result(work: u32, primes: u64) -> String {
    format!(
        "{primes} primes among {} odd numbers above 10^9",
        u64::from(work) * u64::from(compute::NUMBERS_PER_UNIT)
    )
}
