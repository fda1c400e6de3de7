//! The page's state as a pure reducer: every [`Action`] (connection events, agent messages,
//! loaded traces, what the user and an embedding page ask for) goes in through
//! [`AppState::apply`], the state the views draw comes out. Nothing here touches the browser,
//! so it is tested natively; `store.rs` shares it between the components.

use std::rc::Rc;

use coreplay_shared::{
    DecodeError, Hello, ServerMsg, Topology, decode_server,
    event::{Event, Fidelity, Ns},
    replay::Replay,
    scenario::{ParamName, Params, ScenarioId},
    summary::Summary,
    trace_file::Header,
    watch::WatchTarget,
};

use crate::{
    playback::{Command, Playback, Span},
    trace::{FileBytes, LoadStats, Loaded, LoadedTrace},
};

/// First reconnect delay, in milliseconds.
pub const BACKOFF_START_MS: u32 = 500;
/// Longest reconnect delay, in milliseconds.
pub const BACKOFF_MAX_MS: u32 = 10_000;

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

/// Things that happen to the page; [`AppState::apply`] folds each into the state.
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
    /// A playback command from the controls or the keyboard, for the shown run.
    Control(Command),
    /// A playback command from the embedding page: carried out at once when a run is shown,
    /// else kept (in order, [`MAX_PENDING_CMDS`] at most) until one is.
    Steer(Command),
    /// Show a kept run (by its number), from its start.
    Select(u64),
    /// Show the newest run again.
    ShowNewest,
    /// Show this window of the timeline, ns; an empty one shows the whole run.
    Window(Ns, Ns),
    /// A trace was read: show it.
    Loaded(Box<LoadedTrace>),
    /// A trace could not be read.
    LoadFailed {
        /// The file or URL, for people.
        name: String,
        /// Why.
        message: String,
    },
    /// A problem for the status line.
    Problem(String),
    /// Keep the page still while a live run measures (or follow it live).
    SetStill(bool),
}

/// Event batches kept undecoded while the page keeps still, at most, bytes.
pub const MAX_HELD_BYTES: usize = 32 << 20;

/// Embedding-page commands kept at most while no run is shown.
pub const MAX_PENDING_CMDS: usize = 32;

/// A machine's hardware threads by OS index, ascending (one timeline lane each).
pub fn hardware_threads(topology: &Topology) -> Vec<u32> {
    let mut pus = topology.root.pus.clone();
    coreplay_shared::sort::natural(&mut pus);
    pus
}

/// An `Rc` compared by identity. A run's summary never changes once it has arrived, so the
/// same summary is the same allocation: comparing by pointer spares Yew's check for changed
/// props a walk over every figure (and the page the code of that walk, about 1.9 kB).
#[derive(Debug)]
pub struct Shared<T>(pub Rc<T>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Rc::clone(&self.0))
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Shared(Rc::new(value))
    }
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
    pub summary: Option<Shared<Summary>>,
    /// Where the run came from.
    pub source: RunSource,
    /// For a watch run, the program followed.
    pub watch: Option<WatchTarget>,
    /// For a live run that ended: where the agent kept it (`traces/NAME`, relative to the
    /// page), so it can be embedded and played again.
    pub kept: Option<String>,
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
    /// For a recorded run, its file's bytes as read (gzip or text): "download trace" offers
    /// them again. The page never writes a trace file itself; a live run's file is the one the
    /// agent kept ([`RunView::kept`]).
    pub file: Option<FileBytes>,
    /// The machine it ran on (the agent's, for live runs; the file's, for recorded ones).
    pub topology: Option<Rc<Topology>>,
    /// The machine in one line, for recorded runs.
    pub machine: Option<String>,
    /// When it was recorded, for recorded runs.
    pub recorded_at: Option<String>,
}

impl RunRecord {
    /// The URL it was read from, if it was (so it can be embedded).
    pub fn url(&self) -> Option<&str> {
        match &self.view.source {
            RunSource::Recorded { url: Some(u), .. } => Some(u),
            RunSource::Live => self.view.kept.as_deref(),
            RunSource::Recorded { url: None, .. } => None,
        }
    }

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
    /// Keep still while a live run measures: its event batches are kept as they came, not
    /// decoded, indexed or drawn (drawing would take a CPU from the run it measures), and the
    /// run plays from its start as soon as it ends.
    pub still: bool,
    /// The live run's event batches kept while the page keeps still, and their size.
    held: Vec<String>,
    held_bytes: usize,
    /// While the page follows a live run: the agent's messages taken in but not decoded yet,
    /// in order, and their size. Reading the socket costs next to nothing; decoding is done a
    /// little each animation frame ([`AppState::digest_one`]), so a busy run never makes the
    /// page read so slowly that the agent drops events for it, and drawing goes on meanwhile.
    backlog: std::collections::VecDeque<String>,
    backlog_bytes: usize,
}

/// Messages waiting to be decoded at most, bytes; past it they are decoded as they come.
pub const MAX_BACKLOG_BYTES: usize = 64 << 20;

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

/// A short label for a run: its scenario and main parameter (`gil T=4`), or the program a
/// watch run followed.
pub fn run_label(rec: &RunRecord) -> String {
    let v = &rec.view;
    if let Some(w) = &v.watch {
        return match &w.program {
            Some(p) => format!("watch {p}"),
            None if !w.command.is_empty() => {
                // The program's file name is enough (interpreters live in long paths).
                let mut words = w.command.clone();
                if let Some(first) = words.first_mut()
                    && let Some(base) = first.rsplit('/').next()
                {
                    *first = base.to_string();
                }
                format!("watch {}", words.join(" "))
            }
            None => format!("watch pid {}", w.pid),
        };
    }
    let main = [
        (ParamName::Threads, "T"),
        (ParamName::Processes, "P"),
        (ParamName::Requests, "K"),
    ]
    .into_iter()
    .find_map(|(p, short)| v.params.get(p).map(|n| format!(" {short}={n}")))
    .unwrap_or_default();
    format!("{}{main}", v.scenario)
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
            still: true,
            held: Vec::new(),
            held_bytes: 0,
            backlog: std::collections::VecDeque::new(),
            backlog_bytes: 0,
        }
    }

    /// Whether the page is keeping still for a live run that is measuring now.
    pub fn measuring(&self) -> bool {
        self.still
            && self
                .runs
                .last()
                .is_some_and(|r| r.view.source == RunSource::Live && r.view.running())
    }

    /// The newest run (the live one, while a run goes on).
    pub fn run(&self) -> Option<&RunView> {
        self.runs.last().map(|r| &r.view)
    }

    /// The run being shown.
    pub fn shown(&self) -> Option<&RunRecord> {
        self.shown_index().map(|i| &self.runs[i])
    }

    /// The machine to draw: the shown run's, else the connected agent's.
    pub fn topology(&self) -> Option<Rc<Topology>> {
        self.shown()
            .and_then(|r| r.topology.clone())
            .or_else(|| self.hello.as_ref().map(|h| Rc::new(h.topology.clone())))
    }

    /// The hardware threads of the machine to draw, by OS index (one timeline lane each).
    pub fn cpus(&self) -> Vec<u32> {
        self.topology()
            .map(|t| hardware_threads(&t))
            .unwrap_or_default()
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
        if self.measuring() && self.selected.is_none() {
            // Still while the shown live run measures: nothing moves.
            return changed;
        }
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
            file: None,
            topology: self.hello.as_ref().map(|h| Rc::new(h.topology.clone())),
            machine: None,
            recorded_at: None,
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
        file: Option<FileBytes>,
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
            summary: Some(Shared::from(loaded.summary.unwrap_or_else(|| {
                incomplete_summary(&h, replay.end(), loaded.events.len())
            }))),
            source: RunSource::Recorded { name, url },
            watch,
            kept: None,
        };
        self.last_error = loaded.problem;
        self.add_run(view, replay, autoplay);
        if let Some(rec) = self.runs.last_mut() {
            rec.machine = Some(h.machine_line());
            rec.recorded_at = Some(h.recorded_at.clone());
            rec.topology = Some(Rc::new(h.topology));
            rec.file = file;
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
        match action {
            Action::Control(cmd) => self.control(cmd),
            Action::Steer(cmd) => {
                if self.shown().is_some() {
                    self.control(cmd);
                } else if self.pending_cmds.len() < MAX_PENDING_CMDS {
                    self.pending_cmds.push(cmd);
                }
            }
            Action::Select(run) => self.select(run),
            Action::ShowNewest => {
                if let Some(newest) = self.runs.last().map(|r| r.view.run) {
                    self.select(newest);
                }
            }
            Action::Window(from, to) => {
                self.window = (to > from).then_some((from, to));
                self.dirty = true;
            }
            Action::Loaded(trace) => {
                let LoadedTrace {
                    name,
                    url,
                    loaded,
                    autoplay,
                    stats,
                    file,
                } = *trace;
                self.add_recorded(name, url, loaded, file, autoplay);
                if let Some(rec) = self.runs.last_mut() {
                    rec.replay.prepare();
                }
                self.last_load = Some(stats);
            }
            Action::LoadFailed { name, message } => {
                self.last_error = Some(format!("could not open the trace {name}: {message}"));
                self.dirty = true;
            }
            Action::Problem(message) => {
                self.last_error = Some(message);
                self.dirty = true;
            }
            Action::SetStill(still) => {
                // What waits to be decoded comes first, whichever way it turns.
                self.digest_all();
                self.still = still;
                if !still {
                    self.release_held();
                }
                self.dirty = true;
            }
            Action::Connecting { .. }
            | Action::Frame(_)
            | Action::Closed { .. }
            | Action::BadUrl(_)
            | Action::Offline => self.connection(action),
        }
    }

    /// Decodes and folds the oldest message taken in while following a live run; returns
    /// whether more wait.
    pub fn digest_one(&mut self) -> bool {
        if let Some(text) = self.backlog.pop_front() {
            self.backlog_bytes = self.backlog_bytes.saturating_sub(text.len());
            self.dirty = true;
            self.message(text);
        }
        !self.backlog.is_empty()
    }

    /// Decodes and folds every message waiting, in order.
    pub fn digest_all(&mut self) {
        while self.digest_one() {}
    }

    /// Decodes and folds the event batches kept while the page kept still, in order.
    fn release_held(&mut self) {
        self.held_bytes = 0;
        for text in std::mem::take(&mut self.held) {
            self.message(text);
        }
    }

    /// Folds a connection event or an agent message; none changes a final connection.
    fn connection(&mut self, action: Action) {
        if self.conn.is_final() {
            self.dirty = true;
            return;
        }
        if let Action::Frame(text) = action {
            // While a live run measures, its batches wait undecoded: nothing to draw. Past
            // [`MAX_HELD_BYTES`] they are folded as they come (still without drawing), so that
            // a long, busy run cannot hold gigabytes of text.
            let events = text.starts_with(r#"{"type":"events""#);
            if self.measuring() && events {
                self.digest_all();
                if self.held_bytes + text.len() <= MAX_HELD_BYTES {
                    self.held_bytes += text.len();
                    self.held.push(text);
                } else {
                    self.release_held();
                    self.message(text);
                }
            } else if (events || !self.backlog.is_empty())
                && self.backlog_bytes + text.len() <= MAX_BACKLOG_BYTES
            {
                // Following a live run: decoded a little each frame, in order (a message
                // after waiting batches waits behind them).
                self.backlog_bytes += text.len();
                self.backlog.push_back(text);
            } else {
                self.digest_all();
                self.dirty = true;
                self.message(text);
            }
            return;
        }
        self.dirty = true;
        if matches!(action, Action::Closed { .. }) {
            // A run cut off by a lost connection is dropped at the next hello anyway; what
            // arrived before the loss is shown.
            self.held.clear();
            self.held_bytes = 0;
            self.digest_all();
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
            // Frames are folded by [`AppState::message`].
            Action::Frame(_) => {}
            // The page's own actions: [`AppState::apply`] folds them.
            Action::Control(_)
            | Action::Steer(_)
            | Action::Select(_)
            | Action::ShowNewest
            | Action::Window(..)
            | Action::Loaded(_)
            | Action::LoadFailed { .. }
            | Action::Problem(_)
            | Action::SetStill(_) => {}
        }
    }

    /// Folds one message from the agent.
    fn message(&mut self, text: String) {
        match decode_server(&text) {
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
                self.held.clear();
                self.held_bytes = 0;
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
                    kept: None,
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
                    self.rev += 1;
                }
            }
            Ok(ServerMsg::RunEnded {
                run,
                summary,
                saved,
            }) => {
                // The batches kept while it measured come first.
                let was_measuring = self.measuring();
                self.release_held();
                if let Some(rec) = self.live_run(run) {
                    rec.view.summary = Some(Shared(Rc::from(summary)));
                    // The agent names a plain file of its served folder; anything else is
                    // not used as an address.
                    rec.view.kept = saved
                        .filter(|n| coreplay_shared::standalone::is_plain_name(n))
                        .map(|n| format!("traces/{n}"));
                    rec.replay.prepare();
                    let span = rec.span();
                    self.dirty = true;
                    if was_measuring && self.shown().is_some_and(|r| r.view.run == run) {
                        // Now the run is drawn: from its start.
                        self.playback.reset(span, true);
                    }
                }
            }
            Err(err @ DecodeError::VersionMismatch { .. }) => {
                self.conn = Conn::Incompatible {
                    message: err.to_string(),
                };
            }
            Err(err) => self.last_error = Some(format!("ignored a message: {err}")),
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

#[cfg(test)]
mod tests {
    use coreplay_shared::{PROTOCOL_VERSION, topology::TopologySource};

    use super::*;
    use crate::trace::parse_trace;

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
    fn a_shared_summary_is_the_same_only_as_itself() {
        let a = Shared::from(String::from("gil"));
        assert_eq!(a, a.clone(), "a clone is the same summary");
        assert_ne!(
            a,
            Shared::from(String::from("gil")),
            "an equal one arrived apart is another"
        );
        assert_eq!(&*a, "gil");
    }

    #[test]
    fn a_run_is_followed_from_start_to_summary() {
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::SetStill(false));
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
        s.digest_all();
        let view = s.run().cloned().expect("run");
        assert!(view.running() && view.yours);
        assert_eq!(
            (view.events, view.dropped, view.threads, view.latest_ns),
            (2, 3, 1, 5)
        );
        let summary = r#"{"type":"run_ended","data":{"run":4,"summary":{"scenario":"gil","params":{"threads":2},"outcome":{"kind":"completed"},"wall_ns":10,"cpu_ns":9,"speedup":null,"baseline":null,"voluntary_switches":1,"involuntary_switches":2,"migrations":0,"runnable_wait_ns":0,"lock_wait_ns":null,"lock_handovers":null,"peak_rss_bytes":null,"events":2,"dropped":0,"fidelity":{"kind":"self_timed"},"threads":[],"processes":[],"requests":null,"result":null,"notes":[]}}}"#;
        s.apply(Action::Frame(summary.into()));
        s.digest_all();
        assert_eq!(s.last_error, None);
        let view = s.run().cloned().expect("run");
        assert!(!view.running());
        assert_eq!(view.summary.map(|s| s.involuntary_switches), Some(2));
        // The events are kept for replay.
        let rec = s.shown().expect("shown");
        assert_eq!(rec.replay.event_count(), 2);
    }

    /// Run 4 (gil, self-timed) as the agent announces it, and as it ends (two events).
    const RUN_4_STARTED: &str = r#"{"type":"run_started","data":{"run":4,"scenario":"gil","params":{"threads":2},"fidelity":{"kind":"self_timed"},"yours":true}}"#;
    const RUN_4_ENDED: &str = r#"{"type":"run_ended","data":{"run":4,"summary":{"scenario":"gil","params":{"threads":2},"outcome":{"kind":"completed"},"wall_ns":10,"cpu_ns":9,"speedup":null,"baseline":null,"voluntary_switches":1,"involuntary_switches":2,"migrations":0,"runnable_wait_ns":0,"lock_wait_ns":null,"lock_handovers":null,"peak_rss_bytes":null,"events":2,"dropped":0,"fidelity":{"kind":"self_timed"},"threads":[],"processes":[],"requests":null,"result":null,"notes":[]}}}"#;

    /// A batch of run 4: one slice on CPU 0 from `t0`, 10 ns long.
    fn batch(t0: u64) -> String {
        format!(
            r#"{{"type":"events","data":{{"run":4,"events":[{{"on_cpu":{{"tid":1,"cpu":0,"start":{t0},"end":{}}}}}]}}}}"#,
            t0 + 10
        )
    }

    /// While a live run measures, the page keeps still: batches wait undecoded, nothing is
    /// indexed or moves; at the run's end everything is folded in order and plays from the
    /// start. Turning stillness off mid-run folds what waited at once.
    #[test]
    fn a_measuring_run_keeps_the_page_still_until_it_ends() {
        let (started, ended) = (RUN_4_STARTED, RUN_4_ENDED);
        let mut s = AppState::new("ws://x/ws".into());
        assert!(s.still, "still is the default");
        s.apply(Action::Frame(started.into()));
        assert!(s.measuring());
        s.tick(0.0);
        for t0 in [100, 0, 50] {
            s.apply(Action::Frame(batch(t0)));
            assert!(!s.tick(16.0), "nothing to draw while it measures");
        }
        let rec = s.shown().expect("shown");
        assert_eq!((rec.view.events, rec.replay.event_count()), (0, 0));
        s.apply(Action::Frame(ended.into()));
        assert!(!s.measuring());
        let rec = s.shown().expect("shown");
        assert_eq!(rec.view.events, 3, "every batch folded at the end");
        assert_eq!(rec.replay.end(), 110);
        assert!(s.playback.playing, "and it plays");
        assert_eq!(s.playback.t, 0, "from its start");

        // A long, busy run: past MAX_HELD_BYTES the batches are folded as they come (still
        // without drawing) rather than held without bound.
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::Frame(started.into()));
        s.apply(Action::Frame(batch(0)));
        let big = format!(
            r#"{{"type":"events","data":{{"run":4,"events":[{}]}}}}"#,
            " ".repeat(MAX_HELD_BYTES)
        );
        s.apply(Action::Frame(big));
        assert_eq!(
            s.run().map(|v| v.events),
            Some(1),
            "what was held is folded"
        );
        assert!(s.measuring() && s.held.is_empty() && s.held_bytes == 0);

        // Turned off mid-run: what waited is folded at once, the rest as it comes.
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::Frame(started.into()));
        s.apply(Action::Frame(batch(0)));
        s.apply(Action::SetStill(false));
        s.apply(Action::Frame(batch(20)));
        s.digest_all();
        assert_eq!(s.run().map(|v| v.events), Some(2));
    }

    #[test]
    fn a_followed_run_is_taken_in_at_once_and_decoded_a_little_each_frame_in_order() {
        let (started, ended) = (RUN_4_STARTED, RUN_4_ENDED);
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::SetStill(false));
        s.apply(Action::Frame(started.into()));
        for t0 in [0, 20, 40] {
            s.apply(Action::Frame(batch(t0)));
        }
        // The end waits behind the batches that came before it.
        s.apply(Action::Frame(ended.into()));
        assert_eq!(s.run().map(|v| (v.events, v.running())), Some((0, true)));
        assert!(s.digest_one(), "more to come");
        assert_eq!(s.run().map(|v| v.events), Some(1));
        s.digest_all();
        assert_eq!(s.run().map(|v| (v.events, v.running())), Some((3, false)));
        assert_eq!(s.shown().map(|r| r.replay.end()), Some(50));
        assert!(!s.digest_one(), "nothing left");
        // A lost connection shows what had arrived.
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::SetStill(false));
        s.apply(Action::Frame(started.into()));
        s.apply(Action::Frame(batch(0)));
        s.apply(Action::Closed { attempt: 1 });
        assert_eq!(s.run().map(|v| v.events), Some(1));
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
        s.add_recorded("t.gz".into(), Some("t.gz".into()), loaded, None, false);
        let rec = s.shown().expect("shown");
        assert_eq!(rec.view.events, 2);
        assert_eq!(rec.machine.as_deref(), Some("M · 1 hardware thread"));
        assert_eq!(s.playback.t, 500, "the queued seek ran once the run loaded");
        assert!(s.pending_cmds.is_empty());
        assert!(parse_trace("not a trace").is_err());
    }

    /// A recorded run of one thread on one CPU, cut before its summary.
    fn one_thread_trace() -> Loaded {
        let text = concat!(
            r#"{"format":"coreplay-trace","format_version":2,"protocol_version":4,"agent_version":"t","recorded_at":"2026-01-01T00:00:00Z","machine":{"cpu_model":"M"},"topology":{"machine":{"hostname":null,"cpu_model":null,"os":null,"source":{"kind":"live"}},"root":{"kind":"machine","os_index":null,"pus":[0],"children":[{"kind":"pu","os_index":0,"pus":[0],"children":[]}]},"numa_nodes":[]},"scenario":"gil","params":{"threads":1},"fidelity":{"kind":"exact"}}"#,
            "\n",
            r#"{"events":[{"thread_start":{"tid":1,"pid":9,"os_tid":9,"name":"a","role":"worker","at":0}},{"on_cpu":{"tid":1,"cpu":0,"start":0,"end":1000}}]}"#,
            "\n"
        );
        parse_trace(text).expect("the trace reads")
    }

    #[test]
    fn the_pages_own_actions_go_through_apply() {
        let mut s = AppState::new("ws://x/ws".into());
        s.apply(Action::Offline);
        // Keyboard commands act on the shown run only; an embedding page's wait for one.
        s.apply(Action::Control(Command::Seek(5)));
        assert!(s.pending_cmds.is_empty());
        for _ in 0..40 {
            s.apply(Action::Steer(Command::Pause));
        }
        assert_eq!(
            s.pending_cmds.len(),
            MAX_PENDING_CMDS,
            "kept, but not without end"
        );
        s.pending_cmds.clear();
        s.apply(Action::Steer(Command::Seek(500)));
        let stats = LoadStats {
            bytes: 10,
            ..LoadStats::default()
        };
        let trace = |name: &str| {
            Action::Loaded(Box::new(LoadedTrace {
                name: name.into(),
                url: Some(name.into()),
                loaded: one_thread_trace(),
                autoplay: false,
                stats,
                file: None,
            }))
        };
        s.apply(trace("a.gz"));
        assert_eq!(
            s.playback.t, 500,
            "the page works offline, and the seek waited"
        );
        assert_eq!(s.last_load, Some(stats));
        let first = s.shown().map(|r| r.view.run).expect("shown");
        assert_eq!(s.shown().and_then(RunRecord::url), Some("a.gz"));
        assert_eq!(s.shown().map(run_label).as_deref(), Some("gil T=1"));
        assert_eq!(s.cpus(), vec![0]);
        s.apply(Action::Steer(Command::Play));
        assert!(
            s.playback.playing,
            "once a run is shown, commands act at once"
        );
        s.apply(trace("b.gz"));
        s.apply(Action::Select(first));
        assert_eq!(s.selected, Some(first));
        s.apply(Action::Window(10, 20));
        assert_eq!(s.window, Some((10, 20)));
        s.apply(Action::ShowNewest);
        assert_eq!((s.selected, s.window), (None, None));
        s.apply(Action::LoadFailed {
            name: "c.gz".into(),
            message: "gone".into(),
        });
        assert_eq!(
            s.last_error.as_deref(),
            Some("could not open the trace c.gz: gone")
        );
        assert_eq!(s.runs.len(), 2, "a failed load keeps the runs");
        s.apply(Action::Problem("no".into()));
        assert_eq!(s.last_error.as_deref(), Some("no"));
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
}
