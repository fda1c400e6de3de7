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

use coreplay_shared::event::{Event, Ns, OffReason, WaitKind, WakeBy};

use super::{ThreadTracer, clock::current_cpu};

/// Where a task is, as the loop's state sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Ready,
    Running,
    Waiting,
    Gone,
}

/// The loop thread's tracing state. Tasks live in a vector indexed by id (ids of one loop are
/// consecutive), which keeps a poll's bookkeeping to a few array accesses.
#[derive(Debug)]
pub struct LoopState {
    /// The loop thread's tracer (events go through its buffer).
    pub tracer: ThreadTracer,
    instrument: bool,
    base: Option<u32>,
    slots: Vec<(WaitKind, At)>,
    ready: u32,
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
            base: None,
            slots: Vec::new(),
            ready: 0,
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
            s.depth(end);
        }
    });
}

impl LoopState {
    /// Records the queue depths (after each poll and each selector wait; the changes in
    /// between follow from the spawn, wake and poll events).
    fn depth(&mut self, at: Ns) {
        if self.instrument {
            self.tracer.record(Event::QueueDepth {
                at,
                ready: self.ready,
                io: self.io,
                timers: self.timers,
            });
        }
    }

    fn slot(&mut self, task: u32) -> Option<&mut (WaitKind, At)> {
        let index = task.checked_sub(self.base?)? as usize;
        self.slots.get_mut(index)
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

    fn leave(&mut self, kind: WaitKind, at: At) {
        match (at, kind) {
            (At::Ready, _) => self.ready -= 1,
            (At::Waiting, WaitKind::Io) => self.io -= 1,
            (At::Waiting, WaitKind::Timer) => self.timers -= 1,
            _ => {}
        }
    }

    fn wake(&mut self, task: u32) {
        let current = self.current;
        let Some((kind, at)) = self.slot(task).map(|s| *s) else {
            return;
        };
        if !matches!(at, At::Waiting | At::Running) {
            // Already queued, or finished: the runtime ignores it too.
            return;
        }
        self.leave(kind, at);
        if let Some(slot) = self.slot(task) {
            slot.1 = At::Ready;
        }
        self.ready += 1;
        let by = match (current, kind) {
            (Some(waker), _) => WakeBy::Task { task: waker },
            (None, WaitKind::Io) => WakeBy::Io,
            (None, WaitKind::Timer) => WakeBy::Timer,
        };
        if self.wait_start.is_some() {
            self.woken_in_wait += 1;
        }
        let at = self.tracer.now();
        self.tracer.record(Event::Wake { task, at, by });
    }

    fn begin_poll(&mut self, task: u32) -> Ns {
        if let Some(slot) = self.slot(task)
            && slot.1 == At::Ready
        {
            slot.1 = At::Running;
            self.ready -= 1;
        }
        self.current = Some(task);
        self.tracer.now()
    }

    fn end_poll(&mut self, task: u32, start: Ns, ready: bool) {
        let end = self.tracer.now();
        self.current = None;
        let tid = self.tracer.tid();
        self.tracer.record(Event::Poll {
            task,
            tid,
            cpu: current_cpu(),
            start,
            end,
            ready,
        });
        if let Some((kind, at)) = self.slot(task).map(|s| *s) {
            if ready {
                self.leave(kind, at);
                if let Some(slot) = self.slot(task) {
                    slot.1 = At::Gone;
                }
            } else if at == At::Running {
                // Not re-woken during its own poll: it waits.
                if let Some(slot) = self.slot(task) {
                    slot.1 = At::Waiting;
                }
                match kind {
                    WaitKind::Io => self.io += 1,
                    WaitKind::Timer => self.timers += 1,
                }
            }
        }
        self.depth(end);
    }

    fn cancel(&mut self, task: u32) {
        let Some((kind, at)) = self.slot(task).map(|s| *s) else {
            return;
        };
        if at == At::Gone {
            return;
        }
        self.leave(kind, at);
        if let Some(slot) = self.slot(task) {
            slot.1 = At::Gone;
        }
        let at = self.tracer.now();
        self.tracer.record(Event::TaskCancelled { task, at });
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
        s.spawn(task, kind);
        let at = s.tracer.now();
        s.tracer.record(Event::TaskSpawn {
            task,
            at,
            label: label.to_string(),
            waits_on: kind,
        });
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
        let start = with(|s| s.begin_poll(task)).unwrap_or(0);
        let this = &mut *self;
        let result = match &this.waker {
            Some((_, ours)) => this.inner.as_mut().poll(&mut Context::from_waker(ours)),
            None => this.inner.as_mut().poll(cx),
        };
        let ready = result.is_ready();
        if ready {
            this.done = true;
        }
        with(|s| s.end_poll(task, start, ready));
        result
    }
}

impl<F: Future> Drop for Traced<F> {
    fn drop(&mut self) {
        if let Some(task) = self.task
            && !self.done
        {
            with(|s| s.cancel(task));
        }
    }
}
