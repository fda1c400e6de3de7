//! Still frames for documents that cannot run JavaScript: `coreplay render FILE --at TIME`
//! draws the cores view (and/or the timeline) at one instant as a standalone SVG, from the
//! same [`frame`] model the page animates.

use std::fmt::Write as _;

use coreplay_shared::{
    Node, NodeKind,
    event::Ns,
    frame::{self, CpuCell, Frame, Token},
    replay::Replay,
    summary::OtherLoad,
    trace_file::TraceFile,
};

/// What to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Hardware threads with who runs, who queues; the lock; waiting areas; the event loop.
    Cores,
    /// One lane per hardware thread over the whole run, with a cursor.
    Timeline,
    /// Both, cores above the timeline.
    All,
}

/// Why a frame cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The instant lies outside the run.
    #[error("the run lasts {lasts}; --at {at} is after its end")]
    AfterEnd {
        /// The run's length, in words.
        lasts: String,
        /// The time asked for, in words.
        at: String,
    },
}

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
/// of it over the run, where the run measured it ("other programs: 38 %", or "idle" under 2 %;
/// "oth. 38 %" in a narrow box), else "idle or other".
fn free_label(trace: &TraceFile, cpu: u32, narrow: bool) -> String {
    let measured = trace
        .summary
        .other_load
        .as_ref()
        .and_then(|l| Some((l.free_cpu_label(cpu)?, l.cpu_share(cpu)?)));
    match measured {
        Some((_, share)) if narrow && share >= OtherLoad::IDLE_BELOW => {
            format!("oth. {:.0} %", share * 100.0)
        }
        Some((label, _)) => label,
        None if narrow => "idle/other".into(),
        None => "idle or other".into(),
    }
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
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="muted">{}</text>"#,
            x + 6.0,
            y + 30.0,
            esc(free)
        );
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
                &free_label(trace, *cpu, pu_w < 100.0),
                (x + 4.0 + i as f64 * pu_w, y + 18.0, pu_w - 4.0),
            );
        }
        x += cw + 6.0;
    }
    y += 104.0;
    // Each process's own lock, one line each (a pool of many processes: the first 8).
    for l in f.locks.iter().take(8) {
        let holder = l
            .holder
            .as_ref()
            .map_or("nobody".to_string(), |t| t.name.to_string());
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
        let running = l
            .running
            .as_ref()
            .map_or("no task".to_string(), |(n, _)| n.clone());
        let selector = match l.waiting {
            Some((for_ns, woken)) => format!(
                "waiting in epoll for {} (will wake {woken})",
                duration(for_ns)
            ),
            None => "not waiting".into(),
        };
        let _ = write!(
            out,
            r#"<text x="{PAD}" y="{y:.1}">Event loop: polling {} · ready {} · parked on I/O {} · on timers {} · done {} · selector {} · {} polls</text>"#,
            esc(&running),
            l.ready_count,
            l.io.0,
            l.timers.0,
            l.done.0,
            esc(&selector),
            l.polls
        );
        y += 20.0;
    }
    y
}

fn timeline_view(out: &mut String, trace: &TraceFile, replay: &Replay, at: Ns, mut y: f64) -> f64 {
    let mut cpus = trace.header.topology.root.pus.clone();
    cpus.sort_unstable();
    let lane_h = if cpus.len() > 32 { 4.0 } else { 14.0 };
    let (from, to) = (replay.start(), replay.end().max(replay.start() + 1));
    let label_w = 60.0;
    let plot = W - PAD * 2.0 - label_w;
    let x_of = |t: Ns| PAD + label_w + (t.saturating_sub(from)) as f64 / (to - from) as f64 * plot;
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
        let mut last_px = -1.0f64;
        for s in replay.slices(*cpu, from, to) {
            let (x0, x1) = (x_of(s.start), x_of(s.end).max(x_of(s.start) + 0.5));
            if x1 <= last_px {
                continue;
            }
            let _ = write!(
                out,
                r#"<rect x="{:.2}" y="{y:.1}" width="{:.2}" height="{:.1}" fill="hsl({},65%,52%)"/>"#,
                x0.max(last_px),
                x1 - x0.max(last_px),
                lane_h - 1.0,
                frame::hue(s.tid)
            );
            last_px = x1;
        }
        y += lane_h;
    }
    let cx = x_of(at);
    let _ = write!(
        out,
        r##"<line x1="{cx:.1}" y1="{top:.1}" x2="{cx:.1}" y2="{y:.1}" stroke="#d62828" stroke-width="2"/>"##
    );
    y + 12.0
}

/// Draws `view` of `trace` at `at` ns as a standalone SVG document.
pub fn svg(trace: &TraceFile, at: Ns, view: View) -> Result<String, RenderError> {
    let mut replay = Replay::new();
    replay.extend(&trace.events);
    replay.prepare();
    if at > replay.end() {
        return Err(RenderError::AfterEnd {
            lasts: duration(replay.end()),
            at: duration(at),
        });
    }
    // A hand-over is shown when it happened within 1 % of the run before the instant.
    let recent = (replay.end() / 100).max(1);
    let f = frame::build(&replay, at, recent);
    let mut body = String::new();
    let h = &trace.header;
    let _ = write!(
        body,
        r#"<text x="{PAD}" y="24" class="title">{} at {} of {}</text><text x="{PAD}" y="42" class="muted">{} · fidelity: {} · recorded {}</text>"#,
        esc(&h.scenario.to_string()),
        duration(at),
        duration(replay.end()),
        esc(&h.machine_line()),
        h.fidelity,
        esc(&h.recorded_at)
    );
    let mut y = 58.0;
    if matches!(view, View::Cores | View::All) {
        y = cores_view(&mut body, trace, &f, y);
    }
    if matches!(view, View::Timeline | View::All) {
        y = timeline_view(&mut body, trace, &replay, at, y + 8.0);
    }
    let height = y + PAD;
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height:.0}" viewBox="0 0 {W} {height:.0}" font-family="system-ui, sans-serif" font-size="13">
<style>.title{{font-size:16px;font-weight:600}}.small{{font-size:10px}}.muted{{fill:#5b6570}}.tok{{font-size:10px;font-family:monospace}}.gil{{font-weight:700;fill:#c0392b}}</style>
<rect width="100%" height="100%" fill="#fbfbfa"/>
{body}
</svg>
"##
    ))
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
        t.summary.other_load = Some(OtherLoad {
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
        assert!(drawn.contains(">other programs: 38 %<"), "{drawn}");
        assert_eq!(free_label(&t, 1, false), "idle");
        assert_eq!(free_label(&t, 0, true), "oth. 38 %");
        assert_eq!(free_label(&t, 7, true), "idle/other");
    }

    #[test]
    fn an_instant_after_the_end_is_refused() {
        let e = svg(&trace(), 5_000, View::Cores).expect_err("after the end");
        assert!(e.to_string().contains("after its end"), "{e}");
    }
}
