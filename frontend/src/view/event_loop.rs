//! The event loop, live: the ready queue as a row of task tokens, the task polled last, the
//! tasks parked on I/O and on timers, the selector (epoll) waits and the futures resolved.
//! Thousands of tasks are shown as counts with a sample of tokens.

use std::rc::Rc;

use yew::prelude::*;

use crate::state::{LoopView, TaskState};

/// Tokens drawn per group before the rest is only counted.
const SAMPLE: usize = 40;

/// Properties of [`EventLoopView`].
#[derive(Debug, Properties, PartialEq)]
pub struct LoopProps {
    /// The loop's state.
    pub event_loop: Rc<LoopView>,
}

fn tokens(labels: Vec<String>, count: usize, class: &'static str) -> Html {
    let more = count.saturating_sub(labels.len());
    html! {
        <div class="tokens">
            { for labels.into_iter().map(|l| html! { <span class={classes!("token", class)}>{ l }</span> }) }
            if more > 0 { <span class="more">{ format!("+{more} more") }</span> }
            if count == 0 { <span class="empty">{ "none" }</span> }
        </div>
    }
}

fn us(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.0} µs", ns as f64 / 1e3)
    }
}

/// The event-loop picture.
#[function_component(EventLoopView)]
pub fn event_loop_view(props: &LoopProps) -> Html {
    let l = &props.event_loop;
    let (ready, io, timers) = l.depth;
    let (io_sample, io_count) = l.sample(TaskState::ParkedIo, SAMPLE);
    let (timer_sample, timer_count) = l.sample(TaskState::ParkedTimer, SAMPLE);
    let polled = match l.last_poll {
        Some((task, dur, true)) => format!(
            "{} ran {} and finished: its future resolved",
            l.label(task),
            us(dur)
        ),
        Some((task, dur, false)) => format!(
            "{} ran {} until it awaited (pending)",
            l.label(task),
            us(dur)
        ),
        None => "nothing yet".into(),
    };
    let selector = match l.last_wait {
        Some((slept, woken)) => format!(
            "{} waits so far; the last slept {} and returned readiness that woke {woken} task(s)",
            l.waits,
            us(slept)
        ),
        None => "the loop has not waited yet".into(),
    };
    html! {
        <section class="event-loop" aria-label="Event loop" data-testid="event-loop">
            <h2>{ "Event loop" }</h2>
            <p class="caption">{ "One thread runs one task at a time until it awaits; parked tasks wait for the OS (epoll) or a timer to make them ready again. From the real tokio runtime; exact order, self-timed durations." }</p>
            <div class="loop-grid">
                <div class="loop-box">
                    <h3>{ format!("Ready queue ({ready})") }</h3>
                    { tokens(l.ready_front(SAMPLE), ready as usize, "ready") }
                </div>
                <div class="loop-box running">
                    <h3>{ "Polled last" }</h3>
                    <p data-testid="polled">{ polled }</p>
                    <p class="note">{ format!("{} polls", l.polls) }</p>
                </div>
                <div class="loop-box">
                    <h3>{ "Selector (epoll wait)" }</h3>
                    <p>{ selector }</p>
                </div>
                <div class="loop-box">
                    <h3>{ format!("Parked on I/O ({io})") }</h3>
                    { tokens(io_sample, io_count, "io") }
                </div>
                <div class="loop-box">
                    <h3>{ format!("Parked on timers ({timers})") }</h3>
                    { tokens(timer_sample, timer_count, "timer") }
                </div>
                <div class="loop-box">
                    <h3>{ "Completed" }</h3>
                    <p data-testid="completed">{ format!("{} futures resolved", l.done) }</p>
                </div>
            </div>
        </section>
    }
}
