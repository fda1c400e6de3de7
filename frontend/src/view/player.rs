//! The player: the shown run's controls and its pictures (cores, event loop, timeline,
//! summary) at the playback cursor, full size on the page or compact in an embed. Each
//! picture is built from `coreplay_shared::frame` at most once per change of what it shows.

use std::{cell::RefCell, rc::Rc};

use coreplay_shared::{
    event::Ns,
    frame::{Frame, LoopCell, build_loop, build_threads},
};
use yew::prelude::*;

use crate::view::class;

use crate::{
    options::ViewKind,
    playback::Command,
    state::Action,
    store::Store,
    view::{
        controls::Controls,
        cores::{CoresView, Others},
        event_loop::EventLoopView,
        now_showing::NowShowing,
        summary::SummaryView,
        timeline::Timeline,
    },
};

/// How long (screen time) a hand-over stays highlighted.
const HANDOVER_SCREEN_S: f64 = 0.4;

/// What a cached picture was built for: the run, its events' revision, the highlight span.
type FrameKey = (u64, u64, Ns);
/// The last threads' frame built, for its key.
type FrameMemo = Option<(FrameKey, Rc<Frame>)>;
/// The last event loop built, for its key, with the times between which it holds.
type LoopMemo = Option<(FrameKey, Ns, Ns, Rc<LoopCell>)>;

/// Properties of [`Player`].
#[derive(Debug, Properties, PartialEq)]
pub struct PlayerProps {
    /// The page's state.
    pub store: Store,
    /// Changes whenever the page redraws.
    pub draws: u64,
    /// Compact (in an embed): small controls, no line naming the run.
    #[prop_or_default]
    pub compact: bool,
    /// The pictures to show.
    pub views: Rc<Vec<ViewKind>>,
    /// Hardware threads, one timeline lane each, by OS index.
    pub cpus: Rc<Vec<u32>>,
    /// The dark theme is on.
    #[prop_or_default]
    pub dark: bool,
}

/// The player, when a run is shown.
#[function_component(Player)]
pub fn player(props: &PlayerProps) -> Html {
    // A frame holds until the next change: most animation frames reuse the last one. The
    // cores and the event loop change at different times, so each has its own.
    let last_frame = use_mut_ref(|| FrameMemo::None);
    let last_loop = use_mut_ref(|| LoopMemo::None);
    let store = &props.store;
    let on_cmd = {
        let store = store.clone();
        Callback::from(move |c: Command| store.apply(Action::Control(c)))
    };
    let on_seek = {
        let store = store.clone();
        Callback::from(move |t: Ns| store.apply(Action::Control(Command::Seek(t))))
    };
    let on_window = {
        let store = store.clone();
        Callback::from(move |(from, to): (Ns, Ns)| store.apply(Action::Window(from, to)))
    };
    let st = store.read();
    let (Some(rec), Some(topology)) = (st.shown(), st.topology()) else {
        return html! {};
    };
    if st.measuring() && st.selected.is_none() {
        return html! {
            <div class={class("player", props.compact.then_some("compact"))}>
                <p class="measuring" role="status" data-testid="measuring">
                    { "Measuring… The page keeps still while the run measures: drawing would take a CPU from it and change what it measures. The run plays from its start as soon as it ends." }
                </p>
            </div>
        };
    }
    let p = &st.playback;
    let recent = (p.ns_per_second() as f64 * HANDOVER_SCREEN_S) as Ns;
    let key = (rec.view.run, st.rev, recent);
    let frame = cached_frame(&last_frame, key, p.t, || {
        build_threads(&rec.replay, p.t, recent)
    });
    let event_loop = cached_loop(&last_loop, key, p.t, || {
        build_loop(&rec.replay, p.t, recent)
    });
    let show = |v: ViewKind| props.views.contains(&v);
    let span = rec.span();
    let compact = props.compact;
    html! {
        <div class={class("player", compact.then_some("compact"))}>
            if !compact {
                <NowShowing store={store.clone()} draws={props.draws} views={Rc::clone(&props.views)} />
            }
            <Controls t={p.t} start={span.start} end={span.end} playing={p.playing}
                      speed={p.speed} live={span.live} following={p.follow_live}
                      {on_cmd} {compact} />
            if show(ViewKind::Cores) {
                <CoresView {topology} {frame} fidelity={rec.view.fidelity} dropped={rec.view.dropped} recorded_on={rec.machine.clone()}
                           others={Others::of(rec.view.summary.as_deref())}
                           watched={rec.view.scenario == coreplay_shared::scenario::ScenarioId::Watch} />
            }
            if show(ViewKind::Loop) {
                if let Some(event_loop) = event_loop {
                    <EventLoopView {event_loop} fidelity={rec.view.fidelity} dropped={rec.view.dropped} />
                }
            }
            if show(ViewKind::Timeline) {
                <Timeline store={store.clone()} run={rec.view.run} rev={st.rev} cursor={p.t}
                          window={st.window.unwrap_or((span.start, span.end.max(span.start + 1)))}
                          cpus={Rc::clone(&props.cpus)} {on_seek} {on_window}
                          title={AttrValue::from("Timeline")} fidelity={rec.view.fidelity} dropped={rec.view.dropped}
                          dark={props.dark} />
            }
            if show(ViewKind::Summary) {
                if let Some(summary) = rec.view.summary.clone() {
                    <SummaryView {summary} recorded_on={rec.machine.clone()} />
                }
            }
        </div>
    }
}

/// The threads' frame at `t`: the cached one while it still holds, else a new one.
fn cached_frame(
    memo: &RefCell<FrameMemo>,
    key: FrameKey,
    t: Ns,
    build: impl FnOnce() -> Frame,
) -> Rc<Frame> {
    let mut memo = memo.borrow_mut();
    match memo.as_ref() {
        Some((k, f)) if *k == key && f.covers(t) => Rc::clone(f),
        _ => {
            let f = Rc::new(build());
            *memo = Some((key, Rc::clone(&f)));
            f
        }
    }
}

/// The event loop at `t` (if the run has one): the cached one while it still holds, else a
/// new one with the time until which it holds.
fn cached_loop(
    memo: &RefCell<LoopMemo>,
    key: FrameKey,
    t: Ns,
    build: impl FnOnce() -> Option<(LoopCell, Ns)>,
) -> Option<Rc<LoopCell>> {
    let mut memo = memo.borrow_mut();
    match memo.as_ref() {
        Some((k, from, until, l)) if *k == key && (*from..*until).contains(&t) => {
            Some(Rc::clone(l))
        }
        _ => {
            let (l, until) = build()?;
            let l = Rc::new(l);
            *memo = Some((key, t, until, Rc::clone(&l)));
            Some(l)
        }
    }
}
