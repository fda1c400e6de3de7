//! The page's state as a pure reducer: connection events and agent messages go in, the state
//! the views draw comes out. Nothing here touches the browser, so it is tested natively.

use std::rc::Rc;

use coreplay_shared::{
    DecodeError, Hello, ServerMsg, decode_server,
    event::{Event, Fidelity, Ns},
    scenario::{Params, ScenarioId},
    summary::Summary,
};

/// First reconnect delay, in milliseconds.
pub const BACKOFF_START_MS: u32 = 500;
/// Longest reconnect delay, in milliseconds.
pub const BACKOFF_MAX_MS: u32 = 10_000;
/// Longest `?agent=` URL accepted.
pub const MAX_AGENT_URL_LEN: usize = 2048;

/// Where the connection to the agent stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    /// Opening a WebSocket; `attempt` counts from 0 since the last successful hello.
    Connecting {
        /// Failed attempts so far.
        attempt: u32,
    },
    /// The agent greeted us with a compatible hello.
    Connected,
    /// The last attempt failed or the connection dropped; the next one starts after a delay.
    Unreachable {
        /// Failed attempts so far.
        attempt: u32,
        /// Delay before the next attempt, in milliseconds.
        retry_in_ms: u32,
    },
    /// The agent speaks another protocol version; reconnecting cannot help.
    Incompatible {
        /// What to tell the user.
        message: String,
    },
    /// The `?agent=` parameter is not a usable WebSocket URL.
    BadUrl {
        /// What to tell the user.
        message: String,
    },
}

impl Conn {
    /// Whether the connection loop should stop for good.
    pub fn is_final(&self) -> bool {
        matches!(self, Conn::Incompatible { .. } | Conn::BadUrl { .. })
    }
}

/// Things that happen to the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A connection attempt starts.
    Connecting {
        /// Failed attempts so far.
        attempt: u32,
    },
    /// A text frame arrived from the agent.
    Frame(String),
    /// The connection failed or closed.
    Closed {
        /// Failed attempts so far, including this one.
        attempt: u32,
    },
    /// The agent URL is unusable.
    BadUrl(String),
}

/// The run the agent is doing or did last, as far as this page saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// Run number.
    pub run: u64,
    /// Which scenario.
    pub scenario: ScenarioId,
    /// Its parameters.
    pub params: Params,
    /// How its events are obtained.
    pub fidelity: Fidelity,
    /// Whether this page started it.
    pub yours: bool,
    /// Events received.
    pub events: u64,
    /// Events the agent dropped for this page (it read too slowly).
    pub dropped: u64,
    /// Threads seen starting.
    pub threads: u32,
    /// Latest event time seen, ns since the run started.
    pub latest_ns: Ns,
    /// The summary, once the run ended.
    pub summary: Option<Rc<Summary>>,
}

impl RunView {
    /// Whether the run is still going.
    pub fn running(&self) -> bool {
        self.summary.is_none()
    }
}

/// Everything the views draw.
#[derive(Debug, Clone, PartialEq)]
pub struct AppState {
    /// The agent's WebSocket URL.
    pub agent_url: String,
    /// Connection status.
    pub conn: Conn,
    /// The last hello, kept while reconnecting so the picture does not vanish.
    pub hello: Option<Rc<Hello>>,
    /// The last problem with a message from the agent, for the status line.
    pub last_error: Option<String>,
    /// The current or last run.
    pub run: Option<RunView>,
}

impl AppState {
    /// The state before anything happened.
    pub fn new(agent_url: String) -> Self {
        AppState {
            agent_url,
            conn: Conn::Connecting { attempt: 0 },
            hello: None,
            last_error: None,
            run: None,
        }
    }

    /// Folds one action into the state.
    pub fn apply(&mut self, action: Action) {
        if self.conn.is_final() {
            return;
        }
        match action {
            Action::Connecting { attempt } => self.conn = Conn::Connecting { attempt },
            Action::Closed { attempt } => {
                self.conn = Conn::Unreachable {
                    attempt,
                    retry_in_ms: backoff_ms(attempt),
                }
            }
            Action::BadUrl(message) => self.conn = Conn::BadUrl { message },
            Action::Frame(text) => match decode_server(&text) {
                Ok(ServerMsg::Hello(hello)) => {
                    self.hello = Some(Rc::from(hello));
                    self.conn = Conn::Connected;
                    self.last_error = None;
                }
                Ok(ServerMsg::Pong { .. }) => {}
                Ok(ServerMsg::Error { message, .. }) => {
                    self.last_error = Some(format!("the agent reported: {message}"));
                }
                Ok(ServerMsg::RunStarted {
                    run,
                    scenario,
                    params,
                    fidelity,
                    yours,
                }) => {
                    self.last_error = None;
                    self.run = Some(RunView {
                        run,
                        scenario,
                        params,
                        fidelity,
                        yours,
                        events: 0,
                        dropped: 0,
                        threads: 0,
                        latest_ns: 0,
                        summary: None,
                    });
                }
                Ok(ServerMsg::Events {
                    run,
                    events,
                    dropped,
                }) => {
                    if let Some(view) = self.run.as_mut().filter(|v| v.run == run) {
                        view.events += events.len() as u64;
                        view.dropped += dropped;
                        for e in &events {
                            if matches!(e, Event::ThreadStart { .. }) {
                                view.threads += 1;
                            }
                            view.latest_ns = view.latest_ns.max(e.time());
                        }
                    }
                }
                Ok(ServerMsg::RunEnded { run, summary }) => {
                    if let Some(view) = self.run.as_mut().filter(|v| v.run == run) {
                        view.summary = Some(Rc::from(summary));
                    }
                }
                Err(err @ DecodeError::VersionMismatch { .. }) => {
                    self.conn = Conn::Incompatible {
                        message: err.to_string(),
                    };
                }
                Err(err) => self.last_error = Some(format!("ignored a message: {err}")),
            },
        }
    }
}

impl yew::Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        next.apply(action);
        Rc::new(next)
    }
}

/// Delay before reconnect attempt number `attempt` (1-based): doubling from
/// [`BACKOFF_START_MS`], capped at [`BACKOFF_MAX_MS`].
pub fn backoff_ms(attempt: u32) -> u32 {
    let shift = attempt.saturating_sub(1).min(16);
    BACKOFF_START_MS
        .saturating_mul(1 << shift)
        .min(BACKOFF_MAX_MS)
}

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
            format!("the agent URL must start with ws:// or wss://, e.g. ws://127.0.0.1:7878/ws (got {url:?})")
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("the agent URL {url:?} names no host"));
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

#[cfg(test)]
mod tests {
    use coreplay_shared::{PROTOCOL_VERSION, topology::TopologySource};

    use super::*;

    fn hello_json(version: u32) -> String {
        format!(
            r#"{{"type":"hello","data":{{"protocol_version":{version},"agent_version":"9.9.9","scenarios":[],"can_run":true,"fidelity":{{"kind":"self_timed"}},"fidelity_note":null,"topology":{{
            "machine":{{"hostname":"h","cpu_model":null,"os":null,"source":{{"kind":"live"}}}},
            "root":{{"kind":"machine","os_index":null,"pus":[0],"children":[
                {{"kind":"pu","os_index":0,"pus":[0],"children":[]}}]}},
            "numa_nodes":[]}}}}}}"#
        )
    }

    #[test]
    fn hello_connects_and_keeps_topology_across_reconnects() {
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::Frame(hello_json(PROTOCOL_VERSION)));
        assert_eq!(s.conn, Conn::Connected);
        let hello = s.hello.clone().expect("hello kept");
        assert_eq!(hello.agent_version, "9.9.9");
        assert_eq!(hello.topology.machine.source, TopologySource::Live);
        s.apply(Action::Closed { attempt: 1 });
        assert_eq!(
            s.conn,
            Conn::Unreachable {
                attempt: 1,
                retry_in_ms: 500
            }
        );
        assert!(s.hello.is_some(), "the picture stays while reconnecting");
    }

    #[test]
    fn version_mismatch_is_final_and_readable() {
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::Frame(hello_json(PROTOCOL_VERSION + 1)));
        let Conn::Incompatible { message } = &s.conn else {
            panic!("expected incompatible, got {:?}", s.conn)
        };
        assert!(message.contains("protocol version"), "{message}");
        s.apply(Action::Connecting { attempt: 0 });
        assert!(matches!(s.conn, Conn::Incompatible { .. }), "stays final");
    }

    #[test]
    fn garbage_and_invalid_topology_are_reported_not_applied() {
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::Frame("not json".into()));
        assert!(s.last_error.is_some());
        // A topology whose thread set is inconsistent is refused.
        let bad = hello_json(PROTOCOL_VERSION).replace(
            r#""kind":"machine","os_index":null,"pus":[0]"#,
            r#""kind":"machine","os_index":null,"pus":[0,1]"#,
        );
        s.apply(Action::Frame(bad));
        assert!(s.hello.is_none());
        assert!(
            s.last_error.as_deref().unwrap_or("").contains("topology"),
            "{:?}",
            s.last_error
        );
    }

    #[test]
    fn a_run_is_followed_from_start_to_summary() {
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::Frame(
            r#"{"type":"run_started","data":{"run":4,"scenario":"gil","params":{"threads":2},"fidelity":{"kind":"self_timed"},"yours":true}}"#.into(),
        ));
        s.apply(Action::Frame(
            r#"{"type":"events","data":{"run":4,"events":[{"thread_start":{"tid":1,"pid":9,"os_tid":9,"name":"a","role":"worker","at":5}},{"on_cpu":{"tid":1,"cpu":0,"start":5,"end":70}}],"dropped":3}}"#.into(),
        ));
        // Events of another run are not counted.
        s.apply(Action::Frame(
            r#"{"type":"events","data":{"run":3,"events":[{"lock":{"tid":1,"at":1,"op":"acquire"}}]}}"#
                .into(),
        ));
        let view = s.run.clone().expect("run");
        assert!(view.running() && view.yours);
        assert_eq!(
            (view.events, view.dropped, view.threads, view.latest_ns),
            (2, 3, 1, 5)
        );
        let summary = r#"{"type":"run_ended","data":{"run":4,"summary":{"scenario":"gil","params":{"threads":2},"outcome":{"kind":"completed"},"wall_ns":10,"cpu_ns":9,"speedup":null,"baseline":null,"voluntary_switches":1,"involuntary_switches":2,"migrations":0,"runnable_wait_ns":0,"lock_wait_ns":null,"lock_handovers":null,"peak_rss_bytes":null,"events":2,"dropped":0,"fidelity":{"kind":"self_timed"},"threads":[],"processes":[],"requests":null,"result":null,"notes":[]}}}"#;
        s.apply(Action::Frame(summary.into()));
        assert_eq!(s.last_error, None);
        let view = s.run.expect("run");
        assert!(!view.running());
        assert_eq!(view.summary.map(|s| s.involuntary_switches), Some(2));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let delays: Vec<u32> = (1..=8).map(backoff_ms).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]
        );
        assert_eq!(backoff_ms(u32::MAX), BACKOFF_MAX_MS);
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
}
