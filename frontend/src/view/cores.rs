//! The cores view: the topology picture where every hardware thread shows the software
//! thread on it at the cursor, with the runnable threads queued beside it, the hand-over when
//! a switch happens (voluntary and involuntary told apart), migrations, per-core counters; the
//! waiting areas, the lock with its holder and queue, and processes grouping their threads.

use std::{collections::HashMap, rc::Rc};

use coreplay_shared::{Topology, event::Fidelity, replay::ThreadState};
use yew::prelude::*;

use crate::view::topology::{density_class, machine_header, node_view, numa_row};
use coreplay_shared::frame::{Area, CpuCell, Frame, LockCell, ProcessBox, Token};

/// Properties of [`CoresView`].
#[derive(Debug, Properties, PartialEq)]
pub struct CoresProps {
    /// The machine.
    pub topology: Rc<Topology>,
    /// The instant drawn.
    pub frame: Rc<Frame>,
    /// How the events were obtained.
    pub fidelity: Fidelity,
    /// Events lost, if any.
    pub dropped: u64,
    /// The machine a recorded run ran on, in one line (`None` for live runs).
    #[prop_or_default]
    pub recorded_on: Option<String>,
}

/// A thread token.
pub fn token(t: &Token, class: &'static str) -> Html {
    html! {
        <span class={classes!("tok", class)} style={format!("--h:{}", t.hue)}
              title={format!("{} (thread {})", t.name, t.tid)} data-tid={t.tid.to_string()}>
            { short(&t.name) }
        </span>
    }
}

fn short(name: &str) -> String {
    if name.chars().count() > 12 {
        let head: String = name.chars().take(11).collect();
        format!("{head}…")
    } else {
        name.to_string()
    }
}

/// Caption line ending: fidelity and drops.
pub fn trust(fidelity: Fidelity, dropped: u64) -> Html {
    html! {
        <>
            <span class="fid">{ format!(" Fidelity: {fidelity}.") }</span>
            if dropped > 0 {
                <span class="warn">{ format!(" {dropped} events were dropped; gaps are possible.") }</span>
            }
        </>
    }
}

/// Properties of [`PuCell`].
#[derive(Debug, Properties, PartialEq)]
struct PuProps {
    idx: u32,
    dense: bool,
    cell: Option<CpuCell>,
}

/// One hardware thread; a component of its own so that cells whose state did not change
/// between frames are not re-rendered (256 of them are drawn up to 60 times a second).
#[function_component(PuCell)]
fn pu_cell_component(p: &PuProps) -> Html {
    pu_cell(p.idx, p.dense, p.cell.as_ref())
}

/// A hardware thread on a big machine (over 32): a coloured square for the running thread, a
/// mark for a hand-over and the length of its run queue; names are in the tooltip. Kept to
/// a few elements so that hundreds of them can change every frame.
fn dense_cell(idx: u32, cell: Option<&CpuCell>) -> Html {
    let running = cell.and_then(|c| c.running.as_ref());
    let leaving = cell.and_then(|c| c.leaving.as_ref());
    let queued = cell.map_or(0, |c| c.queued);
    let title = match (running, cell) {
        (Some((t, _)), Some(c)) => format!(
            "CPU {idx}: {} (thread {}) running; {} waiting; {} switches in, {:.0}% busy so far",
            t.name,
            t.tid,
            c.queued,
            c.switches,
            c.utilisation * 100.0
        ),
        (None, Some(c)) => format!(
            "CPU {idx}: idle; {} switches in, {:.0}% busy so far",
            c.switches,
            c.utilisation * 100.0
        ),
        _ => format!("CPU {idx}: nothing of this run ran here"),
    };
    let class = match leaving {
        Some((_, true, _)) => "sq involuntary",
        Some((_, false, _)) => "sq voluntary",
        None => "sq",
    };
    html! {
        <div class={classes!("pu", "live", "dense", running.is_none().then_some("idle"))}
             data-pu={idx.to_string()}
             data-running={running.map(|r| r.0.tid.to_string()).unwrap_or_default()}
             {title}>
            { idx }
            <span class={class} style={running.map(|(t, _)| format!("--h:{}", t.hue))} />
            if queued > 0 { <span class="q">{ format!("+{queued}") }</span> }
        </div>
    }
}

fn pu_cell(idx: u32, dense: bool, cell: Option<&CpuCell>) -> Html {
    if dense {
        return dense_cell(idx, cell);
    }
    let label = if dense {
        idx.to_string()
    } else {
        format!("CPU {idx}")
    };
    let Some(c) = cell else {
        return html! {
            <div class="pu live idle" data-pu={idx.to_string()} data-running="" title={format!("CPU {idx}: nothing of this run ran here")}>
                <div class="pu-label">{ label }</div>
                <div class="slot"><span class="idle-mark">{ "idle" }</span></div>
            </div>
        };
    };
    let running = c.running.as_ref();
    let title = format!(
        "CPU {idx}: {} switches in, {:.0}% busy so far",
        c.switches,
        c.utilisation * 100.0
    );
    html! {
        <div class={classes!("pu", "live", running.is_none().then_some("idle"))}
             data-pu={idx.to_string()}
             data-running={running.map(|r| r.0.tid.to_string()).unwrap_or_default()}
             {title}>
            <div class="pu-label">{ label }</div>
            <div class="slot">
                if let Some((who, involuntary, _)) = &c.leaving {
                    <span class={classes!("tok", "leaving", if *involuntary { "involuntary" } else { "voluntary" })}
                          style={format!("--h:{}", who.hue)}
                          title={format!("{} left: {}", who.name, if *involuntary { "preempted (involuntary switch)" } else { "blocked or yielded (voluntary switch)" })}>
                        { short(&who.name) }
                    </span>
                    <span class={classes!("switch-mark", if *involuntary { "involuntary" } else { "voluntary" })}>
                        { if *involuntary { "⇄ preempted" } else { "⇄ blocked" } }
                    </span>
                }
                if let Some((who, since)) = running {
                    // Keyed by slice so that a new slice is a new element and its entry animates.
                    <span key={format!("{}-{since}", who.tid)} class="tok running entering"
                          style={format!("--h:{}", who.hue)} data-tid={who.tid.to_string()}
                          title={format!("{} (thread {}) running", who.name, who.tid)}>
                        { short(&who.name) }
                    </span>
                } else if c.leaving.is_none() {
                    <span class="idle-mark">{ "idle" }</span>
                }
                if let Some(from) = c.migrated_from {
                    <span class="migrated" title="moved here from another hardware thread">{ format!("↪ from {from}") }</span>
                }
            </div>
            if c.queued > 0 {
                <div class="runq" title="runnable, waiting for this core">
                    { for c.queue.iter().take(if dense { 2 } else { 4 }).map(|t| token(t, "queued")) }
                    if c.queued > if dense { 2 } else { 4 } {
                        <span class="more">{ format!("+{}", c.queued - if dense { 2 } else { 4 }) }</span>
                    }
                </div>
            }
            <div class="counters">
                <span title="context switches in so far">{ format!("⇄{}", c.switches) }</span>
                <span class="util" style={format!("--u:{:.3}", c.utilisation)} title="busy share so far">
                    { format!("{:.0}%", c.utilisation * 100.0) }
                </span>
            </div>
        </div>
    }
}

fn area_view(a: &Area) -> Html {
    html! {
        <div class={classes!("area", a.class)} data-area={a.class}>
            <h4>{ format!("{} ({})", a.title, a.count) }</h4>
            <div class="tokens">
                { for a.tokens.iter().map(|t| token(t, "waiting")) }
                if a.count > a.tokens.len() { <span class="more">{ format!("+{} more", a.count - a.tokens.len()) }</span> }
                if a.count == 0 { <span class="empty">{ "none" }</span> }
            </div>
        </div>
    }
}

fn lock_view(l: &LockCell) -> Html {
    html! {
        <div class="lock-box" data-testid="lock">
            <h4>{ "The global lock (GIL)" }</h4>
            <div class="lock-row">
                <span class="gil" title="the lock token">{ "GIL" }</span>
                <span>{ "held by " }</span>
                if let Some(h) = &l.holder {
                    <span data-testid="lock-holder" data-tid={h.tid.to_string()}>{ token(h, "holder") }</span>
                } else {
                    <span data-testid="lock-holder" data-tid="" class="empty">{ "nobody" }</span>
                }
                if l.drop_requested {
                    <span class="drop-req" title="a waiter waited a whole switch interval and asked the holder to drop it">{ "drop requested" }</span>
                }
            </div>
            <div class="lock-row">
                <span>{ format!("waiting ({}):", l.waiters.len()) }</span>
                <div class="tokens" data-testid="lock-waiters">
                    { for l.waiters.iter().map(|t| token(t, "waiting")) }
                    if l.waiters.is_empty() { <span class="empty">{ "none" }</span> }
                </div>
            </div>
            <p class="note">{ format!("{} hand-overs so far", l.handovers) }</p>
        </div>
    }
}

fn state_class(s: ThreadState) -> &'static str {
    match s {
        ThreadState::Running { .. } => "running",
        ThreadState::Off(coreplay_shared::event::OffReason::Preempted) => "queued",
        ThreadState::Off(_) | ThreadState::Between => "waiting",
        ThreadState::NotStarted | ThreadState::Ended => "gone",
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn process_view(p: &ProcessBox, tokens: bool) -> Html {
    if !tokens {
        return html! {
            <div class={classes!("proc", p.exited.then_some("exited"))} data-pid={p.pid.to_string()}>
                <h4>{ format!("{} · pid {}", p.name, p.pid) }</h4>
                <span class="note">{ format!("{} alive, {} running", plural(p.alive, "thread"), p.running) }</span>
            </div>
        };
    }
    let shown = p.threads.len();
    html! {
        <div class={classes!("proc", p.exited.then_some("exited"))} data-pid={p.pid.to_string()}>
            <h4>{ format!("{} · pid {}", p.name, p.pid) }
                <span class="note">{ format!(" {} alive, {} running", plural(p.alive, "thread"), p.running) }</span>
            </h4>
            <div class="tokens">
                { for p.threads.iter().map(|(t, s)| token(t, state_class(*s))) }
                if p.alive > shown { <span class="more">{ format!("+{} more", p.alive - shown) }</span> }
            </div>
        </div>
    }
}

/// The cores view.
#[function_component(CoresView)]
pub fn cores_view(props: &CoresProps) -> Html {
    let topology = &props.topology;
    let f = &props.frame;
    let tokens = f.processes.iter().map(|p| p.threads.len()).sum::<usize>() <= 128;
    // Only what is drawn: whole percents, no hand-over age, so that cells compare equal from
    // frame to frame and the parts that did not change are not rendered again.
    let cells: HashMap<u32, CpuCell> = f
        .cpus
        .iter()
        .map(|(&idx, c)| {
            let mut c = c.clone();
            c.utilisation = (c.utilisation * 100.0).round() / 100.0;
            if let Some(l) = c.leaving.as_mut() {
                l.2 = 0;
            }
            (idx, c)
        })
        .collect();
    html! {
        <section class="cores-view" aria-label="Cores" data-testid="cores">
            <h2>{ "Cores" }</h2>
            <p class="caption">
                { "Each hardware thread shows the thread running on it at the cursor; runnable threads queue beside \
                   the core they last ran on; a switch shows who left and why (orange: preempted, blue: blocked). \
                   Counters: switches in and busy share so far." }
                { trust(props.fidelity, props.dropped) }
            </p>
            { machine_header(topology, props.recorded_on.as_deref()) }
            { legend() }
            <MachineView topology={Rc::clone(topology)} cells={Rc::new(cells)} />
            <Waiting lock={f.lock.clone()} areas={f.areas.clone()} />
            <h3 class="sub">{ "Processes and their threads" }</h3>
            <p class="caption">{ "Each box is a process; threads inside share its memory. Filled: running; outlined: waiting." }</p>
            <Processes processes={f.processes.clone()} {tokens} />
        </section>
    }
}

/// What the marks mean.
fn legend() -> Html {
    html! {
        <div class="legend" aria-label="Legend" data-testid="legend">
            <span class="tok running" style="--h:200">{ "running" }</span>
            <span class="tok queued" style="--h:200">{ "runnable, waiting for a core" }</span>
            <span class="tok waiting" style="--h:200">{ "blocked or asleep" }</span>
            <span class="switch-mark involuntary">{ "⇄ preempted" }</span>{ "involuntary switch" }
            <span class="switch-mark voluntary">{ "⇄ blocked" }</span>{ "voluntary switch" }
            <span class="migrated">{ "↪ from N" }</span>{ "migrated from CPU N" }
            <span class="gil">{ "GIL" }</span>{ "the global lock" }
        </div>
    }
}

/// Properties of [`MachineView`].
#[derive(Debug, Properties, PartialEq)]
struct MachineProps {
    topology: Rc<Topology>,
    cells: Rc<HashMap<u32, CpuCell>>,
}

/// The topology with live hardware threads (re-rendered only when a cell changes).
#[function_component(MachineView)]
fn machine_view(props: &MachineProps) -> Html {
    let topology = &props.topology;
    let pus = topology.pu_count();
    let dense = pus > 32;
    let pu = |idx: u32, dense: bool| {
        html! { <PuCell key={idx} {idx} {dense} cell={props.cells.get(&idx).cloned()} /> }
    };
    html! {
        <div class={classes!("machine", density_class(pus))} data-pus={pus.to_string()}>
            { numa_row(topology) }
            <div class="kids">
                { for topology.root.children.iter().map(|n| node_view(n, dense, &pu)) }
            </div>
        </div>
    }
}

/// Properties of [`Waiting`].
#[derive(Debug, Properties, PartialEq)]
struct WaitingProps {
    lock: Option<LockCell>,
    areas: Vec<Area>,
}

/// The lock and the waiting areas.
#[function_component(Waiting)]
fn waiting(props: &WaitingProps) -> Html {
    html! {
        <div class="waiting-areas">
            if let Some(l) = &props.lock { { lock_view(l) } }
            { for props.areas.iter().map(area_view) }
        </div>
    }
}

/// Properties of [`Processes`].
#[derive(Debug, Properties, PartialEq)]
struct ProcessesProps {
    processes: Vec<ProcessBox>,
    tokens: bool,
}

/// Processes grouping their threads.
#[function_component(Processes)]
fn processes(props: &ProcessesProps) -> Html {
    html! {
        <div class="procs">
            // Hundreds of threads are counted, not drawn one by one.
            { for props.processes.iter().map(|p| process_view(p, props.tokens)) }
        </div>
    }
}
