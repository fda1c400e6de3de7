//! The page's state as a pure reducer: connection events and agent messages go in, the state
//! the views draw comes out. Nothing here touches the browser, so it is tested natively.

use std::{
    collections::{HashMap, VecDeque},
    rc::Rc,
};

use coreplay_shared::{
    DecodeError, Hello, ServerMsg, decode_server,
    event::{Event, Fidelity, Ns, WaitKind},
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
    /// The event loop, when the run has one.
    pub event_loop: Option<Rc<LoopView>>,
}

/// Where an event-loop task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// In the ready queue.
    Ready,
    /// Parked until its socket is ready.
    ParkedIo,
    /// Parked until its timer fires.
    ParkedTimer,
    /// Its future resolved.
    Done,
    /// Dropped before it finished.
    Cancelled,
}

/// One task as the page knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    /// Its label.
    pub label: String,
    /// Where it is.
    pub state: TaskState,
    waits_on: WaitKind,
    last_wake: Ns,
}

/// The event loop's latest state, folded from task events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopView {
    /// Every task by id.
    pub tasks: HashMap<u32, TaskView>,
    /// Ready task ids in wake order (entries of tasks no longer ready are skipped).
    pub ready_order: VecDeque<u32>,
    /// The agent's own counts: (ready, parked on I/O, parked on timers).
    pub depth: (u32, u32, u32),
    /// The last poll: task, duration ns, whether it finished the task.
    pub last_poll: Option<(u32, Ns, bool)>,
    /// Polls so far.
    pub polls: u64,
    /// Selector waits so far, and the last one's sleep (ns) and woken tasks.
    pub waits: u64,
    /// The last selector wait: slept ns, tasks woken.
    pub last_wait: Option<(Ns, u32)>,
    /// Tasks finished.
    pub done: u32,
}

impl LoopView {
    /// Folds one event in; returns false for events that are not about the loop.
    fn apply(&mut self, e: &Event) -> bool {
        match e {
            Event::TaskSpawn {
                task,
                at,
                label,
                waits_on,
            } => {
                self.tasks.insert(
                    *task,
                    TaskView {
                        label: label.clone(),
                        state: TaskState::Ready,
                        waits_on: *waits_on,
                        last_wake: *at,
                    },
                );
                self.ready_order.push_back(*task);
            }
            Event::Wake { task, at, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.last_wake = *at;
                    if t.state != TaskState::Ready {
                        t.state = TaskState::Ready;
                        self.ready_order.push_back(*task);
                    }
                }
            }
            Event::Poll {
                task,
                start,
                end,
                ready,
                ..
            } => {
                self.polls += 1;
                self.last_poll = Some((*task, end.saturating_sub(*start), *ready));
                if let Some(t) = self.tasks.get_mut(task) {
                    let woken_during = t.last_wake >= *start;
                    t.state = if *ready {
                        self.done += 1;
                        TaskState::Done
                    } else if woken_during {
                        TaskState::Ready
                    } else {
                        match t.waits_on {
                            WaitKind::Io => TaskState::ParkedIo,
                            WaitKind::Timer => TaskState::ParkedTimer,
                        }
                    };
                }
                self.compact();
            }
            Event::TaskCancelled { task, .. } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.state = TaskState::Cancelled;
                }
            }
            Event::LoopWait {
                start, end, woken, ..
            } => {
                self.waits += 1;
                self.last_wait = Some((end.saturating_sub(*start), *woken));
            }
            Event::QueueDepth {
                ready, io, timers, ..
            } => self.depth = (*ready, *io, *timers),
            _ => return false,
        }
        true
    }

    /// Drops queue entries of tasks that are no longer ready (the queue is nearly FIFO).
    fn compact(&mut self) {
        while let Some(front) = self.ready_order.front() {
            if self
                .tasks
                .get(front)
                .is_some_and(|t| t.state == TaskState::Ready)
            {
                break;
            }
            self.ready_order.pop_front();
        }
        if self.ready_order.len() > 2 * self.tasks.len().max(64) {
            let tasks = &self.tasks;
            self.ready_order
                .retain(|id| tasks.get(id).is_some_and(|t| t.state == TaskState::Ready));
        }
    }

    /// Up to `n` labels of tasks in `state`, in id order, and how many there are.
    pub fn sample(&self, state: TaskState, n: usize) -> (Vec<String>, usize) {
        let mut ids: Vec<u32> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.state == state)
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let count = ids.len();
        (
            ids.into_iter()
                .take(n)
                .filter_map(|id| self.tasks.get(&id).map(|t| t.label.clone()))
                .collect(),
            count,
        )
    }

    /// Up to `n` labels from the front of the ready queue.
    pub fn ready_front(&self, n: usize) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.ready_order
            .iter()
            .filter(|id| {
                self.tasks
                    .get(id)
                    .is_some_and(|t| t.state == TaskState::Ready)
                    && seen.insert(**id)
            })
            .take(n)
            .filter_map(|id| self.tasks.get(id).map(|t| t.label.clone()))
            .collect()
    }

    /// A task's label.
    pub fn label(&self, task: u32) -> String {
        self.tasks
            .get(&task)
            .map(|t| t.label.clone())
            .unwrap_or_else(|| format!("task {task}"))
    }
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
                    // A run seen running before a reconnect may have ended meanwhile; if it
                    // still runs, the agent says so again right after the hello.
                    if self.run.as_ref().is_some_and(RunView::running) {
                        self.run = None;
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
                        event_loop: None,
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
                        // Copy the loop's state only when this batch changes it.
                        let touches_loop = events.iter().any(|e| {
                            matches!(
                                e,
                                Event::TaskSpawn { .. }
                                    | Event::Wake { .. }
                                    | Event::Poll { .. }
                                    | Event::TaskCancelled { .. }
                                    | Event::LoopWait { .. }
                                    | Event::QueueDepth { .. }
                            )
                        });
                        let mut event_loop = if touches_loop {
                            view.event_loop.as_deref().cloned()
                        } else {
                            None
                        };
                        let unchanged = if touches_loop {
                            None
                        } else {
                            view.event_loop.take()
                        };
                        for e in &events {
                            if matches!(e, Event::ThreadStart { .. }) {
                                view.threads += 1;
                            }
                            view.latest_ns = view.latest_ns.max(e.time());
                            if matches!(e, Event::TaskSpawn { .. }) && event_loop.is_none() {
                                event_loop = Some(LoopView::default());
                            }
                            if let Some(l) = event_loop.as_mut() {
                                l.apply(e);
                            }
                        }
                        view.event_loop = unchanged.or(event_loop.map(Rc::new));
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
    fn the_event_loop_view_follows_tasks_through_their_lifecycle() {
        use coreplay_shared::event::WakeBy;
        let mut l = LoopView::default();
        let spawn = |task, label: &str, waits_on| Event::TaskSpawn {
            task,
            at: 0,
            label: label.into(),
            waits_on,
        };
        let poll = |task, start, end, ready| Event::Poll {
            task,
            tid: 1,
            cpu: 0,
            start,
            end,
            ready,
        };
        for e in [
            spawn(1, "req-1", WaitKind::Io),
            spawn(2, "ticker", WaitKind::Timer),
            spawn(3, "req-3", WaitKind::Io),
        ] {
            l.apply(&e);
        }
        assert_eq!(l.ready_front(10), ["req-1", "ticker", "req-3"]);
        l.apply(&poll(1, 10, 20, false));
        l.apply(&poll(2, 20, 30, false));
        assert_eq!(l.ready_front(10), ["req-3"]);
        assert_eq!(
            l.sample(TaskState::ParkedIo, 10),
            (vec!["req-1".to_string()], 1)
        );
        assert_eq!(l.sample(TaskState::ParkedTimer, 10).1, 1);
        // Task 3 wakes itself during its poll (a yield): it stays ready.
        l.apply(&Event::Wake {
            task: 3,
            at: 35,
            by: WakeBy::Task { task: 3 },
        });
        l.apply(&poll(3, 31, 40, false));
        assert_eq!(l.ready_front(10), ["req-3"]);
        l.apply(&Event::LoopWait {
            tid: 1,
            start: 40,
            end: 90,
            woken: 1,
        });
        l.apply(&Event::Wake {
            task: 1,
            at: 90,
            by: WakeBy::Io,
        });
        assert_eq!(l.ready_front(10), ["req-3", "req-1"]);
        l.apply(&poll(3, 91, 95, true));
        l.apply(&poll(1, 95, 99, true));
        assert_eq!((l.done, l.polls, l.waits), (2, 5, 1));
        assert_eq!(l.last_poll, Some((1, 4, true)));
        assert!(l.ready_front(10).is_empty());
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
