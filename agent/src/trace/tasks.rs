//! Event-loop instrumentation: every task spawned on the loop is wrapped in [`Traced`], which
//! times each poll and wraps the task's waker, and the runtime's park hooks ([`park`],
//! [`unpark`]) mark the loop's waits in the selector (epoll). From these come the task
//! lifecycle (spawn → poll → pending → wake → … → poll → ready), who woke whom, the ready
//! queue's depth and the tasks parked on I/O and timers — all from the real tokio runtime.
//!
//! The loop's hot path only writes down what happened: 24-byte records with raw counter
//! stamps (see [`super::stamp`]) in a plain vector, handed over in batches. Everything that
//! can wait — which tasks are queued or parked, which wakes the runtime ignores, the queue
//! depths, stamp conversion — is worked out by the recorder's consumer, off the loop's
//! thread, by [`Replay`] (one per loop, kept across that loop's batches).
//!
//! The hot state lives in a thread local of the loop's thread: a current-thread runtime
//! polls and wakes on that thread, so no locking is needed. A wake from another thread is
//! passed on to the runtime but not recorded.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    future::Future,
    hash::{BuildHasherDefault, Hasher},
    mem::ManuallyDrop,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicPtr, AtomicU64, Ordering},
    },
    task::{Context, Poll, RawWaker, RawWakerVTable, Wake, Waker},
};

use coreplay_shared::event::{Event, OffReason, WaitKind, WakeBy};

use super::{
    ThreadTracer,
    clock::current_cpu,
    recorder::Batch,
    stamp::{Calib, Scale, StampClock},
};

/// Records a loop thread keeps before handing them over (96 KiB: each hand-over wakes the
/// consumer, which costs the loop a few µs).
const RAW_BATCH: usize = 4096;

/// The longest a record waits on the loop thread before it is handed over, so a live page
/// follows a busy loop closely.
const FLUSH_NS: u64 = 20_000_000;

/// The stamp of a wake not stamped yet (see [`LoopState::wake`]).
const PENDING: u64 = u64::MAX;

/// "No task": the waker field of a wake from outside any poll.
const NO_TASK: u64 = u64::MAX;

/// "No task": the waker field of a [`Kind::WakeData`] record from outside any poll.
const NO_WAKER: u32 = u32::MAX;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    /// A task was spawned; `flag` is its [`WaitKind`] (0 I/O, 1 timer).
    Spawn,
    /// A poll from `start` to `end` on `cpu`; `flag` 1 if it returned ready. Written when the
    /// poll starts and completed when it ends.
    Poll,
    /// A wake at `start`; `end` is the task whose poll woke it, or [`NO_TASK`].
    Wake,
    /// A wake through a forwarding waker (see [`forward`]) at `start`: `end` is the runtime's
    /// waker data (which [`Kind::Bind`] ties to a task), `task` the task whose poll woke it,
    /// or [`NO_WAKER`].
    WakeData,
    /// From now on the runtime's waker data `end` stands for `task`.
    Bind,
    /// The task was dropped unfinished, at `start`.
    Cancel,
    /// The loop went to wait in the selector at `start`.
    Park,
    /// …and came back at `start`.
    Unpark,
}

/// One record as the loop's hot path writes it: plain data, stamps not yet converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raw {
    start: u64,
    end: u64,
    task: u32,
    cpu: u16,
    kind: Kind,
    flag: u8,
}

impl Raw {
    fn at(kind: Kind, task: u32, start: u64) -> Raw {
        Raw {
            start,
            end: start,
            task,
            cpu: 0,
            kind,
            flag: 0,
        }
    }
}

/// Where a task is, as the replay sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Ready,
    Running,
    Waiting,
    Gone,
}

/// The consumer's side of one loop: the task states and queue depths its records imply.
/// Tasks live in a vector indexed by id (ids of one loop are consecutive).
#[derive(Debug, Default)]
struct Replay {
    base: Option<u32>,
    slots: Vec<(WaitKind, At)>,
    ready: u32,
    io: u32,
    timers: u32,
    /// The open selector wait: its start (run ns) and the wakes counted in it.
    wait: Option<(u64, u32)>,
    /// Which task each runtime waker data stands for (see [`forward`]).
    bound: HashMap<u64, u32, BuildHasherDefault<PointerHasher>>,
    /// The sequence number of the next batch to apply: batches are applied in the order the
    /// loop wrote them.
    next: u64,
    /// Batches the consumer never gets (dropped when the channel was full) that wait for the
    /// batches before them, still in the channel, to be applied first.
    waiting: BTreeMap<u64, Records>,
    /// More batches were dropped than can wait: the task states are no longer known, so no
    /// more queue depths are told (they are counted as dropped instead).
    lost: bool,
    /// The run's count of dropped events.
    dropped: Arc<AtomicU64>,
}

/// Dropped batches a loop's replay keeps until the batches before them arrive (each at most
/// [`RAW_BATCH`] records: 6 MiB in all).
const MAX_WAITING: usize = 64;

/// Hashes the runtime's waker data (addresses the runtime itself chose, so no one can pick
/// colliding keys) with one multiplication instead of SipHash: the consumer looks one up per
/// wake.
#[derive(Debug, Default)]
struct PointerHasher(u64);

impl Hasher for PointerHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // A multiplication carries every bit of n into the high half; folding it down gives
        // the low bits (the table's index) that addresses, aligned, lack.
        let h = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

impl Replay {
    fn slot(&mut self, task: u32) -> Option<&mut (WaitKind, At)> {
        let index = task.checked_sub(self.base?)? as usize;
        self.slots.get_mut(index)
    }

    fn leave(&mut self, kind: WaitKind, at: At) {
        match (at, kind) {
            (At::Ready, _) => self.ready -= 1,
            (At::Waiting, WaitKind::Io) => self.io -= 1,
            (At::Waiting, WaitKind::Timer) => self.timers -= 1,
            _ => {}
        }
    }

    fn spawn(&mut self, task: u32, kind: WaitKind) {
        let base = *self.base.get_or_insert(task);
        let Some(index) = task.checked_sub(base).map(|i| i as usize) else {
            return;
        };
        if self.slots.len() <= index {
            self.slots.resize(index + 1, (kind, At::Gone));
        }
        self.slots[index] = (kind, At::Ready);
        self.ready += 1;
    }

    /// A wake, unless the task is already queued or finished (the runtime ignores those
    /// too); returns what woke it.
    fn wake(&mut self, task: u32, waker: Option<u32>) -> Option<WakeBy> {
        let slot = self.slot(task)?;
        let (kind, at) = *slot;
        if !matches!(at, At::Waiting | At::Running) {
            return None;
        }
        slot.1 = At::Ready;
        self.leave(kind, at);
        self.ready += 1;
        if let Some((_, woken)) = self.wait.as_mut() {
            *woken += 1;
        }
        Some(match (waker, kind) {
            (Some(task), _) => WakeBy::Task { task },
            (None, WaitKind::Io) => WakeBy::Io,
            (None, WaitKind::Timer) => WakeBy::Timer,
        })
    }

    fn begin_poll(&mut self, task: u32) {
        if let Some(slot) = self.slot(task)
            && slot.1 == At::Ready
        {
            slot.1 = At::Running;
            self.ready -= 1;
        }
    }

    fn end_poll(&mut self, task: u32, ready: bool) {
        let Some(slot) = self.slot(task) else {
            return;
        };
        let (kind, at) = *slot;
        if ready {
            slot.1 = At::Gone;
            self.leave(kind, at);
        } else if at == At::Running {
            // Not re-woken during its own poll: it waits.
            slot.1 = At::Waiting;
            match kind {
                WaitKind::Io => self.io += 1,
                WaitKind::Timer => self.timers += 1,
            }
        }
    }

    fn cancel(&mut self, task: u32) -> bool {
        let Some(slot) = self.slot(task) else {
            return false;
        };
        let (kind, at) = *slot;
        if at == At::Gone {
            return false;
        }
        slot.1 = At::Gone;
        self.leave(kind, at);
        true
    }
}

/// A loop thread's records on their way to the recorder's consumer.
#[derive(Debug)]
pub struct LoopBatch {
    records: Records,
    replay: Arc<Mutex<Replay>>,
}

/// One hand-over's records and how to read them.
#[derive(Debug)]
struct Records {
    /// Its place in the loop's sequence of hand-overs.
    seq: u64,
    tid: u32,
    origin_ns: u64,
    depths: bool,
    scale: Scale,
    raw: Vec<Raw>,
    /// Spawned tasks' labels, in the order of their spawn records.
    labels: Vec<String>,
}

impl Records {
    /// How many events the records stand for at most (wakes the runtime ignored included).
    fn event_count(&self) -> usize {
        let with_depth = if self.depths { 2 } else { 1 };
        self.raw
            .iter()
            .map(|r| match r.kind {
                Kind::Park | Kind::Bind => 0,
                Kind::Spawn | Kind::Wake | Kind::WakeData => 1,
                Kind::Poll | Kind::Cancel | Kind::Unpark => with_depth,
            })
            .sum()
    }
}

impl LoopBatch {
    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.raw.is_empty()
    }

    /// The events, in the order they happened.
    pub fn into_events(self) -> Vec<Event> {
        let mut events = Vec::with_capacity(self.records.raw.len() * 2);
        let mut replay = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
        replay.deliver(self.records, &mut events);
        events
    }

    /// Drops the batch (the consumer fell behind), letting the loop's replay follow it in
    /// its turn so that later batches still come out right; returns how many events it stood
    /// for.
    pub fn discard(self) -> usize {
        let count = self.records.event_count();
        let mut replay = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
        replay.skip(self.records);
        count
    }
}

impl Replay {
    /// A delivered batch. Every batch before it was delivered or dropped already (the channel
    /// keeps their order, and a batch is dropped before any later one is sent): the dropped
    /// ones waiting for their turn are applied first.
    fn deliver(&mut self, records: Records, out: &mut Vec<Event>) {
        while let Some(entry) = self.waiting.first_entry()
            && *entry.key() < records.seq
        {
            let skipped = entry.remove();
            self.apply(skipped, None);
        }
        self.apply(records, Some(out));
        self.apply_waiting();
    }

    /// A dropped batch: applied now if it is next, else kept until the batches before it,
    /// still in the channel, have been.
    fn skip(&mut self, records: Records) {
        if records.seq == self.next {
            self.apply(records, None);
            self.apply_waiting();
        } else if self.waiting.len() < MAX_WAITING && !self.lost {
            self.waiting.insert(records.seq, records);
        } else {
            self.lost = true;
            self.waiting.clear();
        }
    }

    /// Applies the dropped batches that are next in turn.
    fn apply_waiting(&mut self) {
        while let Some(entry) = self.waiting.first_entry()
            && *entry.key() == self.next
        {
            let skipped = entry.remove();
            self.apply(skipped, None);
        }
    }

    /// Replays the records, pushing their events to `out` if given.
    fn apply(&mut self, records: Records, out: Option<&mut Vec<Event>>) {
        let Records {
            seq,
            tid,
            origin_ns,
            depths,
            scale,
            raw,
            labels,
        } = records;
        self.next = self.next.max(seq + 1);
        let state = self;
        let mut sink = Sink {
            tid,
            origin_ns,
            depths: depths && !state.lost,
            unknown_depths: depths && state.lost,
            scale,
            untold: 0,
            out,
        };
        let mut labels = labels.into_iter();
        // The poll whose end is still to come: what happened during it follows its record.
        let mut open: Option<Raw> = None;
        for r in raw {
            // Records written during a poll (its wakes, spawns, cancels) are stamped before
            // its end; the first one after it closes it.
            if let Some(poll) = open.take_if(|p| r.start > p.end) {
                sink.close_poll(state, poll);
            }
            let task = r.task;
            match r.kind {
                Kind::Spawn => {
                    let waits_on = if r.flag == 1 {
                        WaitKind::Timer
                    } else {
                        WaitKind::Io
                    };
                    state.spawn(task, waits_on);
                    sink.emit(Event::TaskSpawn {
                        task,
                        at: sink.at(r.start),
                        label: labels.next().unwrap_or_default(),
                        waits_on,
                    });
                }
                Kind::Poll => {
                    state.begin_poll(task);
                    open = Some(r);
                }
                Kind::Bind => {
                    state.bound.insert(r.end, task);
                }
                Kind::Wake | Kind::WakeData => {
                    let (task, waker) = if r.kind == Kind::Wake {
                        (task, (r.end != NO_TASK).then_some(r.end as u32))
                    } else {
                        // A waker of another loop's task: not this loop's to show.
                        let Some(&woken) = state.bound.get(&r.end) else {
                            continue;
                        };
                        (woken, (task != NO_WAKER).then_some(task))
                    };
                    if let Some(by) = state.wake(task, waker) {
                        sink.emit(Event::Wake {
                            task,
                            at: sink.at(r.start),
                            by,
                        });
                    }
                }
                Kind::Cancel => {
                    if state.cancel(task) {
                        let at = sink.at(r.start);
                        sink.emit(Event::TaskCancelled { task, at });
                        sink.depth(state, at);
                    }
                }
                Kind::Park => state.wait = Some((sink.at(r.start), 0)),
                Kind::Unpark => {
                    if let Some((start, woken)) = state.wait.take() {
                        let end = sink.at(r.start);
                        sink.emit(Event::LoopWait {
                            tid,
                            start,
                            end,
                            woken,
                        });
                        sink.depth(state, end);
                    }
                }
            }
        }
        if let Some(poll) = open {
            sink.close_poll(state, poll);
        }
        if sink.untold > 0 {
            state.dropped.fetch_add(sink.untold, Ordering::Relaxed);
        }
    }
}

/// Where a replay's events go, and how its stamps convert.
struct Sink<'a> {
    tid: u32,
    origin_ns: u64,
    depths: bool,
    /// Depths are traced but no longer known: count them as dropped.
    unknown_depths: bool,
    scale: Scale,
    /// Depth events not told because they are not known.
    untold: u64,
    out: Option<&'a mut Vec<Event>>,
}

impl Sink<'_> {
    /// Run ns of a stamp.
    fn at(&self, ticks: u64) -> u64 {
        self.scale.mono(ticks).saturating_sub(self.origin_ns)
    }

    fn emit(&mut self, event: Event) {
        if let Some(out) = self.out.as_deref_mut() {
            out.push(event);
        }
    }

    /// The queue depths now (only where tasks are traced).
    fn depth(&mut self, state: &Replay, at: u64) {
        if self.depths {
            self.emit(Event::QueueDepth {
                at,
                ready: state.ready,
                io: state.io,
                timers: state.timers,
            });
        } else if self.unknown_depths {
            self.untold += 1;
        }
    }

    fn close_poll(&mut self, state: &mut Replay, r: Raw) {
        let ready = r.flag == 1;
        state.end_poll(r.task, ready);
        let end = self.at(r.end);
        self.emit(Event::Poll {
            task: r.task,
            tid: self.tid,
            cpu: u32::from(r.cpu),
            start: self.at(r.start),
            end,
            ready,
        });
        self.depth(state, end);
    }
}

/// The loop thread's tracing state: what the hot path needs and nothing more.
#[derive(Debug)]
pub struct LoopState {
    /// The loop thread's tracer (its on/off-CPU slices go through its own buffer).
    pub tracer: ThreadTracer,
    instrument: bool,
    /// The task being polled, and the index of its poll record.
    current: Option<(u32, usize)>,
    parked: bool,
    clock: StampClock,
    /// The pair the records since the last hand-over are converted from.
    anchor: Calib,
    /// The pair read when tracing started, and the rate measured from it.
    origin: Calib,
    flush_ticks: u64,
    raw: Vec<Raw>,
    labels: Vec<String>,
    /// The first record that may be a wake waiting for its stamp.
    pending: Option<usize>,
    /// The next hand-over's sequence number.
    seq: u64,
    replay: Arc<Mutex<Replay>>,
}

thread_local! {
    static LOOP: RefCell<Option<LoopState>> = const { RefCell::new(None) };
}

/// Installs tracing on the calling (loop) thread. With `instrument` false only the thread and
/// its selector waits are traced, not its tasks (to measure what task tracing costs).
pub fn enter(tracer: ThreadTracer, instrument: bool) {
    let mut clock = StampClock::detect();
    let (origin, rate) = clock.calibrate(100_000);
    let replay = Arc::new(Mutex::new(Replay {
        dropped: tracer.recorder().dropped_counter(),
        ..Replay::default()
    }));
    LOOP.with(|l| {
        *l.borrow_mut() = Some(LoopState {
            tracer,
            instrument,
            current: None,
            parked: false,
            clock,
            anchor: clock.calib(),
            origin,
            flush_ticks: flush_ticks(rate),
            raw: Vec::with_capacity(RAW_BATCH),
            labels: Vec::new(),
            pending: None,
            seq: 0,
            replay,
        })
    });
}

fn flush_ticks(ns_per_tick: f64) -> u64 {
    (FLUSH_NS as f64 / ns_per_tick.max(1e-3)) as u64
}

/// Removes the state, handing over what it recorded; returns the tracer to finish.
pub fn exit() -> Option<ThreadTracer> {
    LOOP.with(|l| l.borrow_mut().take()).map(|mut s| {
        s.flush();
        s.tracer
    })
}

/// Runs `f` on the state, if this thread has one and it is not in use.
#[inline]
pub fn with<R>(f: impl FnOnce(&mut LoopState) -> R) -> Option<R> {
    LOOP.with(|l| l.try_borrow_mut().ok()?.as_mut().map(f))
}

/// The runtime is about to wait in the selector (`on_thread_park`).
pub fn park() {
    with(|s| {
        // The loop may now sleep for long: what it recorded should not wait for it.
        s.flush();
        s.tracer.begin_off();
        let now = s.stamp();
        s.raw.push(Raw::at(Kind::Park, 0, now));
        s.parked = true;
    });
}

/// The runtime is back from the selector (`on_thread_unpark`).
pub fn unpark() {
    with(|s| {
        s.tracer.end_off(OffReason::Io);
        let now = s.stamp();
        s.raw.push(Raw::at(Kind::Unpark, 0, now));
        s.parked = false;
        s.maybe_flush(now);
    });
}

impl LoopState {
    /// A stamp, which is also the stamp of the wakes recorded since the last one.
    #[inline]
    fn stamp(&mut self) -> u64 {
        let now = self.clock.now();
        if self.pending.is_some() {
            self.settle(now);
        }
        now
    }

    #[cold]
    fn settle(&mut self, now: u64) {
        if let Some(first) = self.pending.take() {
            for r in self.raw.iter_mut().skip(first) {
                if r.start == PENDING {
                    r.start = now;
                }
            }
        }
    }

    /// Hands the records over when there are many or they waited long; never inside a poll
    /// (its record is still open) or between park and unpark (a selector wait's start must
    /// convert with the same anchor as its end).
    #[inline]
    fn maybe_flush(&mut self, now: u64) {
        if (self.raw.len() >= RAW_BATCH || now.wrapping_sub(self.anchor.ticks) > self.flush_ticks)
            && self.current.is_none()
            && !self.parked
        {
            self.flush();
        }
    }

    /// Hands the records over, converted by interpolating between the pair read at the last
    /// hand-over and one read now (so consecutive batches meet exactly).
    fn flush(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let now = self.clock.calib();
        self.settle(now.ticks);
        let total = self.clock.rate(self.origin, now);
        let scale = self.clock.scale(self.anchor, now, total.unwrap_or(1.0));
        if let Some(rate) = total {
            self.flush_ticks = flush_ticks(rate);
        }
        self.anchor = now;
        let batch = LoopBatch {
            records: Records {
                seq: self.seq,
                tid: self.tracer.tid(),
                origin_ns: self.tracer.recorder().origin_ns(),
                depths: self.instrument,
                scale,
                raw: std::mem::replace(&mut self.raw, Vec::with_capacity(RAW_BATCH)),
                labels: std::mem::take(&mut self.labels),
            },
            replay: Arc::clone(&self.replay),
        };
        self.seq += 1;
        self.tracer.recorder().send_batch(Batch::Loop(batch));
    }

    fn spawn(&mut self, task: u32, kind: WaitKind, label: String) {
        self.labels.push(label);
        let now = self.stamp();
        let mut r = Raw::at(Kind::Spawn, task, now);
        r.flag = u8::from(kind == WaitKind::Timer);
        self.raw.push(r);
        self.maybe_flush(now);
    }

    /// A wake's stamp and the task whose poll it happens in.
    #[inline]
    fn wake_stamp(&mut self) -> (u64, Option<u32>) {
        // A wake inside a poll is stamped now: the poll may run long. Any other wake happens
        // in tokio's scheduler between two steps of the loop (a yield's deferred wake, or the
        // I/O and timer wakes it hands out as the selector returns) and takes the stamp of the
        // loop's next step: at most that gap late (well under a µs on this path), and one
        // clock read fewer per poll.
        match self.current {
            Some((waker, _)) => (self.clock.now(), Some(waker)),
            None => {
                if self.pending.is_none() {
                    self.pending = Some(self.raw.len());
                }
                (PENDING, None)
            }
        }
    }

    /// A wake of `task` through its own [`TaskWaker`].
    #[inline]
    fn wake(&mut self, task: u32) {
        let (start, waker) = self.wake_stamp();
        self.raw.push(Raw {
            start,
            end: waker.map_or(NO_TASK, u64::from),
            task,
            cpu: 0,
            kind: Kind::Wake,
            flag: 0,
        });
    }

    /// A wake through a forwarding waker: `data` is the runtime's waker data.
    #[inline]
    fn wake_data(&mut self, data: u64) {
        let (start, waker) = self.wake_stamp();
        self.raw.push(Raw {
            start,
            end: data,
            task: waker.unwrap_or(NO_WAKER),
            cpu: 0,
            kind: Kind::WakeData,
            flag: 0,
        });
    }

    /// Ties the runtime's waker data to a task (see [`forward`]).
    fn bind(&mut self, task: u32, data: u64) {
        // No time of its own: stamp 0 keeps the replay's open poll, if any, open.
        let mut r = Raw::at(Kind::Bind, task, 0);
        r.end = data;
        self.raw.push(r);
    }

    #[inline]
    fn begin_poll(&mut self, task: u32) {
        let now = self.stamp();
        self.current = Some((task, self.raw.len()));
        self.raw.push(Raw::at(Kind::Poll, task, now));
    }

    #[inline]
    fn end_poll(&mut self, ready: bool) {
        let end = self.clock.now();
        let cpu = current_cpu();
        if let Some((_, index)) = self.current.take()
            && let Some(r) = self.raw.get_mut(index)
        {
            r.end = end;
            r.cpu = u16::try_from(cpu).unwrap_or(u16::MAX);
            r.flag = u8::from(ready);
        }
        self.maybe_flush(end);
    }

    fn cancel(&mut self, task: u32) {
        let now = self.stamp();
        self.raw.push(Raw::at(Kind::Cancel, task, now));
        self.maybe_flush(now);
    }
}

/// A waker of our own around the runtime's, for runtimes whose waker vtable has no
/// forwarding slot (see [`forward`]): one allocation per task and two reference counts per
/// wake more than the runtime's own.
struct TaskWaker {
    task: u32,
    inner: Waker,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        with(|s| s.wake(self.task));
        self.inner.wake_by_ref();
    }
}

/// Forwarding wakers: a waker with the runtime's own data pointer and a vtable of ours that
/// records each wake and passes every call on to the runtime's vtable. It costs nothing the
/// runtime's waker does not (no allocation, no reference count of its own), and the poll's
/// view of it is borrowed, never dropped. A wake is recorded with the data pointer; a
/// [`Kind::Bind`] record, written when a task is first polled with that pointer, tells the
/// consumer which task it stands for (a runtime's task, and so its pointer, lives as long as
/// any of its wakers).
///
/// A vtable of ours reaches the runtime's through a slot: [`FORWARD_SLOTS`] runtime vtables
/// (tokio has one for all its tasks) can be forwarded to; tasks polled with any other fall
/// back to [`TaskWaker`].
mod forward {
    use super::*;

    /// How many runtime vtables can be forwarded to.
    pub(super) const FORWARD_SLOTS: usize = 4;

    /// The runtime vtable of each slot: set once, from null, to a `'static` vtable.
    static INNER: [AtomicPtr<RawWakerVTable>; FORWARD_SLOTS] =
        [const { AtomicPtr::new(std::ptr::null_mut()) }; FORWARD_SLOTS];

    /// The slot forwarding to `vtable`, taking a free one if it has none yet.
    pub(super) fn slot(vtable: &'static RawWakerVTable) -> Option<usize> {
        let wanted = std::ptr::from_ref(vtable).cast_mut();
        (0..FORWARD_SLOTS).find(|&i| {
            match INNER[i].compare_exchange(
                std::ptr::null_mut(),
                wanted,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => true,
                Err(current) => current == wanted,
            }
        })
    }

    /// Our vtables, one per slot: statics, so that each has one address (wakers compare
    /// them in `will_wake`).
    static VTABLES: [RawWakerVTable; FORWARD_SLOTS] = [
        Forward::<0>::VTABLE,
        Forward::<1>::VTABLE,
        Forward::<2>::VTABLE,
        Forward::<3>::VTABLE,
    ];

    /// Our vtable of slot `n` (`n` < [`FORWARD_SLOTS`]).
    pub(super) fn vtable(n: usize) -> &'static RawWakerVTable {
        &VTABLES[n.min(FORWARD_SLOTS - 1)]
    }

    /// The poll's view of the forwarding waker for the runtime waker `inner`: borrowed, so
    /// it must not be dropped (it owns no reference), and it must not outlive `inner`.
    pub(super) fn borrowed(inner: &Waker, n: usize) -> ManuallyDrop<Waker> {
        // SAFETY: our vtable passes each call on to `inner`'s vtable (slot `n` was taken for
        // it) with `inner`'s data, which stays valid while `inner` lives; the view is never
        // dropped, so it gives back no reference it does not hold.
        ManuallyDrop::new(unsafe { Waker::new(inner.data(), vtable(n)) })
    }

    struct Forward<const N: usize>;

    impl<const N: usize> Forward<N> {
        const VTABLE: RawWakerVTable =
            RawWakerVTable::new(Self::clone, Self::wake, Self::wake_by_ref, Self::drop);

        fn inner() -> &'static RawWakerVTable {
            // SAFETY: a forwarding waker of slot N exists only once the slot holds a
            // `'static` vtable, which is never changed after.
            unsafe { &*INNER[N].load(Ordering::Acquire) }
        }

        /// The runtime's waker for `data`, not to be dropped unless it is owned.
        ///
        /// # Safety
        /// `data` must come from a waker of this slot's runtime vtable.
        unsafe fn runtime(data: *const ()) -> Waker {
            // SAFETY: as the caller promises, `data` belongs to this vtable.
            unsafe { Waker::new(data, Self::inner()) }
        }

        unsafe fn clone(data: *const ()) -> RawWaker {
            // SAFETY: our wakers of slot N carry data of the runtime's vtable N.
            let runtime = ManuallyDrop::new(unsafe { Self::runtime(data) });
            let copy = ManuallyDrop::new((*runtime).clone());
            if std::ptr::eq(copy.vtable(), Self::inner()) {
                RawWaker::new(copy.data(), vtable(N))
            } else {
                // A runtime whose clones change vtable: the clone stays right, untraced.
                RawWaker::new(copy.data(), copy.vtable())
            }
        }

        unsafe fn wake(data: *const ()) {
            with(|s| s.wake_data(data as u64));
            // SAFETY: as in `clone`; the waker owns the reference the caller gives up.
            unsafe { Self::runtime(data) }.wake();
        }

        unsafe fn wake_by_ref(data: *const ()) {
            with(|s| s.wake_data(data as u64));
            // SAFETY: as in `clone`; borrowed, so not dropped.
            ManuallyDrop::new(unsafe { Self::runtime(data) }).wake_by_ref();
        }

        unsafe fn drop(data: *const ()) {
            // SAFETY: as in `clone`; the waker owns the reference the caller gives up.
            std::mem::drop(unsafe { Self::runtime(data) });
        }
    }
}

/// How a task's wakes are seen.
#[derive(Default)]
enum Wrap {
    /// Not polled yet.
    #[default]
    None,
    /// Through a forwarding waker of this slot, for the runtime waker with this data and
    /// vtable.
    Forward {
        data: usize,
        vtable: &'static RawWakerVTable,
        slot: usize,
    },
    /// Through a [`TaskWaker`]: the runtime's waker and ours.
    Own(Waker, Waker),
}

pin_project_lite::pin_project! {
    /// A task future that reports its polls and wakes. The task's future stays inline (no
    /// extra allocation or pointer to chase per poll).
    pub struct Traced<F> {
        task: Option<u32>,
        #[pin]
        inner: F,
        wrap: Wrap,
        done: bool,
    }

    impl<F> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(task) = this.task
                && !this.done
            {
                with(|s| s.cancel(task));
            }
        }
    }
}

impl<F> std::fmt::Debug for Traced<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced").field("task", &self.task).finish()
    }
}

/// Wraps `fut` as a task named `label` that parks on `kind`; call it on the loop thread when
/// spawning (a spawned task is ready at once).
pub fn traced<F: Future>(label: &str, kind: WaitKind, fut: F) -> Traced<F> {
    let task = with(|s| {
        if !s.instrument {
            return None;
        }
        let task = s.tracer.recorder().next_task();
        s.spawn(task, kind, label.to_string());
        Some(task)
    })
    .flatten();
    Traced {
        task,
        inner: fut,
        wrap: Wrap::None,
        done: false,
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(task) = *this.task else {
            return this.inner.poll(cx);
        };
        let runtime = cx.waker();
        let (data, vtable) = (runtime.data() as usize, runtime.vtable());
        // A new or changed runtime waker: forward to it if its vtable has a slot.
        let bind = match &mut *this.wrap {
            Wrap::Forward {
                data: d, vtable: v, ..
            } if *d == data && std::ptr::eq(*v, vtable) => None,
            Wrap::Own(outer, _) if outer.will_wake(runtime) => None,
            wrap => {
                *wrap = match forward::slot(vtable) {
                    Some(slot) => Wrap::Forward { data, vtable, slot },
                    None => Wrap::Own(
                        runtime.clone(),
                        Waker::from(Arc::new(TaskWaker {
                            task,
                            inner: runtime.clone(),
                        })),
                    ),
                };
                matches!(wrap, Wrap::Forward { .. }).then_some(data as u64)
            }
        };
        let borrowed;
        let ours = match &*this.wrap {
            Wrap::Forward { slot, .. } => {
                borrowed = forward::borrowed(runtime, *slot);
                &*borrowed
            }
            Wrap::Own(_, ours) => ours,
            Wrap::None => runtime,
        };
        with(|s| {
            if let Some(data) = bind {
                s.bind(task, data);
            }
            s.begin_poll(task);
        });
        let result = this.inner.poll(&mut Context::from_waker(ours));
        let ready = result.is_ready();
        *this.done = ready;
        with(|s| s.end_poll(ready));
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use coreplay_shared::event::Role;

    use super::*;
    use crate::trace::Recorder;

    fn raw(kind: Kind, task: u32, start: u64, end: u64, flag: u8) -> Raw {
        Raw {
            start,
            end,
            task,
            cpu: 1,
            kind,
            flag,
        }
    }

    fn batch(seq: u64, raw: Vec<Raw>, labels: &[&str], replay: &Arc<Mutex<Replay>>) -> LoopBatch {
        LoopBatch {
            records: Records {
                seq,
                tid: 7,
                origin_ns: 1_000,
                depths: true,
                scale: Scale::NS,
                raw,
                labels: labels.iter().map(|l| l.to_string()).collect(),
            },
            replay: Arc::clone(replay),
        }
    }

    fn depths_in(events: &[Event]) -> Vec<(u64, u32, u32)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::QueueDepth { at, ready, io, .. } => Some((*at, *ready, *io)),
                _ => None,
            })
            .collect()
    }

    fn wakes_in(events: &[Event]) -> Vec<&Event> {
        events
            .iter()
            .filter(|e| matches!(e, Event::Wake { .. }))
            .collect()
    }

    /// The records of a timer task (spawn, a pending poll, the selector wait its timer ends,
    /// a wake, its cancellation) become those events, with the queue depths they imply.
    #[test]
    fn records_become_the_events_they_stand_for() {
        let replay = Arc::default();
        let events = batch(
            0,
            vec![
                raw(Kind::Spawn, 3, 1_100, 1_100, 1),
                raw(Kind::Poll, 3, 1_200, 1_500, 0),
                raw(Kind::Park, 0, 1_600, 1_600, 0),
                raw(Kind::Wake, 3, 2_600, NO_TASK, 0),
                // The runtime passes the same wake on twice: only the first counts.
                raw(Kind::Wake, 3, 2_600, NO_TASK, 0),
                raw(Kind::Unpark, 0, 2_600, 2_600, 0),
                raw(Kind::Cancel, 3, 2_700, 2_700, 0),
            ],
            &["ticker"],
            &replay,
        )
        .into_events();
        assert_eq!(
            events,
            vec![
                Event::TaskSpawn {
                    task: 3,
                    at: 100,
                    label: "ticker".into(),
                    waits_on: WaitKind::Timer
                },
                Event::Poll {
                    task: 3,
                    tid: 7,
                    cpu: 1,
                    start: 200,
                    end: 500,
                    ready: false
                },
                Event::QueueDepth {
                    at: 500,
                    ready: 0,
                    io: 0,
                    timers: 1
                },
                Event::Wake {
                    task: 3,
                    at: 1_600,
                    by: WakeBy::Timer
                },
                Event::LoopWait {
                    tid: 7,
                    start: 600,
                    end: 1_600,
                    woken: 1
                },
                Event::QueueDepth {
                    at: 1_600,
                    ready: 1,
                    io: 0,
                    timers: 0
                },
                Event::TaskCancelled { task: 3, at: 1_700 },
                Event::QueueDepth {
                    at: 1_700,
                    ready: 0,
                    io: 0,
                    timers: 0
                },
            ]
        );
    }

    /// What happens inside a poll follows its record; a task woken during a poll (its own
    /// or another's) stays queued when that poll ends; a dropped batch still moves the replay
    /// on, so the next batch's depths are right.
    #[test]
    fn wakes_inside_polls_and_dropped_batches_keep_the_queue_right() {
        let replay = Arc::default();
        // Task 1 spawns task 2 and wakes itself (a yield).
        let dropped = batch(
            0,
            vec![
                raw(Kind::Spawn, 1, 1_100, 1_100, 0),
                raw(Kind::Poll, 1, 1_200, 1_400, 0),
                raw(Kind::Spawn, 2, 1_250, 1_250, 0),
                raw(Kind::Wake, 1, 1_300, 1, 0),
            ],
            &["a", "b"],
            &replay,
        );
        assert_eq!(
            dropped.discard(),
            5,
            "two spawns, a wake, a poll and its depth"
        );
        // Task 2 finishes in its first poll; task 1 is woken by task 2 during its next poll.
        let events = batch(
            1,
            vec![
                raw(Kind::Poll, 2, 1_500, 1_600, 1),
                raw(Kind::Poll, 1, 1_700, 1_800, 0),
                raw(Kind::Wake, 1, 1_750, 2, 0),
                // Already queued: the runtime ignores it, and so does the replay.
                raw(Kind::Wake, 1, 1_790, 1, 0),
            ],
            &[],
            &replay,
        )
        .into_events();
        let wakes = wakes_in(&events);
        assert_eq!(
            wakes,
            vec![&Event::Wake {
                task: 1,
                at: 750,
                by: WakeBy::Task { task: 2 }
            }]
        );
        assert_eq!(depths_in(&events), vec![(600, 1, 0), (800, 1, 0)]);
    }

    /// A batch dropped while the one before it is still in the channel waits for it: the
    /// replay applies batches in the order the loop wrote them. Past [`MAX_WAITING`] dropped
    /// batches the states are lost, and no more depths are told.
    #[test]
    fn dropped_batches_are_replayed_in_their_turn() {
        let replay = Arc::default();
        // 0: task 1 spawned and parked on I/O. 1 (dropped first): it is woken. 2: task 2 is
        // spawned and polled.
        let first = batch(
            0,
            vec![
                raw(Kind::Spawn, 1, 1_100, 1_100, 0),
                raw(Kind::Poll, 1, 1_200, 1_300, 0),
            ],
            &["one"],
            &replay,
        );
        let second = batch(1, vec![raw(Kind::Wake, 1, 1_400, NO_TASK, 0)], &[], &replay);
        assert_eq!(second.discard(), 1);
        assert_eq!(depths_in(&first.into_events()), vec![(300, 0, 1)]);
        let third = batch(
            2,
            vec![
                raw(Kind::Spawn, 2, 1_500, 1_500, 0),
                raw(Kind::Poll, 2, 1_600, 1_700, 0),
            ],
            &["two"],
            &replay,
        );
        // Task 1 is queued (its wake was dropped, not undone), task 2 parked.
        assert_eq!(depths_in(&third.into_events()), vec![(700, 1, 1)]);

        // Too many dropped batches waiting (the one before them never arrives in time).
        for seq in 4..5 + MAX_WAITING as u64 {
            let lost = batch(
                seq,
                vec![raw(Kind::Wake, 2, 1_800, NO_TASK, 0)],
                &[],
                &replay,
            );
            assert_eq!(lost.discard(), 1);
        }
        let late = batch(3, vec![raw(Kind::Poll, 1, 1_900, 2_000, 1)], &[], &replay).into_events();
        assert!(
            matches!(late.as_slice(), [Event::Poll { task: 1, .. }]),
            "{late:?}"
        );
        // The depth not told is counted as dropped.
        let dropped = replay
            .lock()
            .map(|r| r.dropped.load(Ordering::Relaxed))
            .unwrap_or_default();
        assert_eq!(dropped, 1);
    }

    /// Wakes through forwarding wakers name the runtime's waker data; the consumer maps it
    /// to the task bound to it, and ignores data no task of this loop was bound to.
    #[test]
    fn forwarded_wakes_are_bound_to_their_task() {
        let replay = Arc::default();
        let events = batch(
            0,
            vec![
                raw(Kind::Spawn, 4, 1_100, 1_100, 0),
                raw(Kind::Spawn, 5, 1_100, 1_100, 0),
                raw(Kind::Bind, 4, 0, 0xa0, 0),
                raw(Kind::Poll, 4, 1_200, 1_300, 0),
                raw(Kind::Bind, 5, 0, 0xb0, 0),
                raw(Kind::Poll, 5, 1_400, 1_500, 0),
                // Task 5's poll wakes task 4; then the selector wakes task 5, and a waker of
                // some other loop's task is passed on here.
                raw(Kind::WakeData, 5, 1_450, 0xa0, 0),
                raw(Kind::Park, 0, 1_600, 1_600, 0),
                raw(Kind::WakeData, NO_WAKER, 1_900, 0xb0, 0),
                raw(Kind::WakeData, NO_WAKER, 1_900, 0xc0, 0),
                raw(Kind::Unpark, 0, 1_900, 1_900, 0),
            ],
            &["four", "five"],
            &replay,
        )
        .into_events();
        let wakes = wakes_in(&events);
        assert_eq!(
            wakes,
            vec![
                &Event::Wake {
                    task: 4,
                    at: 450,
                    by: WakeBy::Task { task: 5 }
                },
                &Event::Wake {
                    task: 5,
                    at: 900,
                    by: WakeBy::Io
                }
            ]
        );
        assert!(events.contains(&Event::LoopWait {
            tid: 7,
            start: 600,
            end: 900,
            woken: 1
        }));
    }

    /// A waker counting what is asked of it; `N` picks one of several distinct vtables.
    struct Counting<const N: usize>;

    /// Clones, wakes, wakes by reference and drops of each counting vtable.
    static COUNTS: [[AtomicUsize; 4]; 6] = [const { [const { AtomicUsize::new(0) }; 4] }; 6];

    static COUNTING: [RawWakerVTable; 6] = [
        Counting::<0>::VTABLE,
        Counting::<1>::VTABLE,
        Counting::<2>::VTABLE,
        Counting::<3>::VTABLE,
        Counting::<4>::VTABLE,
        Counting::<5>::VTABLE,
    ];

    impl<const N: usize> Counting<N> {
        const VTABLE: RawWakerVTable =
            RawWakerVTable::new(Self::clone, Self::wake, Self::wake_by_ref, Self::drop);

        fn count(what: usize) {
            COUNTS[N][what].fetch_add(1, Ordering::Relaxed);
        }

        unsafe fn clone(data: *const ()) -> RawWaker {
            Self::count(0);
            RawWaker::new(data, &COUNTING[N])
        }

        unsafe fn wake(_: *const ()) {
            Self::count(1);
        }

        unsafe fn wake_by_ref(_: *const ()) {
            Self::count(2);
        }

        unsafe fn drop(_: *const ()) {
            Self::count(3);
        }
    }

    fn counting(n: usize) -> Waker {
        // SAFETY: the counting vtable ignores its data.
        unsafe { Waker::new(std::ptr::null(), &COUNTING[n]) }
    }

    fn counts(n: usize) -> [usize; 4] {
        COUNTS[n].each_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// Wakes itself `self.0` times: by reference, then through a clone woken by value, then
    /// through a clone dropped unused and a wake by reference.
    struct Spin(u32);

    impl Future for Spin {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 == 0 {
                return Poll::Ready(());
            }
            self.0 -= 1;
            match self.0 % 3 {
                0 => cx.waker().wake_by_ref(),
                // Woken by value on purpose: the clone's own wake path.
                #[allow(clippy::waker_clone_wake)]
                1 => cx.waker().clone().wake(),
                _ => {
                    std::mem::drop(cx.waker().clone());
                    cx.waker().wake_by_ref();
                }
            }
            Poll::Pending
        }
    }

    /// Polls a traced `Spin(6)` by hand with `waker`; returns its events.
    fn spin_with(waker: &Waker) -> Vec<Event> {
        let (rec, rx) = Recorder::new(true, Arc::new(AtomicBool::new(false)));
        enter(ThreadTracer::start(&rec, "hand", Role::EventLoop), true);
        let mut fut = std::pin::pin!(traced("spin", WaitKind::Io, Spin(6)));
        let mut cx = Context::from_waker(waker);
        while fut.as_mut().poll(&mut cx).is_pending() {}
        if let Some(t) = exit() {
            t.finish();
        }
        drop(rec);
        rx.iter().flat_map(Batch::into_events).collect()
    }

    /// The waker a traced task sees passes every call on to the runtime's exactly once, and
    /// every wake is recorded: through a forwarding waker while the runtime's vtable gets a
    /// slot, through a waker of our own once the slots are full.
    #[test]
    fn wakers_pass_every_call_on_and_record_every_wake() {
        // Only this test takes slots for counting vtables; others may hold one for tokio.
        for n in [0, 5] {
            if n == 5 {
                for filler in &COUNTING[1..5] {
                    forward::slot(filler);
                }
                assert_eq!(forward::slot(&COUNTING[5]), None, "slots are full");
            } else {
                assert!(forward::slot(&COUNTING[0]).is_some());
            }
            let events = spin_with(&counting(n));
            let wakes = events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        Event::Wake {
                            by: WakeBy::Task { .. },
                            ..
                        }
                    )
                })
                .count();
            let polls = events
                .iter()
                .filter(|e| matches!(e, Event::Poll { .. }))
                .count();
            assert_eq!((polls, wakes), (7, 6), "vtable {n}: {events:?}");
            // Six wakes reach the runtime: a forwarding waker passes each call on as it is
            // (two clones woken by value, four wakes by reference); a waker of our own wakes
            // its clone of the runtime's by reference. Every waker made is given back once:
            // the clones, and the test's own waker.
            let [clones, by_value, by_ref, drops] = counts(n);
            let expected = if n == 0 { (2, 4) } else { (0, 6) };
            assert_eq!((by_value, by_ref), expected, "vtable {n}");
            assert_eq!(
                clones + 1,
                by_value + drops,
                "vtable {n}: every waker given back"
            );
        }
    }

    /// A real current-thread loop: one task wakes another through a channel (a wake inside a
    /// poll), the other yields (a wake tokio defers past the poll). Every wake gets a stamp
    /// between the poll before it and the poll after it.
    #[test]
    fn a_real_loop_records_ordered_lifecycles() {
        let (rec, rx) = Recorder::new(true, Arc::new(AtomicBool::new(false)));
        let events = std::thread::spawn(move || {
            enter(ThreadTracer::start(&rec, "loop", Role::EventLoop), true);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(park)
                .on_thread_unpark(unpark)
                .build()
                .expect("runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
                let consumer =
                    tokio::task::spawn_local(traced("consumer", WaitKind::Io, async move {
                        let mut sum = 0;
                        while let Some(v) = rx.recv().await {
                            sum += v;
                        }
                        sum
                    }));
                let producer =
                    tokio::task::spawn_local(traced("producer", WaitKind::Io, async move {
                        for v in 0..20 {
                            let _ = tx.send(v).await;
                            tokio::task::yield_now().await;
                        }
                    }));
                let _ = producer.await;
                assert_eq!(consumer.await.ok(), Some(190));
            });
            drop(local);
            drop(rt);
            if let Some(t) = exit() {
                t.finish();
            }
        });
        assert!(events.join().is_ok());
        let mut events: Vec<Event> = rx.iter().flat_map(Batch::into_events).collect();
        events.sort_by_key(Event::time);
        let polls: Vec<(u64, u64)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Poll { start, end, .. } => Some((*start, *end)),
                _ => None,
            })
            .collect();
        assert!(polls.len() >= 40, "{} polls", polls.len());
        assert!(polls.windows(2).all(|w| w[0].1 <= w[1].0), "polls overlap");
        let wakes: Vec<(u64, WakeBy)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Wake { at, by, .. } => Some((*at, *by)),
                _ => None,
            })
            .collect();
        assert!(
            wakes
                .iter()
                .any(|(_, by)| matches!(by, WakeBy::Task { .. })),
            "the producer woke the consumer"
        );
        let last_end = polls.last().map_or(0, |p| p.1);
        for (at, by) in &wakes {
            assert!(*at <= last_end, "{by:?} wake at {at} after the last poll");
        }
        // Every task: spawn, then polls each preceded by a spawn or a wake.
        let mut ready: HashMap<u32, bool> = HashMap::new();
        for e in &events {
            match e {
                Event::TaskSpawn { task, .. } | Event::Wake { task, .. } => {
                    ready.insert(*task, true);
                }
                Event::Poll {
                    task, ready: done, ..
                } => {
                    assert_eq!(
                        ready.insert(*task, false),
                        Some(true),
                        "task {task} polled unwoken"
                    );
                    if *done {
                        ready.remove(task);
                    }
                }
                _ => {}
            }
        }
        assert!(ready.is_empty(), "every task finished: {ready:?}");
    }
}
