//! The scenario catalog: what each workload demonstrates, its parameters with ranges and
//! defaults, and the one validation both the agent and the page run on a request.
//!
//! Ranges that depend on the machine (thread counts as multiples of its hardware threads) are
//! computed from the PU count, so the page shows the same limits the agent enforces.

use serde::Serialize;

use crate::json::{self, FromJson, Reader};
use crate::json_struct;

/// The scenarios coreplay can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioId {
    /// Compute-bound work split over a rayon pool.
    ParallelCompute,
    /// The same work on far more OS threads than hardware threads.
    Oversubscribed,
    /// Threads that may compute only while holding one global lock.
    Gil,
    /// The work on worker processes, each with its own lock.
    ProcessPool,
    /// Blocking requests one after another.
    IoSequential,
    /// Blocking requests on a pool of threads.
    IoThreads,
    /// Requests as tasks on one single-threaded event loop.
    IoAsync,
    /// The event loop with one task that computes without awaiting.
    EventLoopBlocked,
    /// The same requests on the event loop and on a thread pool, compared.
    AsyncVsThreads,
    /// Not a scenario: a real program watched (`coreplay watch`, or a program from the
    /// agent's list started by the page). Not in [`ScenarioId::ALL`] and takes no parameters.
    Watch,
}

impl ScenarioId {
    /// Every scenario, in catalog order.
    pub const ALL: [ScenarioId; 9] = [
        ScenarioId::ParallelCompute,
        ScenarioId::Oversubscribed,
        ScenarioId::Gil,
        ScenarioId::ProcessPool,
        ScenarioId::IoSequential,
        ScenarioId::IoThreads,
        ScenarioId::IoAsync,
        ScenarioId::EventLoopBlocked,
        ScenarioId::AsyncVsThreads,
    ];

    /// The name used on the command line and the wire.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioId::ParallelCompute => "parallel-compute",
            ScenarioId::Oversubscribed => "oversubscribed",
            ScenarioId::Gil => "gil",
            ScenarioId::ProcessPool => "process-pool",
            ScenarioId::IoSequential => "io-sequential",
            ScenarioId::IoThreads => "io-threads",
            ScenarioId::IoAsync => "io-async",
            ScenarioId::EventLoopBlocked => "event-loop-blocked",
            ScenarioId::AsyncVsThreads => "async-vs-threads",
            ScenarioId::Watch => "watch",
        }
    }

    /// Looks a scenario up by its name (a scenario of the catalog: never [`ScenarioId::Watch`]).
    pub fn from_name(name: &str) -> Option<ScenarioId> {
        ScenarioId::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The parameters a scenario can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamName {
    /// Threads (T).
    Threads,
    /// Worker processes (P).
    Processes,
    /// Requests (K).
    Requests,
    /// Latency of the loopback server, ms.
    LatencyMs,
    /// Lock switch interval, ms.
    SwitchIntervalMs,
    /// Work units (each about 50 µs of one core).
    Work,
    /// How long a task computes without awaiting, ms.
    BlockMs,
}

impl ParamName {
    /// Every parameter, in the order of [`Params`]' fields.
    pub const ALL: [ParamName; 7] = [
        ParamName::Threads,
        ParamName::Processes,
        ParamName::Requests,
        ParamName::LatencyMs,
        ParamName::SwitchIntervalMs,
        ParamName::Work,
        ParamName::BlockMs,
    ];

    /// The field name on the wire and, with `-` for `_`, the CLI flag.
    pub fn name(self) -> &'static str {
        match self {
            ParamName::Threads => "threads",
            ParamName::Processes => "processes",
            ParamName::Requests => "requests",
            ParamName::LatencyMs => "latency_ms",
            ParamName::SwitchIntervalMs => "switch_interval_ms",
            ParamName::Work => "work",
            ParamName::BlockMs => "block_ms",
        }
    }
}

/// One parameter of a scenario: its range and default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamSpec {
    /// Which parameter.
    pub name: ParamName,
    /// What it means, for people.
    pub help: String,
    /// Smallest allowed value.
    pub min: u32,
    /// Largest allowed value.
    pub max: u32,
    /// Value when not given.
    pub default: u32,
}

/// A scenario as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioInfo {
    /// Which scenario.
    pub id: ScenarioId,
    /// Short title.
    pub title: String,
    /// The idea it demonstrates, in one sentence.
    pub idea: String,
    /// Its parameters.
    pub params: Vec<ParamSpec>,
}

/// Parameters as asked for: any may be missing (then the default applies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Threads (T).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Worker processes (P).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u32>,
    /// Requests (K).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u32>,
    /// Loopback server latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u32>,
    /// Lock switch interval, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_interval_ms: Option<u32>,
    /// Work units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<u32>,
    /// How long the blocking task computes, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_ms: Option<u32>,
}

impl Params {
    /// The JSON object serde's derive writes (absent parameters left out; tested).
    pub fn to_json(&self) -> String {
        let set: Vec<String> = self
            .given()
            .map(|(name, v)| format!(r#""{}":{v}"#, name.name()))
            .collect();
        format!("{{{}}}", set.join(","))
    }

    /// The value given for `name`, if any.
    pub fn get(&self, name: ParamName) -> Option<u32> {
        match name {
            ParamName::Threads => self.threads,
            ParamName::Processes => self.processes,
            ParamName::Requests => self.requests,
            ParamName::LatencyMs => self.latency_ms,
            ParamName::SwitchIntervalMs => self.switch_interval_ms,
            ParamName::Work => self.work,
            ParamName::BlockMs => self.block_ms,
        }
    }

    fn slot(&mut self, name: ParamName) -> &mut Option<u32> {
        match name {
            ParamName::Threads => &mut self.threads,
            ParamName::Processes => &mut self.processes,
            ParamName::Requests => &mut self.requests,
            ParamName::LatencyMs => &mut self.latency_ms,
            ParamName::SwitchIntervalMs => &mut self.switch_interval_ms,
            ParamName::Work => &mut self.work,
            ParamName::BlockMs => &mut self.block_ms,
        }
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: ParamName, value: u32) {
        *self.slot(name) = Some(value);
    }

    fn given(&self) -> impl Iterator<Item = (ParamName, u32)> + '_ {
        ParamName::ALL
            .into_iter()
            .filter_map(|n| self.get(n).map(|v| (n, v)))
    }
}

/// A request's parameters that are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A value outside its range.
    #[error("{field} = {value} is out of range for {scenario}: allowed {min}..={max}")]
    OutOfRange {
        /// The scenario.
        scenario: ScenarioId,
        /// The parameter.
        field: &'static str,
        /// The value given.
        value: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A parameter the scenario does not take.
    #[error("{scenario} takes no parameter {field} (it takes: {takes})")]
    NotApplicable {
        /// The scenario.
        scenario: ScenarioId,
        /// The parameter.
        field: &'static str,
        /// The parameters it does take.
        takes: String,
    },
}

impl ParamError {
    /// The offending field.
    pub fn field(&self) -> &'static str {
        match self {
            ParamError::OutOfRange { field, .. } | ParamError::NotApplicable { field, .. } => field,
        }
    }
}

/// Rough single-core cost of one work unit, used for help texts.
pub const WORK_UNIT_US: u32 = 50;

fn spec(name: ParamName, help: &str, min: u32, max: u32, default: u32) -> ParamSpec {
    ParamSpec {
        name,
        help: help.to_string(),
        min,
        max,
        default: default.clamp(min, max),
    }
}

/// The catalog for a machine with `pus` hardware threads.
pub fn catalog(pus: u32) -> Vec<ScenarioInfo> {
    ScenarioId::ALL
        .into_iter()
        .map(|id| info(id, pus))
        .collect()
}

/// One scenario's entry for a machine with `pus` hardware threads.
pub fn info(id: ScenarioId, pus: u32) -> ScenarioInfo {
    let pus = pus.max(1);
    let work = |default| {
        spec(
            ParamName::Work,
            "work units of about 50 µs of one core each; the same total whatever the thread count",
            1,
            200_000,
            default,
        )
    };
    let latency = spec(
        ParamName::LatencyMs,
        "how long the loopback server waits before answering each request, ms",
        0,
        1_000,
        50,
    );
    let (title, idea, params) = match id {
        ScenarioId::ParallelCompute => (
            "Parallel compute (rayon pool)",
            "One compute-bound job split into independent chunks runs T times faster on T cores, up to the number of cores.",
            vec![
                spec(
                    ParamName::Threads,
                    "threads in the rayon pool (T)",
                    1,
                    4 * pus,
                    pus,
                ),
                work(10_000),
            ],
        ),
        ScenarioId::Oversubscribed => (
            "Oversubscribed threads",
            "Far more threads than hardware threads do not go faster: the kernel preempts and switches them, which costs.",
            vec![
                spec(
                    ParamName::Threads,
                    "plain OS threads (T), best far above the hardware threads",
                    1,
                    1_000,
                    (16 * pus).min(1_000),
                ),
                work(10_000),
            ],
        ),
        ScenarioId::Gil => (
            "Global interpreter lock",
            "Threads that may only compute while holding one lock take turns: no speedup, however many cores.",
            vec![
                spec(
                    ParamName::Threads,
                    "threads competing for the lock (T)",
                    1,
                    64,
                    4,
                ),
                spec(
                    ParamName::SwitchIntervalMs,
                    "how long a waiter waits before it asks the holder to hand over, ms (CPython: 5)",
                    1,
                    100,
                    5,
                ),
                work(4_000),
            ],
        ),
        ScenarioId::ProcessPool => (
            "Process pool",
            "Separate processes each have their own lock and memory, so they run in parallel, at a start-up and memory cost.",
            vec![
                spec(
                    ParamName::Processes,
                    "worker processes (P)",
                    1,
                    (4 * pus).min(64),
                    pus,
                ),
                // Each process's start-up (a few ms) is inside the measured wall time, as it
                // is for a real pool: more work on bigger machines keeps it from hiding the
                // parallelism (16 PUs: 20 000 units, about 75 ms per worker).
                work((1_250 * pus).clamp(10_000, 40_000)),
            ],
        ),
        ScenarioId::IoSequential => (
            "I/O, one request after another",
            "A thread that waits for each answer before asking the next takes K × latency: the CPU idles.",
            vec![
                spec(ParamName::Requests, "requests (K)", 1, 1_000, 20),
                latency.clone(),
            ],
        ),
        ScenarioId::IoThreads => (
            "I/O on a thread pool",
            "T threads each waiting on their own request overlap the waits: concurrency without more cores.",
            vec![
                spec(ParamName::Threads, "threads in the pool (T)", 1, 1_000, 16),
                spec(ParamName::Requests, "requests (K)", 1, 10_000, 200),
                latency.clone(),
            ],
        ),
        ScenarioId::IoAsync => (
            "I/O on an event loop",
            "One thread running a single-threaded event loop keeps hundreds or thousands of requests in flight: all wait at once, so K requests take about one latency.",
            vec![
                spec(
                    ParamName::Requests,
                    "requests (K), one task each",
                    1,
                    10_000,
                    200,
                ),
                latency.clone(),
            ],
        ),
        ScenarioId::EventLoopBlocked => (
            "Event loop blocked by one task",
            "One task that computes without awaiting stalls every other task on the loop: their latency jumps by that much.",
            vec![
                spec(
                    ParamName::Requests,
                    "requests (K), one task each",
                    1,
                    10_000,
                    200,
                ),
                latency.clone(),
                spec(
                    ParamName::BlockMs,
                    "how long the blocking task computes without awaiting, ms",
                    1,
                    2_000,
                    100,
                ),
            ],
        ),
        ScenarioId::AsyncVsThreads => (
            "Event loop vs thread pool",
            "The same requests on one event loop thread and on a pool of threads: similar time, very different cost.",
            vec![
                spec(ParamName::Requests, "requests (K)", 1, 10_000, 1_000),
                spec(ParamName::Threads, "threads in the pool (T)", 1, 1_000, 100),
                latency,
            ],
        ),
        ScenarioId::Watch => (
            "Watch a program",
            "A real program's threads and processes, followed on the cores as they run.",
            vec![],
        ),
    };
    ScenarioInfo {
        id,
        title: title.to_string(),
        idea: idea.to_string(),
        params,
    }
}

/// Checks `params` against the scenario's specs and fills in defaults.
///
/// The result has exactly the scenario's parameters, every one set.
pub fn resolve(id: ScenarioId, params: &Params, pus: u32) -> Result<Params, ParamError> {
    let info = info(id, pus);
    for (name, _) in params.given() {
        if !info.params.iter().any(|p| p.name == name) {
            return Err(ParamError::NotApplicable {
                scenario: id,
                field: name.name(),
                takes: info
                    .params
                    .iter()
                    .map(|p| p.name.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let mut resolved = Params::default();
    for spec in &info.params {
        let value = params.get(spec.name).unwrap_or(spec.default);
        if value < spec.min || value > spec.max {
            return Err(ParamError::OutOfRange {
                scenario: id,
                field: spec.name.name(),
                value,
                min: spec.min,
                max: spec.max,
            });
        }
        resolved.set(spec.name, value);
    }
    Ok(resolved)
}

/// Read by the names [`ScenarioId::name`] gives (the catalog's and `watch`).
impl FromJson for ScenarioId {
    fn read(r: &mut Reader<'_>) -> json::Result<ScenarioId> {
        let ids: Vec<ScenarioId> = ScenarioId::ALL
            .into_iter()
            .chain([ScenarioId::Watch])
            .collect();
        let names: Vec<&str> = ids.iter().map(|s| s.name()).collect();
        r.name(&names).map(|i| ids[i])
    }
}

/// Read by the names [`ParamName::name`] gives.
impl FromJson for ParamName {
    fn read(r: &mut Reader<'_>) -> json::Result<ParamName> {
        r.name(&ParamName::ALL.map(ParamName::name))
            .map(|i| ParamName::ALL[i])
    }
}
json_struct!(ParamSpec {
    name,
    help,
    min,
    max,
    default
});
json_struct!(ScenarioInfo {
    id,
    title,
    idea,
    params
});
json_struct!(deny Params {
    threads,
    processes,
    requests,
    latency_ms,
    switch_interval_ms,
    work,
    block_ms
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for id in ScenarioId::ALL {
            assert_eq!(ScenarioId::from_name(id.name()), Some(id));
            let json = serde_json::to_string(&id).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", id.name()));
        }
        assert_eq!(ScenarioId::from_name("nope"), None);
        // Read back by the one reader, `watch` too; every parameter likewise, and a set of
        // all of them written as serde writes it.
        for id in ScenarioId::ALL.into_iter().chain([ScenarioId::Watch]) {
            let json = serde_json::to_string(&id).unwrap_or_default();
            assert_eq!(crate::json::from_str::<ScenarioId>(&json), Ok(id));
        }
        let mut all = Params::default();
        for (i, name) in ParamName::ALL.into_iter().enumerate() {
            let json = serde_json::to_string(&name).unwrap_or_default();
            assert_eq!(crate::json::from_str::<ParamName>(&json), Ok(name));
            all.set(name, i as u32 + 1);
        }
        assert_eq!(Some(all.to_json()), serde_json::to_string(&all).ok());
        assert!(
            crate::json::from_str::<ScenarioId>(r#""nope""#)
                .is_err_and(|e| e.to_string().contains("unknown variant `nope`"))
        );
    }

    #[test]
    fn defaults_fill_in_and_stay_in_range() {
        for pus in [1, 2, 64, 256] {
            for info in catalog(pus) {
                let resolved = resolve(info.id, &Params::default(), pus).expect("defaults valid");
                for p in &info.params {
                    assert!(p.min <= p.default && p.default <= p.max, "{:?}", p);
                    assert_eq!(resolved.get(p.name), Some(p.default));
                }
            }
        }
    }

    #[test]
    fn threads_range_follows_the_machine() {
        let p = Params {
            threads: Some(9),
            ..Params::default()
        };
        let err = resolve(ScenarioId::ParallelCompute, &p, 2).expect_err("9 > 4×2");
        assert_eq!(err.field(), "threads");
        assert!(err.to_string().contains("1..=8"), "{err}");
        assert!(resolve(ScenarioId::ParallelCompute, &p, 4).is_ok());
    }

    #[test]
    fn foreign_parameters_are_named() {
        let p = Params {
            latency_ms: Some(5),
            ..Params::default()
        };
        let err = resolve(ScenarioId::Gil, &p, 2).expect_err("gil has no latency");
        assert_eq!(err.field(), "latency_ms");
        assert!(err.to_string().contains("switch_interval_ms"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused_on_the_wire() {
        assert!(crate::json::from_str::<Params>(r#"{"threads":2,"bogus":1}"#).is_err());
        assert!(crate::json::from_str::<Params>(r#"{"threads":-2}"#).is_err());
    }
}
