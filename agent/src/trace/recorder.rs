//! One run's recording context: the clock origin, run-wide thread ids, the cancel flag, and
//! the bounded channel thread tracers flush their buffers into.
//!
//! The channel is bounded so a slow consumer cannot make memory grow without limit; a batch
//! that does not fit is dropped and its events are counted, never lost silently.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
};

use coreplay_shared::event::{Event, Ns};

use super::{clock::monotonic_ns, cpustat::Snapshot, event_loop::LoopBatch};

/// What a thread hands the recorder: finished events, or an event loop's raw records, which
/// become events on the consumer's side so the loop's hot path stays short.
#[derive(Debug)]
pub enum Batch {
    /// Events ready to use.
    Events(Vec<Event>),
    /// An event loop's records.
    Loop(LoopBatch),
}

impl Batch {
    /// Drops the batch (the consumer fell behind); returns how many events it stood for.
    pub fn discard(self) -> usize {
        match self {
            Batch::Events(events) => events.len(),
            Batch::Loop(batch) => batch.discard(),
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        match self {
            Batch::Events(events) => events.is_empty(),
            Batch::Loop(batch) => batch.is_empty(),
        }
    }

    /// The events.
    pub fn into_events(self) -> Vec<Event> {
        match self {
            Batch::Events(events) => events,
            Batch::Loop(batch) => batch.into_events(),
        }
    }

    /// Appends the events to `out`. An event loop's records become events right there, with
    /// no vector of their own: a collector that keeps `out` (as runs do) allocates nothing per
    /// batch (a batch of 16 384 records is about 1.5 MB of events).
    pub fn append_to(self, out: &mut Vec<Event>) {
        match self {
            Batch::Events(mut events) => out.append(&mut events),
            Batch::Loop(batch) => batch.append_to(out),
        }
    }
}

/// Batches the channel holds before dropping (each up to a few hundred events).
pub const CHANNEL_BATCHES: usize = 4096;

/// The recording context shared by every thread of a run.
#[derive(Debug)]
pub struct Recorder {
    origin_ns: u64,
    enabled: bool,
    exact: AtomicBool,
    fallbacks: AtomicU32,
    next_tid: AtomicU32,
    next_task: AtomicU32,
    tx: SyncSender<Batch>,
    dropped: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
    /// The machine's counters when the measured part of the run ended, once read.
    measured_end: OnceLock<Option<Snapshot>>,
}

impl Recorder {
    /// A recorder whose clock starts now. With `enabled` false, tracers record nothing (used
    /// to measure what tracing costs and for baselines).
    pub fn new(enabled: bool, cancel: Arc<AtomicBool>) -> (Arc<Recorder>, Receiver<Batch>) {
        Recorder::with_origin(monotonic_ns(), enabled, cancel)
    }

    /// A recorder on a given clock origin (`CLOCK_MONOTONIC` ns), e.g. a worker process
    /// joining its parent's run.
    pub fn with_origin(
        origin_ns: u64,
        enabled: bool,
        cancel: Arc<AtomicBool>,
    ) -> (Arc<Recorder>, Receiver<Batch>) {
        let (tx, rx) = sync_channel(CHANNEL_BATCHES);
        let recorder = Recorder {
            origin_ns,
            enabled,
            exact: AtomicBool::new(false),
            fallbacks: AtomicU32::new(0),
            next_tid: AtomicU32::new(1),
            next_task: AtomicU32::new(1),
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            cancel,
            measured_end: OnceLock::new(),
        };
        (Arc::new(recorder), rx)
    }

    /// Marks the end of the run's measured part: the machine's counters are read now, the
    /// first time only (a baseline measured afterwards, untraced, is not part of the window in
    /// which other programs' share of the CPUs is told).
    pub fn end_measured_part(&self) {
        self.measured_end.get_or_init(|| Snapshot::take(self));
    }

    /// The counters read by [`Recorder::end_measured_part`], if it was called and could read
    /// them.
    pub fn measured_end(&self) -> Option<Snapshot> {
        self.measured_end.get().cloned().flatten()
    }

    /// Whether tracers record.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Asks tracers to record exact switches from the kernel (see [`super::perf`]).
    pub fn set_exact(&self, exact: bool) {
        self.exact.store(exact, Ordering::Relaxed);
    }

    /// Whether tracers should record exact switches.
    pub fn exact(&self) -> bool {
        self.exact.load(Ordering::Relaxed)
    }

    /// Counts a thread that could not open exact recording and timed itself instead.
    pub fn note_fallback(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Threads that fell back to self-timing in an exact run.
    pub fn fallbacks(&self) -> u32 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// The clock origin, `CLOCK_MONOTONIC` ns.
    pub fn origin_ns(&self) -> u64 {
        self.origin_ns
    }

    /// Now, in ns since the run started.
    pub fn now(&self) -> Ns {
        self.at(monotonic_ns())
    }

    /// A `CLOCK_MONOTONIC` reading in ns since the run started.
    pub fn at(&self, monotonic: u64) -> Ns {
        monotonic.saturating_sub(self.origin_ns)
    }

    /// A new run-wide thread id.
    pub fn next_tid(&self) -> u32 {
        self.next_tid.fetch_add(1, Ordering::Relaxed)
    }

    /// A new run-wide event-loop task id.
    pub fn next_task(&self) -> u32 {
        self.next_task.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the run was asked to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The run's cancel flag.
    pub fn cancel_flag(&self) -> &Arc<AtomicBool> {
        &self.cancel
    }

    /// Hands a batch of events to the consumer, or counts it as dropped.
    pub fn send(&self, batch: Vec<Event>) {
        self.send_batch(Batch::Events(batch));
    }

    /// Hands a batch to the consumer, or counts it as dropped.
    pub fn send_batch(&self, batch: Batch) {
        if batch.is_empty() || !self.enabled {
            return;
        }
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                self.dropped
                    .fetch_add(b.discard() as u64, Ordering::Relaxed);
            }
        }
    }

    /// Hands an event loop's records to the consumer, or counts them as dropped.
    pub fn send_loop(&self, batch: LoopBatch) {
        self.send_batch(Batch::Loop(batch));
    }

    /// Sends one event on its own (for rare events outside a thread's tracer).
    pub fn emit(&self, event: Event) {
        self.send(vec![event]);
    }

    /// Counts events lost before they reached the recorder (e.g. the kernel's perf buffer
    /// overflowed).
    pub fn note_dropped(&self, events: u64) {
        self.dropped.fetch_add(events, Ordering::Relaxed);
    }

    /// The count of dropped events, for those who drop events away from the recorder (an
    /// event loop's consumer).
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
