//! One instant of a recorded run as an SVG document, from the same [`frame`] model the page
//! animates: a title that wraps, the cores view (hardware threads, each process's lock, waiting
//! threads, the event loop drawn as the page draws it), the timeline with a cursor, and a legend
//! of the threads' colours. [`Scene`] folds the run once and draws any number of instants (the
//! frames of a GIF).

use std::fmt::Write as _;

use super::{RenderError, View};
use coreplay_shared::{
    Node, NodeKind, columns,
    event::Ns,
    frame::{self, CpuCell, Frame, LoopCell, Token},
    replay::Replay,
    trace_file::TraceFile,
};

const W: f64 = 1000.0;
const PAD: f64 = 16.0;

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A duration in words (ns, µs, ms, s).
pub fn duration(ns: Ns) -> String {
    let v = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{:.3} s", v / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.3} ms", v / 1e6)
    } else if ns >= 1_000 {
        format!("{:.1} µs", v / 1e3)
    } else {
        format!("{ns} ns")
    }
}

fn token(out: &mut String, t: &Token, x: f64, y: f64, w: f64, style: &str) {
    let _ = write!(
        out,
        r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="16" rx="8" fill="hsl({h},65%,78%)" stroke="hsl({h},60%,40%)" {style}/><text x="{tx:.1}" y="{ty:.1}" class="tok">{name}</text>"#,
        h = t.hue,
        tx = x + 6.0,
        ty = y + 12.0,
        name = esc(&t
            .name
            .chars()
            .take(((w - 8.0) / 6.5).max(3.0) as usize)
            .collect::<String>()),
    );
}

/// PUs grouped by core (or alone when the topology has no cores), in topology order.
fn cores(node: &Node, out: &mut Vec<(String, Vec<u32>)>) {
    match node.kind {
        NodeKind::Core => out.push((node.label(), node.pus.clone())),
        NodeKind::Pu => out.push((
            format!("PU {}", node.os_index.unwrap_or(0)),
            node.pus.clone(),
        )),
        _ => node.children.iter().for_each(|c| cores(c, out)),
    }
}

/// What a hardware thread with no thread of the run on it is called: what other programs took
/// of it over the run, where the run measured it ("other programs: 38 %", or "idle" under 2 %),
/// else "idle or other".
fn free_label(trace: &TraceFile, cpu: u32) -> String {
    trace
        .summary
        .other_load
        .as_ref()
        .and_then(|l| l.free_cpu_label(cpu))
        .unwrap_or_else(|| "idle or other".into())
}

fn pu_box(
    out: &mut String,
    cpu: u32,
    cell: Option<&CpuCell>,
    free: &str,
    (x, y, w): (f64, f64, f64),
) {
    let idle = cell.is_none_or(|c| c.running.is_none());
    let _ = write!(
        out,
        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="62" rx="3" fill="{}" stroke="#7d9a72"/><text x="{:.1}" y="{:.1}" class="small">CPU {cpu}</text>"##,
        if idle { "#f4f6f3" } else { "#ffffff" },
        x + 4.0,
        y + 12.0
    );
    let free_text = |out: &mut String| {
        // Two lines where one does not fit (about 7 px a character).
        let fits = (free.chars().count() as f64) * 7.0 <= w - 10.0;
        // "other programs: 38 %" breaks after its colon.
        let lines: Vec<String> = match free.split_once(": ") {
            _ if fits => vec![free.to_string()],
            Some((a, b)) => vec![format!("{a}:"), b.to_string()],
            None => wrap(free, ((w - 10.0) / 7.0) as usize),
        };
        for (i, line) in lines.iter().take(2).enumerate() {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" class="muted">{}</text>"#,
                x + 6.0,
                y + 28.0 + 13.0 * i as f64,
                esc(line)
            );
        }
    };
    let Some(c) = cell else {
        free_text(out);
        return;
    };
    match &c.running {
        Some((t, _)) => token(out, t, x + 4.0, y + 17.0, w - 8.0, r#"stroke-width="2""#),
        None => free_text(out),
    }
    if c.queued > 0 {
        let names: Vec<String> = c.queue.iter().take(2).map(|t| t.name.to_string()).collect();
        let more = c.queued.saturating_sub(names.len());
        let text = if more > 0 {
            format!("queue: {} +{more}", names.join(", "))
        } else {
            format!("queue: {}", names.join(", "))
        };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="small">{}</text>"#,
            x + 4.0,
            y + 45.0,
            esc(&text)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" class="small muted">⇄{} · {:.0}% busy</text>"#,
        x + 4.0,
        y + 57.0,
        c.switches,
        c.utilisation * 100.0
    );
}

fn cores_view(out: &mut String, trace: &TraceFile, f: &Frame, mut y: f64) -> f64 {
    let mut groups = Vec::new();
    cores(&trace.header.topology.root, &mut groups);
    let pus: usize = groups.iter().map(|g| g.1.len()).sum();
    let pu_w = if pus > 64 { 58.0 } else { 112.0 };
    let mut x = PAD;
    for (label, cpus) in &groups {
        let cw = pu_w * cpus.len() as f64 + 8.0;
        if x + cw > W - PAD {
            x = PAD;
            y += 96.0;
        }
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{cw:.1}" height="88" rx="3" fill="#d8e6d2" stroke="#7d9a72"/><text x="{:.1}" y="{:.1}" class="small">{}</text>"##,
            x + 4.0,
            y + 12.0,
            esc(label)
        );
        for (i, cpu) in cpus.iter().enumerate() {
            pu_box(
                out,
                *cpu,
                f.cpus.get(cpu),
                &free_label(trace, *cpu),
                (x + 4.0 + i as f64 * pu_w, y + 18.0, pu_w - 4.0),
            );
        }
        x += cw + 6.0;
    }
    y += 104.0;
    // Each process's own lock, one line each (a pool of many processes: the first 8).
    // A watched program's GIL holder is inferred, and only at times: none known is not free.
    let watched = trace.header.scenario == coreplay_shared::scenario::ScenarioId::Watch;
    for l in f.locks.iter().take(8) {
        let holder = l.holder.as_ref().map_or_else(
            || if watched { "not known" } else { "nobody" }.to_string(),
            |t| t.name.to_string(),
        );
        let waiters: Vec<String> = l.waiters.iter().map(|t| t.name.to_string()).collect();
        let whose = match (&l.process, f.locks.len()) {
            (_, 1) => String::new(),
            (Some(name), _) => format!(" of {name} (pid {})", l.pid),
            (None, _) => format!(" of pid {}", l.pid),
        };
        let _ = write!(
            out,
            r#"<text x="{PAD}" y="{y:.1}"><tspan class="gil">GIL</tspan>{} held by {}{} · waiting ({}): {} · {} hand-overs so far</text>"#,
            esc(&whose),
            esc(&holder),
            if l.drop_requested {
                " (drop requested)"
            } else {
                ""
            },
            l.waiting,
            esc(&if waiters.is_empty() {
                "none".into()
            } else {
                waiters.join(", ")
            }),
            l.handovers
        );
        y += 20.0;
    }
    if f.locks.len() > 8 {
        let _ = write!(
            out,
            r#"<text x="{PAD}" y="{y:.1}">… and {} more processes, each with its own lock</text>"#,
            f.locks.len() - 8
        );
        y += 20.0;
    }
    for a in &f.areas {
        let names: Vec<String> = a
            .tokens
            .iter()
            .take(8)
            .map(|t| t.name.to_string())
            .collect();
        let more = a.count.saturating_sub(names.len());
        let _ = write!(
            out,
            r#"<text x="{PAD}" y="{y:.1}">{} ({}): {}{}</text>"#,
            esc(a.title),
            a.count,
            esc(&names.join(", ")),
            if more > 0 {
                format!(" +{more} more")
            } else {
                String::new()
            }
        );
        y += 18.0;
    }
    if let Some(l) = &f.event_loop {
        y = loop_view(out, l, y + 4.0);
    }
    y
}

/// A box of the event loop: a heading and a row of task tokens (a sample, then "+N more").
fn loop_box(
    out: &mut String,
    (x, y, w): (f64, f64, f64),
    title: &str,
    labels: &[String],
    count: u32,
    lit: bool,
) {
    let _ = write!(
        out,
        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="52" rx="4" fill="{}" stroke="#8aa0b4"/><text x="{:.1}" y="{:.1}" class="small strong">{}</text>"##,
        if lit { "#fff6d8" } else { "#f3f6f9" },
        x + 6.0,
        y + 14.0,
        esc(title)
    );
    let mut tx = x + 6.0;
    let mut shown = 0u32;
    for label in labels {
        let tw = (label.chars().count() as f64 * 6.2 + 12.0).min(w - 12.0);
        if tx + tw > x + w - 50.0 {
            break;
        }
        let _ = write!(
            out,
            r##"<rect x="{tx:.1}" y="{:.1}" width="{tw:.1}" height="16" rx="8" fill="#dbe7f3" stroke="#5b7fa6"/><text x="{:.1}" y="{:.1}" class="tok">{}</text>"##,
            y + 24.0,
            tx + 6.0,
            y + 36.0,
            esc(label)
        );
        tx += tw + 4.0;
        shown += 1;
    }
    let more = count.saturating_sub(shown);
    let tail = match (count, more) {
        (0, _) => "none".to_string(),
        (_, 0) => String::new(),
        (_, more) => format!("+{more} more"),
    };
    if !tail.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="small muted">{tail}</text>"#,
            tx + 2.0,
            y + 36.0
        );
    }
}

/// The event loop as the page draws it: the ready queue, the running task, the selector, the
/// tasks parked on I/O and on timers, and the futures resolved, in a grid of six boxes.
fn loop_view(out: &mut String, l: &LoopCell, mut y: f64) -> f64 {
    let _ = write!(
        out,
        r#"<text x="{PAD}" y="{:.1}" class="strong">Event loop{}</text>"#,
        y + 10.0,
        esc(&l
            .thread
            .as_ref()
            .map_or(String::new(), |t| format!(" on thread {t}")))
    );
    y += 16.0;
    let w = (W - PAD * 2.0 - 16.0) / 3.0;
    let col = |i: usize| PAD + i as f64 * (w + 8.0);
    let running = l.running.as_ref().map(|(n, for_ns)| (n.clone(), *for_ns));
    loop_box(
        out,
        (col(0), y, w),
        &format!("Ready queue ({})", l.ready_count),
        &l.ready,
        l.ready_count,
        false,
    );
    let run_title = match &running {
        Some((_, for_ns)) => format!("Running task ({} so far)", duration(*for_ns)),
        None => "Running task".into(),
    };
    let run_labels: Vec<String> = running.iter().map(|(n, _)| n.clone()).collect();
    loop_box(
        out,
        (col(1), y, w),
        &run_title,
        &run_labels,
        u32::from(running.is_some()),
        running.is_some(),
    );
    let selector = match l.waiting {
        Some((for_ns, woken)) => format!("waiting {} · will wake {woken}", duration(for_ns)),
        None => "not waiting".into(),
    };
    loop_box(
        out,
        (col(2), y, w),
        &format!("Selector (epoll wait) · {} waits", l.waits),
        &[selector],
        1,
        l.waiting.is_some(),
    );
    y += 58.0;
    loop_box(
        out,
        (col(0), y, w),
        &format!("Parked on I/O ({})", l.io.0),
        &l.io.1,
        l.io.0,
        false,
    );
    loop_box(
        out,
        (col(1), y, w),
        &format!("Parked on timers ({})", l.timers.0),
        &l.timers.1,
        l.timers.0,
        false,
    );
    loop_box(
        out,
        (col(2), y, w),
        &format!("Completed ({}) · {} polls", l.done.0, l.polls),
        &l.done.1,
        l.done.0,
        false,
    );
    if l.asyncio {
        // asyncio's tasks also await one another: a seventh box, as the page draws it.
        y += 58.0;
        loop_box(
            out,
            (col(0), y, w),
            &format!("Awaiting a task or future ({})", l.awaiting.0),
            &l.awaiting.1,
            l.awaiting.0,
            false,
        );
    }
    y + 66.0
}

/// Threads' colours: the busiest threads of the window (on-CPU time), as swatches with names.
fn legend(out: &mut String, replay: &Replay, (from, to): (Ns, Ns), mut y: f64) -> f64 {
    let mut busy: Vec<(Ns, u32, &str)> = replay
        .threads()
        .iter()
        .map(|t| {
            let ns: Ns = replay
                .on_spans(t.tid, from, to)
                .iter()
                .map(|&(s, e, _)| e.min(to).saturating_sub(s.max(from)))
                .sum();
            (ns, t.tid, &*t.name)
        })
        .filter(|&(ns, _, _)| ns > 0)
        .collect();
    busy.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    if busy.is_empty() {
        return y;
    }
    const SHOWN: usize = 16;
    let _ = write!(
        out,
        r#"<text x="{PAD}" y="{:.1}" class="small muted">Thread colours (busiest first):</text>"#,
        y + 10.0
    );
    y += 16.0;
    let mut x = PAD;
    for &(_, tid, name) in busy.iter().take(SHOWN) {
        let name: String = name.chars().take(24).collect();
        let w = 18.0 + name.chars().count() as f64 * 6.2 + 12.0;
        if x + w > W - PAD {
            x = PAD;
            y += 16.0;
        }
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="10" fill="hsl({},65%,52%)"/><text x="{:.1}" y="{:.1}" class="small">{}</text>"#,
            y + 1.0,
            frame::hue(tid),
            x + 16.0,
            y + 10.0,
            esc(&name)
        );
        x += w;
    }
    if busy.len() > SHOWN {
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" class="small muted">+{} more</text>"#,
            y + 10.0,
            busy.len() - SHOWN
        );
    }
    y + 20.0
}

/// Splits `text` into lines of at most `width` characters at spaces (a word longer than a line
/// is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: String = word.to_string();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

fn timeline_view(
    out: &mut String,
    trace: &TraceFile,
    replay: &Replay,
    (from, to): (Ns, Ns),
    at: Ns,
    mut y: f64,
) -> f64 {
    let mut cpus = trace.header.topology.root.pus.clone();
    cpus.sort_unstable();
    let lane_h = if cpus.len() > 32 { 4.0 } else { 14.0 };
    let to = to.max(from + 1);
    let label_w = 60.0;
    let plot = W - PAD * 2.0 - label_w;
    // Clamped to the window: a slice may run on far past its end.
    let x_of =
        |t: Ns| PAD + label_w + (t.clamp(from, to) - from) as f64 / (to - from) as f64 * plot;
    let _ = write!(
        out,
        r#"<text x="{PAD}" y="{y:.1}" class="muted">Timeline: {} to {}, one lane per hardware thread</text>"#,
        duration(from),
        duration(to)
    );
    y += 8.0;
    let top = y;
    for cpu in &cpus {
        if lane_h >= 10.0 {
            let _ = write!(
                out,
                r#"<text x="{PAD}" y="{:.1}" class="small">CPU {cpu}</text>"#,
                y + lane_h - 3.0
            );
        }
        // As the page draws it: each pixel column as tall as the share of it the CPU ran this
        // run's threads, in the colour of the one that ran most of it.
        let h = lane_h - 1.0;
        columns::bars(
            replay.slices(*cpu, from, to),
            x_of,
            |s| (s.start, s.end),
            |s| frame::hue(s.tid),
            |b| {
                let bar = b.height(h, 0.5);
                let _ = write!(
                    out,
                    r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{bar:.2}" fill="hsl({},65%,52%)"/>"#,
                    b.x,
                    y + h - bar,
                    b.width,
                    b.colour
                );
            },
        );
        y += lane_h;
    }
    let cx = x_of(at);
    let _ = write!(
        out,
        r##"<line x1="{cx:.1}" y1="{top:.1}" x2="{cx:.1}" y2="{y:.1}" stroke="#d62828" stroke-width="2"/>"##
    );
    y + 12.0
}

/// A run folded once, ready to draw any instant of it.
pub struct Scene<'a> {
    trace: &'a TraceFile,
    replay: Replay,
    /// The title's lines.
    title: String,
}

impl std::fmt::Debug for Scene<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scene")
            .field("scenario", &self.trace.header.scenario)
            .field("events", &self.trace.events.len())
            .field("title", &self.title)
            .finish()
    }
}

impl<'a> Scene<'a> {
    /// Folds `trace`'s events.
    pub fn new(trace: &'a TraceFile) -> Scene<'a> {
        let mut replay = Replay::new();
        replay.extend(&trace.events);
        replay.prepare();
        let title = match &trace.summary.watch {
            Some(w) if !w.command.is_empty() => format!("watch: {}", w.command.join(" ")),
            Some(w) => format!("watch: pid {}", w.pid),
            None => trace.header.scenario.to_string(),
        };
        Scene {
            trace,
            replay,
            title,
        }
    }

    /// When the run's last event ends, ns.
    pub fn end(&self) -> Ns {
        self.replay.end()
    }

    /// Draws `view` at `at` ns, with the timeline over `window` (the whole run: `None`).
    pub fn svg(&self, at: Ns, view: View, window: Option<(Ns, Ns)>) -> Result<String, RenderError> {
        let replay = &self.replay;
        if at > replay.end() {
            return Err(RenderError::AfterEnd {
                lasts: duration(replay.end()),
                at: duration(at),
            });
        }
        let window = window.unwrap_or((replay.start(), replay.end()));
        // A hand-over is shown when it happened within 1 % of the run before the instant.
        let recent = (replay.end() / 100).max(1);
        let f = frame::build(replay, at, recent);
        let mut body = String::new();
        let h = &self.trace.header;
        let mut y = 24.0;
        for line in wrap(
            &format!(
                "{} — at {} of {}",
                self.title,
                duration(at),
                duration(replay.end())
            ),
            92,
        ) {
            let _ = write!(
                body,
                r#"<text x="{PAD}" y="{y:.1}" class="title">{}</text>"#,
                esc(&line)
            );
            y += 20.0;
        }
        for line in wrap(
            &format!(
                "{} · fidelity: {} · recorded {}",
                h.machine_line(),
                h.fidelity,
                h.recorded_at
            ),
            // About 7 px a character at 13 px: the drawing's width less its margins.
            128,
        ) {
            let _ = write!(
                body,
                r#"<text x="{PAD}" y="{:.1}" class="muted">{}</text>"#,
                y - 2.0,
                esc(&line)
            );
            y += 16.0;
        }
        y += 2.0;
        if matches!(view, View::Cores | View::All) {
            y = cores_view(&mut body, self.trace, &f, y);
        }
        if matches!(view, View::Timeline | View::All) {
            y = timeline_view(&mut body, self.trace, replay, window, at, y + 8.0);
        }
        y = legend(&mut body, replay, window, y);
        let height = y + PAD;
        Ok(format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height:.0}" viewBox="0 0 {W} {height:.0}" font-family="DejaVu Sans, system-ui, sans-serif" font-size="13">
<style>.title{{font-size:16px;font-weight:600}}.strong{{font-weight:600}}.small{{font-size:10px}}.muted{{fill:#5b6570}}.tok{{font-size:10px;font-family:DejaVu Sans Mono, monospace}}.gil{{font-weight:700;fill:#c0392b}}</style>
<rect width="100%" height="100%" fill="#fbfbfa"/>
{body}
</svg>
"##
        ))
    }
}

/// Draws `view` of `trace` at `at` ns as a standalone SVG document.
pub fn svg(trace: &TraceFile, at: Ns, view: View) -> Result<String, RenderError> {
    Scene::new(trace).svg(at, view, None)
}

#[cfg(test)]
mod tests {
    use coreplay_shared::{
        event::{Event, Fidelity, LockOp, Role},
        scenario::{Params, ScenarioId},
        summary::{Outcome, Summary},
        trace_file::{Header, Machine},
    };

    use super::*;

    fn trace() -> TraceFile {
        let topology = crate::topology::synthetic("pack:1 core:2 pu:1").expect("synthetic");
        let header = Header::new(
            "test",
            "2026-01-01T00:00:00Z".into(),
            Machine::default(),
            &topology,
            ScenarioId::Gil,
            Params::default(),
            Fidelity::Exact,
        );
        let events = vec![
            Event::ThreadStart {
                tid: 1,
                pid: 5,
                os_tid: 6,
                name: "py-<thread>-0".into(),
                role: Role::Worker,
                at: 0,
            },
            Event::Lock {
                tid: 1,
                at: 0,
                op: LockOp::Acquire,
            },
            Event::OnCpu {
                tid: 1,
                cpu: 1,
                start: 0,
                end: 1_000,
            },
        ];
        let summary = Summary::empty(
            ScenarioId::Gil,
            Params::default(),
            Outcome::Completed,
            Fidelity::Exact,
        );
        TraceFile {
            header,
            events,
            summary,
        }
    }

    #[test]
    fn a_frame_names_the_running_thread_escaped() {
        let svg = svg(&trace(), 500, View::All).expect("renders");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("CPU 1"));
        assert!(svg.contains("py-&lt;thread&gt;-0"), "names are escaped");
        assert!(svg.contains("GIL</tspan> held by py-&lt;thread&gt;-0"));
        assert!(!svg.contains("<thread>"));
    }

    #[test]
    fn a_free_cpu_says_what_other_programs_took_where_measured() {
        let mut t = trace();
        // Nothing of the run ran on CPU 0; without the measurement it cannot tell.
        let drawn = svg(&t, 500, View::Cores).expect("renders");
        assert!(drawn.contains(">idle or other<"), "{drawn}");
        t.summary.other_load = Some(coreplay_shared::summary::OtherLoad {
            start_ns: 0,
            window_ns: 1_000,
            cpus: vec![
                coreplay_shared::summary::CpuOther {
                    cpu: 0,
                    other_ns: 380,
                },
                coreplay_shared::summary::CpuOther {
                    cpu: 1,
                    other_ns: 0,
                },
            ],
            agent_ns: 0,
        });
        let drawn = svg(&t, 500, View::Cores).expect("renders");
        assert!(drawn.contains(">other programs:<"), "{drawn}");
        assert!(drawn.contains(">38 %<"), "{drawn}");
        assert_eq!(free_label(&t, 0), "other programs: 38 %");
        assert_eq!(free_label(&t, 1), "idle");
        assert_eq!(free_label(&t, 7), "idle or other");
    }

    /// A window far narrower than a slice draws it to the window's edge, at once (the lane's
    /// columns were once walked to the slice's end: a 10 µs window of a 1 s slice never ended).
    #[test]
    fn a_narrow_window_draws_a_long_slice_to_its_edge() {
        let mut t = trace();
        t.events.push(Event::OnCpu {
            tid: 1,
            cpu: 0,
            start: 2_000,
            end: 1_000_000_000,
        });
        let scene = Scene::new(&t);
        let drawn = scene
            .svg(5_000, View::Timeline, Some((4_000, 14_000)))
            .expect("renders");
        let rect = drawn
            .split("<rect ")
            .find(|r| r.contains("hsl("))
            .expect("the slice is drawn");
        let attr = |name: &str| -> f64 {
            let from = rect.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
            rect[from..]
                .split('"')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("a number")
        };
        assert!(attr("x") + attr("width") <= W + 0.01, "{rect}");
    }

    #[test]
    fn a_long_title_wraps_at_spaces_and_cuts_only_what_has_none() {
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij k", 4), vec!["abcd", "efgh", "ij k"]);
        assert_eq!(wrap("", 4), vec![""]);
        let mut t = trace();
        t.summary.watch = Some(coreplay_shared::watch::WatchTarget {
            program: None,
            command: "python3 examples/python/pools.py --workers 16 --rounds 400 --chunk-size 65536 --log-level debug".split(' ').map(String::from).collect(),
            pid: 7,
        });
        let drawn = svg(&t, 500, View::Cores).expect("renders");
        assert!(
            drawn.contains(r#"class="title">watch: python3 examples/python/pools.py"#),
            "{drawn}"
        );
        assert_eq!(
            drawn.matches(r#"class="title""#).count(),
            2,
            "two title lines: {drawn}"
        );
    }

    #[test]
    fn an_instant_after_the_end_is_refused() {
        let e = svg(&trace(), 5_000, View::Cores).expect_err("after the end");
        assert!(e.to_string().contains("after its end"), "{e}");
    }
}
