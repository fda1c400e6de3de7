//! Comparing runs: a chart of speedup against threads for the kept runs that have a
//! speedup (parallel-compute at several T), wall against CPU time for every kept run, and two
//! runs side by side on one time scale (threads vs processes vs async, T = 2 vs T = 64).

use coreplay_shared::Fixed;
use std::rc::Rc;

use crate::view::el;
use coreplay_shared::{Topology, event::Ns, scenario::ParamName, summary::Summary};
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::{
    playback::duration,
    state::{AppState, run_label},
    store::Store,
    view::timeline::Timeline,
};

/// A kept run, as the comparison needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptRun {
    /// Run number.
    pub run: u64,
    /// "parallel-compute T=4" and the like.
    pub label: String,
    /// Its summary, once finished.
    pub summary: Option<crate::state::Shared<Summary>>,
    /// Its end, ns.
    pub end: Ns,
    /// Events held.
    pub events: u64,
    /// The machine it ran on (its timeline draws that machine's hardware threads).
    pub topology: Option<Rc<Topology>>,
}

/// The runs `st` keeps, as the comparison needs them.
pub fn kept_runs(st: &AppState) -> Rc<Vec<KeptRun>> {
    Rc::new(
        st.runs
            .iter()
            .map(|r| KeptRun {
                run: r.view.run,
                label: run_label(r),
                summary: r.view.summary.clone(),
                end: r.replay.end(),
                events: r.replay.event_count(),
                topology: r.topology.clone(),
            })
            .collect(),
    )
}

/// Properties of [`CompareView`].
#[derive(Debug, Properties, PartialEq)]
pub struct CompareProps {
    /// Where the runs live.
    pub store: Store,
    /// Changes when runs change.
    pub rev: u64,
    /// The kept runs, oldest first.
    pub runs: Rc<Vec<KeptRun>>,
    /// CPU lanes for a run whose machine is unknown (each run's timeline draws its own
    /// machine's hardware threads).
    pub cpus: Rc<Vec<u32>>,
    /// Shows a run in the main views.
    pub on_show: Callback<u64>,
    /// The dark theme is on (the timelines draw their own colours).
    #[prop_or_default]
    pub dark: bool,
}

fn speedup_chart(runs: &[KeptRun]) -> Html {
    let mut points: Vec<(u32, f64, String)> = runs
        .iter()
        .filter_map(|r| {
            let s = r.summary.as_ref()?;
            let speedup = s.speedup?;
            let t = s
                .params
                .get(ParamName::Threads)
                .or(s.params.get(ParamName::Processes))?;
            Some((t, speedup, r.label.clone()))
        })
        .collect();
    if points.is_empty() {
        return html! {
            { el!("p", "note", "Run parallel-compute (or another scenario with a speedup) at several thread counts to chart speedup against threads.") }
        };
    }
    coreplay_shared::sort::by(&mut points, |a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let max_t = points.iter().map(|p| p.0).max().unwrap_or(1).max(2) as f64;
    let max_s = points
        .iter()
        .map(|p| p.1)
        .fold(1.0, f64::max)
        .max(max_t.min(4.0));
    let (w, h, pad) = (360.0, 200.0, 34.0);
    let x = |t: f64| pad + (t / max_t) * (w - pad - 10.0);
    let y = |s: f64| h - pad - (s / max_s) * (h - pad - 10.0);
    let line: String = points
        .iter()
        .map(|p| format!("{},{}", Fixed(x(f64::from(p.0)), 1), Fixed(y(p.1), 1)))
        .collect::<Vec<_>>()
        .join(" ");
    let ideal_end = max_t.min(max_s);
    // Coordinates as text without core's float formatting (see `coreplay_shared::fixed`).
    let n = |v: f64| Fixed(v, 1).to_string();
    html! {
        <figure class="chart" data-testid="speedup-chart">
            <svg viewBox={format!("0 0 {} {}", n(w), n(h))} width={n(w)} height={n(h)} role="img"
                 aria-label="speedup against threads">
                <line x1={n(x(0.0))} y1={n(y(0.0))} x2={n(x(ideal_end))} y2={n(y(ideal_end))} class="ideal" />
                <line x1={n(pad)} y1={n(h - pad)} x2={n(w - 5.0)} y2={n(h - pad)} class="axis" />
                <line x1={n(pad)} y1="5" x2={n(pad)} y2={n(h - pad)} class="axis" />
                <polyline points={line} class="measured" />
                { for points.iter().map(|p| html! {
                    <circle cx={n(x(f64::from(p.0)))} cy={n(y(p.1))} r="4" class="pt">
                        <title>{ format!("{}: {}×", p.2, Fixed(p.1, 2)) }</title>
                    </circle>
                }) }
                <text x={n(w / 2.0)} y={n(h - 6.0)} class="lbl">{ format!("threads (max {})", Fixed(max_t, 0)) }</text>
                <text x="4" y="14" class="lbl">{ format!("speedup (max {}×)", Fixed(max_s, 1)) }</text>
            </svg>
            { el!("figcaption", [], "Measured speedup (dots) against the ideal (dashed: T threads, T times faster). It flattens where threads outnumber hardware threads.") }
        </figure>
    }
}

fn wall_cpu_chart(runs: &[KeptRun]) -> Html {
    let rows: Vec<(&KeptRun, &Summary)> = runs
        .iter()
        .filter_map(|r| Some((r, r.summary.as_deref()?)))
        .collect();
    if rows.is_empty() {
        return html! {};
    }
    let max = rows
        .iter()
        .map(|(_, s)| s.wall_ns.max(s.cpu_ns))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    html! {
        <figure class="chart bars" data-testid="wall-cpu-chart">
            <table class="bars">
                { for rows.iter().map(|(r, s)| html! {
                    <tr>
                        { el!("th", [], r.label.clone()) }
                        <td>
                            <div class="bar wall" style={format!("width:{}%", Fixed(s.wall_ns as f64 / max * 100.0, 1))}
                                 title="wall-clock time">{ format!("wall {}", duration(s.wall_ns)) }</div>
                            <div class="bar cpu" style={format!("width:{}%", Fixed(s.cpu_ns as f64 / max * 100.0, 1))}
                                 title="CPU time of all its threads">{ format!("CPU {}", duration(s.cpu_ns)) }</div>
                        </td>
                    </tr>
                }) }
            </table>
            { el!("figcaption", [], "Wall time against CPU time: CPU time above wall time means threads ran in parallel; far below means they waited.") }
        </figure>
    }
}

/// The comparison section.
#[function_component(CompareView)]
pub fn compare_view(props: &CompareProps) -> Html {
    let pair = use_state(|| None::<(u64, u64)>);
    let window = use_state(|| None::<(Ns, Ns)>);
    let runs = &props.runs;
    let pick = |which: usize| {
        let (pair, runs) = (pair.clone(), Rc::clone(&props.runs));
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            let Ok(run) = select.value().parse::<u64>() else {
                return;
            };
            let default = runs.last().map_or(0, |r| r.run);
            let (mut a, mut b) = (*pair).unwrap_or((default, default));
            if which == 0 {
                a = run;
            } else {
                b = run;
            }
            pair.set(Some((a, b)));
        })
    };
    let n = runs.len();
    let (a, b) = (*pair).unwrap_or_else(|| {
        (
            runs.get(n.saturating_sub(2)).map_or(0, |r| r.run),
            runs.last().map_or(0, |r| r.run),
        )
    });
    let end = runs
        .iter()
        .filter(|r| r.run == a || r.run == b)
        .map(|r| r.end)
        .max()
        .unwrap_or(0);
    let win = match *window {
        Some(w) if w.1 > w.0 => w,
        _ => (0, end.max(1)),
    };
    let on_window = {
        let window = window.clone();
        Callback::from(move |w: (Ns, Ns)| window.set((w.1 > w.0).then_some(w)))
    };
    let selector = |which: usize, current: u64| {
        html! {
            <select onchange={pick(which)} data-testid={format!("compare-{which}")}>
                { for runs.iter().map(|r| html! {
                    <option value={r.run.to_string()} selected={r.run == current}>{ format!("{}: {}", crate::state::run_name(r.run), r.label) }</option>
                }) }
            </select>
        }
    };
    let lane = |run: u64| {
        let Some(r) = runs.iter().find(|r| r.run == run) else {
            return html! {};
        };
        let fidelity = r
            .summary
            .as_ref()
            .map_or(coreplay_shared::event::Fidelity::SelfTimed, |s| s.fidelity);
        let dropped = r.summary.as_ref().map_or(0, |s| s.dropped);
        // Runs from different machines side by side: each with its own hardware threads.
        let cpus = r.topology.as_deref().map_or_else(
            || Rc::clone(&props.cpus),
            |t| Rc::new(crate::state::hardware_threads(t)),
        );
        let show = {
            let on_show = props.on_show.clone();
            Callback::from(move |_| on_show.emit(run))
        };
        html! {
            <div class="compare-lane">
                <Timeline store={props.store.clone()} run={run} rev={props.rev} cursor={u64::MAX}
                          window={win} {cpus} on_seek={Callback::noop()}
                          on_window={on_window.clone()} title={AttrValue::from(format!("{}: {}", crate::state::run_name(run), r.label))}
                          {fidelity} {dropped} dark={props.dark} />
                <button onclick={show}>{ "show this run above" }</button>
            </div>
        }
    };
    html! {
        <section class="compare" aria-label="Compare runs" data-testid="compare">
            { el!("h2", [], "Compare runs") }
            { el!("p", "caption", format!("Runs kept in this page: {n} (the newest {} at most; nothing is stored elsewhere). Charts use their measured summaries; the two timelines share one time scale.", crate::state::MAX_KEPT_RUNS)) }
            <div class="charts">
                { speedup_chart(runs) }
                { wall_cpu_chart(runs) }
            </div>
            if n >= 2 {
                <div class="controls">
                    <label>{ "Left " }{ selector(0, a) }</label>
                    <label>{ "Right " }{ selector(1, b) }</label>
                </div>
                <div class="side-by-side">
                    { lane(a) }
                    { lane(b) }
                </div>
            } else {
                { el!("p", "note", "Run or load a second run to see two side by side.") }
            }
        </section>
    }
}
