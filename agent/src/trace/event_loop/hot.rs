//! The loop thread's hot state: [`LoopState`] in a thread local of the loop's thread, what
//! the poll, wake and park paths write into it (records, counter stamps), and the flush that
//! hands its records over. A current-thread runtime polls and wakes on that thread, so no
//! locking is needed.

use std::{
    cell::RefCell,
    sync::{Arc, Mutex},
};

use coreplay_shared::event::{OffReason, WaitKind};

use super::{
    consumer::Consumer,
    records::{Kind, LoopBatch, NO_TASK, NO_WAKER, PENDING, RAW_BATCH, Raw, Records, Spares},
};
use crate::trace::{
    ThreadTracer,
    clock::current_cpu,
    stamp::{Calib, StampClock},
};

/// The longest a record waits on the loop thread before it is handed over, so a live page
/// follows a busy loop closely.
const FLUSH_NS: u64 = 20_000_000;

/// The loop thread's tracing state: what the hot path needs and nothing more.
#[derive(Debug)]
pub struct LoopState {
    /// The loop thread's tracer (its on/off-CPU slices go through its own buffer).
    pub tracer: ThreadTracer,
    /// Whether its tasks are traced (not only the thread and its selector waits).
    pub(super) instrument: bool,
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
    /// The next hand-over's sequence number.
    seq: u64,
    /// The consumer its records go to, off this thread.
    consumer: Arc<Mutex<Consumer>>,
    /// The buffers the consumer gives back.
    spares: Arc<Spares>,
}

thread_local! {
    static LOOP: RefCell<Option<LoopState>> = const { RefCell::new(None) };
}

/// Installs tracing on the calling (loop) thread. With `instrument` false only the thread and
/// its selector waits are traced, not its tasks (to measure what task tracing costs).
pub fn enter(tracer: ThreadTracer, instrument: bool) {
    let mut clock = StampClock::detect();
    let (origin, rate) = clock.calibrate(100_000);
    let spares = Arc::new(Spares::default());
    let consumer = Arc::new(Mutex::new(Consumer::new(
        tracer.recorder().dropped_counter(),
        Arc::clone(&spares),
    )));
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
            raw: spares.take(),
            labels: Vec::new(),
            seq: 0,
            consumer,
            spares,
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
///
/// The hot path's methods (`begin_poll`, `end_poll`, `wake`, `wake_data`) are kept out of
/// line so that `f` stays small: then `LocalKey::with` is inlined at each call and reaches
/// the thread local directly. With them inlined into `f` it was not, and each call went
/// through the key's accessor by an indirect call (callgrind: 51 instructions fewer per poll
/// and wake in `hook-cost` once they were out of line).
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
    /// A stamp, which is also the stamp of the wakes recorded since the last one (the
    /// consumer gives them it: [`settle`](super::records::settle)).
    #[inline]
    fn stamp(&mut self) -> u64 {
        self.clock.now()
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
                raw: std::mem::replace(&mut self.raw, self.spares.take()),
                handed_at: now.ticks,
                labels: std::mem::take(&mut self.labels),
            },
            consumer: Arc::clone(&self.consumer),
        };
        self.seq += 1;
        self.tracer.recorder().send_loop(batch);
    }

    pub(super) fn spawn(&mut self, task: u32, kind: WaitKind, label: String) {
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
        // clock read fewer per poll. The consumer finds that step ([`PENDING`]).
        match self.current {
            Some((waker, _)) => (self.clock.now(), Some(waker)),
            None => (PENDING, None),
        }
    }

    /// A wake of `task` through its own [`TaskWaker`](super::waker::TaskWaker).
    #[inline(never)]
    pub(super) fn wake(&mut self, task: u32) {
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
    #[inline(never)]
    pub(super) fn wake_data(&mut self, data: u64) {
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

    /// Ties the runtime's waker data to a task (see [`super::waker::forward`]).
    pub(super) fn bind(&mut self, task: u32, data: u64) {
        // No time of its own: stamp 0 keeps the consumer's open poll, if any, open.
        let mut r = Raw::at(Kind::Bind, task, 0);
        r.end = data;
        self.raw.push(r);
    }

    #[inline(never)]
    pub(super) fn begin_poll(&mut self, task: u32) {
        let now = self.stamp();
        self.current = Some((task, self.raw.len()));
        self.raw.push(Raw::at(Kind::Poll, task, now));
    }

    #[inline(never)]
    pub(super) fn end_poll(&mut self, ready: bool) {
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

    pub(super) fn cancel(&mut self, task: u32) {
        let now = self.stamp();
        self.raw.push(Raw::at(Kind::Cancel, task, now));
        self.maybe_flush(now);
    }
}
