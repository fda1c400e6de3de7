//! Event-loop instrumentation: every task spawned on the loop is wrapped in [`Traced`], which
//! times each poll and wraps the task's waker, and the runtime's park hooks ([`park`],
//! [`unpark`]) mark the loop's waits in the selector (epoll). From these come the task
//! lifecycle (spawn → poll → pending → wake → … → poll → ready), who woke whom, the ready
//! queue's depth and the tasks parked on I/O and timers — all from the real tokio runtime.
//!
//! The state lives in a thread local of the loop's thread: a current-thread runtime polls and
//! wakes on that thread, so no locking is needed. A wake from another thread is passed on to
//! the runtime but not recorded.

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
};

use coreplay_shared::event::{Event, OffReason, WaitKind, WakeBy};

use super::{
    ThreadTracer,
    clock::current_cpu,
    recorder::Batch,
    stamp::{Calib, Scale, StampClock},
};

/// Records a loop thread keeps before handing them over.
const RAW_BATCH: usize = 1024;

/// The longest a record waits on the loop thread before it is handed over, so a live page
/// follows a busy loop closely.
const FLUSH_NS: u64 = 20_000_000;

/// Where a task is, as the loop's state sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Ready,
    Running,
    Waiting,
    Gone,
}

/// The stamp of a wake not stamped yet (see [`LoopState::wake`]).
const PENDING: u64 = u64::MAX;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawKind {
    Spawn { waits_on: WaitKind },
    Poll { cpu: u32, ready: bool },
    Wake { by: WakeBy },
    Cancel,
    Wait { woken: u32 },
}

/// One record as the loop's hot path writes it: plain data, stamps not yet converted, the
/// queue depths after it carried along. The recorder's consumer turns records into events
/// ([`LoopBatch::into_events`]), off the loop's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raw {
    kind: RawKind,
    task: u32,
    start: u64,
    end: u64,
    /// Ready, parked on I/O, parked on timers.
    depth: [u32; 3],
}

/// A loop thread's records on their way to the recorder's consumer.
#[derive(Debug)]
pub struct LoopBatch {
    tid: u32,
    origin_ns: u64,
    depths: bool,
    scale: Scale,
    raw: Vec<Raw>,
    /// Spawned tasks' labels, in the order of their spawn records.
    labels: Vec<String>,
}

impl LoopBatch {
    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// How many events it becomes.
    pub fn event_count(&self) -> usize {
        self.raw
            .iter()
            .map(|r| match r.kind {
                RawKind::Poll { .. } | RawKind::Cancel | RawKind::Wait { .. } if self.depths => 2,
                _ => 1,
            })
            .sum()
    }

    /// The events, in the order they happened.
    pub fn into_events(self) -> Vec<Event> {
        let LoopBatch {
            tid,
            origin_ns,
            depths,
            scale,
            raw,
            labels,
        } = self;
        let at = |ticks: u64| scale.mono(ticks).saturating_sub(origin_ns);
        let mut labels = labels.into_iter();
        let mut events = Vec::with_capacity(raw.len() * 2);
        for r in raw {
            let task = r.task;
            let depth_at = match r.kind {
                RawKind::Spawn { waits_on } => {
                    events.push(Event::TaskSpawn {
                        task,
                        at: at(r.start),
                        label: labels.next().unwrap_or_default(),
                        waits_on,
                    });
                    None
                }
                RawKind::Poll { cpu, ready } => {
                    let end = at(r.end);
                    events.push(Event::Poll {
                        task,
                        tid,
                        cpu,
                        start: at(r.start),
                        end,
                        ready,
                    });
                    Some(end)
                }
                RawKind::Wake { by } => {
                    events.push(Event::Wake {
                        task,
                        at: at(r.start),
                        by,
                    });
                    None
                }
                RawKind::Cancel => {
                    let at = at(r.start);
                    events.push(Event::TaskCancelled { task, at });
                    Some(at)
                }
                RawKind::Wait { woken } => {
                    let end = at(r.end);
                    events.push(Event::LoopWait {
                        tid,
                        start: at(r.start),
                        end,
                        woken,
                    });
                    Some(end)
                }
            };
            if let Some(at) = depth_at.filter(|_| depths) {
                let [ready, io, timers] = r.depth;
                events.push(Event::QueueDepth {
                    at,
                    ready,
                    io,
                    timers,
                });
            }
        }
        events
    }
}

/// The loop thread's tracing state. Tasks live in a vector indexed by id (ids of one loop are
/// consecutive), which keeps a poll's bookkeeping to a few array accesses; the records go to a
/// plain vector with unconverted stamps (see [`super::stamp`]).
#[derive(Debug)]
pub struct LoopState {
    /// The loop thread's tracer (its on/off-CPU slices go through its own buffer).
    pub tracer: ThreadTracer,
    instrument: bool,
    base: Option<u32>,
    slots: Vec<(WaitKind, At)>,
    ready: u32,
    io: u32,
    timers: u32,
    current: Option<u32>,
    wait_start: Option<u64>,
    woken_in_wait: u32,
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
}

thread_local! {
    static LOOP: RefCell<Option<LoopState>> = const { RefCell::new(None) };
}

/// Installs tracing on the calling (loop) thread. With `instrument` false only the thread and
/// its selector waits are traced, not its tasks (to measure what task tracing costs).
pub fn enter(tracer: ThreadTracer, instrument: bool) {
    let mut clock = StampClock::detect();
    let (origin, rate) = clock.calibrate(100_000);
    LOOP.with(|l| {
        *l.borrow_mut() = Some(LoopState {
            tracer,
            instrument,
            base: None,
            slots: Vec::new(),
            ready: 0,
            io: 0,
            timers: 0,
            current: None,
            wait_start: None,
            woken_in_wait: 0,
            clock,
            anchor: clock.calib(),
            origin,
            flush_ticks: flush_ticks(rate),
            raw: Vec::with_capacity(RAW_BATCH),
            labels: Vec::new(),
            pending: None,
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
        s.wait_start = Some(s.stamp());
        s.woken_in_wait = 0;
    });
}

/// The runtime is back from the selector (`on_thread_unpark`).
pub fn unpark() {
    with(|s| {
        s.tracer.end_off(OffReason::Io);
        if let Some(start) = s.wait_start.take() {
            let end = s.stamp();
            let woken = s.woken_in_wait;
            s.push(RawKind::Wait { woken }, 0, start, end);
        }
    });
}

impl LoopState {
    /// A stamp, which is also the stamp of the wakes recorded since the last one.
    #[inline]
    fn stamp(&mut self) -> u64 {
        let now = self.clock.now();
        self.settle(now);
        now
    }

    fn settle(&mut self, now: u64) {
        if let Some(first) = self.pending.take() {
            for r in self.raw.iter_mut().skip(first) {
                if r.start == PENDING {
                    r.start = now;
                    r.end = now;
                }
            }
        }
    }

    #[inline]
    fn push(&mut self, kind: RawKind, task: u32, start: u64, end: u64) {
        self.raw.push(Raw {
            kind,
            task,
            start,
            end,
            depth: [self.ready, self.io, self.timers],
        });
        // Never between park and unpark: a selector wait's start must convert with the same
        // anchor as its end.
        if self.wait_start.is_none()
            && (self.raw.len() >= RAW_BATCH
                || (end != PENDING && end.wrapping_sub(self.anchor.ticks) > self.flush_ticks))
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
            tid: self.tracer.tid(),
            origin_ns: self.tracer.recorder().origin_ns(),
            depths: self.instrument,
            scale,
            raw: std::mem::replace(&mut self.raw, Vec::with_capacity(RAW_BATCH)),
            labels: std::mem::take(&mut self.labels),
        };
        self.tracer.recorder().send_batch(Batch::Loop(batch));
    }

    #[inline]
    fn slot(&mut self, task: u32) -> Option<&mut (WaitKind, At)> {
        let index = task.checked_sub(self.base?)? as usize;
        self.slots.get_mut(index)
    }

    fn spawn(&mut self, task: u32, kind: WaitKind, label: String) {
        let base = *self.base.get_or_insert(task);
        let Some(index) = task.checked_sub(base).map(|i| i as usize) else {
            return;
        };
        if self.slots.len() <= index {
            self.slots.resize(index + 1, (kind, At::Gone));
        }
        self.slots[index] = (kind, At::Ready);
        self.ready += 1;
        self.labels.push(label);
        let at = self.stamp();
        self.push(RawKind::Spawn { waits_on: kind }, task, at, at);
    }

    fn leave(&mut self, kind: WaitKind, at: At) {
        match (at, kind) {
            (At::Ready, _) => self.ready -= 1,
            (At::Waiting, WaitKind::Io) => self.io -= 1,
            (At::Waiting, WaitKind::Timer) => self.timers -= 1,
            _ => {}
        }
    }

    #[inline]
    fn wake(&mut self, task: u32) {
        let current = self.current;
        let Some(slot) = self.slot(task) else {
            return;
        };
        let (kind, at) = *slot;
        if !matches!(at, At::Waiting | At::Running) {
            // Already queued, or finished: the runtime ignores it too.
            return;
        }
        slot.1 = At::Ready;
        self.leave(kind, at);
        self.ready += 1;
        let by = match (current, kind) {
            (Some(waker), _) => WakeBy::Task { task: waker },
            (None, WaitKind::Io) => WakeBy::Io,
            (None, WaitKind::Timer) => WakeBy::Timer,
        };
        if self.wait_start.is_some() {
            self.woken_in_wait += 1;
        }
        // A wake inside a poll is stamped now: the poll may run long. Any other wake happens
        // in tokio's scheduler between two steps of the loop (a yield's deferred wake, or the
        // I/O and timer wakes it hands out as the selector returns) and takes the stamp of the
        // loop's next step: at most that gap late (well under a µs on this path), and one
        // clock read fewer per poll.
        let now = if current.is_some() {
            self.clock.now()
        } else {
            if self.pending.is_none() {
                self.pending = Some(self.raw.len());
            }
            PENDING
        };
        self.push(RawKind::Wake { by }, task, now, now);
    }

    #[inline]
    fn begin_poll(&mut self, task: u32) -> u64 {
        if let Some(slot) = self.slot(task)
            && slot.1 == At::Ready
        {
            slot.1 = At::Running;
            self.ready -= 1;
        }
        self.current = Some(task);
        self.stamp()
    }

    #[inline]
    fn end_poll(&mut self, task: u32, start: u64, ready: bool) {
        let end = self.clock.now();
        self.current = None;
        if let Some(slot) = self.slot(task) {
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
        let cpu = current_cpu();
        self.push(RawKind::Poll { cpu, ready }, task, start, end);
    }

    fn cancel(&mut self, task: u32) {
        let Some(slot) = self.slot(task) else {
            return;
        };
        let (kind, at) = *slot;
        if at == At::Gone {
            return;
        }
        slot.1 = At::Gone;
        self.leave(kind, at);
        let now = self.stamp();
        self.push(RawKind::Cancel, task, now, now);
    }
}

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

pin_project_lite::pin_project! {
    /// A task future that reports its polls and wakes. The task's future stays inline (no
    /// extra allocation or pointer to chase per poll).
    pub struct Traced<F> {
        task: Option<u32>,
        #[pin]
        inner: F,
        // The runtime's waker and ours, which wraps it.
        waker: Option<(Waker, Waker)>,
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
        waker: None,
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
        let ours = match this.waker {
            Some((outer, ours)) if outer.will_wake(cx.waker()) => ours,
            _ => {
                let ours = Waker::from(Arc::new(TaskWaker {
                    task,
                    inner: cx.waker().clone(),
                }));
                &this.waker.insert((cx.waker().clone(), ours)).1
            }
        };
        let start = with(|s| s.begin_poll(task)).unwrap_or(0);
        let result = this.inner.poll(&mut Context::from_waker(ours));
        let ready = result.is_ready();
        *this.done = ready;
        with(|s| s.end_poll(task, start, ready));
        result
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, sync::atomic::AtomicBool};

    use coreplay_shared::event::Role;

    use super::*;
    use crate::trace::Recorder;

    fn raw(kind: RawKind, task: u32, start: u64, end: u64, depth: [u32; 3]) -> Raw {
        Raw {
            kind,
            task,
            start,
            end,
            depth,
        }
    }

    #[test]
    fn records_become_the_events_they_stand_for() {
        let batch = LoopBatch {
            tid: 7,
            origin_ns: 1_000,
            depths: true,
            scale: Scale::NS,
            raw: vec![
                raw(
                    RawKind::Spawn {
                        waits_on: WaitKind::Timer,
                    },
                    3,
                    1_100,
                    1_100,
                    [1, 0, 0],
                ),
                raw(
                    RawKind::Poll {
                        cpu: 1,
                        ready: false,
                    },
                    3,
                    1_200,
                    1_500,
                    [0, 0, 1],
                ),
                raw(RawKind::Wait { woken: 1 }, 0, 1_600, 2_600, [0, 0, 1]),
                raw(
                    RawKind::Wake { by: WakeBy::Timer },
                    3,
                    2_600,
                    2_600,
                    [1, 0, 0],
                ),
                raw(RawKind::Cancel, 3, 2_700, 2_700, [0, 0, 0]),
            ],
            labels: vec!["ticker".into()],
        };
        assert_eq!(batch.event_count(), 8);
        let events = batch.into_events();
        assert_eq!(events.len(), 8);
        assert_eq!(
            events[0],
            Event::TaskSpawn {
                task: 3,
                at: 100,
                label: "ticker".into(),
                waits_on: WaitKind::Timer
            }
        );
        assert_eq!(
            events[1],
            Event::Poll {
                task: 3,
                tid: 7,
                cpu: 1,
                start: 200,
                end: 500,
                ready: false
            }
        );
        assert_eq!(
            events[2],
            Event::QueueDepth {
                at: 500,
                ready: 0,
                io: 0,
                timers: 1
            }
        );
        assert_eq!(
            events[3],
            Event::LoopWait {
                tid: 7,
                start: 600,
                end: 1_600,
                woken: 1
            }
        );
        assert_eq!(
            events[5],
            Event::Wake {
                task: 3,
                at: 1_600,
                by: WakeBy::Timer
            }
        );
        assert_eq!(events[6], Event::TaskCancelled { task: 3, at: 1_700 });
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
