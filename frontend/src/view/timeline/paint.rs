//! Painting the timeline's lanes on a 2D canvas context (the axis, a lane per hardware thread
//! and per first thread, slices grouped by colour, at most one rect per pixel column) and
//! naming what lies under the pointer. `timeline.rs` decides when to paint.

use coreplay_shared::Fixed;
use coreplay_shared::{
    columns,
    event::{Ns, OffReason},
    frame::hue,
    replay::Replay,
};
use web_sys::CanvasRenderingContext2d;

use super::{AXIS_H, LABEL_W, MAX_THREAD_LANES};
use crate::playback::duration;

/// A lane of the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Lane {
    Cpu(u32),
    Thread(u32),
}

/// The lanes in order, and their height.
pub(super) struct Layout {
    pub(super) lanes: Vec<Lane>,
    pub(super) lane_h: f64,
    pub(super) height: f64,
}

/// The `n` threads that spent the most time on a CPU (a watched program's own threads, not
/// the short-lived helpers a wrapper starts first), in the order they were first seen.
pub(super) fn busiest_threads(replay: &Replay, n: usize) -> Vec<u32> {
    let threads = replay.threads();
    if threads.len() <= n {
        return threads.iter().map(|t| t.tid).collect();
    }
    let mut by_time: Vec<usize> = (0..threads.len()).collect();
    // Stable: among equals, the first seen first.
    coreplay_shared::sort::by_key(&mut by_time, |&i| std::cmp::Reverse(threads[i].on_cpu_ns()));
    by_time.truncate(n);
    coreplay_shared::sort::natural(&mut by_time);
    by_time.into_iter().map(|i| threads[i].tid).collect()
}

/// The lanes for `replay` with `cpus` (and any CPU the run used beyond them).
pub(super) fn layout(replay: &Replay, cpus: &[u32]) -> Layout {
    let mut lanes: Vec<Lane> = cpus.iter().map(|&c| Lane::Cpu(c)).collect();
    for c in replay.cpus() {
        if !cpus.contains(&c) {
            lanes.push(Lane::Cpu(c));
        }
    }
    lanes.extend(
        busiest_threads(replay, MAX_THREAD_LANES)
            .into_iter()
            .map(Lane::Thread),
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

/// A slice's colour: a thread's hue (0–359), or past them an off-CPU reason's.
type Colour = u16;
/// Colours in all: the hues, then the reasons.
const COLOURS: usize = 360 + OFF_COLOURS.len();
/// Layers of rects in a lane (off-CPU reasons under a thread's running spans).
const LAYERS: usize = 2;

/// The off-CPU reasons' colours, in [`OffReason`]'s order.
const OFF_COLOURS: [&str; 5] = [
    "rgba(230,126,34,0.55)",
    "rgba(192,57,43,0.55)",
    "rgba(183,121,31,0.45)",
    "rgba(127,140,141,0.35)",
    "rgba(127,140,141,0.2)",
];

fn off_colour(reason: OffReason) -> Colour {
    360 + match reason {
        OffReason::Preempted => 0,
        OffReason::Lock => 1,
        OffReason::Io => 2,
        OffReason::Sleep => 3,
        OffReason::Unknown => 4,
    }
}

/// The CSS colour of a [`Colour`].
fn css(colour: Colour) -> &'static str {
    match usize::from(colour).checked_sub(360) {
        None => &hue_colours()[usize::from(colour)],
        Some(reason) => OFF_COLOURS[reason],
    }
}

/// The group of rects a colour is filled with on a layer.
fn group(layer: u8, colour: Colour) -> u16 {
    (usize::from(layer).min(LAYERS - 1) * COLOURS + usize::from(colour)) as u16
}

/// Rects to fill, collected over all lanes and then filled grouped by layer and colour:
/// setting a canvas's fill style passes a string to JavaScript and parses it as a CSS colour,
/// which cost more than the rects themselves when every rect set its own.
#[derive(Default)]
struct Rects {
    /// (layer × COLOURS + colour, x, y, w, h); a higher layer is drawn over a lower one.
    items: Vec<(u16, f64, f64, f64, f64)>,
}

impl Rects {
    /// Fills the rects in order of their group (a counting sort: a live run redraws thousands
    /// of rects several times a second, and a comparison sort of them cost a fifth of it).
    fn fill(self, ctx: &CanvasRenderingContext2d) {
        let mut next = vec![0u32; LAYERS * COLOURS + 1];
        for r in &self.items {
            next[usize::from(r.0) + 1] += 1;
        }
        for k in 1..next.len() {
            next[k] += next[k - 1];
        }
        let starts = next.clone();
        let mut order = vec![0u32; self.items.len()];
        for (i, r) in self.items.iter().enumerate() {
            let slot = &mut next[usize::from(r.0)];
            order[*slot as usize] = i as u32;
            *slot += 1;
        }
        for (group, span) in starts.windows(2).enumerate() {
            if span[0] == span[1] {
                continue;
            }
            ctx.set_fill_style_str(css((group % COLOURS) as Colour));
            for &i in &order[span[0] as usize..span[1] as usize] {
                let (_, x, y, w, h) = self.items[i as usize];
                ctx.fill_rect(x, y, w, h);
            }
        }
    }
}

/// Lays out rects in one lane: a rect that falls in an already drawn pixel column is skipped,
/// and one of the same colour that touches the previous one extends it, so a dense run
/// costs at most one rect per pixel column and a long stretch of one colour only one.
struct LaneDrawer<'a> {
    out: &'a mut Rects,
    layer: u8,
    y: f64,
    h: f64,
    last_px: f64,
    /// The rect not laid out yet: x0, x1 and its colour.
    pending: Option<(f64, f64, Colour)>,
}

impl<'a> LaneDrawer<'a> {
    fn new(out: &'a mut Rects, y: f64, h: f64) -> Self {
        LaneDrawer {
            out,
            layer: 0,
            y,
            h,
            last_px: -1.0,
            pending: None,
        }
    }

    fn rect(&mut self, x0: f64, x1: f64, colour: Colour) {
        let x1 = x1.max(x0 + 1.0);
        if x1.floor() <= self.last_px {
            return;
        }
        let x0 = x0.max(self.last_px);
        self.last_px = x1.floor();
        if let Some((_, end, c)) = self.pending.as_mut()
            && *c == colour
            // Touching (within rounding), not across a gap: a gap shows what lies under it.
            && x0 <= *end + 0.01
        {
            *end = x1;
            return;
        }
        self.flush();
        self.pending = Some((x0, x1, colour));
    }

    /// Draws spans sorted by start that do not overlap (so their ends are sorted too),
    /// jumping over those that end in a column already drawn: `rect` would skip them anyway,
    /// and a dense lane then costs a binary search per drawn column, not a step per span.
    fn spans<T>(
        &mut self,
        spans: &[T],
        x: &Scale,
        bounds: impl Fn(&T) -> (Ns, Ns),
        colour: impl Fn(&T) -> Colour,
    ) {
        let mut i = 0;
        while let Some(item) = spans.get(i) {
            let (start, end) = bounds(item);
            self.rect(x.x(start), x.x(end), colour(item));
            i += 1;
            let drawn_to = x.t(self.last_px);
            if spans.get(i).is_some_and(|s| bounds(s).1 <= drawn_to) {
                i += spans[i..].partition_point(|s| bounds(s).1 <= drawn_to);
            }
        }
    }

    /// Draws running time (spans sorted by start, not overlapping) by how much of each pixel
    /// column it covers ([`columns::bars`]): bars standing on the lane's foot, as tall as
    /// that share (at least one pixel).
    fn shares<T>(
        &mut self,
        spans: &[T],
        x: &Scale,
        bounds: impl Fn(&T) -> (Ns, Ns),
        colour: impl Fn(&T) -> Colour,
    ) {
        self.flush();
        let (layer, y, h) = (self.layer, self.y, self.h);
        let items = &mut self.out.items;
        columns::bars(
            spans,
            |t| x.x(t),
            bounds,
            colour,
            |b| {
                let bar = b.height(h, 1.0);
                items.push((group(layer, b.colour), b.x, y + h - bar, b.width, bar));
            },
        );
    }

    /// Lays out the pending rect.
    fn flush(&mut self) {
        if let Some((x0, x1, colour)) = self.pending.take() {
            let group = group(self.layer, colour);
            self.out.items.push((group, x0, self.y, x1 - x0, self.h));
        }
    }

    /// Lays out what is pending and starts a new layer over the same lane.
    fn restart(&mut self) {
        self.flush();
        self.layer += 1;
        self.last_px = -1.0;
    }
}

/// Time ↔ CSS pixels over the plot area.
struct Scale {
    from: Ns,
    to: Ns,
    span: f64,
    plot_w: f64,
}

impl Scale {
    /// The x of `t`, clamped to the window.
    fn x(&self, t: Ns) -> f64 {
        let t = t.clamp(self.from, self.to);
        LABEL_W + ((t - self.from) as f64 / self.span * self.plot_w).min(self.plot_w + 1.0)
    }

    /// The latest time whose x is at most `px` (a little before, never after).
    fn t(&self, px: f64) -> Ns {
        let f = ((px - LABEL_W) / self.plot_w * self.span).floor() - 1.0;
        if f <= 0.0 {
            self.from
        } else {
            self.from.saturating_add(f as Ns)
        }
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

/// Axis, lane labels and slices (everything but the cursor).
pub(super) fn draw_lanes(
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
    let scale = Scale {
        from,
        to,
        span,
        plot_w,
    };
    // Axis.
    ctx.set_font("11px system-ui, sans-serif");
    ctx.set_fill_style_str(muted);
    let ticks = 6;
    for i in 0..=ticks {
        let t = from + (span * f64::from(i) / f64::from(ticks)) as Ns;
        let x = scale.x(t);
        ctx.fill_rect(x, AXIS_H - 4.0, 1.0, 4.0);
        let _ = ctx.fill_text(&duration(t), (x - 10.0).min(css_w - 50.0), 11.0);
    }
    let font = format!(
        "{}px system-ui, sans-serif",
        Fixed((l.lane_h - 3.0).clamp(7.0, 11.0), 1)
    );
    ctx.set_font(&font);
    let mut rects = Rects::default();
    for (i, lane) in l.lanes.iter().enumerate() {
        let y = AXIS_H + i as f64 * l.lane_h;
        ctx.set_fill_style_str(if i % 2 == 0 {
            "rgba(127,127,127,0.08)"
        } else {
            "rgba(127,127,127,0.03)"
        });
        ctx.fill_rect(LABEL_W, y, plot_w, l.lane_h);
        let mut d = LaneDrawer::new(&mut rects, y + 1.0, l.lane_h - 2.0);
        match *lane {
            Lane::Cpu(cpu) => {
                if l.lane_h >= 7.0 {
                    ctx.set_fill_style_str(fg);
                    let _ = ctx.fill_text(&format!("CPU {cpu}"), 4.0, y + l.lane_h - 4.0);
                }
                d.shares(
                    replay.slices(cpu, from, to),
                    &scale,
                    |s| (s.start, s.end),
                    |s| hue(s.tid),
                );
            }
            Lane::Thread(tid) => {
                if l.lane_h >= 7.0 {
                    ctx.set_fill_style_str(muted);
                    let name = replay.thread(tid).map_or("?", |t| &*t.name);
                    let short: String = name.chars().take(13).collect();
                    let _ = ctx.fill_text(&short, 4.0, y + l.lane_h - 4.0);
                }
                // Off-CPU reasons first (as background), then the running spans over them.
                d.spans(
                    replay.off_spans(tid, from, to),
                    &scale,
                    |o| (o.start, o.end),
                    |o| off_colour(o.reason),
                );
                d.restart();
                let colour = hue(tid);
                d.shares(
                    replay.on_spans(tid, from, to),
                    &scale,
                    |s| (s.0, s.1),
                    |_| colour,
                );
            }
        }
        d.flush();
    }
    rects.fill(ctx);
}

/// What lies under the pointer, in words.
pub(super) fn describe(replay: &Replay, lane: Lane, t: Ns) -> Option<String> {
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
                coreplay_shared::replay::off_label(o.reason),
                duration(o.start),
                duration(o.end - o.start)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use coreplay_shared::event::{Event, Role};

    use super::*;

    /// The bars of `shared::columns` become rects standing on the lane's foot: full ones the
    /// lane's height, a sliver at least one pixel, each in its colour's group.
    #[test]
    fn bars_stand_on_the_lane_foot() {
        let scale = Scale {
            from: 0,
            to: 20_000,
            span: 20_000.0,
            plot_w: 20.0,
        };
        let mut out = Rects::default();
        let mut d = LaneDrawer::new(&mut out, 0.0, 10.0);
        let spans = [
            (0, 125, 1),
            (250, 750, 2),
            (1_000, 1_010, 3),
            (2_000, 4_000, 4),
        ];
        d.shares(&spans, &scale, |s| (s.0, s.1), |s| s.2);
        let rects: Vec<_> = out
            .items
            .iter()
            .map(|r| (r.0, r.1 - LABEL_W, r.2, r.3, r.4))
            .collect();
        assert_eq!(
            rects,
            vec![
                (2, 0.0, 3.75, 1.0, 6.25),
                (3, 1.0, 9.0, 1.0, 1.0),
                (4, 2.0, 0.0, 2.0, 10.0),
            ]
        );
    }

    /// A wrapper's helpers seen first do not take the lanes of the program's busy threads.
    #[test]
    fn lanes_go_to_the_busiest_threads_in_the_order_they_were_seen() {
        let mut r = Replay::new();
        for tid in 0..6u32 {
            r.apply(&Event::ThreadStart {
                tid,
                pid: 1,
                os_tid: 100 + tid,
                name: format!("t{tid}"),
                role: Role::Worker,
                at: 0,
            });
            // Threads 0..3 are short helpers; 3..6 the program's busy threads.
            let busy = if tid >= 3 { 1_000 } else { 10 };
            r.apply(&Event::OnCpu {
                tid,
                cpu: 0,
                start: u64::from(tid) * 2_000,
                end: u64::from(tid) * 2_000 + busy,
            });
        }
        r.prepare();
        assert_eq!(busiest_threads(&r, 3), vec![3, 4, 5]);
        assert_eq!(
            busiest_threads(&r, 4),
            vec![0, 3, 4, 5],
            "ties: the first seen"
        );
        assert_eq!(busiest_threads(&r, 10), vec![0, 1, 2, 3, 4, 5]);
    }
}
