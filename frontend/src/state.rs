//! The page's state as a pure reducer: connection events and agent messages go in, the state
//! the views draw comes out. Nothing here touches the browser, so it is tested natively.

use std::rc::Rc;

use coreplay_shared::{
    DecodeError, Hello, ServerMsg, Topology, decode_server,
    event::{Event, Fidelity, Ns},
    replay::Replay,
    scenario::{Params, ScenarioId},
    summary::Summary,
    trace_file::{Header, Item, StreamReader, TraceError},
    watch::WatchTarget,
};

use crate::playback::{Command, Playback, Span};

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
    /// Not connecting on purpose: the page plays recorded runs (embed or `?trace=` without
    /// `?agent=`).
    Offline,
    /// The `?agent=` parameter is not a usable WebSocket URL.
    BadUrl {
        /// What to tell the user.
        message: String,
    },
}

impl Conn {
    /// Whether the connection loop should stop for good.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Conn::Incompatible { .. } | Conn::BadUrl { .. } | Conn::Offline
        )
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
    /// The page will not connect (it plays recorded runs).
    Offline,
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
    /// Where the run came from.
    pub source: RunSource,
    /// For a watch run, the program followed.
    pub watch: Option<WatchTarget>,
}

/// Where a run's events came from.
#[derive(Debug, Clone, PartialEq)]
pub enum RunSource {
    /// Streamed live by the connected agent.
    Live,
    /// Read from a recorded trace (a file, a URL, the gallery), named so.
    Recorded {
        /// The file or URL it came from.
        name: String,
        /// The URL, when it came from one (so it can be embedded).
        url: Option<String>,
    },
}

/// A run with its events, indexed for the animation.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// What it is.
    pub view: RunView,
    /// Its events, indexed.
    pub replay: Replay,
    /// Its events as received, for downloading the run as a trace file.
    pub events: Vec<Event>,
    /// The machine it ran on (the agent's, for live runs; the file's, for recorded ones).
    pub topology: Option<Rc<Topology>>,
    /// The machine in one line, for recorded runs.
    pub machine: Option<String>,
    /// When it was recorded, for recorded runs.
    pub recorded_at: Option<String>,
    /// The machine as the file described it, for recorded runs (a download keeps it).
    pub recorded_machine: Option<coreplay_shared::trace_file::Machine>,
}

/// How long loading a trace took, by stage (shown on the page as data attributes, which
/// the page benchmark reads).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadStats {
    /// Bytes read (compressed).
    pub bytes: u32,
    /// Bytes of text after decompression.
    pub text_bytes: u32,
    /// Reading and decompressing, ms.
    pub read_ms: f64,
    /// Decoding the JSON lines into events, ms.
    pub decode_ms: f64,
    /// Folding the events into the time index, ms.
    pub apply_ms: f64,
}

/// A trace file read in the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// Its header.
    pub header: Header,
    /// Its events.
    pub events: Vec<Event>,
    /// Its summary (absent when the file was cut short).
    pub summary: Option<Summary>,
    /// What was wrong with it, when it could still be shown (cut short).
    pub problem: Option<String>,
}

/// Reads a trace file's text (already decompressed). A file cut short is still shown, with a
/// note; any other problem is an error whose text is meant for the user.
pub fn parse_trace(text: &str) -> Result<Loaded, String> {
    let mut reader = StreamReader::new();
    let mut header = None;
    // About 70 bytes of JSON per event: reserving for that spares the doubling copies of a
    // vector that grows to hundreds of thousands of events.
    let mut events = Vec::with_capacity(text.len() / 80);
    let mut summary = None;
    for line in text.split('\n') {
        match reader.push_line(line).map_err(|e| e.to_string())? {
            Some(Item::Header(h)) => header = Some(*h),
            Some(Item::Events(batch)) => events.extend(batch),
            Some(Item::Summary(s)) => summary = Some(*s),
            None => {}
        }
    }
    let problem = match reader.finish() {
        Ok(()) => None,
        Err(e @ TraceError::Truncated { .. }) if header.is_some() => Some(e.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    let header = header.ok_or_else(|| TraceError::NotATrace.to_string())?;
    // Events that contradict the run (a CPU the machine lacks, a thread never started, a lock
    // released by a thread that does not hold it, …) are said and left out; the rest is shown.
    let report = coreplay_shared::validate::check(&header.topology, &events, summary.is_some());
    let said = report.headline().map(|line| {
        format!(
            "{line}; {} of them are left out, the rest is shown",
            report.left_out()
        )
    });
    let problem = match (problem, said) {
        (problem, None) => problem,
        (None, Some(line)) => Some(line),
        (Some(p), Some(line)) => Some(format!("{p}; {line}")),
    };
    let events = report.keep_good(events);
    Ok(Loaded {
        header,
        events,
        summary,
        problem,
    })
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

impl RunRecord {
    /// The span playback moves over.
    pub fn span(&self) -> Span {
        Span {
            start: self.replay.start(),
            end: self.replay.end(),
            live: self.view.running() && self.view.source == RunSource::Live,
        }
    }
}

impl RunView {
    /// Whether the run is still going.
    pub fn running(&self) -> bool {
        self.summary.is_none()
    }
}

/// Everything the views draw.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The agent's WebSocket URL.
    pub agent_url: String,
    /// Connection status.
    pub conn: Conn,
    /// The last hello, kept while reconnecting so the picture does not vanish.
    pub hello: Option<Rc<Hello>>,
    /// The last problem with a message from the agent, for the status line.
    pub last_error: Option<String>,
    /// Runs kept for replay and comparison, oldest first; the newest is the live one.
    pub runs: Vec<RunRecord>,
    /// The run being shown (its run number), or the newest when `None`.
    pub selected: Option<u64>,
    /// The playback clock of the shown run.
    pub playback: Playback,
    /// Whether something changed since the last draw.
    pub dirty: bool,
    /// Counts changes to the runs' events (the timelines redraw on it).
    pub rev: u64,
    /// The timeline's window, ns; `None` shows the whole run.
    pub window: Option<(Ns, Ns)>,
    next_recorded: u64,
    /// Where the next recorded run starts playing (the page's `t=`), once.
    pub pending_start: Option<Ns>,
    /// How long loading the last trace took.
    pub last_load: Option<LoadStats>,
    /// Playback commands that arrived (from an embedding page) before any run was loaded.
    pub pending_cmds: Vec<Command>,
    /// Whether the page's address named an agent (`?agent=`); if not, a page that never
    /// reached one stops trying (it is on a static host) and plays recorded runs.
    pub agent_named: bool,
}

/// Recorded runs are numbered from here, apart from the agent's run numbers.
pub const RECORDED_RUN_BASE: u64 = 1 << 40;

/// How a run's number reads to people: "run 3" for the agent's runs, "recorded run 2" for
/// files (numbered from 1 in the order they were opened), never the internal number.
pub fn run_name(run: u64) -> String {
    match run.checked_sub(RECORDED_RUN_BASE) {
        Some(n) => format!("recorded run {n}"),
        None => format!("run {run}"),
    }
}

/// A summary for a file cut short before its summary line: what the events tell.
fn incomplete_summary(h: &Header, end: Ns, events: usize) -> Summary {
    Summary {
        wall_ns: end,
        events: events as u64,
        notes: vec!["Figures are missing: the file ends before its summary.".into()],
        ..Summary::empty(
            h.scenario,
            h.params.clone(),
            coreplay_shared::summary::Outcome::Failed {
                message: "the trace file was cut short before its summary".into(),
            },
            h.fidelity,
        )
    }
}

/// Runs kept at most (older ones are forgotten first).
pub const MAX_KEPT_RUNS: usize = 8;
/// Events kept over all runs at most; older runs are forgotten to stay under it.
pub const MAX_KEPT_EVENTS: u64 = 4_000_000;

impl AppState {
    /// The state before anything happened.
    pub fn new(agent_url: String) -> Self {
        AppState {
            agent_url,
            conn: Conn::Connecting { attempt: 0 },
            hello: None,
            last_error: None,
            runs: Vec::new(),
            selected: None,
            playback: Playback::default(),
            dirty: true,
            rev: 0,
            window: None,
            next_recorded: 0,
            pending_start: None,
            last_load: None,
            pending_cmds: Vec::new(),
            agent_named: false,
        }
    }

    /// The newest run (the live one, while a run goes on).
    pub fn run(&self) -> Option<&RunView> {
        self.runs.last().map(|r| &r.view)
    }

    /// The run being shown.
    pub fn shown(&self) -> Option<&RunRecord> {
        self.shown_index().map(|i| &self.runs[i])
    }

    /// Where the shown run is in [`AppState::runs`].
    fn shown_index(&self) -> Option<usize> {
        match self.selected {
            Some(n) => self.runs.iter().position(|r| r.view.run == n),
            None => self.runs.len().checked_sub(1),
        }
    }

    /// Shows another kept run, from its start.
    pub fn select(&mut self, run: u64) {
        if self.runs.iter().any(|r| r.view.run == run) {
            let newest = self.runs.last().map(|r| r.view.run);
            self.selected = (newest != Some(run)).then_some(run);
            self.window = None;
            self.rev += 1;
            if let Some(span) = self.shown().map(RunRecord::span) {
                self.playback.reset(span, false);
            }
            self.dirty = true;
        }
    }

    /// Applies a playback command to the shown run.
    pub fn control(&mut self, cmd: Command) {
        let Some(i) = self.shown_index() else { return };
        let rec = &mut self.runs[i];
        rec.replay.prepare();
        let span = rec.span();
        let replay = &rec.replay;
        self.playback.command(cmd, span, |t, forward| {
            if forward {
                replay.next_change(t)
            } else {
                replay.prev_change(t)
            }
        });
        self.dirty = true;
    }

    /// One animation frame at screen time `now_ms`: indexes new events and moves the clock.
    /// Returns whether anything needs drawing.
    pub fn tick(&mut self, now_ms: f64) -> bool {
        let mut changed = std::mem::take(&mut self.dirty);
        if let Some(i) = self.shown_index() {
            let (rec, playback) = (&mut self.runs[i], &mut self.playback);
            rec.replay.prepare();
            changed |= playback.tick(now_ms, rec.span());
        }
        changed
    }

    /// Adds a run (live or recorded) and forgets old ones beyond the caps.
    pub fn add_run(&mut self, view: RunView, replay: Replay, autoplay: bool) {
        self.runs.retain(|r| r.view.run != view.run);
        self.runs.push(RunRecord {
            view,
            replay,
            events: Vec::new(),
            topology: self.hello.as_ref().map(|h| Rc::new(h.topology.clone())),
            machine: None,
            recorded_at: None,
            recorded_machine: None,
        });
        self.selected = None;
        self.window = None;
        self.rev += 1;
        self.forget_old();
        if let Some(span) = self.runs.last().map(RunRecord::span) {
            self.playback.reset(span, autoplay);
        }
        self.dirty = true;
    }

    /// Adds a run read from a trace file named `name`.
    pub fn add_recorded(
        &mut self,
        name: String,
        url: Option<String>,
        loaded: Loaded,
        autoplay: bool,
    ) {
        self.next_recorded += 1;
        let mut replay = Replay::new();
        replay.extend(&loaded.events);
        let h = loaded.header;
        let threads = loaded
            .events
            .iter()
            .filter(|e| matches!(e, Event::ThreadStart { .. }))
            .count();
        let watch = loaded.summary.as_ref().and_then(|s| s.watch.clone());
        let view = RunView {
            run: RECORDED_RUN_BASE + self.next_recorded,
            scenario: h.scenario,
            params: h.params.clone(),
            fidelity: h.fidelity,
            yours: false,
            events: loaded.events.len() as u64,
            dropped: loaded.summary.as_ref().map_or(0, |s| s.dropped),
            threads: u32::try_from(threads).unwrap_or(u32::MAX),
            latest_ns: replay.end(),
            summary: Some(Rc::new(loaded.summary.unwrap_or_else(|| {
                incomplete_summary(&h, replay.end(), loaded.events.len())
            }))),
            source: RunSource::Recorded { name, url },
            watch,
        };
        self.last_error = loaded.problem;
        self.add_run(view, replay, autoplay);
        if let Some(rec) = self.runs.last_mut() {
            rec.machine = Some(h.machine_line());
            rec.recorded_at = Some(h.recorded_at.clone());
            rec.recorded_machine = Some(h.machine.clone());
            rec.topology = Some(Rc::new(h.topology));
            rec.events = loaded.events;
        }
        if let Some(t) = self.pending_start.take() {
            let playing = self.playback.playing;
            self.control(Command::Seek(t));
            self.playback.playing = playing;
        }
        for cmd in std::mem::take(&mut self.pending_cmds) {
            self.control(cmd);
        }
    }

    fn forget_old(&mut self) {
        while self.runs.len() > MAX_KEPT_RUNS
            || (self.runs.len() > 1
                && self
                    .runs
                    .iter()
                    .map(|r| r.replay.event_count())
                    .sum::<u64>()
                    > MAX_KEPT_EVENTS)
        {
            self.runs.remove(0);
        }
    }

    fn live_run(&mut self, run: u64) -> Option<&mut RunRecord> {
        self.runs
            .iter_mut()
            .rev()
            .find(|r| r.view.run == run && r.view.source == RunSource::Live)
    }

    /// Folds one action into the state.
    pub fn apply(&mut self, action: Action) {
        self.dirty = true;
        if self.conn.is_final() {
            return;
        }
        match action {
            Action::Connecting { attempt } => self.conn = Conn::Connecting { attempt },
            // Never reached an agent and none was named: the page is on a static host.
            Action::Closed { .. } if self.hello.is_none() && !self.agent_named => {
                self.conn = Conn::Offline;
            }
            Action::Closed { attempt } => {
                self.conn = Conn::Unreachable {
                    attempt,
                    retry_in_ms: backoff_ms(attempt),
                }
            }
            Action::BadUrl(message) => self.conn = Conn::BadUrl { message },
            Action::Offline => self.conn = Conn::Offline,
            Action::Frame(text) => match decode_server(&text) {
                Ok(ServerMsg::Hello(hello)) => {
                    // A run seen running before a reconnect may have ended meanwhile; if it
                    // still runs, the agent says so again right after the hello.
                    if self
                        .runs
                        .last()
                        .is_some_and(|r| r.view.running() && r.view.source == RunSource::Live)
                    {
                        self.runs.pop();
                        self.selected = None;
                    }
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
                    watch,
                }) => {
                    self.last_error = None;
                    let view = RunView {
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
                        source: RunSource::Live,
                        watch,
                    };
                    self.add_run(view, Replay::new(), false);
                }
                Ok(ServerMsg::Events {
                    run,
                    events,
                    dropped,
                }) => {
                    if let Some(rec) = self.live_run(run) {
                        let view = &mut rec.view;
                        view.events += events.len() as u64;
                        view.dropped += dropped;
                        for e in &events {
                            if matches!(e, Event::ThreadStart { .. }) {
                                view.threads += 1;
                            }
                            view.latest_ns = view.latest_ns.max(e.time());
                        }
                        rec.replay.extend(&events);
                        rec.events.extend(events);
                        self.rev += 1;
                    }
                }
                Ok(ServerMsg::RunEnded { run, summary }) => {
                    if let Some(rec) = self.live_run(run) {
                        rec.view.summary = Some(Rc::from(summary));
                        self.dirty = true;
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

    /// A trace whose events contradict it is shown without them, and the page says so.
    #[test]
    fn inconsistent_events_are_named_and_left_out() {
        let good = include_str!("../../shared/tests/corpus-trace/io-async.jsonl");
        let clean = parse_trace(good).expect("the corpus trace reads");
        assert_eq!(clean.problem, None);
        // The same run with one slice on a CPU the machine lacks and one release of a lock
        // nobody holds (the browser test opens this file too).
        let bad = include_str!("../../shared/tests/fixtures/trace-inconsistent.jsonl");
        let loaded = parse_trace(bad).expect("still shown");
        let problem = loaded.problem.expect("the page says so");
        assert!(
            problem.starts_with("2 events of ")
                && problem.contains("inconsistent (first: event")
                && problem.contains("CPU 7 is not a hardware thread")
                && problem.contains("2 of them are left out, the rest is shown"),
            "{problem}"
        );
        // One damaged event and one added: both left out.
        assert_eq!(loaded.events.len(), clean.events.len() - 1);
        assert!(
            !loaded
                .events
                .iter()
                .any(|e| matches!(e, Event::OnCpu { cpu: 7, .. }))
        );
    }

    #[test]
    fn run_numbers_read_as_small_numbers() {
        assert_eq!(run_name(3), "run 3");
        assert_eq!(run_name(RECORDED_RUN_BASE + 1), "recorded run 1");
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
        let view = s.run().cloned().expect("run");
        assert!(view.running() && view.yours);
        assert_eq!(
            (view.events, view.dropped, view.threads, view.latest_ns),
            (2, 3, 1, 5)
        );
        let summary = r#"{"type":"run_ended","data":{"run":4,"summary":{"scenario":"gil","params":{"threads":2},"outcome":{"kind":"completed"},"wall_ns":10,"cpu_ns":9,"speedup":null,"baseline":null,"voluntary_switches":1,"involuntary_switches":2,"migrations":0,"runnable_wait_ns":0,"lock_wait_ns":null,"lock_handovers":null,"peak_rss_bytes":null,"events":2,"dropped":0,"fidelity":{"kind":"self_timed"},"threads":[],"processes":[],"requests":null,"result":null,"notes":[]}}}"#;
        s.apply(Action::Frame(summary.into()));
        assert_eq!(s.last_error, None);
        let view = s.run().cloned().expect("run");
        assert!(!view.running());
        assert_eq!(view.summary.map(|s| s.involuntary_switches), Some(2));
        // The events are kept for replay.
        let rec = s.shown().expect("shown");
        assert_eq!(rec.replay.event_count(), 2);
    }

    #[test]
    fn a_page_that_never_reached_an_agent_goes_offline_unless_one_was_named() {
        let mut s = AppState::new("ws://static.example/ws".into());
        s.apply(Action::Closed { attempt: 1 });
        assert_eq!(s.conn, Conn::Offline, "a static host has no agent");
        assert!(s.conn.is_final());
        let mut s = AppState::new("ws://x/ws".into());
        s.agent_named = true;
        s.apply(Action::Closed { attempt: 1 });
        assert!(
            matches!(s.conn, Conn::Unreachable { .. }),
            "a named agent is retried"
        );
    }

    #[test]
    fn recorded_runs_load_and_commands_wait_for_them() {
        let text = concat!(
            r#"{"format":"coreplay-trace","format_version":2,"protocol_version":4,"agent_version":"t","recorded_at":"2026-01-01T00:00:00Z","machine":{"cpu_model":"M"},"topology":{"machine":{"hostname":null,"cpu_model":null,"os":null,"source":{"kind":"live"}},"root":{"kind":"machine","os_index":null,"pus":[0],"children":[{"kind":"pu","os_index":0,"pus":[0],"children":[]}]},"numa_nodes":[]},"scenario":"gil","params":{"threads":1},"fidelity":{"kind":"exact"}}"#,
            "\n",
            r#"{"events":[{"thread_start":{"tid":1,"pid":9,"os_tid":9,"name":"a","role":"worker","at":0}},{"on_cpu":{"tid":1,"cpu":0,"start":0,"end":1000}}]}"#,
            "\n"
        );
        let loaded = parse_trace(text).expect("a trace cut before its summary still loads");
        assert!(
            loaded
                .problem
                .as_deref()
                .unwrap_or("")
                .contains("cut short")
                || loaded.problem.is_some()
        );
        assert_eq!(loaded.events.len(), 2);
        let mut s = AppState::new("ws://x/ws".into());
        s.pending_cmds.push(Command::Seek(500));
        s.add_recorded("t.gz".into(), Some("t.gz".into()), loaded, false);
        let rec = s.shown().expect("shown");
        assert_eq!(rec.view.events, 2);
        assert_eq!(rec.machine.as_deref(), Some("M · 1 hardware thread"));
        assert_eq!(s.playback.t, 500, "the queued seek ran once the run loaded");
        assert!(s.pending_cmds.is_empty());
        assert!(parse_trace("not a trace").is_err());
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
