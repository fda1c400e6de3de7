//! The root component: owns the state, the connection and the animation clock, lays out the
//! views.
//!
//! Messages fold into the state as they arrive (no copy of the run's events per message);
//! drawing happens at most once per animation frame, and only when something changed or the
//! clock moves.

use std::{cell::RefCell, rc::Rc};

use coreplay_shared::{ClientMsg, event::Ns, scenario::ParamName};
use gloo_events::EventListener;
use gloo_render::{AnimationFrame, request_animation_frame};
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::{
    conn::{self, ConnHandle},
    js,
    load::{self, GalleryEntry},
    options::{self, PageOptions, ViewKind},
    playback::Command,
    state::{Action, AppState, Conn, RunRecord, RunSource},
    view::{
        compare::{CompareView, KeptRun},
        controls::Controls,
        cores::CoresView,
        event_loop::EventLoopView,
        run::RunPanel,
        status::StatusLine,
        summary::SummaryView,
        timeline::Timeline,
        topology::TopologyView,
    },
};

/// The page's state, shared by the components that read runs directly (the timelines).
#[derive(Clone)]
pub struct Store(pub Rc<RefCell<AppState>>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// How long (screen time) a hand-over stays highlighted.
const HANDOVER_SCREEN_S: f64 = 0.4;

/// A short label for a run: scenario and its main parameter.
pub fn run_label(rec: &RunRecord) -> String {
    let v = &rec.view;
    if let Some(w) = &v.watch {
        return match &w.program {
            Some(p) => format!("watch {p}"),
            None if !w.command.is_empty() => {
                // The program's file name is enough (interpreters live in long paths).
                let mut words = w.command.clone();
                if let Some(first) = words.first_mut()
                    && let Some(base) = first.rsplit('/').next()
                {
                    *first = base.to_string();
                }
                format!("watch {}", words.join(" "))
            }
            None => format!("watch pid {}", w.pid),
        };
    }
    let main = [
        (ParamName::Threads, "T"),
        (ParamName::Processes, "P"),
        (ParamName::Requests, "K"),
    ]
    .into_iter()
    .find_map(|(p, short)| v.params.get(p).map(|n| format!(" {short}={n}")))
    .unwrap_or_default();
    format!("{}{main}", v.scenario)
}

fn schedule(store: Store, redraw: UseForceUpdateHandle, slot: Rc<RefCell<Option<AnimationFrame>>>) {
    let next = Rc::clone(&slot);
    let frame = request_animation_frame(move |now| {
        let changed = store.0.borrow_mut().tick(now);
        if changed {
            redraw.force_update();
        }
        schedule(store, redraw, next);
    });
    *slot.borrow_mut() = Some(frame);
}

fn key_command(key: &str) -> Option<Command> {
    Some(match key {
        " " | "k" => Command::Toggle,
        "ArrowRight" | "." => Command::StepForward,
        "ArrowLeft" | "," => Command::StepBack,
        "+" | "=" => Command::Faster,
        "-" | "_" => Command::Slower,
        "Home" => Command::Home,
        "End" => Command::End,
        "l" | "L" => Command::Live,
        _ => return None,
    })
}

fn set_theme(dark: bool) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-theme", if dark { "dark" } else { "light" });
    }
}

fn prefers(query: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.match_media(query).ok().flatten())
        .is_some_and(|m| m.matches())
}

/// The page's query parameters, percent-decoded.
fn query_pairs() -> Vec<(String, String)> {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    search
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| {
                js_sys::decode_uri_component(&s.replace('+', " "))
                    .ok()
                    .and_then(|d| d.as_string())
                    .unwrap_or_default()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// The page's own address without its query, for embed snippets.
fn page_base() -> String {
    web_sys::window()
        .map(|w| {
            let l = w.location();
            format!(
                "{}{}",
                l.origin().unwrap_or_default(),
                l.pathname().unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

/// An absolute URL for `url` relative to the page.
fn absolute(url: &str) -> String {
    web_sys::Url::new_with_base(url, &page_base())
        .map(|u| u.href())
        .unwrap_or_else(|_| url.to_string())
}

/// Offers the shown run as a trace file.
fn download(rec: &RunRecord, agent_version: &str) -> Result<(), String> {
    use coreplay_shared::trace_file::{Header, Machine, rfc3339_utc, to_text};
    let summary = rec
        .view
        .summary
        .as_deref()
        .ok_or("the run is still going; download it once it ends")?;
    let topology = rec
        .topology
        .as_deref()
        .ok_or("the run's machine is unknown")?;
    // A recorded run keeps when and where it was recorded; a live one is recorded now, here.
    let recorded_at = rec
        .recorded_at
        .clone()
        .unwrap_or_else(|| rfc3339_utc((js_sys::Date::now() / 1000.0) as u64));
    let machine = rec
        .recorded_machine
        .clone()
        .unwrap_or_else(|| Machine::from_topology(topology));
    let header = Header::new(
        agent_version,
        recorded_at,
        machine,
        topology,
        rec.view.scenario,
        rec.view.params.clone(),
        rec.view.fidelity,
    );
    let text = to_text(&header, &rec.events, summary);
    let name = format!(
        "{}-run{}.coreplay.gz",
        rec.view.scenario,
        rec.view.run % 1_000_000
    );
    wasm_bindgen_futures::spawn_local(async move {
        let _ = js::download_gzip(&name, &text).await;
    });
    Ok(())
}

/// The whole page.
#[function_component(App)]
pub fn app() -> Html {
    let opts: Rc<PageOptions> = (*use_memo((), |_| options::parse(&query_pairs())))
        .clone()
        .into();
    let store = {
        let opts = Rc::clone(&opts);
        let cell = use_mut_ref(move || {
            let mut state = match conn::agent_url_from_location() {
                Ok(url) => AppState::new(url),
                Err(message) => {
                    let mut state = AppState::new(String::new());
                    state.apply(Action::BadUrl(message));
                    state
                }
            };
            if (opts.embed || opts.trace.is_some()) && !opts.agent {
                state.apply(Action::Offline);
            }
            state.agent_named = opts.agent;
            if let Some(speed) = opts.speed {
                state.playback.speed = speed;
            }
            state.playback.looping = opts.looping;
            state.pending_start = opts.start;
            if !opts.problems.is_empty() {
                state.last_error = Some(format!("ignored: {}", opts.problems.join("; ")));
            }
            state
        });
        Store(cell)
    };
    let gallery = use_state(Vec::<GalleryEntry>::new);
    #[allow(clippy::type_complexity)]
    let last_loop =
        use_mut_ref(|| None::<((u64, u64, Ns), Ns, Ns, Rc<coreplay_shared::frame::LoopCell>)>);
    let last_frame = use_mut_ref(|| None::<((u64, u64, Ns), Rc<coreplay_shared::frame::Frame>)>);
    let auto_loaded = use_mut_ref(|| false);
    let embed_code = use_state(|| None::<String>);
    // The trace named in the address, and the gallery list (not in embed mode).
    {
        let (store, opts, gallery) = (store.clone(), Rc::clone(&opts), gallery.clone());
        use_effect_with((), move |_| {
            if let Some(url) = opts.trace.clone() {
                let autoplay = opts.autoplay && !prefers("(prefers-reduced-motion: reduce)");
                load::spawn_url(store, url.clone(), url, autoplay);
            }
            if !opts.embed {
                wasm_bindgen_futures::spawn_local(async move {
                    if let Ok(list) = load::gallery().await {
                        gallery.set(list);
                    }
                });
            }
        });
    }
    // The embedding page steers playback with postMessage.
    {
        let store = store.clone();
        use_effect_with((), move |_| {
            let listener = web_sys::window().map(|w| {
                EventListener::new(&w, "message", move |e| {
                    let Some(e) = e.dyn_ref::<web_sys::MessageEvent>() else {
                        return;
                    };
                    let Some(json) = js_sys::JSON::stringify(&e.data())
                        .ok()
                        .and_then(|s| s.as_string())
                    else {
                        return;
                    };
                    let reply = match options::parse_embed_message(&json) {
                        Ok(None) => return,
                        Ok(Some(cmd)) => {
                            let mut st = store.0.borrow_mut();
                            // Before the run has loaded, commands wait for it (in order).
                            let loaded = st.shown().is_some();
                            if loaded {
                                st.control(cmd);
                            } else if st.pending_cmds.len() < 32 {
                                st.pending_cmds.push(cmd);
                            }
                            format!(
                                r#"{{"coreplay":"state","loaded":{loaded},"t":{},"playing":{},"speed_ns_per_s":{}}}"#,
                                st.playback.t,
                                st.playback.playing,
                                st.playback.ns_per_second()
                            )
                        }
                        Err(message) => {
                            serde_json::json!({"coreplay": "error", "message": message}).to_string()
                        }
                    };
                    if let Ok(v) = js_sys::JSON::parse(&reply) {
                        js::post_to_parent(&v);
                    }
                })
            });
            move || drop(listener)
        });
    }
    let redraw = use_force_update();
    let conn: Rc<RefCell<Option<ConnHandle>>> = use_mut_ref(|| None);
    let dark = use_state(|| prefers("(prefers-color-scheme: dark)"));
    {
        let dark = *dark;
        use_effect_with(dark, move |&d| set_theme(d));
    }

    // The connection lives while the state says it may; a final state (incompatible agent,
    // bad URL) drops the handle, which closes the socket.
    let is_final = store.0.borrow().conn.is_final();
    {
        let (store, url, conn) = (
            store.clone(),
            store.0.borrow().agent_url.clone(),
            Rc::clone(&conn),
        );
        use_effect_with(is_final, move |is_final| {
            if !*is_final {
                *conn.borrow_mut() = Some(conn::start(
                    url,
                    Callback::from(move |a| store.0.borrow_mut().apply(a)),
                ));
            }
            move || drop(conn.borrow_mut().take())
        });
    }
    // The animation clock.
    {
        let (store, redraw) = (store.clone(), redraw.clone());
        use_effect_with((), move |_| {
            let slot = Rc::new(RefCell::new(None));
            schedule(store, redraw, Rc::clone(&slot));
            move || {
                slot.borrow_mut().take();
            }
        });
    }
    // Keyboard controls, anywhere but in form fields.
    {
        let store = store.clone();
        use_effect_with((), move |_| {
            let listener = web_sys::window().and_then(|w| w.document()).map(|doc| {
                EventListener::new(&doc, "keydown", move |e| {
                    let Some(e) = e.dyn_ref::<web_sys::KeyboardEvent>() else {
                        return;
                    };
                    if e.ctrl_key() || e.meta_key() || e.alt_key() {
                        return;
                    }
                    let in_field = e
                        .target()
                        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                        .is_some_and(|el| {
                            matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA")
                        });
                    if in_field {
                        return;
                    }
                    if let Some(cmd) = key_command(&e.key()) {
                        e.prevent_default();
                        store.0.borrow_mut().control(cmd);
                    }
                })
            });
            move || drop(listener)
        });
    }

    let send = {
        let conn = Rc::clone(&conn);
        Callback::from(move |msg: ClientMsg| {
            if let Some(handle) = conn.borrow().as_ref() {
                handle.send(&msg);
            }
        })
    };
    let on_cmd = {
        let store = store.clone();
        Callback::from(move |c: Command| store.0.borrow_mut().control(c))
    };
    let on_seek = {
        let store = store.clone();
        Callback::from(move |t: Ns| store.0.borrow_mut().control(Command::Seek(t)))
    };
    let on_window = {
        let store = store.clone();
        Callback::from(move |w: (Ns, Ns)| {
            let mut st = store.0.borrow_mut();
            st.window = (w.1 > w.0).then_some(w);
            st.dirty = true;
        })
    };
    let on_show = {
        let store = store.clone();
        Callback::from(move |run: u64| store.0.borrow_mut().select(run))
    };
    let toggle_theme = {
        let dark = dark.clone();
        Callback::from(move |_| dark.set(!*dark))
    };

    let st = store.0.borrow();
    // With no agent and nothing shown, show a real recorded run at once.
    if st.runs.is_empty()
        && !*auto_loaded.borrow()
        && matches!(st.conn, Conn::Unreachable { .. } | Conn::Offline)
        && opts.trace.is_none()
        && let Some(first) = gallery.first()
    {
        *auto_loaded.borrow_mut() = true;
        load::spawn_url(
            store.clone(),
            format!("gallery/{}", first.file),
            first.title.clone(),
            false,
        );
    }
    let show = |v: ViewKind| opts.views.contains(&v);
    let scenarios = Rc::new(
        st.hello
            .as_ref()
            .map(|h| h.scenarios.clone())
            .unwrap_or_default(),
    );
    let shown = st.shown();
    let topology = shown
        .and_then(|r| r.topology.clone())
        .or_else(|| st.hello.as_ref().map(|h| Rc::new(h.topology.clone())));
    let cpus: Rc<Vec<u32>> = Rc::new(
        topology
            .as_ref()
            .map(|t| {
                let mut pus = t.root.pus.clone();
                pus.sort_unstable();
                pus
            })
            .unwrap_or_default(),
    );
    let p = &st.playback;
    let recent = (p.ns_per_second() as f64 * HANDOVER_SCREEN_S) as Ns;
    // A frame holds until the next change: most animation frames reuse the last one. The
    // cores and the event loop change at different times, so each has its own.
    let frame = shown.map(|rec| {
        let key = (rec.view.run, st.rev, recent);
        let mut memo = last_frame.borrow_mut();
        match memo.as_ref() {
            Some((k, f)) if *k == key && f.covers(p.t) => Rc::clone(f),
            _ => {
                let f = Rc::new(coreplay_shared::frame::build_threads(
                    &rec.replay,
                    p.t,
                    recent,
                ));
                *memo = Some((key, Rc::clone(&f)));
                f
            }
        }
    });
    let event_loop = shown.and_then(|rec| {
        let key = (rec.view.run, st.rev, recent);
        let mut memo = last_loop.borrow_mut();
        match memo.as_ref() {
            Some((k, from, until, l)) if *k == key && (*from..*until).contains(&p.t) => {
                Some(Rc::clone(l))
            }
            _ => {
                let (l, until) = coreplay_shared::frame::build_loop(&rec.replay, p.t, recent)?;
                let l = Rc::new(l);
                *memo = Some((key, p.t, until, Rc::clone(&l)));
                Some(l)
            }
        }
    });
    let kept = Rc::new(
        st.runs
            .iter()
            .map(|r| KeptRun {
                run: r.view.run,
                label: run_label(r),
                summary: r.view.summary.clone(),
                end: r.replay.end(),
                events: r.replay.event_count(),
            })
            .collect::<Vec<_>>(),
    );
    let agent_version = st
        .hello
        .as_ref()
        .map_or_else(|| "page".to_string(), |h| h.agent_version.clone());
    let on_download = {
        let store = store.clone();
        Callback::from(move |_| {
            let mut st = store.0.borrow_mut();
            let result = st.shown().map(|rec| download(rec, &agent_version));
            if let Some(Err(e)) = result {
                st.last_error = Some(e);
                st.dirty = true;
            }
        })
    };
    let trace_url = shown.and_then(|r| match &r.view.source {
        RunSource::Recorded { url: Some(u), .. } => Some(u.clone()),
        _ => None,
    });
    let on_embed = {
        let (embed_code, views, t, speed) = (embed_code.clone(), opts.views.clone(), p.t, p.speed);
        let trace_url = trace_url.clone();
        Callback::from(move |_| {
            let Some(url) = &trace_url else { return };
            let code = options::embed_code(&page_base(), &absolute(url), &views, t, speed);
            let copy = code.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let _ = js::copy_text(&copy).await;
            });
            embed_code.set(Some(code));
        })
    };
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
    let mut machines: Vec<&str> = Vec::new();
    for g in gallery.iter() {
        if !machines.contains(&g.machine.as_str()) {
            machines.push(&g.machine);
        }
    }
    let open_gallery = |entry: &GalleryEntry| {
        let (store, url, title) = (
            store.clone(),
            format!("gallery/{}", entry.file),
            entry.title.clone(),
        );
        Callback::from(move |_| load::spawn_url(store.clone(), url.clone(), title.clone(), false))
    };

    let player = |compact: bool| -> Html {
        let (Some(rec), Some(frame), Some(topology)) = (shown, frame.clone(), topology.clone())
        else {
            return html! {};
        };
        let span = rec.span();
        html! {
            <div class={classes!("player", compact.then_some("compact"))}>
                if !compact {
                    <div class="now-showing" data-load={st.last_load.filter(|_| rec.view.run >= crate::state::RECORDED_RUN_BASE).map(|l| format!(
                        "{{\"events\":{},\"bytes\":{},\"text_bytes\":{},\"read_ms\":{:.1},\"decode_ms\":{:.1},\"apply_ms\":{:.1}}}",
                        rec.view.events, l.bytes, l.text_bytes, l.read_ms, l.decode_ms, l.apply_ms))}>
                        { if rec.view.run >= crate::state::RECORDED_RUN_BASE { format!("Showing a recorded run: {}", run_label(rec)) } else { format!("Showing run {}: {}", rec.view.run, run_label(rec)) } }
                        if let RunSource::Recorded { name, .. } = &rec.view.source {
                            <span class="note" data-testid="recorded-from">
                                { format!("from {name}; recorded on {}{}", rec.machine.clone().unwrap_or_default(),
                                    rec.recorded_at.as_ref().map(|t| format!(" at {t}")).unwrap_or_default()) }
                            </span>
                        }
                        if st.selected.is_some() {
                            <button onclick={let s = store.clone(); Callback::from(move |_| { let mut st = s.0.borrow_mut(); if let Some(n) = st.runs.last().map(|r| r.view.run) { st.select(n); } })}>
                                { "back to the newest run" }
                            </button>
                        }
                        <button onclick={on_download.clone()} disabled={rec.view.summary.is_none()} data-testid="download"
                                title="save this run as a trace file (.coreplay.gz) to replay or share">{ "download trace" }</button>
                        if trace_url.is_some() {
                            <button onclick={on_embed.clone()} data-testid="embed-code"
                                    title="copy an iframe snippet showing this run at this time">{ "copy embed code" }</button>
                        }
                    </div>
                    if let Some(code) = &*embed_code {
                        <textarea class="embed-code" readonly=true rows="3" data-testid="embed-snippet" value={code.clone()} />
                    }
                }
                <Controls t={p.t} start={span.start} end={span.end} playing={p.playing}
                          speed={p.speed} live={span.live} following={p.follow_live}
                          on_cmd={on_cmd.clone()} {compact} />
                if show(ViewKind::Cores) {
                    <CoresView {topology} frame={Rc::clone(&frame)} fidelity={rec.view.fidelity} dropped={rec.view.dropped} recorded_on={rec.machine.clone()} />
                }
                if show(ViewKind::Loop) {
                    if let Some(event_loop) = event_loop.clone() {
                        <EventLoopView {event_loop} fidelity={rec.view.fidelity} dropped={rec.view.dropped} />
                    }
                }
                if show(ViewKind::Timeline) {
                    <Timeline store={store.clone()} run={rec.view.run} rev={st.rev} cursor={p.t}
                              window={st.window.unwrap_or((span.start, span.end.max(span.start + 1)))}
                              cpus={Rc::clone(&cpus)} on_seek={on_seek.clone()} on_window={on_window.clone()}
                              title={AttrValue::from("Timeline")} fidelity={rec.view.fidelity} dropped={rec.view.dropped}
                              dark={*dark} />
                }
                if show(ViewKind::Summary) {
                    if let Some(summary) = rec.view.summary.clone() {
                        <SummaryView {summary} recorded_on={rec.machine.clone()} />
                    }
                }
            </div>
        }
    };

    if opts.embed {
        return html! {
            <div class="embed" data-testid="embed">
                if let Some(err) = &st.last_error {
                    <p class="problem" role="alert">{ err.clone() }</p>
                }
                if shown.is_none() && st.last_error.is_none() {
                    <p class="placeholder">{ if opts.trace.is_some() { "Loading the recorded run …" } else { "Nothing to show: add ?trace=URL to the address." } }</p>
                }
                { player(true) }
                if let Some(url) = &trace_url {
                    <a class="brand-link" href={format!("{}?trace={}", page_base(), options::encode(url))} target="_blank" rel="noopener"
                       title="open this run in the full page">{ "coreplay ↗" }</a>
                }
            </div>
        };
    }
    html! {
        <div class="page" {ondragover} {ondrop}>
            <header class="topbar">
                <h1 class="brand">{ "coreplay" }</h1>
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
                <button class="theme" onclick={toggle_theme} title="light or dark theme">
                    { if *dark { "☀ light" } else { "☾ dark" } }
                </button>
            </header>
            <main>
                if !opts.problems.is_empty() {
                    <p class="problem" role="alert" data-testid="url-problems">{ format!("Ignored in the address: {}", opts.problems.join("; ")) }</p>
                }
                if let Some(hello) = st.hello.clone() {
                    <RunPanel
                        scenarios={scenarios}
                        pus={u32::try_from(hello.topology.pu_count()).unwrap_or(u32::MAX)}
                        can_run={hello.can_run}
                        connected={st.conn == Conn::Connected}
                        run={st.run().filter(|r| r.source == RunSource::Live).cloned()}
                        fidelity={hello.fidelity}
                        fidelity_note={hello.fidelity_note.clone()}
                        watch_programs={Rc::new(hello.watch_programs.clone())}
                        {send}
                    />
                }
                if !gallery.is_empty() {
                    // Open where it is the main content (no agent) or nothing is shown yet.
                    <details class="gallery" open={shown.is_none() || st.hello.is_none()} data-testid="gallery">
                        <summary>{ format!("Gallery: {} runs recorded by the agent on real machines", gallery.len()) }</summary>
                        // One list per machine, in the order the index names them.
                        { for machines.iter().map(|machine| html! {
                            <section class="gallery-machine">
                                <p class="note">{ format!("Recorded on {machine} (hover an entry for when):") }</p>
                                <ul>
                                    { for gallery.iter().filter(|g| g.machine == *machine).map(|g| html! {
                                        <li title={format!("recorded on {} at {}", g.machine, g.recorded_at)}>
                                            <button onclick={open_gallery(g)} data-gallery={g.file.clone()}>{ g.title.clone() }</button>
                                            <span class="note">{ format!(" {} events", g.events) }</span>
                                        </li>
                                    }) }
                                </ul>
                            </section>
                        }) }
                    </details>
                }
                { player(false) }
                if !kept.is_empty() {
                    <CompareView store={store.clone()} rev={st.rev} runs={kept} cpus={Rc::clone(&cpus)} {on_show} dark={*dark} />
                }
                if let Some(hello) = st.hello.clone() {
                    if shown.is_none() {
                        <TopologyView {hello} />
                    }
                } else if shown.is_none() {
                    <p class="placeholder">{ "The machine's topology appears here once an agent is connected, or open a recorded run." }</p>
                }
            </main>
        </div>
    }
}
