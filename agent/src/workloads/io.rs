//! The I/O scenarios: the same K requests to the loopback server, one after another, on a pool
//! of T blocking threads, and as K tasks on one single-threaded tokio event loop.
//!
//! Stopping: a watcher kills the server when the run is cancelled, which fails every pending
//! request at once, so no client needs to poll (polling would add wake-ups to the trace).

use std::{
    cell::RefCell,
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread,
    time::Duration,
};

use coreplay_shared::event::{OffReason, Role};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::{
    Ctx, Output, WorkloadError,
    loopback_db::{LoopbackDb, raise_fd_limit},
};
use crate::trace::{ThreadTracer, clock::monotonic_ns};

/// Kills the server when the run is cancelled; stops watching when dropped.
struct CancelWatch {
    done: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl CancelWatch {
    fn new(ctx: &Ctx, db: &LoopbackDb) -> CancelWatch {
        let done = Arc::new(AtomicBool::new(false));
        let (d, cancel, pid) = (
            Arc::clone(&done),
            Arc::clone(ctx.rec.cancel_flag()),
            db.pid(),
        );
        let handle = thread::Builder::new()
            .name("cancel-watch".into())
            .spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    if cancel.load(Ordering::Relaxed) {
                        // SAFETY: plain kill(2) of our own child, which is not reaped before
                        // `done` is set (LoopbackDb reaps it on drop, after this watch ends).
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                        return;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
            })
            .ok();
        CancelWatch { done, handle }
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One blocking request on `conn`; returns false when the server is gone.
fn blocking_request(
    tracer: &mut ThreadTracer,
    conn: &mut BufReader<TcpStream>,
    id: u32,
    line: &mut String,
) -> bool {
    let start = tracer.now();
    if conn
        .get_mut()
        .write_all(format!("GET {id}\n").as_bytes())
        .is_err()
    {
        return false;
    }
    line.clear();
    let read = tracer.off_cpu(OffReason::Io, || conn.read_line(line));
    let end = tracer.now();
    if !matches!(read, Ok(n) if n > 0) {
        return false;
    }
    tracer.request(id, start, end);
    true
}

fn connect(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// Runs `clients` blocking client threads taking request ids from one counter.
fn blocking_clients(ctx: &Ctx, clients: u32) -> Result<Output, WorkloadError> {
    let requests = ctx.param(|p| p.requests);
    let latency = ctx.param(|p| p.latency_ms);
    let db = LoopbackDb::start(&ctx.exe, latency)?;
    let _watch = CancelWatch::new(ctx, &db);
    let next = Arc::new(AtomicU32::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests as usize)));
    let failed = Arc::new(AtomicBool::new(false));
    let start = monotonic_ns();
    let mut handles = Vec::new();
    for i in 0..clients {
        let (rec, next, latencies, failed) = (
            Arc::clone(&ctx.rec),
            Arc::clone(&next),
            Arc::clone(&latencies),
            Arc::clone(&failed),
        );
        let addr = db.addr;
        let name = format!("client-{i}");
        let spawned = thread::Builder::new()
            .name(name.clone())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut tracer = ThreadTracer::start(&rec, &name, Role::Client);
                let mut mine = Vec::new();
                let mut line = String::new();
                if let Ok(mut conn) = connect(addr) {
                    loop {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        if id >= requests || rec.cancelled() {
                            break;
                        }
                        let t0 = monotonic_ns();
                        if !blocking_request(&mut tracer, &mut conn, id, &mut line) {
                            failed.store(true, Ordering::Relaxed);
                            break;
                        }
                        mine.push(monotonic_ns() - t0);
                    }
                } else {
                    failed.store(true, Ordering::Relaxed);
                }
                tracer.finish();
                latencies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(mine);
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(source) => {
                ctx.rec.cancel_flag().store(true, Ordering::Relaxed);
                return Err(WorkloadError::Spawn {
                    what: format!("client thread {i}"),
                    source,
                });
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    let wall = monotonic_ns() - start;
    let latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    io_output(ctx, wall, latencies, failed.load(Ordering::Relaxed))
}

fn io_output(
    ctx: &Ctx,
    wall: u64,
    latencies: Vec<u64>,
    failed: bool,
) -> Result<Output, WorkloadError> {
    let requests = ctx.param(|p| p.requests);
    let latency = ctx.param(|p| p.latency_ms);
    if failed && !ctx.rec.cancelled() {
        return Err(WorkloadError::Peer(format!(
            "requests to the loopback server failed after {} of {requests} answers",
            latencies.len()
        )));
    }
    let serial_ms = u64::from(requests) * u64::from(latency);
    Ok(Output {
        wall_ns: wall,
        result: Some(format!(
            "{} of {requests} requests answered",
            latencies.len()
        )),
        notes: vec![format!(
            "K × latency = {serial_ms} ms; this run took {:.1} ms, {:.1} latencies",
            wall as f64 / 1e6,
            if latency == 0 {
                0.0
            } else {
                wall as f64 / 1e6 / f64::from(latency)
            }
        )],
        latencies,
        ..Output::default()
    })
}

/// `io-sequential`: one thread, one request at a time.
pub fn sequential(ctx: &Ctx) -> Result<Output, WorkloadError> {
    blocking_clients(ctx, 1)
}

/// `io-threads`: a pool of T blocking threads.
pub fn threads(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let t = ctx.param(|p| p.threads).min(ctx.param(|p| p.requests));
    blocking_clients(ctx, t)
}

thread_local! {
    /// The event loop thread's tracer, reached from the runtime's park hooks and its tasks.
    static LOOP_TRACER: RefCell<Option<ThreadTracer>> = const { RefCell::new(None) };
}

fn with_loop_tracer(f: impl FnOnce(&mut ThreadTracer)) {
    LOOP_TRACER.with(|t| {
        if let Ok(mut t) = t.try_borrow_mut()
            && let Some(t) = t.as_mut()
        {
            f(t);
        }
    });
}

/// `io-async`: K tasks on one single-threaded tokio runtime.
pub fn event_loop(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let requests = ctx.param(|p| p.requests);
    let limit = raise_fd_limit();
    if u64::from(requests) + 64 > limit {
        return Err(WorkloadError::Peer(format!(
            "{requests} concurrent connections need more open files than this process may have ({limit}); raise `ulimit -n`"
        )));
    }
    let db = LoopbackDb::start(&ctx.exe, ctx.param(|p| p.latency_ms))?;
    let _watch = CancelWatch::new(ctx, &db);
    let addr = db.addr;
    let rec = Arc::clone(&ctx.rec);
    let start = monotonic_ns();
    let handle = thread::Builder::new()
        .name("event-loop".into())
        .spawn(move || {
            LOOP_TRACER.with(|t| {
                *t.borrow_mut() = Some(ThreadTracer::start(&rec, "event-loop", Role::EventLoop))
            });
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(|| with_loop_tracer(ThreadTracer::begin_off))
                .on_thread_unpark(|| with_loop_tracer(|t| t.end_off(OffReason::Io)))
                .build();
            let result = match runtime {
                Ok(rt) => rt.block_on(async_requests(addr, requests)),
                Err(e) => Err(e.to_string()),
            };
            if let Some(tracer) = LOOP_TRACER.with(|t| t.borrow_mut().take()) {
                tracer.finish();
            }
            result
        })
        .map_err(|source| WorkloadError::Spawn {
            what: "the event loop thread".into(),
            source,
        })?;
    let result = handle
        .join()
        .map_err(|_| WorkloadError::Peer("the event loop thread panicked".into()))?;
    let wall = monotonic_ns() - start;
    match result {
        Ok((latencies, failed)) => io_output(ctx, wall, latencies, failed),
        Err(e) => Err(WorkloadError::Peer(format!("the event loop failed: {e}"))),
    }
}

async fn async_requests(addr: SocketAddr, requests: u32) -> Result<(Vec<u64>, bool), String> {
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..requests {
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
            let _ = stream.set_nodelay(true);
            let (read, mut write) = stream.into_split();
            let start = now_run_ns();
            write
                .write_all(format!("GET {id}\n").as_bytes())
                .await
                .ok()?;
            let mut line = String::new();
            let n = tokio::io::BufReader::new(read)
                .read_line(&mut line)
                .await
                .ok()?;
            if n == 0 {
                return None;
            }
            let end = now_run_ns();
            with_loop_tracer(|t| t.request(id, start, end));
            Some(end.saturating_sub(start))
        });
    }
    let mut latencies = Vec::with_capacity(requests as usize);
    let mut failed = false;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Some(latency)) => latencies.push(latency),
            _ => failed = true,
        }
    }
    Ok((latencies, failed))
}

fn now_run_ns() -> u64 {
    let mut now = 0;
    with_loop_tracer(|t| now = t.now());
    now
}
