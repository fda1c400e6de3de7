//! The page's URL parameters, parsed and checked (they are untrusted input): [`parse`] and
//! the checks are pure, so tested natively; [`from_location`] and [`agent_url_from_location`]
//! read the page's address through the browser's `URLSearchParams`.
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
//! | `token=HEX` | the agent's access token, carried to its WebSocket |

use coreplay_shared::{event::Ns, frame::parse_duration, json};

use crate::{conn::DEFAULT_AGENT_URL, learn::LessonId, playback::SPEEDS};

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
    /// A lesson to open (`lesson=NAME`).
    pub lesson: Option<LessonId>,
    /// The lab (`lab`): scenarios, watches and the gallery, without the lessons.
    pub lab: bool,
    /// Follow live runs as they measure (`follow`) instead of keeping still until they end.
    pub follow: bool,
    /// Parameters that were wrong and ignored, in words.
    pub problems: Vec<String>,
}

impl PageOptions {
    /// Whether the page opens on the lessons: a lesson was asked for, or nothing else was
    /// (a newcomer's first visit); a trace, an embed or the lab open the player instead.
    pub fn learn(&self) -> bool {
        self.lesson.is_some() || !(self.lab || self.embed || self.trace.is_some())
    }
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
            lesson: None,
            lab: false,
            follow: false,
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
            "lab" => o.lab = !matches!(v.as_str(), "0" | "false" | "no"),
            "follow" => o.follow = !matches!(v.as_str(), "0" | "false" | "no"),
            "lesson" => match LessonId::from_name(v.trim()) {
                Some(l) => o.lesson = Some(l),
                None => o.problems.push(format!(
                    "unknown lesson {} (use {})",
                    json::quote(&truncate(v)),
                    LessonId::ALL.map(LessonId::name).join(", ")
                )),
            },
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
                            "unknown view {} (use cores, loop, timeline, summary)",
                            json::quote(&truncate(name))
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
            other => o.problems.push(format!(
                "unknown parameter {} ignored",
                json::quote(&truncate(other))
            )),
        }
    }
    o
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Longest `?trace=` URL accepted.
pub const MAX_TRACE_URL_LEN: usize = 2048;

/// Checks a trace URL from the page's address (`?trace=`): a path on this site or an
/// `http(s)://` URL; nothing that runs code.
pub fn validate_trace_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("the trace URL is empty".into());
    }
    if url.len() > MAX_TRACE_URL_LEN {
        return Err(format!(
            "the trace URL is longer than {MAX_TRACE_URL_LEN} characters"
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the trace URL contains spaces or control characters".into());
    }
    let lower = url.to_ascii_lowercase();
    let scheme = lower
        .split_once(':')
        .map(|(s, _)| s)
        .filter(|s| !s.contains('/') && !s.contains('?') && !s.contains('#'));
    match scheme {
        None | Some("http" | "https") => Ok(url.to_string()),
        Some(other) => Err(format!(
            "the trace URL must be a path or an http(s) URL, not {other}:"
        )),
    }
}

/// Longest `?agent=` URL accepted.
pub const MAX_AGENT_URL_LEN: usize = 2048;

/// Checks an agent URL taken from the page's address (`?agent=`); it is untrusted input.
pub fn validate_agent_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    if url.len() > MAX_AGENT_URL_LEN {
        return Err(format!(
            "the agent URL is longer than {MAX_AGENT_URL_LEN} characters"
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the agent URL contains spaces or control characters".into());
    }
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or_else(|| {
            format!("the agent URL must start with ws:// or wss://, e.g. ws://127.0.0.1:7878/ws (got {})", json::quote(url))
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("the agent URL {} names no host", json::quote(url)));
    }
    Ok(url.to_string())
}

/// Checks an access token from the page's address (`?token=`): the agent makes 32 hex digits.
pub fn validate_token(token: &str) -> Result<String, String> {
    if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(
            "the access token in the address is malformed; use the URL the agent printed".into(),
        );
    }
    Ok(token.to_string())
}

/// `url` with `token` added as a query parameter.
pub fn with_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={token}")
}

/// The agent URL for a page at `protocol`//`host` whose address has `agent` and `token`
/// (`?agent=`, `?token=`): `agent` if given (checked), else the agent that served the page,
/// else [`DEFAULT_AGENT_URL`]; with the token carried along (checked).
pub fn agent_url(
    agent: Option<&str>,
    token: Option<&str>,
    protocol: &str,
    host: &str,
) -> Result<String, String> {
    let base = if let Some(agent) = agent {
        validate_agent_url(agent)?
    } else {
        match protocol {
            "http:" if !host.is_empty() => format!("ws://{host}/ws"),
            "https:" if !host.is_empty() => format!("wss://{host}/ws"),
            _ => DEFAULT_AGENT_URL.to_string(),
        }
    };
    match token {
        Some(token) => Ok(with_token(&base, &validate_token(token)?)),
        None => Ok(base),
    }
}

/// The page's query parameters, decoded by the browser (`URLSearchParams`): the address's,
/// or, in the standalone file (one HTML file holding the page and a run), the query it was
/// written with.
fn search_params() -> Option<web_sys::UrlSearchParams> {
    let search = match crate::js::standalone_query() {
        Some(query) => query,
        None => web_sys::window()?.location().search().ok()?,
    };
    web_sys::UrlSearchParams::new_with_str(&search).ok()
}

/// Whether this page is the standalone file (see `coreplay_shared::standalone`).
pub fn standalone() -> bool {
    crate::js::standalone_query().is_some()
}

/// The page's query parameters as pairs, in order.
fn query_pairs() -> Vec<(String, String)> {
    let Some(params) = search_params() else {
        return Vec::new();
    };
    params
        .entries()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pair = js_sys::Array::from(&entry);
            Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
        })
        .collect()
}

/// What the page's address asks for.
pub fn from_location() -> PageOptions {
    parse(&query_pairs())
}

/// The agent URL for this page (see [`agent_url`]).
pub fn agent_url_from_location() -> Result<String, String> {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return Ok(DEFAULT_AGENT_URL.to_string());
    };
    let params = search_params();
    let get = |name: &str| params.as_ref().and_then(|p| p.get(name));
    agent_url(
        get("agent").as_deref(),
        get("token").as_deref(),
        &location.protocol().unwrap_or_default(),
        &location.host().unwrap_or_default(),
    )
}

/// The page's own address without its query, for embed snippets.
pub fn page_base() -> String {
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
pub fn absolute(url: &str) -> String {
    web_sys::Url::new_with_base(url, &page_base())
        .map(|u| u.href())
        .unwrap_or_else(|_| url.to_string())
}

/// The iframe snippet that embeds `trace` at `t` with `views` and speed index `speed`.
pub fn embed_code(page: &str, trace: &str, views: &[ViewKind], t: Ns, speed: usize) -> String {
    let src = format!(
        "{page}?embed&trace={}&{}&autoplay",
        encode(trace),
        show_query(views, t, speed)
    );
    format!(
        "<iframe src=\"{}\" width=\"960\" height=\"540\" style=\"border:0\" title=\"coreplay animation\" loading=\"lazy\"></iframe>",
        src.replace('&', "&amp;").replace('"', "&quot;")
    )
}

/// The query that shows a run as it is shown now: its views, time and speed (what an embed
/// snippet and the standalone file carry).
pub fn show_query(views: &[ViewKind], t: Ns, speed: usize) -> String {
    let views: Vec<&str> = views.iter().map(|v| v.name()).collect();
    let speed_ns = SPEEDS[speed.min(SPEEDS.len() - 1)];
    format!(
        "view={}&t={}us&speed={}us",
        views.join(","),
        t / 1000,
        speed_ns / 1000
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
    fn the_page_opens_on_the_lessons_unless_asked_otherwise() {
        let o = |q: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = q
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            parse(&pairs)
        };
        assert!(o(&[]).learn(), "a newcomer lands on the lessons");
        assert!(o(&[("agent", "ws://x/ws")]).learn());
        assert!(!o(&[("lab", "")]).learn());
        assert!(!o(&[("trace", "gallery/gil.coreplay.gz")]).learn());
        let gil = o(&[("lesson", "gil"), ("embed", "")]);
        assert_eq!(gil.lesson, Some(LessonId::Gil));
        assert!(gil.learn() && gil.embed);
        let bad = o(&[("lesson", "<script>")]);
        assert_eq!(bad.lesson, None);
        assert!(
            bad.problems[0].contains("unknown lesson") && bad.problems[0].contains("event-loop")
        );
        assert!(o(&[("follow", "")]).follow && !o(&[]).follow);
    }

    #[test]
    fn speeds_are_the_nearest_offered() {
        assert_eq!(SPEEDS[nearest_speed(1_000_000_000)], 1_000_000_000);
        assert_eq!(SPEEDS[nearest_speed(1)], 10_000);
        assert_eq!(SPEEDS[nearest_speed(900_000)], 1_000_000);
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

    #[test]
    fn tokens_are_validated_and_carried() {
        assert_eq!(validate_token("00ff"), Ok("00ff".into()));
        for bad in ["", "xyz", "a b", "<script>", &"a".repeat(200)] {
            assert!(validate_token(bad).is_err(), "{bad}");
        }
        assert_eq!(with_token("ws://h:1/ws", "ab"), "ws://h:1/ws?token=ab");
        assert_eq!(
            with_token("ws://h:1/ws?x=1", "ab"),
            "ws://h:1/ws?x=1&token=ab"
        );
    }

    #[test]
    fn agent_urls_are_validated() {
        assert_eq!(
            validate_agent_url("ws://127.0.0.1:7878/ws"),
            Ok("ws://127.0.0.1:7878/ws".into())
        );
        assert!(validate_agent_url("wss://example.org/ws").is_ok());
        for bad in [
            "http://x/ws",
            "javascript:alert(1)",
            "ws://",
            "ws:///ws",
            "ws://a b",
            &"ws://x".repeat(1000),
        ] {
            assert!(validate_agent_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_agent_is_the_named_one_or_the_one_serving_the_page() {
        assert_eq!(
            agent_url(None, None, "http:", "h:7878"),
            Ok("ws://h:7878/ws".into())
        );
        assert_eq!(
            agent_url(None, Some("ab"), "https:", "h"),
            Ok("wss://h/ws?token=ab".into())
        );
        assert_eq!(
            agent_url(None, None, "file:", ""),
            Ok(DEFAULT_AGENT_URL.into())
        );
        assert_eq!(
            agent_url(Some("ws://x:1/ws"), None, "http:", "h"),
            Ok("ws://x:1/ws".into())
        );
        assert!(agent_url(Some("http://x/ws"), None, "http:", "h").is_err());
        assert!(agent_url(None, Some("not hex"), "http:", "h").is_err());
    }
}
