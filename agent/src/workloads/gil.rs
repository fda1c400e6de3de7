//! A faithful model of CPython's global interpreter lock (3.2+, "new GIL").
//!
//! - A thread that wants the lock waits on a condition variable for at most the *switch
//!   interval*. If it times out and no hand-over happened meanwhile, it sets a drop request.
//! - The holder checks the drop request between work units (as CPython's eval loop checks its
//!   "eval breaker" between bytecodes) and releases the lock.
//! - Forced switching: after releasing on request, the old holder waits until some other
//!   thread has taken the lock, so it cannot grab it straight back.
//!
//! Every step is recorded through the thread's tracer, so hand-overs and convoys are visible.

use std::{
    sync::{
        Condvar, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use coreplay_shared::event::{LockOp, OffReason};

use crate::trace::ThreadTracer;

#[derive(Debug, Default)]
struct State {
    holder: Option<u32>,
    /// Increments at every acquisition; lets a waiter tell "still the same holder".
    switches: u64,
    /// Threads waiting to acquire.
    waiters: u32,
}

/// The global lock.
#[derive(Debug)]
pub struct Gil {
    state: Mutex<State>,
    /// Signals waiters that the lock is free.
    freed: Condvar,
    /// Signals a releasing holder that someone else took the lock.
    taken: Condvar,
    drop_request: AtomicBool,
    interval: Duration,
}

impl Gil {
    /// A free lock with the given switch interval.
    pub fn new(interval: Duration) -> Gil {
        Gil {
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            taken: Condvar::new(),
            drop_request: AtomicBool::new(false),
            interval,
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A poisoned state means a thread panicked while holding this small mutex; the state
        // itself is still consistent (plain fields), so carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for and takes the lock. Returns early (without it) when `cancel` is set.
    pub fn acquire(&self, tracer: &mut ThreadTracer, cancel: &AtomicBool) -> bool {
        let me = tracer.tid();
        let mut state = self.lock_state();
        if state.holder.is_some() {
            tracer.lock(LockOp::Request);
            state.waiters += 1;
            while state.holder.is_some() {
                if cancel.load(Ordering::Relaxed) {
                    state.waiters -= 1;
                    return false;
                }
                let seen = state.switches;
                let (guard, timeout) = tracer.off_cpu(OffReason::Lock, || {
                    self.freed
                        .wait_timeout(state, self.interval)
                        .unwrap_or_else(|e| e.into_inner())
                });
                state = guard;
                if timeout.timed_out() && state.holder.is_some() && state.switches == seen {
                    // A whole interval without a hand-over: ask the holder to let go.
                    self.drop_request.store(true, Ordering::Release);
                    tracer.lock(LockOp::DropRequest);
                }
            }
            state.waiters -= 1;
        }
        state.holder = Some(me);
        state.switches += 1;
        self.drop_request.store(false, Ordering::Release);
        drop(state);
        self.taken.notify_all();
        tracer.lock(LockOp::Acquire);
        true
    }

    /// Whether a waiter asked the holder to release (checked between work units).
    #[inline]
    pub fn drop_requested(&self) -> bool {
        self.drop_request.load(Ordering::Acquire)
    }

    /// Releases the lock. With `forced`, waits until another thread has taken it (CPython's
    /// FORCE_SWITCHING), unless the run is cancelled.
    pub fn release(&self, tracer: &mut ThreadTracer, forced: bool, cancel: &AtomicBool) {
        let mut state = self.lock_state();
        state.holder = None;
        let released_at = state.switches;
        tracer.lock(LockOp::Release);
        self.freed.notify_one();
        if forced {
            while state.switches == released_at
                && state.waiters > 0
                && !cancel.load(Ordering::Relaxed)
            {
                let (guard, _) = tracer.off_cpu(OffReason::Lock, || {
                    self.taken
                        .wait_timeout(state, self.interval)
                        .unwrap_or_else(|e| e.into_inner())
                });
                state = guard;
            }
        }
    }

    /// Wakes every waiter (used when a run is cancelled).
    pub fn wake_all(&self) {
        self.freed.notify_all();
        self.taken.notify_all();
    }
}
