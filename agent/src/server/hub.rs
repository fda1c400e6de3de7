//! The run hub: one run at a time, watched by every connected client.
//!
//! Each client has an outgoing queue. Control messages (run started, run ended, errors) are
//! always queued; event batches are queued only while fewer than [`MAX_QUEUED_BATCHES`] wait,
//! so a client that stops reading costs bounded memory. What it misses is counted and
//! reported in the next batch it does get (`dropped`). Other clients are not affected.
//! When the last client leaves, the run is stopped.

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use coreplay_shared::{
    ErrorCode, ServerMsg,
    event::{Event, Fidelity},
    scenario::{self, Params, ScenarioId},
    watch::{self as watch_protocol, WatchProgram, WatchTarget},
};
use tokio::sync::Notify;

use crate::{
    run::{Job, RunSpec},
    watch::{self, FidelityChoice, ProgramOutput, Target, WatchSpec},
};

/// How long a run started through the hub waits after telling the clients, before it
/// measures: on a small machine a page drawing "a run starts" would otherwise take a CPU from
/// the run's first moments (measured on 2 cores: the parallel lesson from the page 1.6–1.77×
/// without it).
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// Event batches a client may have waiting before further ones are dropped for it…
pub const MAX_QUEUED_BATCHES: usize = 64;
/// …and bytes of them (a busy tick can carry tens of thousands of events).
pub const MAX_QUEUED_BYTES: usize = 8 << 20;
/// Messages of any kind waiting for one client beyond which it is disconnected.
pub const MAX_QUEUED_CONTROL: usize = 1_000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Arc<str>>,
    batches: usize,
    bytes: usize,
    dropped: u64,
    /// The run whose events were dropped last (the report names it).
    dropped_run: u64,
    closed: bool,
}

/// One client's outgoing queue.
#[derive(Debug, Default)]
pub struct ClientQueue {
    queue: Mutex<Queue>,
    notify: Notify,
}

impl ClientQueue {
    fn push_control(&self, text: Arc<str>) {
        let mut q = lock(&self.queue);
        // Drops are reported with the next batch; if none comes (the run ended), an empty
        // batch carries the count, so the client always learns what it missed.
        if q.dropped > 0 {
            let (run, dropped) = (q.dropped_run, std::mem::take(&mut q.dropped));
            let report: Arc<str> = Arc::from(format!(
                r#"{{"type":"events","data":{{"run":{run},"events":[],"dropped":{dropped}}}}}"#
            ));
            // Counted like any batch, since `next` uncounts it like one.
            q.batches += 1;
            q.bytes += report.len();
            q.items.push_back(report);
        }
        if q.items.len() >= MAX_QUEUED_CONTROL {
            // A client this far behind is not reading at all: let it go rather than hold
            // summaries for it without bound.
            q.closed = true;
            q.items.clear();
            q.batches = 0;
            q.bytes = 0;
            drop(q);
            self.notify.notify_one();
            return;
        }
        q.items.push_back(text);
        drop(q);
        self.notify.notify_one();
    }

    fn push_batch(&self, run: u64, events_json: &str, shared: &Arc<str>, count: u64) {
        let mut q = lock(&self.queue);
        // One batch always fits an empty queue, however large a busy tick made it.
        let full = q.batches >= MAX_QUEUED_BATCHES
            || (q.batches > 0 && q.bytes + shared.len() > MAX_QUEUED_BYTES);
        if full || q.closed {
            q.dropped += count;
            q.dropped_run = run;
            return;
        }
        let text = if q.dropped == 0 {
            Arc::clone(shared)
        } else {
            let dropped = std::mem::take(&mut q.dropped);
            Arc::from(format!(
                r#"{{"type":"events","data":{{"run":{run},"events":{events_json},"dropped":{dropped}}}}}"#
            ))
        };
        q.bytes += text.len();
        q.items.push_back(text);
        q.batches += 1;
        drop(q);
        self.notify.notify_one();
    }

    /// The next message to send; `None` once the queue is closed.
    pub async fn next(&self) -> Option<Arc<str>> {
        loop {
            let notified = self.notify.notified();
            {
                let mut q = lock(&self.queue);
                if let Some(item) = q.items.pop_front() {
                    if item.starts_with(r#"{"type":"events""#) {
                        q.batches = q.batches.saturating_sub(1);
                        q.bytes = q.bytes.saturating_sub(item.len());
                    }
                    return Some(item);
                }
                if q.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    fn close(&self) {
        lock(&self.queue).closed = true;
        self.notify.notify_one();
    }

    /// Events dropped for this client and not yet reported.
    pub fn pending_dropped(&self) -> u64 {
        lock(&self.queue).dropped
    }
}

#[derive(Debug)]
struct Active {
    run: u64,
    scenario: ScenarioId,
    params: Params,
    cancel: Arc<AtomicBool>,
    fidelity: Fidelity,
    watch: Option<WatchTarget>,
}

impl Active {
    fn started(&self, yours: bool) -> Arc<str> {
        Arc::from(
            ServerMsg::RunStarted {
                run: self.run,
                scenario: self.scenario,
                params: self.params.clone(),
                fidelity: self.fidelity,
                yours,
                watch: self.watch.clone(),
            }
            .to_json(),
        )
    }

    fn describe(&self) -> String {
        match &self.watch {
            Some(w) => format!(
                "a watch of {}",
                w.program
                    .clone()
                    .unwrap_or_else(|| format!("pid {}", w.pid))
            ),
            None => self.scenario.to_string(),
        }
    }
}

/// Shared by all sessions.
#[derive(Debug)]
pub struct Hub {
    clients: Mutex<Vec<(u64, Arc<ClientQueue>)>>,
    active: Mutex<Option<Active>>,
    next_id: AtomicU64,
    pus: u32,
    exe: PathBuf,
    cap: Duration,
    fidelity: Fidelity,
    closing: AtomicBool,
    watch_programs: Vec<WatchProgram>,
    watch_hz: u32,
    keeper: Option<super::kept::Keeper>,
}

/// Why a run request was refused.
#[derive(Debug)]
pub struct Refusal(pub Box<ServerMsg>);

impl Hub {
    /// A hub for a machine with `pus` hardware threads.
    pub fn new(pus: u32, exe: PathBuf, cap: Duration, fidelity: Fidelity) -> Hub {
        Hub {
            clients: Mutex::new(Vec::new()),
            active: Mutex::new(None),
            next_id: AtomicU64::new(1),
            pus,
            exe,
            cap,
            fidelity,
            closing: AtomicBool::new(false),
            watch_programs: Vec::new(),
            watch_hz: watch_protocol::DEFAULT_HZ,
            keeper: None,
        }
    }

    /// The same hub keeping every run that ends as a trace file ([`super::kept`]).
    pub fn with_keeper(mut self, keeper: Option<super::kept::Keeper>) -> Hub {
        self.keeper = keeper;
        self
    }

    /// The same hub offering `programs` to watch ([`Hub::start_watch`]).
    pub fn with_watch_programs(mut self, programs: Vec<WatchProgram>) -> Hub {
        self.watch_programs = programs;
        self
    }

    /// The programs clients may start and watch.
    pub fn watch_programs(&self) -> &[WatchProgram] {
        &self.watch_programs
    }

    /// Stops the run, if any, and ends every session (their queues close), for shutdown.
    pub fn shutdown(&self) {
        self.closing.store(true, Ordering::Relaxed);
        if let Some(active) = lock(&self.active).as_ref() {
            active.cancel.store(true, Ordering::Relaxed);
        }
        for (_, q) in lock(&self.clients).iter() {
            q.close();
        }
    }

    /// Waits until no run is in progress (its threads and children are gone), at most
    /// `timeout`; returns whether it got there.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.busy() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// How runs record events.
    pub fn fidelity(&self) -> Fidelity {
        self.fidelity
    }

    /// Adds a client; returns its id and queue.
    ///
    /// A client joining during a run is told about it first, so it can follow it. (Locks are
    /// always taken in the order `active`, then `clients`.)
    pub fn join(&self) -> (u64, Arc<ClientQueue>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(ClientQueue::default());
        let active = lock(&self.active);
        let mut clients = lock(&self.clients);
        if self.closing.load(Ordering::Relaxed) {
            queue.close();
        } else if let Some(a) = active.as_ref() {
            queue.push_control(a.started(false));
        }
        clients.push((id, Arc::clone(&queue)));
        (id, queue)
    }

    /// Removes a client; the last one out stops the run.
    pub fn leave(&self, id: u64) {
        let remaining = {
            let mut clients = lock(&self.clients);
            clients.retain(|(c, _)| *c != id);
            clients.len()
        };
        if remaining == 0
            && let Some(active) = lock(&self.active).as_ref()
        {
            tracing::info!("last client left: stopping run {}", active.run);
            active.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// The most event batches any client has waiting (for paced producers in benchmarks).
    pub fn max_queued_batches(&self) -> usize {
        lock(&self.clients)
            .iter()
            .map(|(_, q)| lock(&q.queue).batches)
            .max()
            .unwrap_or(0)
    }

    /// Number of connected clients.
    pub fn client_count(&self) -> usize {
        lock(&self.clients).len()
    }

    fn broadcast_control(&self, text: &str) {
        let text: Arc<str> = Arc::from(text);
        for (_, q) in lock(&self.clients).iter() {
            q.push_control(Arc::clone(&text));
        }
    }

    /// Queues a batch of a run's events for every client (the run's collector calls this once
    /// per tick; public for the throughput benchmark).
    pub fn broadcast_events(&self, run: u64, events: &[Event]) {
        let Ok(events_json) = serde_json::to_string(events) else {
            return;
        };
        let shared: Arc<str> = Arc::from(format!(
            r#"{{"type":"events","data":{{"run":{run},"events":{events_json}}}}}"#
        ));
        for (_, q) in lock(&self.clients).iter() {
            q.push_batch(run, &events_json, &shared, events.len() as u64);
        }
    }

    /// Starts a run for client `by`, or says why not.
    pub fn start(
        self: &Arc<Self>,
        by: u64,
        id: ScenarioId,
        params: &Params,
    ) -> Result<u64, Refusal> {
        let params = scenario::resolve(id, params, self.pus).map_err(|e| {
            Refusal(Box::new(ServerMsg::Error {
                code: ErrorCode::BadParam,
                message: e.to_string(),
                field: Some(e.field().to_string()),
            }))
        })?;
        let active = lock(&self.active);
        self.check_free(active.as_ref())?;
        let run = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(AtomicBool::new(false));
        let spec = RunSpec {
            scenario: id,
            params: params.clone(),
            pus: self.pus,
            exe: self.exe.clone(),
            cap: self.cap,
            fidelity: self.fidelity,
        };
        let new = Active {
            run,
            scenario: id,
            params,
            cancel,
            fidelity: self.fidelity,
            watch: None,
        };
        self.launch(by, Job::Scenario(spec), new, active)
    }

    /// Starts `job` as run `new.run` on a thread of its own, which broadcasts its events as
    /// they come and its summary at its end; every client is told it started (`active`, held
    /// by the caller since it checked the agent was free, becomes `new`).
    fn launch(
        self: &Arc<Self>,
        by: u64,
        job: Job,
        new: Active,
        mut active: MutexGuard<'_, Option<Active>>,
    ) -> Result<u64, Refusal> {
        let run = new.run;
        let hub = Arc::clone(self);
        let cancel = Arc::clone(&new.cancel);
        // The run thread waits for `active` (held here) before it starts, so every client has
        // its run_started queued before any event of the run.
        let spawned = std::thread::Builder::new()
            .name(format!("run-{run}"))
            .spawn(move || {
                drop(lock(&hub.active));
                // The pages watching draw that a run starts (and then keep still while it
                // measures): let them finish drawing before a scenario measures anything. (A
                // watched program already runs: its start must not be missed.)
                if matches!(job, Job::Scenario(_)) {
                    std::thread::sleep(SETTLE);
                }
                let events_hub = Arc::clone(&hub);
                let finished = job.run(cancel, move |batch| {
                    events_hub.broadcast_events(run, batch);
                });
                // Kept before it is announced, so the name the pages get is served already.
                let saved = hub.keeper.as_ref().and_then(|k| k.keep(run, &finished));
                let ended = ServerMsg::RunEnded {
                    run,
                    summary: Box::new(finished.summary),
                    saved,
                };
                // Queue the summary before the next run can be started.
                let mut active = lock(&hub.active);
                hub.broadcast_control(&ended.to_json());
                *active = None;
            });
        if let Err(e) = spawned {
            // The closure, and with it the job, is dropped: a watch's program is ended.
            return Err(Refusal(Box::new(ServerMsg::error(
                ErrorCode::RunFailed,
                format!("could not start the run: {e}"),
            ))));
        }
        for (client, queue) in lock(&self.clients).iter() {
            queue.push_control(new.started(*client == by));
        }
        *active = Some(new);
        Ok(run)
    }

    fn check_free(&self, active: Option<&Active>) -> Result<(), Refusal> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(Refusal(Box::new(ServerMsg::error(
                ErrorCode::RunFailed,
                "the agent is shutting down",
            ))));
        }
        if let Some(a) = active {
            return Err(Refusal(Box::new(ServerMsg::error(
                ErrorCode::Busy,
                format!(
                    "busy: run {} ({}) is in progress; one run at a time, every client watches it \
                     and any client may stop it",
                    a.run,
                    a.describe()
                ),
            ))));
        }
        Ok(())
    }

    /// Starts one of the operator's programs for client `by` and watches it as a run (never
    /// a command from the client: only a name from [`Hub::watch_programs`]).
    pub fn start_watch(self: &Arc<Self>, by: u64, program: &str) -> Result<u64, Refusal> {
        let chosen = watch_protocol::find_program(&self.watch_programs, program)
            .map_err(|message| {
                Refusal(Box::new(ServerMsg::Error {
                    code: ErrorCode::BadParam,
                    message,
                    field: Some("program".into()),
                }))
            })?
            .clone();
        let active = lock(&self.active);
        self.check_free(active.as_ref())?;
        let spec = WatchSpec {
            target: Target::Command(chosen.command.clone()),
            program: Some(chosen.name.clone()),
            hz: self.watch_hz,
            // An operator who chose self-timed runs gets sampled watches.
            fidelity: if self.fidelity == Fidelity::Exact {
                FidelityChoice::Auto
            } else {
                FidelityChoice::Sampled
            },
            cap: self.cap,
            output: ProgramOutput::Capture,
            python_probe: true,
        };
        let watched = watch::start(&spec).map_err(|e| {
            Refusal(Box::new(ServerMsg::error(
                ErrorCode::RunFailed,
                format!("could not watch {}: {e}", chosen.name),
            )))
        })?;
        let run = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(AtomicBool::new(false));
        let new = Active {
            run,
            scenario: ScenarioId::Watch,
            params: Params::default(),
            cancel: Arc::clone(&cancel),
            fidelity: watched.fidelity(),
            watch: Some(watched.target()),
        };
        self.launch(by, Job::Watch(Box::new(watched)), new, active)
    }

    /// Stops the current run.
    pub fn stop(&self) -> Result<u64, Refusal> {
        match lock(&self.active).as_ref() {
            Some(a) => {
                a.cancel.store(true, Ordering::Relaxed);
                Ok(a.run)
            }
            None => Err(Refusal(Box::new(ServerMsg::error(
                ErrorCode::NoRun,
                "no run is in progress",
            )))),
        }
    }

    /// Whether a run is in progress.
    pub fn busy(&self) -> bool {
        lock(&self.active).is_some()
    }
}
