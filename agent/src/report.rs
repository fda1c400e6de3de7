//! Text output of runs: the summary table and the catalog listing (trace files:
//! [`crate::record`]).

use std::fmt::Write as _;

use coreplay_shared::{
    scenario::ScenarioInfo,
    summary::{Summary, summed_ms},
};

fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

/// The summary as an aligned two-column table.
pub fn summary_table(s: &Summary) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
    row("scenario", s.scenario.to_string());
    row(
        "parameters",
        serde_json::to_string(&s.params).unwrap_or_default(),
    );
    row("outcome", s.outcome.to_string());
    row("wall time", ms(s.wall_ns));
    let n = s.counted_threads();
    row("CPU time (all threads)", summed_ms(s.cpu_ns, n, "threads"));
    if let Some(b) = &s.baseline {
        let cpu = b
            .cpu_ns
            .map(|c| format!(", CPU {}", ms(c)))
            .unwrap_or_default();
        row(
            "baseline",
            format!("{}: wall {}{cpu}", b.label, ms(b.wall_ns)),
        );
    }
    if let Some(speedup) = s.speedup {
        row("speedup vs baseline", format!("{speedup:.2}×"));
    }
    row(
        "context switches",
        format!(
            "{} voluntary, {} involuntary",
            s.voluntary_switches, s.involuntary_switches
        ),
    );
    row("migrations", s.migrations.to_string());
    row(
        "runnable but waiting",
        summed_ms(s.runnable_wait_ns, n, "threads"),
    );
    if let Some(w) = s.lock_wait_ns {
        row("waiting for the lock", summed_ms(w, n, "threads"));
    }
    if let Some(h) = s.lock_handovers {
        row("lock hand-overs", h.to_string());
    }
    if let Some(r) = &s.requests {
        row(
            "request latency",
            format!(
                "p50 {}, p99 {}, max {} ({} requests)",
                ms(r.p50_ns),
                ms(r.p99_ns),
                ms(r.max_ns),
                r.count
            ),
        );
    }
    for p in &s.processes {
        row(
            &format!("process {}", p.pid),
            format!(
                "start-up {}, peak RSS {}",
                p.startup_ns.map(ms).unwrap_or_else(|| "?".into()),
                p.peak_rss_bytes
                    .map(|b| format!("{:.1} MiB", b as f64 / f64::from(1 << 20)))
                    .unwrap_or_else(|| "?".into())
            ),
        );
    }
    if let Some(l) = &s.other_load {
        row(
            "other programs",
            format!(
                "{:.0} % of the CPUs (coreplay itself: {:.0} %){}",
                l.programs_share() * 100.0,
                l.agent_share() * 100.0,
                l.busiest()
                    .filter(|&(_, share)| share >= 0.02 && l.cpus.len() > 1)
                    .map(|(cpu, share)| format!("; most on CPU {cpu}: {:.0} %", share * 100.0))
                    .unwrap_or_default()
            ),
        );
    }
    if let Some(rss) = s.peak_rss_bytes {
        row(
            "agent peak RSS",
            format!("{:.1} MiB", rss as f64 / f64::from(1 << 20)),
        );
    }
    row("threads", s.threads.len().to_string());
    row(
        "events",
        format!(
            "{} recorded, {} dropped ({})",
            s.events, s.dropped, s.fidelity
        ),
    );
    if let Some(result) = &s.result {
        row("result", result.clone());
    }
    for note in &s.notes {
        row("note", note.clone());
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    out
}

/// The catalog as text: one block per scenario with its parameters.
pub fn catalog_text(catalog: &[ScenarioInfo]) -> String {
    let mut out = String::new();
    for s in catalog {
        let _ = writeln!(out, "{}  —  {}\n    {}", s.id, s.title, s.idea);
        for p in &s.params {
            let _ = writeln!(
                out,
                "    --{:<20} {}..={}, default {}: {}",
                p.name.name().replace('_', "-"),
                p.min,
                p.max,
                p.default,
                p.help
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use coreplay_shared::{
        event::Fidelity,
        scenario::{Params, ScenarioId},
        summary::{CpuOther, OtherLoad, Outcome},
    };

    use super::*;

    #[test]
    fn the_table_says_what_other_programs_took() {
        let mut s = Summary::empty(
            ScenarioId::ParallelCompute,
            Params::default(),
            Outcome::Completed,
            Fidelity::Exact,
        );
        assert!(!summary_table(&s).contains("other programs"), "unmeasured");
        s.other_load = Some(OtherLoad {
            start_ns: 0,
            window_ns: 100,
            cpus: vec![
                CpuOther {
                    cpu: 0,
                    other_ns: 4,
                },
                CpuOther {
                    cpu: 1,
                    other_ns: 76,
                },
            ],
            agent_ns: 4,
        });
        let table = summary_table(&s);
        assert!(
            table.lines().any(|l| l.starts_with("other programs")
                && l.ends_with("38 % of the CPUs (coreplay itself: 2 %); most on CPU 1: 76 %")),
            "{table}"
        );
    }
}
