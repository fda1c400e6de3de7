//! The compute scenarios on threads: a rayon pool, plain oversubscribed threads, and threads
//! behind the global lock. Each measures its reference run (T = 1, or T = PUs) in the same
//! invocation, untraced, right before the traced run.

use std::{
    cell::RefCell,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::Duration,
};

use coreplay_shared::event::Role;
use rayon::prelude::*;

use super::{
    Ctx, Output, Totals, WorkloadError,
    compute::{split, unit},
    gil::Gil,
    primes_result,
};
use crate::trace::{ThreadTracer, clock::monotonic_ns};

/// Stack size of the plain worker threads: they need little, and 1 000 of them must fit.
const SMALL_STACK: usize = 256 * 1024;

thread_local! {
    /// The tracer of a rayon pool thread (rayon owns the threads; its start and exit handlers
    /// create and finish the tracer).
    static POOL_TRACER: RefCell<Option<ThreadTracer>> = const { RefCell::new(None) };
}

/// Counts pool threads that have finished their tracer, so the run waits for their last
/// events (rayon does not join its threads when the pool is dropped).
#[derive(Debug, Default)]
struct Exited {
    count: Mutex<usize>,
    cv: Condvar,
}

impl Exited {
    fn add(&self) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        self.cv.notify_all();
    }

    fn wait_for(&self, n: usize) {
        let guard = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .cv
            .wait_timeout_while(guard, Duration::from_secs(10), |c| *c < n);
    }
}

/// Runs `work` units on a rayon pool of `threads`; returns (wall ns, primes). Public for the
/// tracing-overhead benchmark, which runs it with tracing on and off side by side.
pub fn rayon_run(
    ctx: &Ctx,
    threads: u32,
    work: u32,
    totals: &Arc<Totals>,
) -> Result<(u64, u64), WorkloadError> {
    let exited = Arc::new(Exited::default());
    let rec = Arc::clone(&ctx.rec);
    let (ex, tot) = (Arc::clone(&exited), Arc::clone(totals));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads as usize)
        .stack_size(SMALL_STACK)
        .thread_name(|i| format!("rayon-{i}"))
        .start_handler(move |i| {
            let tracer = ThreadTracer::start(&rec, &format!("rayon-{i}"), Role::Worker);
            POOL_TRACER.with(|t| *t.borrow_mut() = Some(tracer));
        })
        .exit_handler(move |_| {
            if let Some(tracer) = POOL_TRACER.with(|t| t.borrow_mut().take()) {
                tracer.finish();
            }
            tot.add_current_thread();
            ex.add();
        })
        .build()
        .map_err(|e| WorkloadError::Spawn {
            what: format!("a rayon pool of {threads} threads"),
            source: std::io::Error::other(e.to_string()),
        })?;
    let cancel = ctx.rec.cancel_flag();
    let start = monotonic_ns();
    let primes: u64 = pool.install(|| {
        (0..work)
            .into_par_iter()
            .map(|i| {
                if cancel.load(Ordering::Relaxed) {
                    return 0;
                }
                let found = unit(i);
                POOL_TRACER.with(|t| {
                    if let Some(t) = t.borrow_mut().as_mut() {
                        t.checkpoint();
                    }
                });
                u64::from(found)
            })
            .sum()
    });
    let wall = monotonic_ns() - start;
    drop(pool);
    exited.wait_for(threads as usize);
    Ok((wall, primes))
}

/// `parallel-compute`: the job on a rayon pool of T threads, against T = 1.
pub fn parallel_compute(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let threads = ctx.param(|p| p.threads);
    let work = ctx.param(|p| p.work);
    // The traced run comes first so a live view starts at once; the reference follows.
    let (wall, primes) = rayon_run(ctx, threads, work, &Arc::new(Totals::default()))?;
    if ctx.rec.cancelled() {
        return Ok(Output::stopped(wall));
    }
    let base_totals = Arc::new(Totals::default());
    let (base_wall, base_primes) = rayon_run(&ctx.untraced(), 1, work, &base_totals)?;
    let mut notes = Vec::new();
    if base_primes != primes && !ctx.rec.cancelled() {
        notes.push(format!(
            "the T = 1 run found {base_primes} primes, this one {primes}"
        ));
    }
    Ok(Output {
        wall_ns: wall,
        baseline: Some(base_totals.baseline("T = 1 (rayon pool of one thread)".into(), base_wall)),
        result: Some(primes_result(work, primes)),
        notes,
        ..Output::default()
    })
}

/// Runs `work` units split evenly over `threads` plain OS threads; returns (wall ns, primes).
fn plain_threads(
    ctx: &Ctx,
    threads: u32,
    work: u32,
    totals: &Arc<Totals>,
) -> Result<(u64, u64), WorkloadError> {
    let primes = Arc::new(AtomicU64::new(0));
    let start = monotonic_ns();
    let mut handles = Vec::with_capacity(threads as usize);
    for i in 0..threads {
        let (rec, primes, totals) = (
            Arc::clone(&ctx.rec),
            Arc::clone(&primes),
            Arc::clone(totals),
        );
        let name = format!("worker-{i}");
        let handle = thread::Builder::new()
            .name(name.clone())
            .stack_size(SMALL_STACK)
            .spawn(move || {
                let mut tracer = ThreadTracer::start(&rec, &name, Role::Worker);
                let mut found = 0u64;
                for u in split(work, threads, i) {
                    if rec.cancelled() {
                        break;
                    }
                    found += u64::from(unit(u));
                    tracer.checkpoint();
                }
                primes.fetch_add(found, Ordering::Relaxed);
                tracer.finish();
                totals.add_current_thread();
            });
        match handle {
            Ok(h) => handles.push(h),
            Err(source) => {
                ctx.rec.cancel_flag().store(true, Ordering::Relaxed);
                for h in handles {
                    let _ = h.join();
                }
                return Err(WorkloadError::Spawn {
                    what: format!("thread {i} of {threads}"),
                    source,
                });
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    Ok((monotonic_ns() - start, primes.load(Ordering::Relaxed)))
}

/// `oversubscribed`: the job on T ≫ PUs plain threads, against T = PUs.
pub fn oversubscribed(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let threads = ctx.param(|p| p.threads);
    let work = ctx.param(|p| p.work);
    let (wall, primes) = plain_threads(ctx, threads, work, &Arc::new(Totals::default()))?;
    if ctx.rec.cancelled() {
        return Ok(Output::stopped(wall));
    }
    let base_totals = Arc::new(Totals::default());
    let (base_wall, _) = plain_threads(&ctx.untraced(), ctx.pus, work, &base_totals)?;
    Ok(Output {
        wall_ns: wall,
        baseline: Some(
            base_totals.baseline(format!("T = PUs = {} plain threads", ctx.pus), base_wall),
        ),
        result: Some(primes_result(work, primes)),
        ..Output::default()
    })
}

/// Runs `work` units split over `threads` threads that compute only holding `gil`.
fn gil_threads(
    ctx: &Ctx,
    threads: u32,
    work: u32,
    interval: Duration,
    totals: &Arc<Totals>,
) -> Result<(u64, u64), WorkloadError> {
    let gil = Arc::new(Gil::new(interval));
    let primes = Arc::new(AtomicU64::new(0));
    let start = monotonic_ns();
    let mut handles = Vec::with_capacity(threads as usize);
    for i in 0..threads {
        let (rec, lock, primes, totals) = (
            Arc::clone(&ctx.rec),
            Arc::clone(&gil),
            Arc::clone(&primes),
            Arc::clone(totals),
        );
        let name = format!("py-thread-{i}");
        let spawned = thread::Builder::new()
            .name(name.clone())
            .stack_size(SMALL_STACK)
            .spawn(move || {
                let mut tracer = ThreadTracer::start(&rec, &name, Role::Worker);
                let found = gil_worker(&mut tracer, &lock, split(work, threads, i));
                primes.fetch_add(found, Ordering::Relaxed);
                tracer.finish();
                totals.add_current_thread();
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(source) => {
                ctx.rec.cancel_flag().store(true, Ordering::Relaxed);
                gil.wake_all();
                for h in handles {
                    let _ = h.join();
                }
                return Err(WorkloadError::Spawn {
                    what: format!("thread {i} of {threads}"),
                    source,
                });
            }
        }
    }
    // Cancellation must also reach threads parked on the lock's condition variables.
    while handles.iter().any(|h| !h.is_finished()) {
        if ctx.rec.cancelled() {
            gil.wake_all();
        }
        thread::sleep(Duration::from_millis(2));
    }
    for h in handles {
        let _ = h.join();
    }
    Ok((monotonic_ns() - start, primes.load(Ordering::Relaxed)))
}

/// One thread's life under the lock: take it, compute until asked to let go, hand it over.
pub fn gil_worker(tracer: &mut ThreadTracer, gil: &Gil, mut units: std::ops::Range<u32>) -> u64 {
    let rec = Arc::clone(tracer.recorder());
    let cancel = rec.cancel_flag();
    let mut found = 0u64;
    while !units.is_empty() {
        if !gil.acquire(tracer, cancel) {
            break;
        }
        let computing_since = tracer.now();
        let mut asked = false;
        for u in units.by_ref() {
            found += u64::from(unit(u));
            tracer.checkpoint();
            if gil.drop_requested() || cancel.load(Ordering::Relaxed) {
                asked = true;
                break;
            }
        }
        let computed_until = tracer.now();
        tracer.compute(computing_since, computed_until);
        gil.release(tracer, asked, cancel);
        if cancel.load(Ordering::Relaxed) {
            break;
        }
    }
    found
}

/// `gil`: T threads behind one lock, against T = 1.
pub fn gil(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let threads = ctx.param(|p| p.threads);
    let work = ctx.param(|p| p.work);
    let interval = Duration::from_millis(u64::from(ctx.param(|p| p.switch_interval_ms)));
    let (wall, primes) = gil_threads(ctx, threads, work, interval, &Arc::new(Totals::default()))?;
    if ctx.rec.cancelled() {
        return Ok(Output::stopped(wall));
    }
    let base_totals = Arc::new(Totals::default());
    let (base_wall, _) = gil_threads(&ctx.untraced(), 1, work, interval, &base_totals)?;
    Ok(Output {
        wall_ns: wall,
        baseline: Some(
            base_totals.baseline("T = 1 (one thread, lock uncontended)".into(), base_wall),
        ),
        result: Some(primes_result(work, primes)),
        ..Output::default()
    })
}
