//! The timeline: one lane per hardware thread (like `perf sched map` or Perfetto's CPU
//! tracks) with slices coloured by thread, then lanes for the first threads showing why they
//! were off the CPU; a cursor in step with the animation. Canvas 2D, drawing at most one rect
//! per pixel column per lane, so dense runs stay fast. Wheel zooms around the pointer, drag
//! pans, a click seeks; hovering names the slice.

use std::rc::Rc;

use coreplay_shared::{
    event::{Fidelity, Ns, OffReason},
    replay::Replay,
};
use gloo_events::{EventListener, EventListenerOptions};
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};
use yew::prelude::*;

use crate::{app::Store, playback::duration, view::cores::trust};
use coreplay_shared::frame::hue;

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
}

/// A lane of the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lane {
    Cpu(u32),
    Thread(u32),
}

struct Layout {
    lanes: Vec<Lane>,
    lane_h: f64,
    height: f64,
}

fn layout(replay: &Replay, cpus: &[u32]) -> Layout {
    let mut lanes: Vec<Lane> = cpus.iter().map(|&c| Lane::Cpu(c)).collect();
    for c in replay.cpus() {
        if !cpus.contains(&c) {
            lanes.push(Lane::Cpu(c));
        }
    }
    lanes.extend(
        replay
            .threads()
            .iter()
            .take(MAX_THREAD_LANES)
            .map(|t| Lane::Thread(t.tid)),
    );
    let lane_h = match lanes.len() {
        0..=24 => 18.0,
        25..=64 => 10.0,
        65..=160 => 5.0,
        _ => 3.0,
    };
    Layout {
        height: AXIS_H + lane_h * lanes.len() as f64 + 4.0,
        lanes,
        lane_h,
    }
}

fn off_colour(reason: OffReason) -> &'static str {
    match reason {
        OffReason::Preempted => "rgba(230,126,34,0.55)",
        OffReason::Lock => "rgba(192,57,43,0.55)",
        OffReason::Io => "rgba(183,121,31,0.45)",
        OffReason::Sleep => "rgba(127,140,141,0.35)",
        OffReason::Unknown => "rgba(127,140,141,0.2)",
    }
}

fn off_label(reason: OffReason) -> &'static str {
    match reason {
        OffReason::Preempted => "runnable, preempted",
        OffReason::Lock => "waiting for the lock",
        OffReason::Io => "blocked on I/O",
        OffReason::Sleep => "asleep or blocked",
        OffReason::Unknown => "off CPU, no switch counted",
    }
}

/// Draws rects in one lane, merging those that fall in an already drawn pixel column.
struct LaneDrawer<'a> {
    ctx: &'a CanvasRenderingContext2d,
    y: f64,
    h: f64,
    last_px: f64,
    last_colour: *const str,
}

impl LaneDrawer<'_> {
    fn rect(&mut self, x0: f64, x1: f64, colour: &str) {
        let x1 = x1.max(x0 + 1.0);
        if x1.floor() <= self.last_px {
            return;
        }
        let x0 = x0.max(self.last_px);
        // Setting the style parses a CSS colour: skip it when it is the same string.
        if !std::ptr::eq(self.last_colour, colour) {
            self.ctx.set_fill_style_str(colour);
            self.last_colour = colour;
        }
        self.ctx.fill_rect(x0, self.y, x1 - x0, self.h);
        self.last_px = x1.floor();
    }
}

/// `hsl(h,65%,52%)` for every hue, made once.
fn hue_colours() -> &'static [String] {
    thread_local! {
        static COLOURS: &'static [String] =
            Box::leak((0..360).map(|h| format!("hsl({h},65%,52%)")).collect::<Vec<_>>().into_boxed_slice());
    }
    COLOURS.with(|c| *c)
}

/// The lanes drawn last, kept in an offscreen canvas so that moving the cursor only copies
/// them (a dense run can take tens of milliseconds to draw, the copy well under one).
#[derive(Debug)]
struct LaneCache {
    canvas: HtmlCanvasElement,
    key: Option<LanesKey>,
}

/// What the cached lanes depend on: events revision, run, window, pixel size, dark theme.
type LanesKey = (u64, u64, (Ns, Ns), u32, u32, bool);

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
}

fn draw(canvas: &HtmlCanvasElement, props: &DrawArgs, cache: &mut Option<LaneCache>) {
    let Some(main) = context(canvas) else {
        return;
    };
    let store = props.store.0.borrow();
    let Some(rec) = store.runs.iter().find(|r| r.view.run == props.run) else {
        return;
    };
    let replay = &rec.replay;
    let css_w = f64::from(canvas.client_width().max(200));
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
        .set_property("height", &format!("{}px", l.height));
    let dark = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
        .and_then(|e| e.get_attribute("data-theme"))
        .is_some_and(|t| t == "dark");
    let key = (props.rev, props.run, props.window, pw, ph, dark);
    if cache.is_none() {
        *cache = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.create_element("canvas").ok())
            .and_then(|e| e.dyn_into::<HtmlCanvasElement>().ok())
            .map(|canvas| LaneCache { canvas, key: None });
    }
    let Some(cache) = cache.as_mut() else {
        return;
    };
    if cache.key != Some(key) {
        cache.canvas.set_width(pw);
        cache.canvas.set_height(ph);
        if let Some(ctx) = context(&cache.canvas) {
            let _ = ctx.set_transform(dpr, 0.0, 0.0, dpr, 0.0, 0.0);
            draw_lanes(&ctx, replay, &l, props.window, css_w, dark);
        }
        cache.key = Some(key);
    }
    let _ = main.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0);
    main.clear_rect(0.0, 0.0, f64::from(pw), f64::from(ph));
    let _ = main.draw_image_with_html_canvas_element(&cache.canvas, 0.0, 0.0);
}

/// Axis, lane labels and slices (everything but the cursor).
fn draw_lanes(
    ctx: &CanvasRenderingContext2d,
    replay: &Replay,
    l: &Layout,
    window: (Ns, Ns),
    css_w: f64,
    dark: bool,
) {
    ctx.clear_rect(0.0, 0.0, css_w, l.height);
    let fg = if dark { "#e6e9ec" } else { "#1d232a" };
    let muted = if dark { "#9aa4ae" } else { "#5b6570" };
    let (from, to) = window;
    let span = (to.saturating_sub(from)).max(1) as f64;
    let plot_w = (css_w - LABEL_W).max(10.0);
    let x_of = |t: Ns| LABEL_W + (t.saturating_sub(from) as f64 / span * plot_w).min(plot_w + 1.0);
    let colours = hue_colours();
    // Axis.
    ctx.set_font("11px system-ui, sans-serif");
    ctx.set_fill_style_str(muted);
    let ticks = 6;
    for i in 0..=ticks {
        let t = from + (span * f64::from(i) / f64::from(ticks)) as Ns;
        let x = x_of(t);
        ctx.fill_rect(x, AXIS_H - 4.0, 1.0, 4.0);
        let _ = ctx.fill_text(&duration(t), (x - 10.0).min(css_w - 50.0), 11.0);
    }
    let font = format!(
        "{}px system-ui, sans-serif",
        (l.lane_h - 3.0).clamp(7.0, 11.0)
    );
    ctx.set_font(&font);
    for (i, lane) in l.lanes.iter().enumerate() {
        let y = AXIS_H + i as f64 * l.lane_h;
        ctx.set_fill_style_str(if i % 2 == 0 {
            "rgba(127,127,127,0.08)"
        } else {
            "rgba(127,127,127,0.03)"
        });
        ctx.fill_rect(LABEL_W, y, plot_w, l.lane_h);
        let mut d = LaneDrawer {
            ctx,
            y: y + 1.0,
            h: l.lane_h - 2.0,
            last_px: -1.0,
            last_colour: "",
        };
        match *lane {
            Lane::Cpu(cpu) => {
                if l.lane_h >= 7.0 {
                    ctx.set_fill_style_str(fg);
                    let _ = ctx.fill_text(&format!("CPU {cpu}"), 4.0, y + l.lane_h - 4.0);
                }
                for s in replay.slices(cpu, from, to) {
                    let colour = &colours[usize::from(hue(s.tid)) % colours.len()];
                    d.rect(x_of(s.start.max(from)), x_of(s.end.min(to)), colour);
                }
            }
            Lane::Thread(tid) => {
                if l.lane_h >= 7.0 {
                    ctx.set_fill_style_str(muted);
                    let name = replay.thread(tid).map_or("?", |t| &*t.name);
                    let short: String = name.chars().take(13).collect();
                    let _ = ctx.fill_text(&short, 4.0, y + l.lane_h - 4.0);
                }
                // Off-CPU reasons first (as background), then the running spans over them.
                for o in replay.off_spans(tid, from, to) {
                    d.rect(
                        x_of(o.start.max(from)),
                        x_of(o.end.min(to)),
                        off_colour(o.reason),
                    );
                }
                d.last_px = -1.0;
                let colour = &colours[usize::from(hue(tid)) % colours.len()];
                for &(s, e, _) in replay.on_spans(tid, from, to) {
                    d.rect(x_of(s.max(from)), x_of(e.min(to)), colour);
                }
            }
        }
    }
}

/// Width of the plot area (right of the lane labels) of a drawn canvas, CSS pixels.
fn plot_width(canvas: &NodeRef) -> f64 {
    canvas
        .cast::<HtmlCanvasElement>()
        .map_or(800.0, |c| f64::from(c.client_width().max(200)))
        - LABEL_W
}

/// What lies under the pointer, in words.
fn describe(replay: &Replay, lane: Lane, t: Ns) -> Option<String> {
    match lane {
        Lane::Cpu(cpu) => {
            let s = replay.slices(cpu, t, t + 1).first()?;
            let name = replay.thread(s.tid).map_or("?", |t| &*t.name);
            Some(format!(
                "{name} (thread {}) on CPU {cpu}: from {} for {}",
                s.tid,
                duration(s.start),
                duration(s.end - s.start)
            ))
        }
        Lane::Thread(tid) => {
            let name = replay.thread(tid).map_or("?", |t| &*t.name);
            if let Some(&(s, e, cpu)) = replay.on_spans(tid, t, t + 1).first() {
                return Some(format!(
                    "{name} running on CPU {cpu}: from {} for {}",
                    duration(s),
                    duration(e - s)
                ));
            }
            let o = replay.off_spans(tid, t, t + 1).first()?;
            Some(format!(
                "{name} {}: from {} for {}",
                off_label(o.reason),
                duration(o.start),
                duration(o.end - o.start)
            ))
        }
    }
}

/// The timeline component.
#[function_component(Timeline)]
pub fn timeline(props: &TimelineProps) -> Html {
    let canvas = use_node_ref();
    let hover = use_state(|| None::<(f64, f64, String)>);
    let drag = use_mut_ref(|| None::<(f64, (Ns, Ns), bool)>);
    let cache = use_mut_ref(|| None::<LaneCache>);

    {
        // Draw once mounted and after every change.
        let canvas = canvas.clone();
        // The cursor is a DOM line over the canvas: moving it repaints nothing here.
        let deps = (props.rev, props.window, props.run, Rc::clone(&props.cpus));
        let args = DrawArgs::from(props);
        let cache = cache.clone();
        use_effect_with(deps, move |_| {
            if let Some(c) = canvas.cast::<HtmlCanvasElement>() {
                draw(&c, &args, &mut cache.borrow_mut());
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
            let st = store.0.borrow();
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
            <h2>{ props.title.clone() }</h2>
            <p class="caption">
                { "One lane per hardware thread, slices coloured by thread; below, the first threads with why they were off the CPU \
                   (orange: preempted, red: waiting for the lock, amber: I/O, grey: asleep). Wheel zooms, drag pans, click seeks." }
                { trust(props.fidelity, props.dropped) }
            </p>
            <div class="timeline-tools">
                <button onclick={zoom(0.5)} title="zoom in around the cursor">{ "+" }</button>
                <button onclick={zoom(2.0)} title="zoom out">{ "−" }</button>
                <button onclick={fit} title="show the whole run">{ "fit" }</button>
                <span class="note">{ format!("{} – {} shown", duration(props.window.0), duration(props.window.1)) }</span>
            </div>
            <div class="timeline-wrap">
                <canvas ref={canvas} {onmousedown} {onmousemove} {onmouseup} {onmouseleave} data-run={props.run.to_string()} />
                if (props.window.0..=props.window.1).contains(&props.cursor) {
                    // A full-width line moved by a transform: the compositor moves it, no layout.
                    <div class="cursor-track" aria-hidden="true" style={format!("left: {LABEL_W}px")}>
                        <div class="cursor" style={format!("transform: translateX({:.4}%)",
                            100.0 * (props.cursor - props.window.0) as f64 / props.window.1.saturating_sub(props.window.0).max(1) as f64)} />
                    </div>
                }
                if let Some((x, y, text)) = &*hover {
                    <div class="tooltip" role="tooltip" style={format!("left:{}px;top:{}px", x + 12.0, y + 12.0)}>{ text.clone() }</div>
                }
            </div>
        </section>
    }
}

/// What drawing needs, owned, for the effect closure.
struct DrawArgs {
    store: Store,
    rev: u64,
    run: u64,
    window: (Ns, Ns),
    cpus: Rc<Vec<u32>>,
}

impl From<&TimelineProps> for DrawArgs {
    fn from(p: &TimelineProps) -> Self {
        DrawArgs {
            store: p.store.clone(),
            rev: p.rev,
            run: p.run,
            window: p.window,
            cpus: Rc::clone(&p.cpus),
        }
    }
}
