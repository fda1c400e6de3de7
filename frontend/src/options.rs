//! The page's URL parameters and the embedding page's `postMessage` commands, parsed and
//! validated (both are untrusted input). Pure, so tested natively.
//!
//! | parameter | meaning |
//! |---|---|
//! | `trace=URL` | play this recorded run (a path on this site or an http(s) URL) |
//! | `embed` | only the chosen views with compact controls, fitting any iframe |
//! | `view=cores,loop,timeline,summary` | the views to show (default: all) |
//! | `t=12.5ms` | start at this time (`ns`, `us`/`µs`, `ms`, `s`; a bare number is ms) |
//! | `speed=10us` | one second on screen shows this much of the run (nearest offered speed) |
//! | `autoplay`, `loop` | start playing at once; start over at the end |
//! | `agent=ws://…` | the agent to connect to (see [`crate::conn`]) |

use coreplay_shared::{event::Ns, frame::parse_duration};
use serde::Deserialize;

use crate::{
    playback::{Command, SPEEDS},
    state::validate_trace_url,
};

/// A view the page can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// The cores view.
    Cores,
    /// The event loop.
    Loop,
    /// The timeline.
    Timeline,
    /// The summary table.
    Summary,
}

impl ViewKind {
    /// Its name in URLs.
    pub fn name(self) -> &'static str {
        match self {
            ViewKind::Cores => "cores",
            ViewKind::Loop => "loop",
            ViewKind::Timeline => "timeline",
            ViewKind::Summary => "summary",
        }
    }

    fn from_name(s: &str) -> Option<ViewKind> {
        Some(match s {
            "cores" => ViewKind::Cores,
            "loop" | "event-loop" => ViewKind::Loop,
            "timeline" => ViewKind::Timeline,
            "summary" => ViewKind::Summary,
            _ => return None,
        })
    }
}

/// Every view, in page order.
pub const ALL_VIEWS: [ViewKind; 4] = [
    ViewKind::Cores,
    ViewKind::Loop,
    ViewKind::Timeline,
    ViewKind::Summary,
];

/// What the page's address asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PageOptions {
    /// Embed mode.
    pub embed: bool,
    /// A trace to play.
    pub trace: Option<String>,
    /// Views to show.
    pub views: Vec<ViewKind>,
    /// Start time, ns.
    pub start: Option<Ns>,
    /// Speed index into [`SPEEDS`].
    pub speed: Option<usize>,
    /// Play at once.
    pub autoplay: bool,
    /// Start over at the end.
    pub looping: bool,
    /// Whether an agent was named (`agent=`).
    pub agent: bool,
    /// Parameters that were wrong and ignored, in words.
    pub problems: Vec<String>,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            embed: false,
            trace: None,
            views: ALL_VIEWS.to_vec(),
            start: None,
            speed: None,
            autoplay: false,
            looping: false,
            agent: false,
            problems: Vec::new(),
        }
    }
}

/// The offered speed nearest (on a log scale) to `ns_per_second`.
pub fn nearest_speed(ns_per_second: Ns) -> usize {
    let target = (ns_per_second.max(1) as f64).ln();
    SPEEDS
        .iter()
        .enumerate()
        .min_by(|a, b| {
            let da = ((*a.1 as f64).ln() - target).abs();
            let db = ((*b.1 as f64).ln() - target).abs();
            da.total_cmp(&db)
        })
        .map_or(0, |(i, _)| i)
}

/// Parses the query pairs of the page's address.
pub fn parse(pairs: &[(String, String)]) -> PageOptions {
    let mut o = PageOptions::default();
    for (k, v) in pairs.iter().take(64) {
        match k.as_str() {
            "embed" => o.embed = !matches!(v.as_str(), "0" | "false" | "no"),
            "autoplay" => o.autoplay = !matches!(v.as_str(), "0" | "false" | "no"),
            "loop" => o.looping = !matches!(v.as_str(), "0" | "false" | "no"),
            "agent" => o.agent = true,
            "token" => {}
            "trace" => match validate_trace_url(v) {
                Ok(u) => o.trace = Some(u),
                Err(e) => o.problems.push(e),
            },
            "view" | "views" => {
                let mut views = Vec::new();
                for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match ViewKind::from_name(name) {
                        Some(k) if !views.contains(&k) => views.push(k),
                        Some(_) => {}
                        None => o.problems.push(format!(
                            "unknown view {:?} (use cores, loop, timeline, summary)",
                            truncate(name)
                        )),
                    }
                }
                if !views.is_empty() {
                    o.views = views;
                }
            }
            "t" | "at" => match parse_duration(v) {
                Ok(t) => o.start = Some(t),
                Err(e) => o.problems.push(format!("t: {e}")),
            },
            "speed" => match parse_duration(v) {
                Ok(ns) => o.speed = Some(nearest_speed(ns)),
                Err(e) => o.problems.push(format!("speed: {e}")),
            },
            other => o
                .problems
                .push(format!("unknown parameter {:?} ignored", truncate(other))),
        }
    }
    o
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A command from the embedding page, e.g. `{"coreplay":"seek","t":"12ms"}`.
#[derive(Debug, Deserialize)]
struct EmbedMsg {
    coreplay: String,
    #[serde(default)]
    t: Option<serde_json::Value>,
    #[serde(default)]
    speed: Option<serde_json::Value>,
}

fn time_value(v: &serde_json::Value) -> Result<Ns, String> {
    match v {
        // A bare number is ms, like the URL's `t`.
        serde_json::Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f <= 1e9)
            .map(|f| (f * 1e6) as Ns)
            .ok_or_else(|| format!("{n} is out of range")),
        serde_json::Value::String(s) => parse_duration(s),
        _ => Err("expected a number of ms or a string like \"12ms\"".into()),
    }
}

/// Parses a `postMessage` payload (as JSON text). `Ok(None)` for messages not meant for
/// coreplay (other scripts on the page post messages too).
pub fn parse_embed_message(json: &str) -> Result<Option<Command>, String> {
    if json.len() > 4096 {
        return Ok(None);
    }
    let Ok(msg) = serde_json::from_str::<EmbedMsg>(json) else {
        return Ok(None);
    };
    Ok(Some(match msg.coreplay.as_str() {
        "play" => Command::Play,
        "pause" => Command::Pause,
        "toggle" => Command::Toggle,
        "step" => Command::StepForward,
        "back" => Command::StepBack,
        "seek" => Command::Seek(time_value(msg.t.as_ref().ok_or("seek needs a time, t")?)?),
        "speed" => {
            let v = msg.speed.as_ref().ok_or("speed needs a value, speed")?;
            Command::Speed(nearest_speed(time_value(v)?))
        }
        other => {
            return Err(format!(
                "unknown command {:?} (play, pause, toggle, step, back, seek, speed)",
                truncate(other)
            ));
        }
    }))
}

/// The iframe snippet that embeds `trace` at `t` with `views` and speed index `speed`.
pub fn embed_code(page: &str, trace: &str, views: &[ViewKind], t: Ns, speed: usize) -> String {
    let views: Vec<&str> = views.iter().map(|v| v.name()).collect();
    let speed_ns = SPEEDS[speed.min(SPEEDS.len() - 1)];
    let src = format!(
        "{page}?embed&trace={}&view={}&t={}us&speed={}us&autoplay",
        encode(trace),
        views.join(","),
        t / 1000,
        speed_ns / 1000
    );
    format!(
        "<iframe src=\"{}\" width=\"960\" height=\"540\" style=\"border:0\" title=\"coreplay animation\" loading=\"lazy\"></iframe>",
        src.replace('&', "&amp;").replace('"', "&quot;")
    )
}

/// Percent-encodes what a query value must not contain.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn embed_parameters_are_read() {
        let o = parse(&pairs(&[
            ("embed", ""),
            ("trace", "gallery/gil.coreplay.gz"),
            ("view", "cores,timeline"),
            ("t", "12.5ms"),
            ("speed", "10us"),
            ("autoplay", ""),
            ("loop", "1"),
        ]));
        assert!(o.embed && o.autoplay && o.looping);
        assert_eq!(o.trace.as_deref(), Some("gallery/gil.coreplay.gz"));
        assert_eq!(o.views, vec![ViewKind::Cores, ViewKind::Timeline]);
        assert_eq!(o.start, Some(12_500_000));
        assert_eq!(SPEEDS[o.speed.expect("speed")], 10_000);
        assert!(o.problems.is_empty(), "{:?}", o.problems);
    }

    #[test]
    fn bad_parameters_are_explained_and_ignored() {
        let o = parse(&pairs(&[
            ("trace", "javascript:alert(1)"),
            ("view", "cores,bogus"),
            ("t", "soon"),
            ("speed", "5parsecs"),
            ("zoom", "2"),
        ]));
        assert_eq!(o.trace, None);
        assert_eq!(o.views, vec![ViewKind::Cores]);
        assert_eq!(o.start, None);
        assert_eq!(o.speed, None);
        assert_eq!(o.problems.len(), 5, "{:?}", o.problems);
    }

    #[test]
    fn speeds_are_the_nearest_offered() {
        assert_eq!(SPEEDS[nearest_speed(1_000_000_000)], 1_000_000_000);
        assert_eq!(SPEEDS[nearest_speed(1)], 10_000);
        assert_eq!(SPEEDS[nearest_speed(900_000)], 1_000_000);
    }

    #[test]
    fn post_messages_are_validated() {
        assert_eq!(
            parse_embed_message(r#"{"coreplay":"play"}"#),
            Ok(Some(Command::Play))
        );
        assert_eq!(
            parse_embed_message(r#"{"coreplay":"seek","t":1.5}"#),
            Ok(Some(Command::Seek(1_500_000)))
        );
        assert_eq!(
            parse_embed_message(r#"{"coreplay":"seek","t":"40us"}"#),
            Ok(Some(Command::Seek(40_000)))
        );
        assert!(matches!(
            parse_embed_message(r#"{"coreplay":"speed","speed":"10us"}"#),
            Ok(Some(Command::Speed(_)))
        ));
        assert!(parse_embed_message(r#"{"coreplay":"seek"}"#).is_err());
        assert!(parse_embed_message(r#"{"coreplay":"rm -rf"}"#).is_err());
        assert_eq!(parse_embed_message(r#"{"other":"thing"}"#), Ok(None));
        assert_eq!(parse_embed_message("not json"), Ok(None));
    }

    #[test]
    fn embed_code_is_an_escaped_iframe() {
        let code = embed_code(
            "https://x.org/coreplay/",
            "gallery/gil.coreplay.gz",
            &[ViewKind::Cores],
            2_000_000,
            10,
        );
        assert!(code.starts_with("<iframe src=\"https://x.org/coreplay/?embed&amp;trace=gallery/gil.coreplay.gz&amp;view=cores&amp;t=2000us&amp;speed=10us&amp;autoplay\""), "{code}");
        let round = parse(&pairs(&[("t", "2000us"), ("speed", "10us")]));
        assert_eq!(round.start, Some(2_000_000));
    }
}
