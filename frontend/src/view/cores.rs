//! The cores view: the topology picture where every hardware thread shows the software
//! thread on it at the cursor, with the runnable threads queued beside it, the hand-over when
//! a switch happens (voluntary and involuntary told apart), migrations, per-core counters; the
//! waiting areas, the lock with its holder and queue, and processes grouping their threads.

use coreplay_shared::Fixed;
use std::rc::Rc;

use coreplay_shared::vec_map::VecMap;

use crate::view::el;
use coreplay_shared::{
    Topology,
    event::Fidelity,
    replay::ThreadState,
    summary::{OtherLoad, Summary},
};
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::view::class;
use crate::view::topology::{density_class, is_dense, machine_header, node_view, numa_row};
use coreplay_shared::frame::{Area, CpuCell, Frame, Helpers, LockCell, ProcessBox, Token};

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
    /// What else ran on the hardware threads during the run, as far as known.
    #[prop_or_default]
    pub others: Others,
    /// Whether the run is a watched program (its GIL is inferred from samples).
    #[prop_or_default]
    pub watched: bool,
}

/// What the page knows of what else ran on the hardware threads during a run: nothing yet (a
/// live run: the measurement comes with its summary), nothing at all (a recording without the
/// measurement), or the run's measurement.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Others {
    /// The run has not ended.
    #[default]
    Pending,
    /// The run ended without the measurement (recorded by an older coreplay, or `/proc/stat`
    /// could not be read).
    Unmeasured,
    /// What was measured.
    Measured(Rc<OtherLoad>),
}

impl Others {
    /// What a run's summary (`None` while it runs) tells.
    pub fn of(summary: Option<&Summary>) -> Others {
        match summary {
            None => Others::Pending,
            Some(s) => s
                .other_load
                .clone()
                .map_or(Others::Unmeasured, |l| Others::Measured(Rc::new(l))),
        }
    }
}

/// Below this share of the run's window taken by other programs, a hardware thread with no
/// thread of the run on it is called idle.
pub const IDLE_BELOW: f64 = OtherLoad::IDLE_BELOW;

/// The words on a hardware thread with no thread of this run on it, and their explanation (its
/// hover title): what other programs took of it over the run where that was measured.
pub fn idle_label(others: &Others, cpu: u32) -> (String, String) {
    const NOW: &str = "No thread of this run is on this hardware thread now";
    let (share, words) = match others {
        Others::Pending => {
            return (
                "not this run".into(),
                format!(
                    "{NOW}: it is idle or runs another program (the browser, coreplay's own \
                     recording, anything else). How much other programs took of it is measured \
                     and shown when the run ends."
                ),
            );
        }
        Others::Measured(load) => (load.cpu_share(cpu), load.free_cpu_label(cpu)),
        Others::Unmeasured => (None, None),
    };
    match (share, words) {
        (None, _) | (_, None) => (
            "idle or other".into(),
            format!(
                "{NOW}: it is idle or runs another program. This recording does not say how much \
                 other programs took (it was made by an older coreplay, or without the kernel's \
                 counters)."
            ),
        ),
        (Some(s), Some(words)) if s < IDLE_BELOW => (
            words,
            format!(
                "{NOW}, and over the run other programs kept it busy less than {} % of the \
                 time (the kernel's counters): it is idle.",
                Fixed(IDLE_BELOW * 100.0, 0)
            ),
        ),
        (Some(s), Some(words)) => (
            words,
            format!(
                "{NOW}. Over the run, other programs (the browser, a build, coreplay's own \
                 recording, anything else) kept it busy {} % of the time: the kernel's \
                 counters for this CPU less this run's own time on it.",
                Fixed(s * 100.0, 0)
            ),
        ),
    }
}

/// A thread token. Not keyed: a busy lock's queue turns over by half between two frames, and
/// writing a token's attributes again costs the browser less than making a new element.
pub fn token(t: &Token, class: &'static str) -> Html {
    html! {
        <span class={format!("tok {class}")} style={format!("--h:{}", t.hue)}
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
            { el!("span", "fid", format!(" Fidelity: {fidelity}.")) }
            if dropped > 0 {
                { el!("span", "warn", format!(" {dropped} events were dropped; gaps are possible.")) }
            }
        </>
    }
}

/// Properties of [`PuCell`].
#[derive(Debug, Properties, PartialEq)]
struct PuProps {
    idx: u32,
    cell: Option<CpuCell>,
    others: Others,
}

/// One hardware thread of a machine of up to 32; a component of its own so that cells whose
/// state did not change between frames are not re-rendered.
#[function_component(PuCell)]
fn pu_cell_component(p: &PuProps) -> Html {
    pu_cell(p.idx, p.cell.as_ref(), &p.others)
}

/// What a hardware thread on a big machine (over 32) draws: a coloured square for the running
/// thread, a mark for a hand-over and the length of its run queue. Only what is drawn is
/// compared, so a cell whose busy share or switch count moved (every frame, on a busy core) is
/// not written again; names and counters go in the tooltip, written when the pointer reaches
/// the cell ([`dense_title`]).
#[derive(Debug, Clone, PartialEq)]
struct DenseProps {
    idx: u32,
    running: Option<Token>,
    /// A recent hand-over: whether it was a preemption.
    leaving: Option<bool>,
    queued: usize,
}

impl DenseProps {
    fn new(idx: u32, cell: Option<&CpuCell>) -> DenseProps {
        DenseProps {
            idx,
            running: cell.and_then(|c| c.running.as_ref()).map(|r| r.0.clone()),
            leaving: cell.and_then(|c| c.leaving.as_ref()).map(|l| l.1),
            queued: cell.map_or(0, |c| c.queued),
        }
    }
}

/// A dense cell as first drawn: its content is then written by [`paint_dense`], not by Yew.
fn dense_shell(idx: u32) -> Html {
    html! {
        <div class="pu live dense idle" data-pu={idx.to_string()} data-running="">
            { idx }
            <span class="sq" />
            <span class="q" />
        </div>
    }
}

/// A dense cell's elements: the cell, its square, its queue count.
type DenseEls = (web_sys::Element, web_sys::Element, web_sys::Element);

/// Writes what changed in one dense cell straight into the DOM. With hundreds of cells
/// changing at once (every quantum of a busy machine), building and diffing a virtual DOM for
/// each cost 10–20 ms a frame in the page; a few attribute writes per cell cost far less.
fn paint_dense((cell, sq, q): &DenseEls, was: Option<&DenseProps>, p: &DenseProps) {
    let tid = |d: &DenseProps| d.running.as_ref().map(|t| t.tid);
    let hue = |d: &DenseProps| d.running.as_ref().map(|t| t.hue);
    if was.is_none_or(|w| w.running.is_some() != p.running.is_some()) {
        cell.set_class_name(if p.running.is_some() {
            "pu live dense"
        } else {
            "pu live dense idle"
        });
    }
    if was.is_none_or(|w| tid(w) != tid(p)) {
        let running = tid(p).map(|t| t.to_string()).unwrap_or_default();
        let _ = cell.set_attribute("data-running", &running);
    }
    if was.is_none_or(|w| w.leaving != p.leaving) {
        sq.set_class_name(match p.leaving {
            Some(true) => "sq involuntary",
            Some(false) => "sq voluntary",
            None => "sq",
        });
    }
    if was.is_none_or(|w| hue(w) != hue(p)) {
        let _ = match hue(p) {
            Some(h) => sq.set_attribute("style", &format!("--h:{h}")),
            None => sq.remove_attribute("style"),
        };
    }
    if was.is_none_or(|w| w.queued != p.queued) {
        q.set_text_content((p.queued > 0).then(|| format!("+{}", p.queued)).as_deref());
    }
}

/// A dense cell's tooltip: who runs, how many wait, the counters so far; what other programs
/// took when none of the run's threads is on it.
fn dense_title(idx: u32, cell: Option<&CpuCell>, others: &Others) -> String {
    let (idle, _) = idle_label(others, idx);
    match (cell.and_then(|c| c.running.as_ref()), cell) {
        (Some((t, _)), Some(c)) => format!(
            "CPU {idx}: {} (thread {}) running; {} waiting; {} switches in, {}% busy so far",
            t.name,
            t.tid,
            c.queued,
            c.switches,
            Fixed(c.utilisation * 100.0, 0)
        ),
        (None, Some(c)) => format!(
            "CPU {idx}: {idle}; {} switches in, {}% busy so far",
            c.switches,
            Fixed(c.utilisation * 100.0, 0)
        ),
        _ => format!("CPU {idx}: nothing of this run ran here; {idle}"),
    }
}

/// A hardware thread with no thread of this run on it is labelled with what other programs
/// took of it over the run ([`idle_label`]): on a small machine another program (the browser
/// drawing the run, a build) is often why a runnable thread of the run waits beside a core
/// that looks free.
fn idle_mark(others: &Others, idx: u32) -> Html {
    let (text, title) = idle_label(others, idx);
    html! { <span class="idle-mark" data-testid="idle-mark" {title}>{ text }</span> }
}

fn pu_cell(idx: u32, cell: Option<&CpuCell>, others: &Others) -> Html {
    let label = format!("CPU {idx}");
    let Some(c) = cell else {
        return html! {
            <div class="pu live idle" data-pu={idx.to_string()} data-running="" title={format!("CPU {idx}: nothing of this run ran here")}>
                { el!("div", "pu-label", label) }
                <div class="slot">{ idle_mark(others, idx) }</div>
            </div>
        };
    };
    let running = c.running.as_ref();
    let title = format!(
        "CPU {idx}: {} switches in, {}% busy so far",
        c.switches,
        Fixed(c.utilisation * 100.0, 0)
    );
    html! {
        <div class={class("pu live", running.is_none().then_some("idle"))}
             data-pu={idx.to_string()}
             data-running={running.map(|r| r.0.tid.to_string()).unwrap_or_default()}
             {title}>
            { el!("div", "pu-label", label) }
            <div class="slot">
                if let Some((who, involuntary, _)) = &c.leaving {
                    <span class={if *involuntary { "tok leaving involuntary" } else { "tok leaving voluntary" }}
                          style={format!("--h:{}", who.hue)}
                          title={format!("{} left: {}", who.name, if *involuntary { "preempted (involuntary switch)" } else { "blocked or yielded (voluntary switch)" })}>
                        { short(&who.name) }
                    </span>
                    <span class={if *involuntary { "switch-mark involuntary" } else { "switch-mark voluntary" }}>
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
                    { idle_mark(others, idx) }
                }
                if let Some(from) = c.migrated_from {
                    { el!("span", ["class" => "migrated", "title" => "moved here from another hardware thread"], format!("↪ from {from}")) }
                }
            </div>
            if c.queued > 0 {
                <div class="runq" title="runnable, waiting for this core">
                    { for c.queue.iter().take(4).map(|t| token(t, "queued")) }
                    if c.queued > 4 {
                        { el!("span", "more", format!("+{}", c.queued - 4)) }
                    }
                </div>
            }
            <div class="counters">
                { el!("span", ["title" => "context switches in so far"], format!("⇄{}", c.switches)) }
                <span class="util" style={format!("--u:{}", Fixed(c.utilisation, 3))} title="busy share so far">
                    { format!("{}%", Fixed(c.utilisation * 100.0, 0)) }
                </span>
            </div>
        </div>
    }
}

fn area_view(a: &Area) -> Html {
    html! {
        // Keyed, as the lock boxes beside them: an area that comes and goes would otherwise
        // take over a lock box's elements (Yew matches unkeyed siblings from the end).
        <div key={a.class} class={format!("area {}", a.class)} data-area={a.class}>
            { el!("h4", [], format!("{} ({})", a.title, a.count)) }
            <div class="tokens">
                { for a.tokens.iter().map(|t| token(t, "waiting")) }
                if a.count > a.tokens.len() { { el!("span", "more", format!("+{} more", a.count - a.tokens.len())) } }
                if a.count == 0 { { el!("span", "empty", "none") } }
            </div>
        </div>
    }
}

/// Locks drawn as full boxes; beyond, one compact line per process's lock.
const FULL_LOCK_BOXES: usize = 2;
/// Locks listed at all; beyond, counted.
const LISTED_LOCKS: usize = 16;

fn lock_title(l: &LockCell, locks: usize) -> String {
    match (&l.process, locks) {
        (_, 1) => "The global lock (GIL)".to_string(),
        (Some(name), _) => format!("The lock (GIL) of {name} · pid {}", l.pid),
        (None, _) => format!("The lock (GIL) of pid {}", l.pid),
    }
}

/// The holder, or who holds it when none is recorded: nobody, in a run that records every
/// take and release; "not known" in a watched program, whose GIL holder is inferred only from
/// the end of a seen wait to the thread's next block.
fn holder_view(l: &LockCell, watched: bool) -> Html {
    html! {
        if let Some(h) = &l.holder {
            <span data-testid="lock-holder" data-tid={h.tid.to_string()}>{ token(h, "holder") }</span>
        } else if watched {
            <span data-testid="lock-holder" data-tid="" class="empty"
                  title="in a watched program the GIL's holder is known only from the end of a wait for it that the samples saw, until that thread blocks or another takes it (the run's notes say how it was seen)">{ "not known" }</span>
        } else {
            { el!("span", ["data-testid" => "lock-holder", "data-tid" => "", "class" => "empty"], "nobody") }
        }
    }
}

fn lock_view(l: &LockCell, locks: usize, watched: bool) -> Html {
    html! {
        <div key={l.pid} class="lock-box" data-testid="lock" data-pid={l.pid.to_string()}>
            { el!("h4", [], lock_title(l, locks)) }
            <div class="lock-row">
                { el!("span", ["class" => "gil", "title" => "the lock token: a thread may compute only while it holds it"], "GIL") }
                { el!("span", [], "held by ") }
                { holder_view(l, watched) }
                if l.drop_requested {
                    { el!("span", ["class" => "drop-req", "title" => "a waiter waited a whole switch interval and asked the holder to drop it"], "drop requested") }
                }
            </div>
            <div class="lock-row" title="threads that asked for the lock and sleep until they get it (a waiter on a CPU, or queued for one, is shown there)">
                { el!("span", [], format!("waiting ({}):", l.waiting)) }
                <div class="tokens" data-testid="lock-waiters" data-count={l.waiting.to_string()}>
                    { for l.waiters.iter().map(|t| token(t, "waiting")) }
                    if l.waiting > l.waiters.len() { { el!("span", "more", format!("+{} more", l.waiting - l.waiters.len())) } }
                    if l.waiting == 0 { { el!("span", "empty", "none") } }
                </div>
            </div>
            { el!("p", "note", format!("{} hand-overs so far", l.handovers)) }
        </div>
    }
}

/// One process's lock in one line, for runs with many processes.
fn lock_line(l: &LockCell, watched: bool) -> Html {
    html! {
        <div class="lock-line" data-testid="lock" data-pid={l.pid.to_string()}>
            { el!("span", "gil", "GIL") }
            { el!("span", "who", l.process.clone().unwrap_or_else(|| format!("pid {}", l.pid))) }
            { el!("span", [], "held by ") }
            { holder_view(l, watched) }
            <span data-testid="lock-waiters" data-count={l.waiting.to_string()}>
                { format!("· {} waiting · {} hand-overs", l.waiting, l.handovers) }
            </span>
        </div>
    }
}

fn locks_view(locks: &[LockCell], watched: bool) -> Html {
    if locks.len() <= FULL_LOCK_BOXES {
        return html! { { for locks.iter().map(|l| lock_view(l, locks.len(), watched)) } };
    }
    let more = locks.len().saturating_sub(LISTED_LOCKS);
    html! {
        <div key="locks" class="lock-box locks" data-testid="locks">
            <h4 title="a process has its own interpreter and so its own lock: processes do not wait for each other's">
                { format!("{} processes, each with its own lock (GIL)", locks.len()) }
            </h4>
            { for locks.iter().take(LISTED_LOCKS).map(|l| lock_line(l, watched)) }
            if more > 0 { { el!("p", "note", format!("+{more} more processes")) } }
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
            <div class={class("proc", p.exited.then_some("exited"))} data-pid={p.pid.to_string()}>
                { el!("h4", [], format!("{} · pid {}", p.name, p.pid)) }
                { el!("span", "note", format!("{} alive, {} running", plural(p.alive, "thread"), p.running)) }
            </div>
        };
    }
    let shown = p.threads.len();
    html! {
        <div class={class("proc", p.exited.then_some("exited"))} data-pid={p.pid.to_string()}>
            <h4>{ format!("{} · pid {}", p.name, p.pid) }
                { el!("span", "note", format!(" {} alive, {} running", plural(p.alive, "thread"), p.running)) }
            </h4>
            <div class="tokens">
                { for p.threads.iter().map(|(t, s)| token(t, state_class(*s))) }
                if p.alive > shown { { el!("span", "more", format!("+{} more", p.alive - shown)) } }
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
    let cells: VecMap<u32, CpuCell> = f
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
            { el!("h2", [], "Cores") }
            <p class="caption">
                { crate::learn::page::with_glossary("Each hardware thread shows the thread running on it at the cursor; runnable threads queue beside \
                   the core they last ran on; a context switch shows who left and why (orange: preempted, blue: blocked). \
                   Counters: switches in and busy share so far.") }
                { trust(props.fidelity, props.dropped) }
            </p>
            { machine_header(topology, props.recorded_on.as_deref()) }
            { legend(!f.locks.is_empty()) }
            <MachineView topology={Rc::clone(topology)} cells={Rc::new(cells)} others={props.others.clone()} />
            <Waiting locks={f.locks.clone()} areas={f.areas.clone()} watched={props.watched} />
            { el!("h3", "sub", "Processes and their threads") }
            { el!("p", "caption", "Each box is a process; threads inside share its memory. Filled: running; outlined: waiting.") }
            <Processes processes={f.processes.clone()} helpers={f.helpers.clone()} {tokens} />
        </section>
    }
}

/// What the marks mean (the lock's only for a run that has one).
fn legend(has_lock: bool) -> Html {
    html! {
        <div class="legend" aria-label="Legend" data-testid="legend">
            { el!("span", ["class" => "tok running", "style" => "--h:200"], "running") }
            { el!("span", ["class" => "tok queued", "style" => "--h:200"], "runnable, waiting for a core") }
            { el!("span", ["class" => "tok waiting", "style" => "--h:200"], "blocked or asleep") }
            { el!("span", "switch-mark involuntary", "⇄ preempted") }{ "involuntary switch" }
            { el!("span", "switch-mark voluntary", "⇄ blocked") }{ "voluntary switch" }
            { el!("span", "migrated", "↪ from N") }{ "migrated from CPU N" }
            if has_lock {
                { el!("span", "gil", "GIL") }{ "the global lock" }
            }
        </div>
    }
}

/// Properties of [`MachineView`].
#[derive(Debug, Properties, PartialEq)]
struct MachineProps {
    topology: Rc<Topology>,
    cells: Rc<VecMap<u32, CpuCell>>,
    others: Others,
}

/// The topology with live hardware threads. Up to 32 of them, each is a component of its own
/// (re-rendered when its cell changes); beyond, the picture is drawn once ([`MachineShape`])
/// and the cells' content written into it directly ([`paint_dense`]).
#[function_component(MachineView)]
fn machine_view(props: &MachineProps) -> Html {
    let dense = is_dense(props.topology.pu_count());
    let root = use_node_ref();
    // The dense cells' elements and what each shows, for the topology they belong to.
    let painted = use_mut_ref(|| {
        (
            None::<Rc<Topology>>,
            Vec::<(u32, DenseEls, Option<DenseProps>)>::new(),
        )
    });
    {
        let (root, painted) = (root.clone(), painted.clone());
        use_effect_with(
            (Rc::clone(&props.topology), Rc::clone(&props.cells)),
            move |(topology, cells)| {
                if !dense {
                    return;
                }
                let mut painted = painted.borrow_mut();
                // The same machine (live runs bring a new copy of it each time).
                let fresh = !painted
                    .0
                    .as_ref()
                    .is_some_and(|t| Rc::ptr_eq(t, topology) || **t == **topology);
                if fresh {
                    *painted = (Some(Rc::clone(topology)), dense_elements(&root));
                }
                for (idx, els, shown) in painted.1.iter_mut() {
                    let want = DenseProps::new(*idx, cells.get(idx));
                    if shown.as_ref() != Some(&want) {
                        paint_dense(els, shown.as_ref(), &want);
                        *shown = Some(want);
                    }
                }
            },
        );
    }
    // Dense cells' tooltips are written as the pointer arrives, from the frame shown then.
    let onmouseover = dense.then(|| {
        let cells = Rc::clone(&props.cells);
        let others = props.others.clone();
        Callback::from(move |e: MouseEvent| {
            let cell = e
                .target_dyn_into::<web_sys::Element>()
                .and_then(|t| t.closest(".pu.dense[data-pu]").ok().flatten());
            if let Some(el) = cell
                && let Some(idx) = el.get_attribute("data-pu").and_then(|s| s.parse().ok())
            {
                let _ = el.set_attribute("title", &dense_title(idx, cells.get(&idx), &others));
            }
        })
    });
    html! {
        <div class="machine-wrap" ref={root} {onmouseover}>
            if dense {
                <MachineShape topology={Rc::clone(&props.topology)} />
            } else {
                { machine_html(&props.topology, |idx| {
                    html! { <PuCell key={idx} {idx} cell={props.cells.get(&idx).cloned()} others={props.others.clone()} /> }
                }) }
            }
        </div>
    }
}

/// The cells under `root`, in the order drawn, with their square and queue count.
fn dense_elements(root: &NodeRef) -> Vec<(u32, DenseEls, Option<DenseProps>)> {
    let Some(root) = root.cast::<web_sys::Element>() else {
        return Vec::new();
    };
    let Ok(list) = root.query_selector_all(".pu.dense[data-pu]") else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| {
            let cell: web_sys::Element = list.item(i)?.dyn_into().ok()?;
            let idx = cell.get_attribute("data-pu")?.parse().ok()?;
            let sq = cell.query_selector(".sq").ok()??;
            let q = cell.query_selector(".q").ok()??;
            Some((idx, (cell, sq, q), None))
        })
        .collect()
}

/// Properties of [`MachineShape`].
#[derive(Debug, Properties, PartialEq)]
struct ShapeProps {
    topology: Rc<Topology>,
}

/// A big machine's picture with empty cells: rendered again only for another machine.
#[function_component(MachineShape)]
fn machine_shape(props: &ShapeProps) -> Html {
    machine_html(&props.topology, dense_shell)
}

fn machine_html(topology: &Topology, pu: impl Fn(u32) -> Html) -> Html {
    let pus = topology.pu_count();
    let dense = is_dense(pus);
    let pu = |idx: u32, _dense: bool| pu(idx);
    html! {
        <div class={class("machine", Some(density_class(pus)))} data-pus={pus.to_string()}>
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
    locks: Vec<LockCell>,
    areas: Vec<Area>,
    watched: bool,
}

/// The lock and the waiting areas.
#[function_component(Waiting)]
fn waiting(props: &WaitingProps) -> Html {
    html! {
        <div class="waiting-areas">
            { locks_view(&props.locks, props.watched) }
            { for props.areas.iter().map(area_view) }
        </div>
    }
}

/// Properties of [`Processes`].
#[derive(Debug, Properties, PartialEq)]
struct ProcessesProps {
    processes: Vec<ProcessBox>,
    helpers: Option<Helpers>,
    tokens: bool,
}

/// Processes grouping their threads.
#[function_component(Processes)]
fn processes(props: &ProcessesProps) -> Html {
    html! {
        <div class="procs">
            // Hundreds of threads are counted, not drawn one by one.
            { for props.processes.iter().map(|p| process_view(p, props.tokens)) }
            if let Some(h) = &props.helpers {
                <div class="proc exited helpers" data-testid="helpers"
                     title="processes of one thread that lived a moment and used under 5 ms of CPU, such as a wrapper script's (a pyenv shim starts bash, readlink and its own helpers before the interpreter): folded so that the program's own processes stand out">
                    { el!("h4", [], format!("{} short-lived helper processes, ended", h.count)) }
                    { el!("span", "note", h.list()) }
                </div>
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use coreplay_shared::{
        event::Fidelity,
        scenario::{Params, ScenarioId},
        summary::{CpuOther, Outcome},
    };

    use super::*;

    fn measured(others_ms: &[u64]) -> Others {
        Others::Measured(Rc::new(OtherLoad {
            start_ns: 0,
            window_ns: 100_000_000,
            cpus: others_ms
                .iter()
                .enumerate()
                .map(|(cpu, ms)| CpuOther {
                    cpu: cpu as u32,
                    other_ns: ms * 1_000_000,
                })
                .collect(),
            agent_ns: 0,
        }))
    }

    #[test]
    fn a_free_core_says_what_other_programs_took_of_it() {
        // The browser drawing a live run took CPU 1: the page no longer calls it idle.
        let others = measured(&[1, 38, 2]);
        let (text, title) = idle_label(&others, 1);
        assert_eq!(text, "other programs: 38 %");
        assert!(title.contains("38 % of the time"), "{title}");
        assert_eq!(idle_label(&others, 0).0, "idle", "1 % is idle");
        assert_eq!(idle_label(&others, 2).0, "other programs: 2 %");
        // A CPU the measurement does not list, and runs without it, say they cannot tell.
        assert_eq!(idle_label(&others, 9).0, "idle or other");
        assert_eq!(idle_label(&Others::Unmeasured, 0).0, "idle or other");
        // Live: neither idle nor a figure before the run has ended.
        let (text, title) = idle_label(&Others::Pending, 0);
        assert_eq!(text, "not this run");
        assert!(title.contains("when the run ends"), "{title}");
    }

    #[test]
    fn what_a_summary_tells() {
        assert_eq!(Others::of(None), Others::Pending);
        let mut s = Summary::empty(
            ScenarioId::ParallelCompute,
            Params::default(),
            Outcome::Completed,
            Fidelity::Exact,
        );
        assert_eq!(Others::of(Some(&s)), Others::Unmeasured);
        let Others::Measured(load) = measured(&[5]) else {
            unreachable!()
        };
        s.other_load = Some((*load).clone());
        assert_eq!(Others::of(Some(&s)), Others::Measured(load));
    }
}
