//! The scenario lab's controls: pick a scenario, set its parameters (with the agent's ranges),
//! run or stop, and follow the run's progress.
//!
//! Parameters are checked here with the very code the agent runs ([`scenario::resolve`]), so
//! a mistake is explained before anything is sent; the agent checks again regardless.

use coreplay_shared::Fixed;
use std::{collections::HashMap, rc::Rc};

use crate::view::el;
use coreplay_shared::{
    ClientMsg,
    event::Fidelity,
    scenario::{self, ParamName, Params, ScenarioId, ScenarioInfo},
    watch::WatchProgram,
};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::{learn::page::with_glossary, state::RunView};

/// Properties of [`RunPanel`].
#[derive(Debug, Properties, PartialEq)]
pub struct RunProps {
    /// The agent's catalog.
    pub scenarios: Rc<Vec<ScenarioInfo>>,
    /// Hardware threads of the machine (parameter ranges depend on it).
    pub pus: u32,
    /// Whether the agent can run scenarios at all.
    pub can_run: bool,
    /// Whether the page is connected.
    pub connected: bool,
    /// The current or last run.
    pub run: Option<RunView>,
    /// Sends a message to the agent.
    pub send: Callback<ClientMsg>,
    /// How runs record events on this agent.
    pub fidelity: Fidelity,
    /// Why runs are not exact, when they are not.
    pub fidelity_note: Option<String>,
    /// Programs the agent's operator lets the page start and watch.
    #[prop_or_default]
    pub watch_programs: Rc<Vec<WatchProgram>>,
    /// The page keeps still while a run measures.
    #[prop_or(true)]
    pub still: bool,
    /// Keep still (or follow runs live) from now on.
    #[prop_or_default]
    pub on_still: Callback<bool>,
}

/// The run controls.
#[function_component(RunPanel)]
pub fn run_panel(props: &RunProps) -> Html {
    let selected = use_state(|| ScenarioId::ParallelCompute);
    let values = use_state(HashMap::<ParamName, String>::new);
    let problem = use_state(|| None::<String>);
    let info = props
        .scenarios
        .iter()
        .find(|s| s.id == *selected)
        .or(props.scenarios.first())
        .cloned();
    let running = props.run.as_ref().is_some_and(RunView::running);

    let on_pick = {
        let (selected, values, problem) = (selected.clone(), values.clone(), problem.clone());
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            if let Some(id) = ScenarioId::from_name(&select.value()) {
                selected.set(id);
                values.set(HashMap::new());
                problem.set(None);
            }
        })
    };
    let on_run = {
        let (selected, values, problem, send, pus) = (
            selected.clone(),
            values.clone(),
            problem.clone(),
            props.send.clone(),
            props.pus,
        );
        Callback::from(move |_| {
            let mut params = Params::default();
            for (name, text) in values.iter() {
                match text.trim().parse::<u32>() {
                    Ok(v) => params.set(*name, v),
                    Err(_) if text.trim().is_empty() => {}
                    Err(_) => {
                        problem.set(Some(format!("{} must be a whole number", name.name())));
                        return;
                    }
                }
            }
            match scenario::resolve(*selected, &params, pus) {
                Ok(_) => {
                    problem.set(None);
                    send.emit(ClientMsg::Run {
                        scenario: *selected,
                        params,
                    });
                }
                Err(e) => problem.set(Some(e.to_string())),
            }
        })
    };
    let watch_pick = use_state(|| None::<String>);
    let on_watch_pick = {
        let watch_pick = watch_pick.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            watch_pick.set(Some(select.value()));
        })
    };
    let on_watch = {
        let (send, watch_pick, programs) = (
            props.send.clone(),
            watch_pick.clone(),
            Rc::clone(&props.watch_programs),
        );
        Callback::from(move |_| {
            let name = (*watch_pick)
                .clone()
                .or_else(|| programs.first().map(|p| p.name.clone()));
            if let Some(program) = name {
                send.emit(ClientMsg::Watch { program });
            }
        })
    };
    let on_stop = {
        let send = props.send.clone();
        Callback::from(move |_| send.emit(ClientMsg::Stop))
    };

    let Some(info) = info else {
        return html! {};
    };
    let disabled_why = if !props.can_run {
        Some("This agent shows a topology that is not its own machine, so it cannot run scenarios.")
    } else if !props.connected {
        Some("Not connected to an agent.")
    } else {
        None
    };
    html! {
        <section class="run-panel" aria-label="Scenario lab">
            { el!("h2", [], "Run a scenario") }
            <p class="caption" data-testid="fidelity">
                { "Real workloads on this machine. " }
                { with_glossary(&match props.fidelity {
                    Fidelity::Exact => "Fidelity: exact — context switches come from the kernel's own switch records (perf_event_open).".to_string(),
                    other => format!("Fidelity: {other} — every thread times itself around ~50 µs chunks of work and reads the kernel's switch counters."),
                }) }
                if let Some(note) = &props.fidelity_note { { el!("span", "help", format!(" {note}")) } }
            </p>
            <div class="controls">
                <label>{ "Scenario " }
                    <select onchange={on_pick} data-testid="scenario" disabled={running}>
                        { for props.scenarios.iter().map(|s| html! {
                            <option value={s.id.name()} selected={s.id == info.id}>{ s.title.clone() }</option>
                        }) }
                    </select>
                </label>
                { for info.params.iter().map(|p| {
                    let name = p.name;
                    let value = values.get(&name).cloned().unwrap_or_else(|| p.default.to_string());
                    let values = values.clone();
                    let oninput = Callback::from(move |e: InputEvent| {
                        let input: HtmlInputElement = e.target_unchecked_into();
                        let mut next = (*values).clone();
                        next.insert(name, input.value());
                        values.set(next);
                    });
                    html! {
                        <label title={p.help.clone()}>
                            { format!("{} ", name.name().replace('_', " ")) }
                            <input type="number" min={p.min.to_string()} max={p.max.to_string()}
                                   value={value} {oninput} data-param={name.name()} disabled={running} />
                            { el!("span", "range", format!("{}–{}", p.min, p.max)) }
                        </label>
                    }
                }) }
                if running {
                    <button onclick={on_stop} data-testid="stop">{ "Stop" }</button>
                } else {
                    <button onclick={on_run} data-testid="run" disabled={disabled_why.is_some()}>{ "Run" }</button>
                }
            </div>
            <p class="idea">{ with_glossary(&info.idea) }</p>
            if !props.watch_programs.is_empty() {
                <div class="controls watch-row">
                    <label title="programs the agent's operator allows; the page cannot run anything else">{ "Or watch a real program " }
                        <select onchange={on_watch_pick} data-testid="watch-program" disabled={running}>
                            { for props.watch_programs.iter().map(|p| html! {
                                <option value={p.name.clone()} selected={watch_pick.as_deref() == Some(p.name.as_str())}
                                        title={p.command.join(" ")}>{ p.title.clone() }</option>
                            }) }
                        </select>
                    </label>
                    <button onclick={on_watch} data-testid="watch" disabled={running || disabled_why.is_some()}>{ "Watch" }</button>
                    { el!("span", "note", "its threads and processes, sampled from /proc or exact from the kernel's switch records") }
                </div>
            }
            <label class="still" title="Drawing the animation takes a CPU: on a small machine the page would take it from the run it measures.">
                <input type="checkbox" checked={props.still} data-testid="still"
                       onchange={{ let on_still = props.on_still.clone(); Callback::from(move |e: Event| {
                           let input: HtmlInputElement = e.target_unchecked_into();
                           on_still.emit(input.checked());
                       }) }} />
                { " Keep the page still while a run measures (it plays from the start when the run ends)" }
            </label>
            if let Some(why) = disabled_why { { el!("p", "help", why) } }
            if let Some(p) = &*problem { { el!("p", ["class" => "problem", "role" => "alert"], p.clone()) } }
            if let Some(run) = &props.run { { progress(run, props.still) } }
        </section>
    }
}

fn progress(run: &RunView, still: bool) -> Html {
    let who = if run.yours {
        "your run"
    } else {
        "a run started by another page"
    };
    let (state, so_far) = if run.running() {
        ("running", " so far")
    } else {
        ("finished", "")
    };
    if run.running() && still {
        return html! {
            <p class="progress" data-testid="progress" data-running="true">
                { format!(
                    "Run {} ({who}, {}): measuring. The page keeps still until it ends, so that drawing does not take a CPU from it; fidelity: {}",
                    run.run, run.scenario, run.fidelity
                ) }
            </p>
        };
    }
    html! {
        <p class="progress" data-testid="progress" data-running={run.running().to_string()}>
            { format!(
                "Run {} ({who}, {}): {state}; {} events from {} threads, {} ms of run time{so_far}; fidelity: {}",
                run.run, run.scenario, run.events, run.threads, Fixed(run.latest_ns as f64 / 1e6, 1), run.fidelity
            ) }
            if run.dropped > 0 {
                { el!("span", "warn", format!("; {} events dropped because this page read too slowly", run.dropped)) }
            }
        </p>
    }
}
