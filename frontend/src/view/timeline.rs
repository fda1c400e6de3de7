//! The timeline: one lane per hardware thread (like `perf sched map` or Perfetto's CPU
//! tracks) with slices coloured by thread, then lanes for the busiest threads showing why they
//! were off the CPU; a cursor in step with the animation. Canvas 2D, drawing at most one rect
//! per pixel column per lane, so dense runs stay fast. Wheel zooms around the pointer, drag
//! pans, a click seeks; hovering names the slice. This file decides when to draw and handles
//! the pointer; `timeline/paint.rs` paints.

use coreplay_shared::Fixed;
use std::{cell::RefCell, rc::Rc};

use crate::view::el;
use coreplay_shared::event::{Fidelity, Ns};
use gloo_events::{EventListener, EventListenerOptions};
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};
use yew::prelude::*;

use crate::{playback::duration, store::Store, view::cores::trust};

mod paint;

use paint::{Lane, describe, draw_lanes, layout};

/// Thread lanes drawn under the CPU lanes at most.
pub const MAX_THREAD_LANES: usize = 16;
const LABEL_W: f64 = 92.0;
const AXIS_H: f64 = 18.0;

/// Properties of [`Timeline`].
#[derive(Debug, Properties, PartialEq)]
pub struct TimelineProps {
    /// Where the runs live.
    pub store: Store,
    /// Which run.
    pub run: u64,
    /// Changes whenever the run's events change.
    pub rev: u64,
    /// The cursor, ns.
    pub cursor: Ns,
    /// The visible window, ns.
    pub window: (Ns, Ns),
    /// Hardware threads, one lane each, by OS index.
    pub cpus: Rc<Vec<u32>>,
    /// Seek to a time.
    pub on_seek: Callback<Ns>,
    /// Show another window (zoom, pan).
    pub on_window: Callback<(Ns, Ns)>,
    /// Heading.
    pub title: AttrValue,
    /// How the events were obtained.
    pub fidelity: Fidelity,
    /// Events lost, if any.
    pub dropped: u64,
    /// The dark theme is on: the canvas draws its own text colours, so it redraws on a change.
    #[prop_or_default]
    pub dark: bool,
}

/// What the drawn lanes show: events revision, run, window, pixel size, dark theme.
type LanesKey = (u64, u64, (Ns, Ns), u32, u32, bool);

/// Redraws of the same run after its events changed (new events of a live run, and whatever
/// else changed with them, such as the window that follows the run's end) come at most this
/// often, ms (five times a second: the lanes are the run's overview; the cores view is what
/// moves with every frame) …
const LIVE_REDRAW_MS: f64 = 200.0;
/// … and no sooner than this many times the last drawing's cost, so that drawing takes at most a
/// tenth of the page's time: a dense live run (the busiest streams 200 k events/s) redrew every
/// lane on every batch, and the page fell to 24 fps and dropped events; at most ten redraws a
/// second still took 14 % of the page's main thread following that run on 2 cores.
const LIVE_REDRAW_SHARE: f64 = 10.0;

/// What the timeline drew last, and a redraw held back.
#[derive(Default)]
struct Drawn {
    key: Option<LanesKey>,
    /// No redraw for new events before this (`performance.now()`, ms).
    next_at: f64,
    /// The newest drawing held back, drawn by a timer at `next_at`.
    held: Option<DrawArgs>,
    timer_set: bool,
    /// The canvas's CSS width as last laid out, kept by a `ResizeObserver`: reading
    /// `clientWidth` right after the page's DOM changed forced a layout on every drawing.
    css_w: Option<f64>,
    /// The last drawing's arguments, to draw again when the width changes.
    last: Option<DrawArgs>,
}

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
}

/// Draws the lanes on the canvas now, or, when only new events of the same run arrived since
/// the last drawing and that was too recent, holds the drawing back and sets a timer for it
/// (so the last events of a run are always drawn).
fn draw_or_hold(canvas: &NodeRef, args: DrawArgs, drawn: &Rc<RefCell<Drawn>>) {
    let now = crate::js::now_ms();
    {
        let mut d = drawn.borrow_mut();
        let events_only = d
            .key
            .is_some_and(|k| k.1 == args.run && k.5 == args.dark && k.0 != args.rev);
        if events_only && now < d.next_at {
            let wait = d.next_at - now;
            d.held = Some(args);
            if !d.timer_set {
                d.timer_set = true;
                let (canvas, drawn) = (canvas.clone(), Rc::clone(drawn));
                let fire = wasm_bindgen::closure::Closure::once_into_js(move || {
                    let held = {
                        let mut d = drawn.borrow_mut();
                        d.timer_set = false;
                        let held = d.held.take();
                        if held.is_some() {
                            d.next_at = 0.0;
                        }
                        held
                    };
                    if let Some(args) = held {
                        draw_or_hold(&canvas, args, &drawn);
                    }
                });
                crate::js::after_ms(wait, &fire);
            }
            return;
        }
        d.held = None;
    }
    let Some(c) = canvas.cast::<HtmlCanvasElement>() else {
        return;
    };
    let css_w = *drawn
        .borrow_mut()
        .css_w
        .get_or_insert_with(|| f64::from(c.client_width()));
    let key = draw(&c, &args, css_w.max(200.0));
    let spent = crate::js::now_ms() - now;
    let mut d = drawn.borrow_mut();
    d.key = key;
    d.last = Some(args);
    d.next_at = now + LIVE_REDRAW_MS.max(spent * LIVE_REDRAW_SHARE);
}

/// Draws the lanes; returns what they show.
fn draw(canvas: &HtmlCanvasElement, props: &DrawArgs, css_w: f64) -> Option<LanesKey> {
    let main = context(canvas)?;
    let store = props.store.read();
    let rec = store.runs.iter().find(|r| r.view.run == props.run)?;
    let replay = &rec.replay;
    let l = layout(replay, &props.cpus);
    let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
    let (pw, ph) = ((css_w * dpr) as u32, (l.height * dpr) as u32);
    if canvas.width() != pw {
        canvas.set_width(pw);
    }
    if canvas.height() != ph {
        canvas.set_height(ph);
    }
    let _ = canvas
        .style()
        .set_property("height", &format!("{}px", Fixed(l.height, 1)));
    let dark = props.dark;
    // Straight onto the page's canvas: the cursor is a DOM line over it, so nothing else
    // repaints it (an offscreen copy cost a full-canvas `drawImage` per drawing).
    let _ = main.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
    draw_lanes(&main, replay, &l, props.window, css_w, dark);
    // What the drawing covers, for tests: a live run's last events must not stay held back.
    let _ = canvas.set_attribute("data-drawn-events", &replay.event_count().to_string());
    // … and whether its window reached the run's end (a stale window would not).
    let _ = canvas.set_attribute(
        "data-drawn-to-end",
        if props.window.1 >= replay.end() {
            "true"
        } else {
            "false"
        },
    );
    let _ = canvas.set_attribute("data-drawn-theme", if dark { "dark" } else { "light" });
    // … and how many hardware threads it has a lane for.
    let cpu_lanes = l
        .lanes
        .iter()
        .filter(|lane| matches!(lane, Lane::Cpu(_)))
        .count();
    let _ = canvas.set_attribute("data-cpu-lanes", &cpu_lanes.to_string());
    Some((props.rev, props.run, props.window, pw, ph, dark))
}

/// Width of the plot area (right of the lane labels) of a drawn canvas, CSS pixels.
fn plot_width(canvas: &NodeRef) -> f64 {
    canvas
        .cast::<HtmlCanvasElement>()
        .map_or(800.0, |c| f64::from(c.client_width().max(200)))
        - LABEL_W
}

/// The timeline component.
#[function_component(Timeline)]
pub fn timeline(props: &TimelineProps) -> Html {
    let canvas = use_node_ref();
    let hover = use_state(|| None::<(f64, f64, String)>);
    let drag = use_mut_ref(|| None::<(f64, (Ns, Ns), bool)>);
    let drawn = use_mut_ref(Drawn::default);

    {
        // Draw once mounted and after every change.
        let canvas = canvas.clone();
        // The cursor is a DOM line over the canvas: moving it repaints nothing here.
        let deps = (
            props.rev,
            props.window,
            props.run,
            Rc::clone(&props.cpus),
            props.dark,
        );
        let args = DrawArgs::from(props);
        let drawn = drawn.clone();
        use_effect_with(deps, move |_| draw_or_hold(&canvas, args, &drawn));
    }
    {
        // A new width (window resized, a scrollbar came or went): draw again at once.
        let (canvas, drawn) = (canvas.clone(), drawn.clone());
        use_effect_with((), move |()| {
            let target = canvas.clone();
            let on_resize = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
                let Some(c) = target.cast::<HtmlCanvasElement>() else {
                    return;
                };
                let w = f64::from(c.client_width());
                let newest = {
                    let mut d = drawn.borrow_mut();
                    if d.css_w == Some(w) {
                        return;
                    }
                    d.css_w = Some(w);
                    d.key = None;
                    // A drawing held back is newer than the last one drawn.
                    d.held.take().or_else(|| d.last.clone())
                };
                if let Some(args) = newest {
                    // Not inside the observer's callback: drawing sets the canvas's height,
                    // and a size change there is a "ResizeObserver loop" error.
                    let (target, drawn) = (target.clone(), Rc::clone(&drawn));
                    let later = wasm_bindgen::closure::Closure::once_into_js(move || {
                        draw_or_hold(&target, args, &drawn);
                    });
                    crate::js::after_ms(0.0, &later);
                }
            });
            let observer = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()).ok();
            if let (Some(o), Some(c)) = (&observer, canvas.cast::<web_sys::Element>()) {
                o.observe(&c);
            }
            move || {
                if let Some(o) = observer {
                    o.disconnect();
                }
                drop(on_resize);
            }
        });
    }

    // Wheel zoom needs a listener that may prevent the page from scrolling.
    {
        let canvas = canvas.clone();
        let on_window = props.on_window.clone();
        let window = props.window;
        use_effect_with(window, move |&(from, to)| {
            let listener = canvas.cast::<HtmlCanvasElement>().map(|c| {
                let target = canvas.clone();
                EventListener::new_with_options(
                    &c,
                    "wheel",
                    EventListenerOptions::enable_prevent_default(),
                    move |e| {
                        let Some(e) = e.dyn_ref::<web_sys::WheelEvent>() else {
                            return;
                        };
                        e.prevent_default();
                        let w = plot_width(&target);
                        let fx = ((f64::from(e.offset_x()) - LABEL_W) / w).clamp(0.0, 1.0);
                        let span = to.saturating_sub(from).max(1) as f64;
                        let factor = if e.delta_y() > 0.0 { 1.25 } else { 0.8 };
                        let new_span = (span * factor).clamp(1_000.0, 1e13);
                        let pivot = from as f64 + fx * span;
                        let nf = (pivot - fx * new_span).max(0.0);
                        on_window.emit((nf as Ns, (nf + new_span) as Ns));
                    },
                )
            });
            move || drop(listener)
        });
    }

    let time_at = {
        let window = props.window;
        let canvas = canvas.clone();
        move |x: f64| {
            let fx = ((x - LABEL_W) / plot_width(&canvas)).clamp(0.0, 1.0);
            window.0 + (fx * window.1.saturating_sub(window.0) as f64) as Ns
        }
    };
    let onmousedown = {
        let drag = drag.clone();
        let window = props.window;
        Callback::from(move |e: MouseEvent| {
            *drag.borrow_mut() = Some((f64::from(e.offset_x()), window, false));
        })
    };
    let onmousemove = {
        let (drag, hover, store, run, cpus, on_window, canvas) = (
            drag.clone(),
            hover.clone(),
            props.store.clone(),
            props.run,
            Rc::clone(&props.cpus),
            props.on_window.clone(),
            canvas.clone(),
        );
        let time_at = time_at.clone();
        Callback::from(move |e: MouseEvent| {
            let x = f64::from(e.offset_x());
            let y = f64::from(e.offset_y());
            if let Some((x0, (from, to), moved)) = drag.borrow_mut().as_mut()
                && e.buttons() & 1 == 1
                && ((x - *x0).abs() > 3.0 || *moved)
            {
                *moved = true;
                let dt = ((x - *x0) / plot_width(&canvas) * (*to - *from) as f64) as i64;
                let nf = (*from as i64 - dt).max(0) as Ns;
                on_window.emit((nf, nf + (*to - *from)));
                return;
            }
            let st = store.read();
            let Some(rec) = st.runs.iter().find(|r| r.view.run == run) else {
                return;
            };
            let l = layout(&rec.replay, &cpus);
            let lane = ((y - AXIS_H) / l.lane_h).floor();
            let text = (lane >= 0.0 && x > LABEL_W)
                .then(|| l.lanes.get(lane as usize).copied())
                .flatten()
                .and_then(|lane| describe(&rec.replay, lane, time_at(x)));
            hover.set(text.map(|t| (x, y, t)));
        })
    };
    let onmouseup = {
        let (drag, on_seek) = (drag.clone(), props.on_seek.clone());
        let time_at = time_at.clone();
        Callback::from(move |e: MouseEvent| {
            if let Some((_, _, moved)) = drag.borrow_mut().take()
                && !moved
            {
                on_seek.emit(time_at(f64::from(e.offset_x())));
            }
        })
    };
    let onmouseleave = {
        let (hover, drag) = (hover.clone(), drag.clone());
        Callback::from(move |_| {
            hover.set(None);
            drag.borrow_mut().take();
        })
    };
    let zoom = |factor: f64| {
        let (on_window, (from, to), cursor) = (props.on_window.clone(), props.window, props.cursor);
        Callback::from(move |_| {
            let span = (to.saturating_sub(from).max(1) as f64 * factor).clamp(1_000.0, 1e13);
            let nf = (cursor as f64 - span / 2.0).max(0.0);
            on_window.emit((nf as Ns, (nf + span) as Ns));
        })
    };
    let fit = {
        let on_window = props.on_window.clone();
        Callback::from(move |_| on_window.emit((0, 0)))
    };
    html! {
        <section class="timeline" aria-label="Timeline" data-testid="timeline">
            { el!("h2", [], props.title.clone()) }
            <p class="caption">
                { "One lane per hardware thread: a bar as tall as the share of that moment it ran this run's threads, in the colour of the one that ran most of it. \
                   Below, the busiest threads (up to 16): a bar in the thread's colour as tall as the share of that moment it ran, and behind it why it was off \
                   the CPU (orange: preempted, red: waiting for the lock, amber: I/O, grey: asleep). Wheel zooms, drag pans, click seeks." }
                { trust(props.fidelity, props.dropped) }
            </p>
            <div class="timeline-tools">
                <button onclick={zoom(0.5)} title="zoom in around the cursor">{ "+" }</button>
                <button onclick={zoom(2.0)} title="zoom out">{ "−" }</button>
                <button onclick={fit} title="show the whole run">{ "fit" }</button>
                { el!("span", "note", format!("{} – {} shown", duration(props.window.0), duration(props.window.1))) }
            </div>
            <div class="timeline-wrap">
                <canvas ref={canvas} {onmousedown} {onmousemove} {onmouseup} {onmouseleave} data-run={props.run.to_string()} />
                if (props.window.0..=props.window.1).contains(&props.cursor) {
                    // A full-width line moved by a transform: the compositor moves it, no layout.
                    <div class="cursor-track" aria-hidden="true" style={format!("left: {}px", Fixed(LABEL_W, 0))}>
                        <div class="cursor" style={format!("transform: translateX({}%)",
                            Fixed(100.0 * (props.cursor - props.window.0) as f64 / props.window.1.saturating_sub(props.window.0).max(1) as f64, 4))} />
                    </div>
                }
                if let Some((x, y, text)) = &*hover {
                    <div class="tooltip" role="tooltip" style={format!("left:{}px;top:{}px", Fixed(x + 12.0, 1), Fixed(y + 12.0, 1))}>{ text.clone() }</div>
                }
            </div>
        </section>
    }
}

/// What drawing needs, owned, for the effect closure.
#[derive(Clone)]
struct DrawArgs {
    store: Store,
    rev: u64,
    run: u64,
    window: (Ns, Ns),
    cpus: Rc<Vec<u32>>,
    dark: bool,
}

impl From<&TimelineProps> for DrawArgs {
    fn from(p: &TimelineProps) -> Self {
        DrawArgs {
            store: p.store.clone(),
            rev: p.rev,
            run: p.run,
            window: p.window,
            cpus: Rc::clone(&p.cpus),
            dark: p.dark,
        }
    }
}
