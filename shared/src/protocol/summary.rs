//! The summary of a finished run: what the CLI prints, `--json` emits, and the page tabulates.

use crate::fixed::Fixed;
use serde::Serialize;

use crate::json_struct;

use crate::{
    event::{Fidelity, Role},
    scenario::{Params, ScenarioId},
    watch::WatchTarget,
};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// It did all its work.
    Completed,
    /// A client or the user stopped it.
    Stopped,
    /// It hit the agent's run time cap.
    TimedOut {
        /// The cap, seconds.
        cap_secs: u32,
    },
    /// It could not run to the end.
    Failed {
        /// Why.
        message: String,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Completed => f.write_str("completed"),
            Outcome::Stopped => f.write_str("stopped"),
            Outcome::TimedOut { cap_secs } => write!(f, "timed out after {cap_secs} s"),
            Outcome::Failed { message } => write!(f, "failed: {message}"),
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Which scenario.
    pub scenario: ScenarioId,
    /// Its parameters, defaults filled in.
    pub params: Params,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall-clock time of the measured run, ns.
    pub wall_ns: u64,
    /// CPU time of all its threads together, ns.
    pub cpu_ns: u64,
    /// Speedup against the baseline (baseline wall / this wall), where the scenario has one.
    pub speedup: Option<f64>,
    /// The reference run measured in the same invocation, where the scenario has one.
    pub baseline: Option<Baseline>,
    /// Voluntary context switches of the run's threads (the kernel's count).
    pub voluntary_switches: u64,
    /// Involuntary context switches (preemptions) of the run's threads (the kernel's count).
    pub involuntary_switches: u64,
    /// Moves of a thread from one hardware thread to another that were observed.
    pub migrations: u64,
    /// Time threads were runnable but not running (preempted), ns, summed.
    pub runnable_wait_ns: u64,
    /// Time threads waited for the global lock, ns, summed (lock scenarios).
    pub lock_wait_ns: Option<u64>,
    /// Lock hand-overs from one thread to another (lock scenarios).
    pub lock_handovers: Option<u64>,
    /// Peak resident memory of the agent process (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Events recorded.
    pub events: u64,
    /// Events lost (buffers full), never silently.
    pub dropped: u64,
    /// How the events were obtained.
    pub fidelity: Fidelity,
    /// Per thread.
    pub threads: Vec<ThreadSummary>,
    /// Per worker process (process scenarios).
    pub processes: Vec<ProcessSummary>,
    /// Request latencies (I/O scenarios).
    pub requests: Option<LatencyStats>,
    /// What the work computed, to check runs against each other (e.g. a prime count).
    pub result: Option<String>,
    /// Anything worth telling the reader about this run.
    pub notes: Vec<String>,
    /// Variants measured side by side in this run (with and without a blocking task; event
    /// loop against threads).
    pub variants: Vec<Variant>,
    /// Per event-loop task totals (scenarios with an event loop).
    pub tasks: Option<TaskTotals>,
    /// For a watch run: the program followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchTarget>,
    /// What else kept the hardware threads busy while the run was measured (from protocol 6;
    /// `None` in older traces, or where `/proc/stat` could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_load: Option<OtherLoad>,
}

impl Summary {
    /// How many threads the run-wide totals add up (the stand-in server's threads are listed
    /// but not counted: the totals describe the scenario's own work).
    pub fn counted_threads(&self) -> usize {
        self.threads
            .iter()
            .filter(|t| t.role != Role::Server)
            .count()
    }

    /// A summary with nothing measured yet: zero counts, no figures, no threads (for runs
    /// whose figures are unknown, e.g. a trace file cut before its summary).
    pub fn empty(
        scenario: ScenarioId,
        params: Params,
        outcome: Outcome,
        fidelity: Fidelity,
    ) -> Summary {
        Summary {
            scenario,
            params,
            outcome,
            wall_ns: 0,
            cpu_ns: 0,
            speedup: None,
            baseline: None,
            voluntary_switches: 0,
            involuntary_switches: 0,
            migrations: 0,
            runnable_wait_ns: 0,
            lock_wait_ns: None,
            lock_handovers: None,
            peak_rss_bytes: None,
            events: 0,
            dropped: 0,
            fidelity,
            threads: Vec::new(),
            processes: Vec::new(),
            requests: None,
            result: None,
            notes: Vec::new(),
            variants: Vec::new(),
            tasks: None,
            watch: None,
            other_load: None,
        }
    }
}

/// What else ran on the machine while a run was measured: each hardware thread's busy time
/// (from `/proc/stat`) less the time the run's own threads ran on it (from its events), over
/// the measured part of the run (baselines measured afterwards are outside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtherLoad {
    /// Where the window starts, ns on the run's clock.
    pub start_ns: u64,
    /// How long it is, ns.
    pub window_ns: u64,
    /// Per hardware thread (OS index), every one the machine had online.
    pub cpus: Vec<CpuOther>,
    /// CPU time of coreplay's own recording in the window (its collector, hub, sampler,
    /// WebSocket: the agent's threads that are not the run's), all CPUs together, ns. It is
    /// part of the `other_ns` of the CPUs it ran on: `/proc/stat` cannot tell it apart there.
    pub agent_ns: u64,
}

/// One hardware thread's time taken by others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuOther {
    /// OS index.
    pub cpu: u32,
    /// Busy time in the window that was not the run's threads (other programs, and coreplay's
    /// own recording), ns.
    pub other_ns: u64,
}

impl OtherLoad {
    fn capacity_ns(&self) -> f64 {
        self.window_ns as f64 * self.cpus.len() as f64
    }

    /// The share of the window one hardware thread spent on others, 0..=1; `None` for a CPU
    /// not measured (or an empty window).
    pub fn cpu_share(&self, cpu: u32) -> Option<f64> {
        let c = self.cpus.iter().find(|c| c.cpu == cpu)?;
        (self.window_ns > 0).then(|| (c.other_ns as f64 / self.window_ns as f64).min(1.0))
    }

    /// Time all hardware threads together spent on others (coreplay's own recording
    /// included), ns.
    pub fn total_ns(&self) -> u64 {
        self.cpus.iter().map(|c| c.other_ns).sum()
    }

    /// The share of the whole machine (every hardware thread over the window) spent on others,
    /// coreplay's own recording included, 0..=1.
    pub fn share(&self) -> f64 {
        let cap = self.capacity_ns();
        if cap <= 0.0 {
            return 0.0;
        }
        (self.total_ns() as f64 / cap).min(1.0)
    }

    /// The share of the whole machine spent on other programs, coreplay's own recording left
    /// out, 0..=1.
    pub fn programs_share(&self) -> f64 {
        let cap = self.capacity_ns();
        if cap <= 0.0 {
            return 0.0;
        }
        (self.total_ns().saturating_sub(self.agent_ns) as f64 / cap).min(1.0)
    }

    /// The share of the whole machine spent on coreplay's own recording, 0..=1. Measured by
    /// the agent's own CPU clock, to the ns: in a short window it can exceed what the CPUs'
    /// tick counts show of others altogether.
    pub fn agent_share(&self) -> f64 {
        let cap = self.capacity_ns();
        if cap <= 0.0 {
            return 0.0;
        }
        (self.agent_ns as f64 / cap).min(1.0)
    }

    /// The hardware thread others used most, with its share.
    pub fn busiest(&self) -> Option<(u32, f64)> {
        let c = self.cpus.iter().max_by_key(|c| c.other_ns)?;
        Some((c.cpu, self.cpu_share(c.cpu)?))
    }

    /// Below this share of the window taken by others, a hardware thread that runs nothing of
    /// the run is called idle (`/proc/stat` counts in ticks: 2 % of a 1 s window is 2 ticks).
    pub const IDLE_BELOW: f64 = 0.02;

    /// What a hardware thread with no thread of the run on it is called: "other programs:
    /// 38 %" (its share of the window), or "idle" under [`OtherLoad::IDLE_BELOW`]; `None` for a
    /// CPU not measured.
    pub fn free_cpu_label(&self, cpu: u32) -> Option<String> {
        let share = self.cpu_share(cpu)?;
        Some(if share < Self::IDLE_BELOW {
            "idle".into()
        } else {
            format!("other programs: {} %", Fixed(share * 100.0, 0))
        })
    }

    /// In words, for notes and tables: "38 % of the 2 hardware threads (coreplay's own
    /// recording 2 %)".
    pub fn describe(&self) -> String {
        let n = self.cpus.len();
        format!(
            "{} % of the {n} hardware thread{} (coreplay's own recording {} %)",
            Fixed(self.programs_share() * 100.0, 0),
            if n == 1 { "" } else { "s" },
            Fixed(self.agent_share() * 100.0, 0)
        )
    }
}

/// One variant of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// What it was.
    pub label: String,
    /// Wall time, ns.
    pub wall_ns: u64,
    /// CPU time of its threads, ns.
    pub cpu_ns: u64,
    /// OS threads it used.
    pub threads: u32,
    /// Voluntary context switches (kernel's count).
    pub voluntary_switches: u64,
    /// Involuntary context switches (kernel's count).
    pub involuntary_switches: u64,
    /// How much the agent's resident memory grew while it ran, bytes.
    pub rss_growth_bytes: Option<u64>,
    /// Its request latencies.
    pub requests: Option<LatencyStats>,
}

/// Event-loop task figures, summed over the run's tasks (and the largest single task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskTotals {
    /// Tasks spawned.
    pub tasks: u64,
    /// Polls.
    pub polls: u64,
    /// Wakes.
    pub wakes: u64,
    /// Time being polled (busy), ns.
    pub busy_ns: u64,
    /// Time woken but waiting in the ready queue, ns.
    pub scheduled_ns: u64,
    /// Time parked awaiting I/O or a timer, ns.
    pub idle_ns: u64,
    /// Longest single poll, ns (a task that does not await shows here).
    pub longest_poll_ns: u64,
    /// Deepest ready queue seen.
    pub max_ready: u32,
}

/// The reference run a scenario compares itself with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    /// What it was, e.g. "T = 1" or "T = PUs = 2".
    pub label: String,
    /// Its wall time, ns.
    pub wall_ns: u64,
    /// Its CPU time, ns, where measured.
    pub cpu_ns: Option<u64>,
    /// Its involuntary context switches, where measured.
    pub involuntary_switches: Option<u64>,
}

/// One thread's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadSummary {
    /// Run-wide thread id.
    pub tid: u32,
    /// OS process id.
    pub pid: u32,
    /// Name.
    pub name: String,
    /// What it was for.
    pub role: Role,
    /// CPU time, ns.
    pub cpu_ns: u64,
    /// Start to end, ns.
    pub wall_ns: u64,
    /// Voluntary switches (kernel's count).
    pub voluntary_switches: u64,
    /// Involuntary switches (kernel's count).
    pub involuntary_switches: u64,
    /// Observed migrations.
    pub migrations: u64,
    /// Runnable but not running, ns.
    pub runnable_wait_ns: u64,
    /// Waiting for the lock, ns.
    pub lock_wait_ns: u64,
}

/// One worker process's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessSummary {
    /// OS process id.
    pub pid: u32,
    /// Spawn to ready, ns.
    pub startup_ns: Option<u64>,
    /// Peak resident memory, bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// Latency distribution of requests, ns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatencyStats {
    /// Requests completed.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: u64,
}

impl LatencyStats {
    /// Computes the distribution of `latencies` (any order); `None` when empty.
    pub fn from_latencies(mut latencies: Vec<u64>) -> Option<LatencyStats> {
        if latencies.is_empty() {
            return None;
        }
        crate::sort::natural(&mut latencies);
        let n = latencies.len();
        let pick = |q: f64| latencies[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        Some(LatencyStats {
            count: n as u64,
            p50_ns: pick(0.5),
            p99_ns: pick(0.99),
            max_ns: latencies[n - 1],
            mean_ns: latencies.iter().sum::<u64>() / n as u64,
        })
    }
}

json_struct!(Summary {
    scenario,
    params,
    outcome,
    wall_ns,
    cpu_ns,
    speedup,
    baseline,
    voluntary_switches,
    involuntary_switches,
    migrations,
    runnable_wait_ns,
    lock_wait_ns,
    lock_handovers,
    peak_rss_bytes,
    events,
    dropped,
    fidelity,
    threads,
    processes,
    requests,
    result,
    notes,
    variants: default,
    tasks,
    watch,
    other_load
});
json_struct!(OtherLoad {
    start_ns,
    window_ns,
    cpus,
    agent_ns
});
json_struct!(CpuOther { cpu, other_ns });
json_struct!(Variant {
    label,
    wall_ns,
    cpu_ns,
    threads,
    voluntary_switches,
    involuntary_switches,
    rss_growth_bytes,
    requests
});
json_struct!(TaskTotals {
    tasks,
    polls,
    wakes,
    busy_ns,
    scheduled_ns,
    idle_ns,
    longest_poll_ns,
    max_ready
});
json_struct!(Baseline {
    label,
    wall_ns,
    cpu_ns,
    involuntary_switches
});
json_struct!(ThreadSummary {
    tid,
    pid,
    name,
    role,
    cpu_ns,
    wall_ns,
    voluntary_switches,
    involuntary_switches,
    migrations,
    runnable_wait_ns,
    lock_wait_ns
});
json_struct!(ProcessSummary {
    pid,
    startup_ns,
    peak_rss_bytes
});
json_struct!(LatencyStats {
    count,
    p50_ns,
    p99_ns,
    max_ns,
    mean_ns
});

#[cfg(test)]
mod tests {
    use super::*;

    fn load(window_ns: u64, others: &[u64], agent_ns: u64) -> OtherLoad {
        OtherLoad {
            start_ns: 1_000,
            window_ns,
            cpus: others
                .iter()
                .enumerate()
                .map(|(cpu, &other_ns)| CpuOther {
                    cpu: cpu as u32,
                    other_ns,
                })
                .collect(),
            agent_ns,
        }
    }

    #[test]
    fn other_load_shares() {
        // A browser taking 76 % of CPU 1 over a 100 ms window on 2 CPUs; coreplay's own
        // recording 4 ms of it.
        let l = load(100_000_000, &[0, 76_000_000], 4_000_000);
        assert_eq!(l.cpu_share(0), Some(0.0));
        assert_eq!(l.cpu_share(1), Some(0.76));
        assert_eq!(l.cpu_share(2), None, "not measured");
        assert!((l.share() - 0.38).abs() < 1e-9);
        assert!((l.programs_share() - 0.36).abs() < 1e-9);
        assert!((l.agent_share() - 0.02).abs() < 1e-9);
        assert_eq!(l.busiest(), Some((1, 0.76)));
        assert_eq!(l.free_cpu_label(1).as_deref(), Some("other programs: 76 %"));
        assert_eq!(l.free_cpu_label(0).as_deref(), Some("idle"));
        assert_eq!(l.free_cpu_label(2), None);
        assert_eq!(
            load(100, &[2], 0).free_cpu_label(0).as_deref(),
            Some("other programs: 2 %")
        );
        assert_eq!(
            load(1000, &[19], 0).free_cpu_label(0).as_deref(),
            Some("idle")
        );
        assert_eq!(
            l.describe(),
            "36 % of the 2 hardware threads (coreplay's own recording 2 %)"
        );
        // coreplay's own clock is finer than the CPUs' ticks: in a short window it may show
        // when the ticks show nothing.
        let short = load(100_000_000, &[0, 0], 4_000_000);
        assert_eq!(short.programs_share(), 0.0);
        assert!((short.agent_share() - 0.02).abs() < 1e-9);
        // Never more than the whole, never a division by zero.
        assert_eq!(load(10, &[20], 0).cpu_share(0), Some(1.0));
        let empty = load(0, &[0, 0], 0);
        assert_eq!((empty.share(), empty.cpu_share(0)), (0.0, None));
        assert_eq!(load(10, &[], 0).busiest(), None);
    }

    #[test]
    fn summaries_without_other_load_read_and_write_as_before() {
        let s = Summary::empty(
            ScenarioId::Gil,
            Params::default(),
            Outcome::Completed,
            Fidelity::Exact,
        );
        let json = serde_json::to_string(&s).expect("json");
        assert!(!json.contains("other_load"), "{json}");
        assert_eq!(crate::json::from_str::<Summary>(&json).expect("reads"), s);
        let with = Summary {
            other_load: Some(load(5, &[1], 0)),
            ..s
        };
        let json = serde_json::to_string(&with).expect("json");
        assert_eq!(
            crate::json::from_str::<Summary>(&json).expect("reads"),
            with
        );
    }

    #[test]
    fn percentiles() {
        let s = LatencyStats::from_latencies((1..=100).collect()).expect("some");
        assert_eq!(
            (s.p50_ns, s.p99_ns, s.max_ns, s.mean_ns, s.count),
            (50, 99, 100, 50, 100)
        );
        assert_eq!(LatencyStats::from_latencies(vec![]), None);
        let one = LatencyStats::from_latencies(vec![7]).expect("some");
        assert_eq!((one.p50_ns, one.p99_ns), (7, 7));
    }
}

/// A time summed over `n` threads or tasks, as it must read: a sum can be far longer than the
/// run (32 threads each waiting 100 ms of a 364 ms run wait 3.2 s in all), so it says it is
/// one and gives the mean beside it: "3162.00 ms summed over 32 threads (98.81 ms each on
/// average)".
pub fn summed_ms(total_ns: u64, n: usize, things: &str) -> String {
    let total = total_ns as f64 / 1e6;
    if n <= 1 {
        let one = things.strip_suffix('s').unwrap_or(things);
        return format!("{} ms ({n} {one})", Fixed(total, 2));
    }
    format!(
        "{} ms summed over {n} {things} ({} ms each on average)",
        Fixed(total, 2),
        Fixed(total / n as f64, 2)
    )
}

#[cfg(test)]
mod summed_tests {
    use super::summed_ms;

    #[test]
    fn sums_say_so_and_give_the_mean() {
        assert_eq!(
            summed_ms(3_162_000_000, 32, "threads"),
            "3162.00 ms summed over 32 threads (98.81 ms each on average)"
        );
        assert_eq!(summed_ms(1_500_000, 1, "threads"), "1.50 ms (1 thread)");
    }
}
