//! A finished run's figures: the summary table and its threads.

use std::rc::Rc;

use coreplay_shared::summary::Summary;
use yew::prelude::*;

/// Threads listed before the table is cut (the rest are counted).
const MAX_THREAD_ROWS: usize = 64;

/// Properties of [`SummaryView`].
#[derive(Debug, Properties, PartialEq)]
pub struct SummaryProps {
    /// The summary.
    pub summary: Rc<Summary>,
    /// Where it was measured, for recorded runs (else: this machine).
    #[prop_or_default]
    pub recorded_on: Option<String>,
}

fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The summary of a run.
#[function_component(SummaryView)]
pub fn summary_view(props: &SummaryProps) -> Html {
    let s = &props.summary;
    let mut rows: Vec<(&str, String)> = vec![
        ("outcome", s.outcome.to_string()),
        ("wall time", ms(s.wall_ns)),
        ("CPU time, all threads", ms(s.cpu_ns)),
    ];
    if let Some(b) = &s.baseline {
        rows.push(("baseline", format!("{}: {}", b.label, ms(b.wall_ns))));
    }
    if let Some(x) = s.speedup {
        rows.push(("speedup vs baseline", format!("{x:.2}×")));
    }
    rows.push((
        "context switches",
        format!(
            "{} voluntary (blocked), {} involuntary (preempted)",
            s.voluntary_switches, s.involuntary_switches
        ),
    ));
    rows.push(("migrations", s.migrations.to_string()));
    rows.push(("runnable but waiting", ms(s.runnable_wait_ns)));
    if let Some(w) = s.lock_wait_ns {
        rows.push(("waiting for the lock", ms(w)));
    }
    if let Some(h) = s.lock_handovers {
        rows.push(("lock hand-overs", h.to_string()));
    }
    if let Some(r) = &s.requests {
        rows.push((
            "request latency",
            format!(
                "p50 {}, p99 {}, max {} over {} requests",
                ms(r.p50_ns),
                ms(r.p99_ns),
                ms(r.max_ns),
                r.count
            ),
        ));
    }
    if let Some(rss) = s.peak_rss_bytes {
        rows.push(("agent peak memory", mib(rss)));
    }
    rows.push((
        "events",
        format!(
            "{} recorded, {} dropped; {}",
            s.events, s.dropped, s.fidelity
        ),
    ));
    if let Some(r) = &s.result {
        rows.push(("result", r.clone()));
    }
    if let Some(t) = &s.tasks {
        rows.push((
            "event-loop tasks",
            format!(
                "{} tasks, {} polls, {} wakes; busy {}, waiting in the ready queue {}, parked {} (summed over tasks); longest poll {}; deepest ready queue {}",
                t.tasks, t.polls, t.wakes, ms(t.busy_ns), ms(t.scheduled_ns), ms(t.idle_ns), ms(t.longest_poll_ns), t.max_ready
            ),
        ));
    }
    let mut threads = s.threads.clone();
    threads.sort_by_key(|t| std::cmp::Reverse(t.cpu_ns));
    let hidden = threads.len().saturating_sub(MAX_THREAD_ROWS);
    html! {
        <section class="summary" aria-label="Run summary" data-testid="summary">
            <h2>{ format!("Summary: {}", s.scenario) }</h2>
            <p class="caption">
                { match &props.recorded_on {
                    Some(m) => format!("Recorded on {m}. "),
                    None => "On this machine. ".to_string(),
                } }
                { match s.fidelity {
                coreplay_shared::event::Fidelity::Exact => "Measured. Context switches and on/off-CPU times come from the kernel's switch records.".to_string(),
                other => format!("Measured ({other}). Switch counts are the kernel's; on/off-CPU times are known to one ~50 µs chunk of work."),
            } }
            </p>
            <table class="figures">
                { for rows.into_iter().map(|(k, v)| html! { <tr><th>{ k }</th><td>{ v }</td></tr> }) }
            </table>
            { for s.notes.iter().map(|n| html! { <p class="note">{ n.clone() }</p> }) }
            if !s.variants.is_empty() {
                <table class="threads" data-testid="variants">
                    <tr>
                        <th>{ "variant" }</th><th>{ "wall" }</th><th>{ "threads" }</th><th>{ "CPU" }</th>
                        <th>{ "vol." }</th><th>{ "invol." }</th><th>{ "memory growth" }</th>
                        <th>{ "latency p50" }</th><th>{ "p99" }</th>
                    </tr>
                    { for s.variants.iter().map(|v| html! {
                        <tr>
                            <td>{ v.label.clone() }</td><td>{ ms(v.wall_ns) }</td><td>{ v.threads }</td>
                            <td>{ ms(v.cpu_ns) }</td><td>{ v.voluntary_switches }</td><td>{ v.involuntary_switches }</td>
                            <td>{ v.rss_growth_bytes.map(mib).unwrap_or_else(|| "—".into()) }</td>
                            <td>{ v.requests.as_ref().map(|r| ms(r.p50_ns)).unwrap_or_default() }</td>
                            <td>{ v.requests.as_ref().map(|r| ms(r.p99_ns)).unwrap_or_default() }</td>
                        </tr>
                    }) }
                </table>
            }
            if !s.processes.is_empty() {
                <table class="threads">
                    <tr><th>{ "worker process" }</th><th>{ "start-up" }</th><th>{ "peak memory" }</th></tr>
                    { for s.processes.iter().map(|p| html! {
                        <tr>
                            <td>{ p.pid }</td>
                            <td>{ p.startup_ns.map(ms).unwrap_or_default() }</td>
                            <td>{ p.peak_rss_bytes.map(mib).unwrap_or_default() }</td>
                        </tr>
                    }) }
                </table>
            }
            <table class="threads">
                <tr>
                    <th>{ "thread" }</th><th>{ "pid" }</th><th>{ "CPU" }</th><th>{ "wall" }</th>
                    <th>{ "vol." }</th><th>{ "invol." }</th><th>{ "migr." }</th>
                    <th>{ "runnable wait" }</th><th>{ "lock wait" }</th>
                </tr>
                { for threads.iter().take(MAX_THREAD_ROWS).map(|t| html! {
                    <tr>
                        <td>{ t.name.clone() }</td><td>{ t.pid }</td><td>{ ms(t.cpu_ns) }</td>
                        <td>{ ms(t.wall_ns) }</td><td>{ t.voluntary_switches }</td>
                        <td>{ t.involuntary_switches }</td><td>{ t.migrations }</td>
                        <td>{ ms(t.runnable_wait_ns) }</td><td>{ ms(t.lock_wait_ns) }</td>
                    </tr>
                }) }
            </table>
            if hidden > 0 { <p class="note">{ format!("… and {hidden} more threads") }</p> }
        </section>
    }
}
