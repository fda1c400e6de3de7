//! The event loop, live: the ready queue as a row of task tokens, the task polled last, the
//! tasks parked on I/O and on timers, the selector (epoll) waits and the futures resolved.
//! Thousands of tasks are shown as counts with a sample of tokens.

use std::rc::Rc;

use crate::view::el;
use coreplay_shared::event::Fidelity;
use yew::prelude::*;

use crate::view::class;
use crate::view::cores::trust;
use coreplay_shared::frame::LoopCell;

/// Properties of [`EventLoopView`].
#[derive(Debug, Properties, PartialEq)]
pub struct LoopProps {
    /// The loop at the cursor.
    pub event_loop: Rc<LoopCell>,
    /// How the events were obtained.
    pub fidelity: Fidelity,
    /// Events lost, if any.
    pub dropped: u64,
}

/// Properties of [`Tokens`].
#[derive(Debug, Properties, PartialEq)]
struct TokensProps {
    labels: Vec<String>,
    count: u32,
    class: &'static str,
}

/// A group of task tokens; a component so that unchanged groups are not rendered again.
#[function_component(Tokens)]
fn tokens_component(p: &TokensProps) -> Html {
    tokens(&p.labels, p.count, p.class)
}

fn tokens(labels: &[String], count: u32, class: &'static str) -> Html {
    let more = (count as usize).saturating_sub(labels.len());
    html! {
        <div class="tokens">
            { for labels.iter().map(|l| html! { <span class={format!("token {class}")}>{ l.clone() }</span> }) }
            if more > 0 { { el!("span", "more", format!("+{more} more")) } }
            if count == 0 { { el!("span", "empty", "none") } }
        </div>
    }
}

fn us(ns: u64) -> String {
    crate::playback::duration(ns)
}

/// The event-loop picture.
#[function_component(EventLoopView)]
pub fn event_loop_view(props: &LoopProps) -> Html {
    let l = &props.event_loop;
    let running = match &l.running {
        Some((label, for_ns)) => html! {
            { el!("p", ["data-testid" => "polled", "class" => "polling"], format!("polling {label} — {} so far, runs until it awaits", us(*for_ns))) }
        },
        None => {
            el!("p", ["data-testid" => "polled", "class" => "empty"], "no task is being polled")
        }
    };
    let selector = match (l.waiting, l.last_wait) {
        (Some((for_ns, woken)), _) => html! {
            <p class="selecting" data-testid="selector">
                { format!("waiting for readiness (epoll_wait) for {} so far; it will return readiness that wakes {woken} task(s)", us(for_ns)) }
            </p>
        },
        (None, Some((slept, woken))) => html! {
            { el!("p", ["data-testid" => "selector"], format!("not waiting; the last wait slept {} and woke {woken} task(s)", us(slept))) }
        },
        (None, None) => el!("p", ["data-testid" => "selector"], "the loop has not waited yet"),
    };
    let agent_counts = l.depth.map(|(r, io, t)| {
        if l.asyncio {
            format!("asyncio's own counts at the end of its last iteration: {r} ready, {io} awaiting something, {t} timer callbacks scheduled")
        } else {
            format!("the loop's own counts after its last poll or selector wait (a task being polled still counts as ready): {r} ready, {io} on I/O, {t} on timers")
        }
    });
    let caption = if l.asyncio {
        "One thread runs one task at a time until it awaits; a task awaiting a socket waits for the selector (epoll), one awaiting asyncio.sleep for a timer, one awaiting another task until that task finishes or sets what it waits for; then it joins the ready queue. From the watched program's own asyncio loop, recorded by coreplay's Python probe."
    } else {
        "One thread runs one task at a time until it awaits; parked tasks wait for the OS (the selector: epoll) or a timer to make them ready again, and a wake puts them back in the ready queue. From the real tokio runtime."
    };
    html! {
        <section class="event-loop" aria-label="Event loop" data-testid="event-loop">
            { el!("h2", [], "Event loop") }
            <p class="caption">
                { crate::learn::page::with_glossary(caption) }
                { trust(props.fidelity, props.dropped) }
            </p>
            if let (Some(thread), true) = (&l.thread, l.loops > 1) {
                <p class="note" data-testid="loop-shown">
                    { format!("This run has {} event loops: shown is the one on thread {thread}, the last to poll before the cursor, with its own tasks and counts.", l.loops) }
                </p>
            }
            <div class="loop-grid">
                <div class="loop-box">
                    { el!("h3", [], format!("Ready queue ({})", l.ready_count)) }
                    <Tokens labels={l.ready.clone()} count={l.ready_count} class="ready" />
                </div>
                <div class={class("loop-box", l.running.is_some().then_some("running"))}>
                    { el!("h3", [], "Running task") }
                    { running }
                    { el!("p", "note", format!("{} polls so far", l.polls)) }
                </div>
                <div class={class("loop-box", l.waiting.is_some().then_some("selecting"))}>
                    { el!("h3", [], format!("Selector (epoll wait) · {} waits", l.waits)) }
                    { selector }
                </div>
                <div class="loop-box">
                    { el!("h3", [], format!("Parked on I/O ({})", l.io.0)) }
                    <Tokens labels={l.io.1.clone()} count={l.io.0} class="io" />
                </div>
                <div class="loop-box">
                    { el!("h3", [], format!("Parked on timers ({})", l.timers.0)) }
                    <Tokens labels={l.timers.1.clone()} count={l.timers.0} class="timer" />
                </div>
                if l.asyncio {
                    <div class="loop-box">
                        { el!("h3", [], format!("Awaiting another task or a future ({})", l.awaiting.0)) }
                        <Tokens labels={l.awaiting.1.clone()} count={l.awaiting.0} class="awaiting" />
                    </div>
                }
                <div class="loop-box">
                    { el!("h3", [], format!("Completed: futures resolved ({})", l.done.0)) }
                    { el!("p", ["data-testid" => "completed"], format!("{} futures resolved", l.done.0)) }
                    <Tokens labels={l.done.1.clone()} count={l.done.0} class="done" />
                    if l.cancelled > 0 { { el!("p", "note", format!("{} cancelled", l.cancelled)) } }
                </div>
            </div>
            if let Some(c) = agent_counts { { el!("p", "note", c) } }
        </section>
    }
}
