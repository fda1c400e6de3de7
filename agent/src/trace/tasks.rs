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
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
};

use coreplay_shared::event::{Event, Ns, OffReason, WaitKind, WakeBy};

use super::{ThreadTracer, clock::current_cpu};

/// The loop thread's tracing state.
#[derive(Debug)]
pub struct LoopState {
    /// The loop thread's tracer (events go through its buffer).
    pub tracer: ThreadTracer,
    instrument: bool,
    kinds: HashMap<u32, WaitKind>,
    ready: HashSet<u32>,
    waiting: HashMap<u32, WaitKind>,
    io: u32,
    timers: u32,
    current: Option<u32>,
    wait_start: Option<Ns>,
    woken_in_wait: u32,
}

thread_local! {
    static LOOP: RefCell<Option<LoopState>> = const { RefCell::new(None) };
}

/// Installs tracing on the calling (loop) thread. With `instrument` false only the thread is
/// traced, not its tasks (to measure what task tracing costs).
pub fn enter(tracer: ThreadTracer, instrument: bool) {
    LOOP.with(|l| {
        *l.borrow_mut() = Some(LoopState {
            tracer,
            instrument,
            kinds: HashMap::new(),
            ready: HashSet::new(),
            waiting: HashMap::new(),
            io: 0,
            timers: 0,
            current: None,
            wait_start: None,
            woken_in_wait: 0,
        })
    });
}

/// Removes the state; returns the tracer to finish.
pub fn exit() -> Option<ThreadTracer> {
    LOOP.with(|l| l.borrow_mut().take()).map(|s| s.tracer)
}

/// Runs `f` on the state, if this thread has one and it is not in use.
pub fn with<R>(f: impl FnOnce(&mut LoopState) -> R) -> Option<R> {
    LOOP.with(|l| l.try_borrow_mut().ok()?.as_mut().map(f))
}

/// The runtime is about to wait in the selector (`on_thread_park`).
pub fn park() {
    with(|s| {
        s.tracer.begin_off();
        s.wait_start = Some(s.tracer.now());
        s.woken_in_wait = 0;
    });
}

/// The runtime is back from the selector (`on_thread_unpark`).
pub fn unpark() {
    with(|s| {
        s.tracer.end_off(OffReason::Io);
        if let Some(start) = s.wait_start.take() {
            let end = s.tracer.now();
            let tid = s.tracer.tid();
            let woken = s.woken_in_wait;
            s.tracer.record(Event::LoopWait {
                tid,
                start,
                end,
                woken,
            });
        }
    });
}

impl LoopState {
    fn depth(&mut self, at: Ns) {
        if self.instrument {
            self.tracer.record(Event::QueueDepth {
                at,
                ready: self.ready.len() as u32,
                io: self.io,
                timers: self.timers,
            });
        }
    }

    fn unpark_task(&mut self, task: u32) {
        match self.waiting.remove(&task) {
            Some(WaitKind::Io) => self.io -= 1,
            Some(WaitKind::Timer) => self.timers -= 1,
            None => {}
        }
    }

    fn wake(&mut self, task: u32) {
        if !self.kinds.contains_key(&task) || self.ready.contains(&task) {
            // Finished, or already queued: the runtime ignores it too.
            return;
        }
        let by = match (self.current, self.waiting.get(&task)) {
            (Some(waker), _) => WakeBy::Task { task: waker },
            (None, Some(WaitKind::Io)) => WakeBy::Io,
            (None, Some(WaitKind::Timer)) => WakeBy::Timer,
            (None, None) => WakeBy::Other,
        };
        self.unpark_task(task);
        self.ready.insert(task);
        if self.wait_start.is_some() {
            self.woken_in_wait += 1;
        }
        let at = self.tracer.now();
        self.tracer.record(Event::Wake { task, at, by });
        self.depth(at);
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

/// A task future that reports its polls and wakes.
pub struct Traced<F: Future> {
    task: Option<u32>,
    inner: Pin<Box<F>>,
    waker: Option<(Waker, Waker)>,
    done: bool,
}

impl<F: Future> std::fmt::Debug for Traced<F> {
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
        s.kinds.insert(task, kind);
        s.ready.insert(task);
        let at = s.tracer.now();
        s.tracer.record(Event::TaskSpawn {
            task,
            at,
            label: label.to_string(),
            waits_on: kind,
        });
        s.depth(at);
        Some(task)
    })
    .flatten();
    Traced {
        task,
        inner: Box::pin(fut),
        waker: None,
        done: false,
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(task) = self.task else {
            return self.inner.as_mut().poll(cx);
        };
        let fresh = match &self.waker {
            Some((outer, _)) => !outer.will_wake(cx.waker()),
            None => true,
        };
        if fresh {
            let ours = Waker::from(Arc::new(TaskWaker {
                task,
                inner: cx.waker().clone(),
            }));
            self.waker = Some((cx.waker().clone(), ours));
        }
        let start = with(|s| {
            s.ready.remove(&task);
            s.current = Some(task);
            let at = s.tracer.now();
            s.depth(at);
            at
        })
        .unwrap_or(0);
        let waker = self
            .waker
            .as_ref()
            .map(|(_, w)| w.clone())
            .unwrap_or_else(|| cx.waker().clone());
        let result = self.inner.as_mut().poll(&mut Context::from_waker(&waker));
        let ready = result.is_ready();
        if ready {
            self.done = true;
        }
        with(|s| {
            let end = s.tracer.now();
            s.current = None;
            let tid = s.tracer.tid();
            s.tracer.record(Event::Poll {
                task,
                tid,
                cpu: current_cpu(),
                start,
                end,
                ready,
            });
            let kind = s.kinds.get(&task).copied();
            if ready {
                s.kinds.remove(&task);
                s.ready.remove(&task);
            } else if !s.ready.contains(&task)
                && let Some(kind) = kind
            {
                // Not re-woken during its own poll: it waits.
                s.waiting.insert(task, kind);
                match kind {
                    WaitKind::Io => s.io += 1,
                    WaitKind::Timer => s.timers += 1,
                }
            }
            s.depth(end);
        });
        result
    }
}

impl<F: Future> Drop for Traced<F> {
    fn drop(&mut self) {
        if let Some(task) = self.task
            && !self.done
        {
            with(|s| {
                s.unpark_task(task);
                s.ready.remove(&task);
                s.kinds.remove(&task);
                let at = s.tracer.now();
                s.tracer.record(Event::TaskCancelled { task, at });
                s.depth(at);
            });
        }
    }
}
