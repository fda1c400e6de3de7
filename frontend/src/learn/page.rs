//! The Learn path's components: the list of lessons with the learner's progress, and one
//! lesson (read, predict, run, see, explain). The run is the agent's (on this machine) or a
//! recorded one; what is drawn comes from the same player, frames and replay as the lab.

use std::{collections::HashSet, rc::Rc};

use crate::view::el;
use coreplay_shared::{ClientMsg, Topology, event::Ns};
use yew::prelude::*;

use super::{
    glossary::{self, Piece},
    lessons::{Lesson, LessonId, Machine, Moment, Plan, lesson},
    outcome::{self, Seen},
    progress,
};
use crate::{
    load::{self, GalleryEntry},
    options,
    playback::Command,
    state::{Action, AppState, Conn, RunRecord, RunSource},
    store::Store,
    view::{class, player::Player, topology::TopologyView},
};

/// Properties of [`Learn`].
#[derive(Debug, Properties, PartialEq)]
pub struct LearnProps {
    /// The page's state.
    pub store: Store,
    /// Changes whenever the page redraws.
    pub draws: u64,
    /// Sends a message to the agent.
    pub send: Callback<ClientMsg>,
    /// The lesson the address asked for.
    pub lesson: Option<LessonId>,
    /// The gallery's recorded runs.
    pub gallery: Rc<Vec<GalleryEntry>>,
    /// Hardware threads of the machine drawn, by OS index.
    pub cpus: Rc<Vec<u32>>,
    /// The dark theme is on.
    #[prop_or_default]
    pub dark: bool,
    /// Inside another page (`embed`): no list of lessons.
    #[prop_or_default]
    pub embed: bool,
}

/// Where the learner is in the path.
#[function_component(Learn)]
pub fn learn(props: &LearnProps) -> Html {
    let done = use_state(progress::load);
    let current = {
        let done = *done;
        use_state(move || props.lesson.unwrap_or_else(|| progress::next_to_do(&done)))
    };
    let pick = {
        let current = current.clone();
        Callback::from(move |id: LessonId| {
            current.set(id);
            set_address(id);
        })
    };
    let on_done = {
        let done = done.clone();
        Callback::from(move |id: LessonId| done.set(progress::finish(id)))
    };
    html! {
        <div class={class("learn", props.embed.then_some("embedded"))} data-testid="learn">
            if !props.embed {
                <nav class="lessons" aria-label="Lessons">
                    { el!("h2", [], "Learn") }
                    { el!("p", "note", "Parallelism and concurrency, one idea at a time, each shown by a real run. Predict, run, look, compare.") }
                    <ol>
                        { for LessonId::ALL.into_iter().map(|id| {
                            let is_done = done.contains(id);
                            let onclick = { let pick = pick.clone(); Callback::from(move |e: MouseEvent| { e.prevent_default(); pick.emit(id); }) };
                            html! {
                                <li class={match (*current == id, is_done) {
                                    (true, true) => Some("current done"),
                                    (true, false) => Some("current"),
                                    (false, true) => Some("done"),
                                    (false, false) => None,
                                }}>
                                    <a href={format!("?lesson={}", id.name())} {onclick}
                                       aria-current={(*current == id).then_some("step")}
                                       data-lesson={id.name()}>
                                        { lesson(id, Machine { pus: 2, cores: 2, packages: 1 }).title }
                                    </a>
                                    if is_done { { el!("span", ["class" => "tick", "title" => "you ran this lesson"], " ✓") } }
                                </li>
                            }
                        }) }
                    </ol>
                    <p class="note">
                        { el!("a", ["href" => "?lab"], "The lab") }{ ": any scenario with your own parameters, watch a program, and the gallery of recorded runs." }
                    </p>
                </nav>
            }
            <LessonView key={current.name()} id={*current} store={props.store.clone()} draws={props.draws}
                        send={props.send.clone()} gallery={Rc::clone(&props.gallery)}
                        cpus={Rc::clone(&props.cpus)} dark={props.dark} embed={props.embed}
                        {on_done} on_pick={pick} />
        </div>
    }
}

/// Puts `?lesson=NAME` in the address (keeping the agent and token), without reloading.
fn set_address(id: LessonId) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let mut query = format!("?lesson={}", id.name());
    if let Ok(search) = window.location().search()
        && let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search)
    {
        for key in ["agent", "token", "follow"] {
            if let Some(v) = params.get(key) {
                query.push_str(&format!("&{key}={}", options::encode(&v)));
            }
        }
    }
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&query));
    }
}

/// Properties of [`LessonView`].
#[derive(Debug, Properties, PartialEq)]
pub struct LessonProps {
    /// Which lesson.
    pub id: LessonId,
    /// The page's state.
    pub store: Store,
    /// Changes whenever the page redraws.
    pub draws: u64,
    /// Sends a message to the agent.
    pub send: Callback<ClientMsg>,
    /// The gallery's recorded runs.
    pub gallery: Rc<Vec<GalleryEntry>>,
    /// Hardware threads of the machine drawn.
    pub cpus: Rc<Vec<u32>>,
    /// The dark theme is on.
    pub dark: bool,
    /// Inside another page.
    pub embed: bool,
    /// The lesson was run to its explanation.
    pub on_done: Callback<LessonId>,
    /// Go to another lesson.
    pub on_pick: Callback<LessonId>,
}

/// Which run the lesson shows: the newest run after the one that was newest when the learner
/// pressed run or play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asked {
    /// The newest run's number when asked (none when there was none).
    after: Option<u64>,
}

fn lesson_run(st: &AppState, asked: Option<Asked>) -> Option<&RunRecord> {
    let asked = asked?;
    let newest = st.runs.last()?;
    (Some(newest.view.run) != asked.after).then_some(newest)
}

/// The machine of a gallery entry, from its one-line description ("… · 16 hardware threads ·
/// …").
fn gallery_pus(entry: &GalleryEntry) -> Option<u32> {
    entry.machine.split(" · ").find_map(|part| {
        part.strip_suffix(" hardware threads")
            .or_else(|| part.strip_suffix(" hardware thread"))
            .and_then(|n| n.trim().parse().ok())
    })
}

/// Whether two hardware threads of one core both run at `frame`'s instant.
fn siblings_busy(topology: &Topology, busy: &HashSet<u32>) -> bool {
    topology.nodes().any(|n| {
        n.kind == coreplay_shared::NodeKind::Core
            && n.pus.iter().filter(|p| busy.contains(p)).count() >= 2
    })
}

/// What the replay of `rec` shows beyond its summary.
fn seen(rec: &RunRecord) -> Seen {
    let peak = rec.replay.peak_running();
    let siblings_at_peak = match (peak, rec.topology.as_deref()) {
        (Some((_, at)), Some(topology)) => {
            let mut busy = HashSet::new();
            for c in rec
                .replay
                .cpus_at(at)
                .iter()
                .filter(|c| c.running.is_some())
            {
                busy.insert(c.cpu);
            }
            siblings_busy(topology, &busy)
        }
        _ => false,
    };
    Seen {
        peak: peak.map(|p| p.0),
        siblings_at_peak,
        time_by_running: rec.replay.time_by_running(),
        others: rec.view.summary.as_ref().and_then(|s| other_share(s)),
    }
}

/// Other programs' share of the machine during the run (coreplay's own recording left out),
/// where the agent measured it.
fn other_share(summary: &coreplay_shared::summary::Summary) -> Option<f64> {
    summary.other_load.as_ref().map(|o| o.programs_share())
}

/// The next moment of `kind` after `t` in `rec`.
fn next_moment(rec: &RunRecord, kind: Moment, t: Ns) -> Option<Ns> {
    let r = &rec.replay;
    match kind {
        Moment::Preemption => r.next_preemption(t),
        Moment::Handover => r.next_handover(t),
        Moment::SelectorWake => r.next_loop_wake(t),
        Moment::LongPoll => r.next_long_poll(t, 1_000_000),
        Moment::Peak => r.peak_running().map(|p| p.1),
    }
}

/// One lesson.
#[function_component(LessonView)]
pub fn lesson_view(props: &LessonProps) -> Html {
    let predicted = use_state(|| None::<usize>);
    let asked = use_state(|| None::<Asked>);
    let recorded_choice = use_state(|| 0usize);
    let reported = use_mut_ref(|| false);
    let st = props.store.read();
    let id = props.id;

    // The machine it runs on: this one (with an agent), else the recorded run's.
    let hello = st.hello.clone().filter(|_| st.conn == Conn::Connected);
    let agent_machine = hello.as_ref().map(|h| Machine::of(&h.topology));
    let base = lesson(
        id,
        Machine {
            pus: 2,
            cores: 2,
            packages: 1,
        },
    );
    let recordings: Vec<(&'static str, Option<&GalleryEntry>)> = {
        let mut files: Vec<&'static str> = base.recorded.to_vec();
        files.dedup();
        files
            .into_iter()
            .map(|f| (f, props.gallery.iter().find(|g| g.file == f)))
            .collect()
    };
    let recorded_machine = recordings
        .get(*recorded_choice)
        .and_then(|(_, g)| g.and_then(gallery_pus))
        .map(|pus| Machine {
            pus,
            cores: pus,
            packages: 1,
        });
    let plan_runs_here = match &base.plan {
        Plan::Scenario(..) => hello.as_ref().is_some_and(|h| h.can_run),
        Plan::Watch(name) => hello
            .as_ref()
            .is_some_and(|h| h.watch_programs.iter().any(|p| p.name == *name)),
    };
    let machine = if plan_runs_here {
        agent_machine
    } else {
        recorded_machine
    }
    .unwrap_or(Machine {
        pus: 2,
        cores: 2,
        packages: 1,
    });
    let l: Lesson = lesson(id, machine);
    let run = lesson_run(&st, *asked);
    let measuring = run.is_some_and(|r| r.view.running() && r.view.source == RunSource::Live);
    let finished = run.and_then(|r| r.view.summary.clone().map(|s| (r, s)));

    let explanation = finished.map(|(rec, summary)| {
        let run_machine = rec.topology.as_deref().map_or(machine, Machine::of);
        outcome::explain(&l, run_machine, &summary, seen(rec))
    });
    // The explanation comes into view when it appears.
    use_effect_with(explanation.is_some(), |shown| {
        if *shown
            && let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| {
                d.query_selector("[data-testid=lesson-explain]")
                    .ok()
                    .flatten()
            })
        {
            el.scroll_into_view();
        }
    });
    if explanation.is_some() && !*reported.borrow() {
        *reported.borrow_mut() = true;
        props.on_done.emit(id);
    }

    let on_predict = {
        let predicted = predicted.clone();
        move |i: usize| {
            let predicted = predicted.clone();
            Callback::from(move |_: Event| predicted.set(Some(i)))
        }
    };
    let newest = st.runs.last().map(|r| r.view.run);
    let on_run = {
        let (asked, send, plan, reported) = (
            asked.clone(),
            props.send.clone(),
            l.plan.clone(),
            reported.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            *reported.borrow_mut() = false;
            asked.set(Some(Asked { after: newest }));
            send.emit(match &plan {
                Plan::Scenario(scenario, params) => ClientMsg::Run {
                    scenario: *scenario,
                    params: params.clone(),
                },
                Plan::Watch(name) => ClientMsg::Watch {
                    program: (*name).to_string(),
                },
            });
        })
    };
    let on_play = |i: usize, file: &'static str, title: String| {
        let (asked, store, recorded_choice, reported) = (
            asked.clone(),
            props.store.clone(),
            recorded_choice.clone(),
            reported.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            *reported.borrow_mut() = false;
            recorded_choice.set(i);
            asked.set(Some(Asked { after: newest }));
            load::spawn_url(
                store.clone(),
                format!("gallery/{file}"),
                title.clone(),
                true,
            );
        })
    };
    let on_moment = {
        let store = props.store.clone();
        let moment = l.moment;
        Callback::from(move |_: MouseEvent| {
            let next = {
                let st = store.read();
                st.shown()
                    .and_then(|rec| next_moment(rec, moment, st.playback.t))
            };
            if let Some(t) = next {
                store.apply(Action::Control(Command::Pause));
                store.apply(Action::Control(Command::Seek(t)));
            }
        })
    };
    let can_run = predicted.is_some() && !measuring && st.run().is_none_or(|r| !r.running());
    let shown_is_lesson_run =
        run.is_some_and(|r| st.shown().is_some_and(|s| s.view.run == r.view.run));
    let views = Rc::new(l.views.to_vec());
    let next = id.next();

    html! {
        <article class="lesson" data-testid="lesson" data-lesson={id.name()}>
            { el!("h2", [], format!("{}. {}", id.number(), l.title)) }
            <p class="heard">{ el!("span", "label", "What you may have heard: ") }{ l.heard }</p>
            { for l.text.iter().map(|p| html! { <p>{ text_with_terms(p) }</p> }) }

            if id == LessonId::Machine && !shown_is_lesson_run {
                if let Some(hello) = hello.clone() {
                    <TopologyView {hello} />
                }
            }
            <fieldset class="predict" data-testid="predict">
                <legend>{ "Predict first. " }{ l.question.clone() }</legend>
                { for l.choices.iter().enumerate().map(|(i, c)| html! {
                    <label class={explanation.as_ref().and_then(|e| e.answer).filter(|&a| a == i).map(|_| "borne-out")}>
                        <input type="radio" name={format!("predict-{}", id.name())} value={i.to_string()}
                               checked={*predicted == Some(i)} onchange={on_predict(i)} />
                        { c.text.clone() }
                    </label>
                }) }
            </fieldset>

            <section class="lesson-run" aria-label="Run">
                if predicted.is_none() {
                    { el!("p", "note", "Choose an answer first: a prediction makes what the run shows stick.") }
                }
                if plan_runs_here {
                    <button class="primary" onclick={on_run} disabled={!can_run} data-testid="lesson-run">
                        { format!("Run it on this machine ({} hardware thread{})", machine.pus, if machine.pus == 1 { "" } else { "s" }) }
                    </button>
                }
                { for recordings.iter().enumerate().map(|(i, (file, entry))| {
                    let label = entry.map_or_else(
                        || "Play a recorded run".to_string(),
                        |g| format!("Play the run recorded on {}", g.machine.split(" · ").take(2).collect::<Vec<_>>().join(", ")),
                    );
                    let title = entry.map_or_else(|| (*file).to_string(), |g| g.title.clone());
                    html! {
                        <button class={if plan_runs_here { "secondary" } else { "primary" }}
                                onclick={on_play(i, file, title)} disabled={predicted.is_none()}
                                data-testid="lesson-play" data-file={*file}>
                            { label }
                        </button>
                    }
                }) }
                if measuring {
                    <p class="measuring" role="status" data-testid="measuring">
                        { "Measuring… The page keeps still while your run measures: drawing the animation would take a CPU from the run and change what it measures. It plays as soon as the run ends." }
                    </p>
                }
            </section>

            if let Some(e) = explanation {
                <section class={class("explain", e.disturbed.then_some("disturbed"))} aria-label="What the run showed" data-testid="lesson-explain">
                    { el!("h3", [], "What the run showed") }
                    if let Some(p) = *predicted {
                        <p class="verdict">{
                            match e.answer {
                                Some(a) if a == p => format!("You predicted “{}”, and the run bore it out.", l.choices[p].text),
                                Some(a) => format!("You predicted “{}”; the run measured “{}”.", l.choices[p].text, l.choices[a].text),
                                None => format!("You predicted “{}”.", l.choices[p].text),
                            }
                        }</p>
                    }
                    { for e.sentences.iter().map(|s| el!("p", [], s.clone())) }
                    if e.disturbed && plan_runs_here {
                        <button onclick={on_run_again(&props.send, &l.plan)}>{ "Run it again" }</button>
                    }
                    if let Some(next) = next {
                        <p><a href={format!("?lesson={}", next.name())} class="next"
                              onclick={{ let pick = props.on_pick.clone(); Callback::from(move |e: MouseEvent| { e.prevent_default(); pick.emit(next); }) }}>
                            { format!("Next: {} →", lesson(next, machine).title) }
                        </a></p>
                    }
                </section>
            }
            if shown_is_lesson_run && !measuring {
                <section class="see" aria-label="What to look at">
                    { el!("h3", [], "Look") }
                    <ul>{ for l.look.iter().map(|x| el!("li", [], *x)) }</ul>
                    <button onclick={on_moment} data-testid="lesson-moment">{ format!("Show the {} ▸", l.moment.label()) }</button>
                </section>
                <div class="lesson-player">
                    <Player store={props.store.clone()} draws={props.draws} compact={props.embed}
                            views={views} cpus={Rc::clone(&props.cpus)} dark={props.dark} />
                </div>
            }

        </article>
    }
}

fn on_run_again(send: &Callback<ClientMsg>, plan: &Plan) -> Callback<MouseEvent> {
    let (send, plan) = (send.clone(), plan.clone());
    Callback::from(move |_: MouseEvent| {
        if let Plan::Scenario(scenario, params) = &plan {
            send.emit(ClientMsg::Run {
                scenario: *scenario,
                params: params.clone(),
            });
        }
    })
}

/// A paragraph with its glossary terms as buttons that explain themselves on hover or focus.
fn text_with_terms(text: &str) -> Html {
    render(glossary::pieces(text))
}

/// Plain text (not written for the glossary) with the first use of each glossary term
/// explained on hover or focus: the lab's descriptions and captions.
pub fn with_glossary(text: &str) -> Html {
    render(glossary::mark(text))
}

fn render(pieces: Vec<Piece<'_>>) -> Html {
    html! {
        { for pieces.into_iter().map(|p| match p {
            Piece::Text(t) => html! { { t.to_string() } },
            Piece::Code(c) => el!("code", [], c.to_string()),
            Piece::Term(t) => match glossary::define(t) {
                Some(def) => html! {
                    <span class="term-wrap">
                        <button type="button" class="term" aria-label={format!("{t}: {def}")}>{ t.to_string() }</button>
                        { el!("span", ["class" => "term-def", "role" => "tooltip"], def) }
                    </span>
                },
                None => html! { { t.to_string() } },
            },
        }) }
    }
}
