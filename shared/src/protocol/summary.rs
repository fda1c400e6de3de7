//! The summary of a finished run: what the CLI prints, `--json` emits, and the page tabulates.

use serde::{Deserialize, Serialize};

use crate::{
    event::{Fidelity, Role},
    scenario::{Params, ScenarioId},
    watch::WatchTarget,
};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Per event-loop task totals (scenarios with an event loop).
    #[serde(default)]
    pub tasks: Option<TaskTotals>,
    /// For a watch run: the program followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchTarget>,
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
        }
    }
}

/// One variant of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSummary {
    /// OS process id.
    pub pid: u32,
    /// Spawn to ready, ns.
    pub startup_ns: Option<u64>,
    /// Peak resident memory, bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// Latency distribution of requests, ns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        latencies.sort_unstable();
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

#[cfg(test)]
mod tests {
    use super::*;

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
        return format!("{total:.2} ms ({n} {one})");
    }
    format!(
        "{total:.2} ms summed over {n} {things} ({:.2} ms each on average)",
        total / n as f64
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
