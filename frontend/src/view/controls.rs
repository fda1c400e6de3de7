//! Playback controls: play/pause, step one event either way, scrub, speed ("1 s on screen =
//! N µs of the run"), back to live. Keyboard: Space play/pause, ←/→ step, +/− speed,
//! Home/End, L live (handled by the app so they work anywhere on the page).

use coreplay_shared::event::Ns;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::playback::{Command, SPEEDS, duration, speed_label};
use crate::view::class;

/// Properties of [`Controls`].
#[derive(Debug, Properties, PartialEq)]
pub struct ControlsProps {
    /// Cursor, ns.
    pub t: Ns,
    /// Playable span.
    pub start: Ns,
    /// Playable span.
    pub end: Ns,
    /// Whether the clock moves.
    pub playing: bool,
    /// Speed index.
    pub speed: usize,
    /// Whether the run is live.
    pub live: bool,
    /// Whether the cursor follows it.
    pub following: bool,
    /// Sends a command.
    pub on_cmd: Callback<Command>,
    /// Compact layout (embed mode).
    #[prop_or_default]
    pub compact: bool,
}

/// The controls bar.
#[function_component(Controls)]
pub fn controls(props: &ControlsProps) -> Html {
    let cmd = |c: Command| {
        let on = props.on_cmd.clone();
        Callback::from(move |_: MouseEvent| on.emit(c))
    };
    let on_scrub = {
        let on = props.on_cmd.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            // The browser reads the number (no float parser in the wasm); NaN when empty.
            let v = input.value_as_number();
            if v.is_finite() && v >= 0.0 {
                on.emit(Command::Seek(v as Ns));
            }
        })
    };
    let on_speed = {
        let on = props.on_cmd.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            if let Ok(i) = select.value().parse::<usize>() {
                on.emit(Command::Speed(i));
            }
        })
    };
    let span = props.end.saturating_sub(props.start).max(1);
    let step = (span / 2000).max(1);
    html! {
        <div class={class("playback", props.compact.then_some("compact"))} role="group" aria-label="Playback" data-testid="playback">
            <button onclick={cmd(Command::StepBack)} title="previous event (←)" data-testid="step-back">{ "◂ step" }</button>
            <button onclick={cmd(Command::Toggle)} title="play / pause (Space)" data-testid="play"
                    aria-pressed={props.playing.to_string()}>
                { if props.playing { "‖ pause" } else { "▶ play" } }
            </button>
            <button onclick={cmd(Command::StepForward)} title="next event (→)" data-testid="step">{ "step ▸" }</button>
            <input type="range" class="scrub" aria-label="position in the run"
                   min={props.start.to_string()} max={props.end.max(props.start + 1).to_string()}
                   step={step.to_string()} value={props.t.to_string()} oninput={on_scrub} />
            <span class="clock" data-testid="clock" data-t={props.t.to_string()}>
                { format!("{} / {}", duration(props.t), duration(props.end)) }
            </span>
            <label class="speed" title="slow motion: how much of the run one second on screen shows (+ / −)">
                <select onchange={on_speed} data-testid="speed">
                    { for SPEEDS.iter().enumerate().map(|(i, &ns)| html! {
                        <option value={i.to_string()} selected={i == props.speed}>{ speed_label(ns) }</option>
                    }) }
                </select>
            </label>
            if props.live {
                <button onclick={cmd(Command::Live)} disabled={props.following}
                        class={class("live-btn", props.following.then_some("on"))} title="follow the live run (L)">
                    { if props.following { "● live" } else { "go live" } }
                </button>
            }
        </div>
    }
}
