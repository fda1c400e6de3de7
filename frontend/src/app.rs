//! The root component: creates the store from the page's address, starts the hooks (clock,
//! keyboard, embed messages, connection, theme, recorded runs) and lays out the page, or the
//! embed.

use std::rc::Rc;

use crate::view::el;
use yew::prelude::*;

use crate::{
    hooks::{
        use_animation_clock, use_connection, use_embed_messages, use_fit_to_frame, use_keyboard,
        use_recorded_runs, use_theme,
    },
    learn::page::Learn,
    load,
    options::{self, PageOptions},
    state::{Action, Conn, RunSource},
    store::{Store, initial_state},
    view::{
        compare::{CompareView, kept_runs},
        gallery::Gallery,
        player::Player,
        run::RunPanel,
        status::StatusLine,
        topology::TopologyView,
    },
};

/// The whole page.
#[function_component(App)]
pub fn app() -> Html {
    let opts: Rc<PageOptions> = use_memo((), |_| options::from_location());
    let store = (*use_memo((), {
        let opts = Rc::clone(&opts);
        move |_| Store::new(initial_state(options::agent_url_from_location(), &opts))
    }))
    .clone();
    let gallery = use_recorded_runs(&store, &opts);
    use_embed_messages(&store);
    let send = use_connection(&store);
    let draws = use_animation_clock(&store);
    use_keyboard(&store);
    let (dark, toggle_theme) = use_theme();
    let (fit_outer, fit_inner) = (use_node_ref(), use_node_ref());
    use_fit_to_frame(opts.embed, fit_outer.clone(), fit_inner.clone());

    let views = Rc::new(opts.views.clone());
    let st = store.read();
    let cpus = Rc::new(st.cpus());
    let shown = st.shown();
    let player = |compact: bool| {
        html! {
            <Player store={store.clone()} {draws} {compact} views={Rc::clone(&views)}
                    cpus={Rc::clone(&cpus)} {dark} />
        }
    };

    if opts.embed && opts.learn() {
        return html! {
            <div class="embed" data-testid="embed" ref={fit_outer}>
                <div class="embed-fit" ref={fit_inner}>
                <Learn store={store.clone()} draws={draws} send={send.clone()} lesson={opts.lesson}
                       gallery={Rc::clone(&gallery)} cpus={Rc::clone(&cpus)} {dark} embed=true />
                </div>
            </div>
        };
    }
    if opts.embed {
        return html! {
            <div class="embed" data-testid="embed" ref={fit_outer}>
                <div class="embed-fit" ref={fit_inner}>
                if let Some(err) = &st.last_error {
                    { el!("p", ["class" => "problem", "role" => "alert"], err.clone()) }
                }
                if shown.is_none() && st.last_error.is_none() {
                    { el!("p", "placeholder", if opts.trace.is_some() { "Loading the recorded run …" } else { "Nothing to show: add ?trace=URL to the address." }) }
                }
                <div class="embed-player">{ player(true) }</div>
                if let Some(url) = shown.and_then(|r| r.url()) {
                    <a class="brand-link" href={format!("{}?trace={}", options::page_base(), options::encode(url))} target="_blank" rel="noopener"
                       title="open this run in the full page">{ "coreplay ↗" }</a>
                }
                </div>
            </div>
        };
    }

    let on_file = {
        let store = store.clone();
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                load::spawn_file(store.clone(), file);
            }
            input.set_value("");
        })
    };
    let ondragover = Callback::from(|e: DragEvent| e.prevent_default());
    let ondrop = {
        let store = store.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            if let Some(file) = e
                .data_transfer()
                .and_then(|d| d.files())
                .and_then(|f| f.get(0))
            {
                load::spawn_file(store.clone(), file);
            }
        })
    };
    let on_show = {
        let store = store.clone();
        Callback::from(move |run: u64| store.apply(Action::Select(run)))
    };
    let kept = kept_runs(&st);
    html! {
        <div class="page" {ondragover} {ondrop}>
            <header class="topbar">
                { el!("h1", "brand", "coreplay") }
                <StatusLine
                    conn={st.conn.clone()}
                    agent_url={st.agent_url.clone()}
                    agent_version={st.hello.as_ref().map(|h| h.agent_version.clone())}
                    last_error={st.last_error.clone()}
                />
                <label class="open-file" title="open a recorded run (.coreplay.gz), or drop one anywhere on the page">
                    { "open trace " }
                    <input type="file" accept=".gz,.jsonl,.coreplay,application/gzip" onchange={on_file} data-testid="open-trace" />
                </label>
                <nav class="modes" aria-label="Parts of the page">
                    <a href="?" aria-current={opts.learn().then_some("page")}>{ "Learn" }</a>
                    <a href="?lab" aria-current={(!opts.learn()).then_some("page")}>{ "Lab" }</a>
                </nav>
                <button class="theme" onclick={toggle_theme} title="light or dark theme">
                    { if dark { "☀ light" } else { "☾ dark" } }
                </button>
            </header>
            <main>
                if !opts.problems.is_empty() {
                    { el!("p", ["class" => "problem", "role" => "alert", "data-testid" => "url-problems"], format!("Ignored in the address: {}", opts.problems.join("; "))) }
                }
                if opts.learn() {
                    <Learn store={store.clone()} draws={draws} send={send.clone()} lesson={opts.lesson}
                           gallery={Rc::clone(&gallery)} cpus={Rc::clone(&cpus)} {dark} />
                } else {
                // Each part in an element of its own that is always there: parts that draw
                // nothing at first (no gallery fetched yet, no run shown) and something later
                // then never move each other (Yew once failed to insert a node, freezing the
                // page, when the gallery and the agent's hello arrived in one order).
                <div class="lab-run">
                if let Some(hello) = st.hello.clone() {
                    <RunPanel
                        scenarios={Rc::new(hello.scenarios.clone())}
                        pus={u32::try_from(hello.topology.pu_count()).unwrap_or(u32::MAX)}
                        can_run={hello.can_run}
                        connected={st.conn == Conn::Connected}
                        run={st.run().filter(|r| r.source == RunSource::Live).cloned()}
                        fidelity={hello.fidelity}
                        fidelity_note={hello.fidelity_note.clone()}
                        watch_programs={Rc::new(hello.watch_programs.clone())}
                        send={send.clone()}
                        still={st.still}
                        on_still={{ let store = store.clone(); Callback::from(move |still: bool| store.apply(Action::SetStill(still))) }}
                    />
                }
                </div>
                // Open where it is the main content (no agent) or nothing is shown yet.
                <div class="lab-gallery">
                    <Gallery store={store.clone()} entries={gallery} open={shown.is_none() || st.hello.is_none()} />
                </div>
                <div class="lab-player">{ player(false) }</div>
                <div class="lab-compare">
                if !kept.is_empty() {
                    <CompareView store={store.clone()} rev={st.rev} runs={kept} cpus={Rc::clone(&cpus)} {on_show} {dark} />
                }
                </div>
                <div class="lab-topology">
                if let Some(hello) = st.hello.clone() {
                    if shown.is_none() {
                        <TopologyView {hello} />
                    }
                } else if shown.is_none() {
                    { el!("p", "placeholder", "The machine's topology appears here once an agent is connected, or open a recorded run.") }
                }
                </div>
                }
            </main>
        </div>
    }
}
