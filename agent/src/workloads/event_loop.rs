//! The event-loop comparisons: the loop with and without a task that computes without
//! awaiting (`event-loop-blocked`), and the same requests on the loop and on a thread pool
//! (`async-vs-threads`). Both variants of each run traced, one after the other, against the
//! same loopback server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::Duration,
};

use super::{
    Ctx, Output, Totals, WorkloadError,
    io::{Loopback, blocking_requests, check_fd_limit, io_output, loop_run},
};
use crate::trace::clock::rss_bytes;

/// Samples the agent's resident memory while alive; reports the growth over the start.
#[derive(Debug)]
struct RssWatch {
    start: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl RssWatch {
    fn start() -> RssWatch {
        let start = rss_bytes().unwrap_or(0);
        let peak = Arc::new(AtomicU64::new(start));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        let handle = thread::Builder::new()
            .name("rss-watch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Some(now) = rss_bytes() {
                        p.fetch_max(now, Ordering::Relaxed);
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })
            .ok();
        RssWatch {
            start,
            peak,
            stop,
            handle,
        }
    }

    fn growth(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        (self.start > 0).then(|| self.peak.load(Ordering::Relaxed).saturating_sub(self.start))
    }
}

/// `event-loop-blocked`: the loop without, then with, a task that computes for `block_ms`.
pub fn blocked(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let requests = ctx.param(|p| p.requests);
    let latency = ctx.param(|p| p.latency_ms);
    let block = ctx.param(|p| p.block_ms);
    check_fd_limit(requests)?;
    let server = Loopback::start(ctx, latency, requests)?;
    let clean_totals = Arc::new(Totals::default());
    let clean = loop_run(
        ctx,
        "event-loop",
        server.db.addr,
        requests,
        latency,
        None,
        &clean_totals,
    )?;
    if ctx.rec.cancelled() {
        return Ok(Output::stopped(clean.wall_ns));
    }
    let blocked_totals = Arc::new(Totals::default());
    let blocked = loop_run(
        ctx,
        "event-loop-blocked",
        server.db.addr,
        requests,
        latency,
        Some(block),
        &blocked_totals,
    )?;
    let mut out = io_output(
        ctx,
        blocked.wall_ns,
        blocked.latencies.clone(),
        blocked.failed || clean.failed,
    )?;
    out.variants = vec![
        clean_totals.variant(
            "without the blocking task".into(),
            clean.wall_ns,
            None,
            clean.latencies,
        ),
        blocked_totals.variant(
            format!("with one task computing {block} ms without awaiting"),
            blocked.wall_ns,
            None,
            blocked.latencies,
        ),
    ];
    out.notes = vec![format!(
        "the blocking task starts half a latency ({:.1} ms) in and holds the loop for {block} ms; \
         answers that arrive meanwhile wait for it",
        f64::from(latency) / 2.0
    )];
    Ok(out)
}

/// `async-vs-threads`: the requests on the loop, then on T threads.
pub fn async_vs_threads(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let requests = ctx.param(|p| p.requests);
    let threads = ctx.param(|p| p.threads).min(requests);
    let latency = ctx.param(|p| p.latency_ms);
    check_fd_limit(requests)?;
    let server = Loopback::start(ctx, latency, requests)?;
    let loop_totals = Arc::new(Totals::default());
    let rss = RssWatch::start();
    let on_loop = loop_run(
        ctx,
        "event-loop",
        server.db.addr,
        requests,
        latency,
        None,
        &loop_totals,
    )?;
    let loop_rss = rss.growth();
    if ctx.rec.cancelled() {
        return Ok(Output::stopped(on_loop.wall_ns));
    }
    let thread_totals = Arc::new(Totals::default());
    let rss = RssWatch::start();
    let on_threads = blocking_requests(ctx, server.db.addr, threads, &thread_totals)?;
    let threads_rss = rss.growth();
    let wall = on_loop.wall_ns + on_threads.wall_ns;
    let mut all = on_loop.latencies.clone();
    all.extend(on_threads.latencies.iter().copied());
    let mut out = io_output(ctx, wall, all, on_loop.failed || on_threads.failed)?;
    // The same K requests ran twice, once each way: each answered count is out of K.
    out.result = Some(format!(
        "{} of {requests} requests answered on the event loop, {} of {requests} on the thread pool",
        on_loop.latencies.len(),
        on_threads.latencies.len()
    ));
    out.notes = vec![format!(
        "{requests} requests of {latency} ms: the loop took {:.1} ms on one thread, the pool {:.1} ms on {threads} threads",
        on_loop.wall_ns as f64 / 1e6,
        on_threads.wall_ns as f64 / 1e6
    )];
    out.variants = vec![
        loop_totals.variant(
            "event loop, 1 thread".into(),
            on_loop.wall_ns,
            loop_rss,
            on_loop.latencies,
        ),
        thread_totals.variant(
            format!("thread pool, {threads} threads"),
            on_threads.wall_ns,
            threads_rss,
            on_threads.latencies,
        ),
    ];
    Ok(out)
}
