//! A finished run's figures: the summary table and its threads.

use coreplay_shared::Fixed;

use crate::view::el;
use coreplay_shared::summary::{OtherLoad, Summary, summed_ms};
use yew::prelude::*;

use crate::view::cores::IDLE_BELOW;
use crate::view::{header_row, row};

/// Threads listed before the table is cut (the rest are counted).
const MAX_THREAD_ROWS: usize = 64;

/// Properties of [`SummaryView`].
#[derive(Debug, Properties, PartialEq)]
pub struct SummaryProps {
    /// The summary.
    pub summary: crate::state::Shared<Summary>,
    /// Where it was measured, for recorded runs (else: this machine).
    #[prop_or_default]
    pub recorded_on: Option<String>,
}

fn ms(ns: u64) -> String {
    format!("{} ms", Fixed(ns as f64 / 1e6, 2))
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", Fixed(bytes as f64 / f64::from(1 << 20), 1))
}

/// Other programs' share of the machine, and of the CPU they used most: "38 % of the 2
/// hardware threads (coreplay's own recording 2 %); most on CPU 1: 76 %".
pub fn other_programs(l: &OtherLoad) -> String {
    let most = l
        .busiest()
        .filter(|&(_, share)| share >= IDLE_BELOW && l.cpus.len() > 1)
        .map(|(cpu, share)| format!("; most on CPU {cpu}: {} %", Fixed(share * 100.0, 0)))
        .unwrap_or_default();
    format!("{}{most}", l.describe())
}

/// The summary of a run.
#[function_component(SummaryView)]
pub fn summary_view(props: &SummaryProps) -> Html {
    let s = &props.summary;
    let n = s.counted_threads();
    // (figure, value, what it means in one line: shown when the pointer rests on the row).
    let mut rows: Vec<(&str, String, &str)> = vec![
        (
            "outcome",
            s.outcome.to_string(),
            "whether the run finished, was stopped or failed",
        ),
        (
            "wall time",
            ms(s.wall_ns),
            "time on a clock on the wall from the start of the measured work to its end",
        ),
        (
            "CPU time, all threads",
            summed_ms(s.cpu_ns, n, "threads"),
            "time the run's threads spent running on a CPU, added up: more than the wall time when threads ran at once",
        ),
    ];
    if let Some(b) = &s.baseline {
        rows.push((
            "baseline",
            format!("{}: {}", b.label, ms(b.wall_ns)),
            "the reference run measured in the same invocation, untraced",
        ));
    }
    if let Some(x) = s.speedup {
        rows.push((
            "speedup vs baseline",
            format!("{}×", Fixed(x, 2)),
            "the baseline's wall time divided by this run's: 2× means twice as fast",
        ));
    }
    rows.push((
        "context switches",
        format!(
            "{} voluntary (blocked), {} involuntary (preempted)",
            s.voluntary_switches, s.involuntary_switches
        ),
        "times the kernel took a thread off its CPU: because it waited for something (voluntary) or to run another (involuntary)",
    ));
    rows.push((
        "migrations",
        s.migrations.to_string(),
        "times a thread moved from one hardware thread to another",
    ));
    rows.push((
        "runnable but waiting",
        summed_ms(s.runnable_wait_ns, n, "threads"),
        "time threads could have run but every CPU was busy with something else, added up over threads",
    ));
    if let Some(l) = &s.other_load {
        rows.push((
            "other programs",
            other_programs(l),
            "how much of the machine other programs kept busy while the run was measured (the browser drawing it, a build, anything else), from the kernel's counters for each CPU less this run's own time on it; coreplay's own recording is counted apart. What they took, the run could not use",
        ));
    }
    if let Some(w) = s.lock_wait_ns {
        rows.push((
            "waiting for the lock",
            summed_ms(w, n, "threads"),
            "time threads waited to take the lock, added up over threads",
        ));
    }
    if let Some(h) = s.lock_handovers {
        rows.push((
            "lock hand-overs",
            h.to_string(),
            "times the lock passed from one thread to another",
        ));
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
            "from asking to the answer: half the requests took at most p50, 99 in 100 at most p99",
        ));
    }
    if let Some(rss) = s.peak_rss_bytes {
        rows.push((
            "agent peak memory",
            mib(rss),
            "the most memory the agent process held at once (its resident set)",
        ));
    }
    rows.push((
        "events",
        format!(
            "{} recorded, {} dropped; {}",
            s.events, s.dropped, s.fidelity
        ),
        "facts recorded about the run (a thread on a CPU, a switch, a lock step …) and how they were measured",
    ));
    if let Some(r) = &s.result {
        rows.push(("result", r.clone(), "what the work computed or answered"));
    }
    if let Some(t) = &s.tasks {
        let tasks = t.tasks as usize;
        rows.push((
            "event-loop tasks",
            format!(
                "{} tasks, {} polls, {} wakes; busy {}; waiting in the ready queue {}; parked {}; longest poll {}; deepest ready queue {}",
                t.tasks,
                t.polls,
                t.wakes,
                summed_ms(t.busy_ns, tasks, "tasks"),
                summed_ms(t.scheduled_ns, tasks, "tasks"),
                summed_ms(t.idle_ns, tasks, "tasks"),
                ms(t.longest_poll_ns),
                t.max_ready
            ),
            "busy: being polled; ready queue: woken, waiting for the loop to poll them; parked: waiting for I/O or a timer; each added up over tasks",
        ));
    }
    let mut threads = s.threads.clone();
    coreplay_shared::sort::by_key(&mut threads, |t| std::cmp::Reverse(t.cpu_ns));
    let hidden = threads.len().saturating_sub(MAX_THREAD_ROWS);
    html! {
        <section class="summary" aria-label="Run summary" data-testid="summary">
            { el!("h2", [], format!("Summary: {}", s.scenario)) }
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
                { for rows.into_iter().map(|(k, v, help)| html! { <tr title={help}>{ el!("th", [], k) }{ el!("td", [], v) }</tr> }) }
            </table>
            { for s.notes.iter().map(|n| el!("p", "note", n.clone())) }
            if !s.variants.is_empty() {
                <table class="threads" data-testid="variants">
                    { header_row(&["variant", "wall", "threads", "CPU", "vol.", "invol.", "memory growth", "latency p50", "p99"]) }
                    { for s.variants.iter().map(|v| row(&[
                        &v.label, &ms(v.wall_ns), &v.threads, &ms(v.cpu_ns), &v.voluntary_switches,
                        &v.involuntary_switches,
                        &v.rss_growth_bytes.map(mib).unwrap_or_else(|| "—".into()),
                        &v.requests.as_ref().map(|r| ms(r.p50_ns)).unwrap_or_default(),
                        &v.requests.as_ref().map(|r| ms(r.p99_ns)).unwrap_or_default(),
                    ])) }
                </table>
            }
            if !s.processes.is_empty() {
                <table class="threads">
                    { header_row(&["worker process", "start-up", "peak memory"]) }
                    { for s.processes.iter().map(|p| row(&[
                        &p.pid,
                        &p.startup_ns.map(ms).unwrap_or_default(),
                        &p.peak_rss_bytes.map(mib).unwrap_or_default(),
                    ])) }
                </table>
            }
            <table class="threads">
                { header_row(&["thread", "pid", "CPU", "wall", "vol.", "invol.", "migr.", "runnable wait", "lock wait"]) }
                { for threads.iter().take(MAX_THREAD_ROWS).map(|t| row(&[
                    &t.name, &t.pid, &ms(t.cpu_ns), &ms(t.wall_ns), &t.voluntary_switches,
                    &t.involuntary_switches, &t.migrations, &ms(t.runnable_wait_ns), &ms(t.lock_wait_ns),
                ])) }
            </table>
            if hidden > 0 { { el!("p", "note", format!("… and {hidden} more threads")) } }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use coreplay_shared::summary::CpuOther;

    use super::*;

    #[test]
    fn other_programs_in_words() {
        let mut l = OtherLoad {
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
        };
        assert_eq!(
            other_programs(&l),
            "38 % of the 2 hardware threads (coreplay's own recording 2 %); most on CPU 1: 76 %"
        );
        // No CPU named when none was more than idle.
        l.cpus[0].other_ns = 1;
        l.cpus[1].other_ns = 1;
        l.agent_ns = 0;
        assert_eq!(
            other_programs(&l),
            "1 % of the 2 hardware threads (coreplay's own recording 0 %)"
        );
    }
}
