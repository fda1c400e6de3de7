//! The I/O scenarios: the same K requests to the loopback server, one after another, on a pool
//! of T blocking threads, and as K tasks on one single-threaded tokio event loop.
//!
//! Stopping: a watcher kills the server when the run is cancelled, which fails every pending
//! request at once, so no client needs to poll (polling would add wake-ups to the trace).

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread,
    time::Duration,
};

use coreplay_shared::event::{OffReason, Role, WaitKind};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::{
    Ctx, Output, Totals, WorkloadError, compute,
    loopback_db::{LoopbackDb, raise_fd_limit},
};
use crate::trace::{ThreadTracer, clock::monotonic_ns, event_loop};

/// Kills the server when the run is cancelled; stops watching when dropped.
#[derive(Debug)]
struct CancelWatch {
    done: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl CancelWatch {
    /// Watches `ctx`'s cancel flag for as long as it lives.
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

/// The stand-in server with its cancel watch: the server dies when the run is cancelled.
#[derive(Debug)]
pub struct Loopback {
    // Declared first so it is dropped first: the watch must end before the server is reaped.
    _watch: CancelWatch,
    /// The server.
    pub db: LoopbackDb,
}

impl Loopback {
    /// Starts the server for `ctx`'s run, answering after `latency_ms`, ready for
    /// `connections` at once.
    pub fn start(ctx: &Ctx, latency_ms: u32, connections: u32) -> Result<Loopback, WorkloadError> {
        let db = LoopbackDb::start(&ctx.exe, latency_ms, connections)?;
        Ok(Loopback {
            _watch: CancelWatch::new(ctx, &db),
            db,
        })
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
    let latency = ctx.param(|p| p.latency_ms);
    let server = Loopback::start(ctx, latency, clients)?;
    let run = blocking_requests(ctx, server.db.addr, clients, &Arc::new(Totals::default()))?;
    io_output(ctx, run.wall_ns, run.latencies, run.failed)
}

/// The requests on `clients` blocking threads against the server at `addr`.
pub fn blocking_requests(
    ctx: &Ctx,
    addr: SocketAddr,
    clients: u32,
    totals: &Arc<Totals>,
) -> Result<LoopRun, WorkloadError> {
    let requests = ctx.param(|p| p.requests);
    let next = Arc::new(AtomicU32::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests as usize)));
    let failed = Arc::new(AtomicBool::new(false));
    let start = monotonic_ns();
    let mut handles = Vec::new();
    for i in 0..clients {
        let (rec, next, latencies, failed, totals) = (
            Arc::clone(&ctx.rec),
            Arc::clone(&next),
            Arc::clone(&latencies),
            Arc::clone(&failed),
            Arc::clone(totals),
        );
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
                totals.add_current_thread();
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
    let wall_ns = monotonic_ns() - start;
    let latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(LoopRun {
        wall_ns,
        latencies,
        failed: failed.load(Ordering::Relaxed),
    })
}

pub fn io_output(
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

/// One event loop's run: wall time, latencies, whether requests failed, its thread's totals.
#[derive(Debug)]
pub struct LoopRun {
    /// Wall time, ns.
    pub wall_ns: u64,
    /// Request latencies, ns.
    pub latencies: Vec<u64>,
    /// Some request failed.
    pub failed: bool,
}

/// Runs `requests` request tasks (and a 1 ms ticker, and optionally a task that computes for
/// `block_ms` without awaiting, starting half a latency in) on one current-thread tokio
/// runtime on a new thread named `name`.
pub fn loop_run(
    ctx: &Ctx,
    name: &str,
    addr: SocketAddr,
    requests: u32,
    latency_ms: u32,
    block_ms: Option<u32>,
    totals: &Arc<Totals>,
) -> Result<LoopRun, WorkloadError> {
    let rec = Arc::clone(&ctx.rec);
    let totals = Arc::clone(totals);
    let thread_name = name.to_string();
    let start = monotonic_ns();
    let handle = thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            // An untraced run (a baseline, the overhead benchmark's control) pays for no
            // instrumentation at all: its tasks are tokio's own.
            if rec.enabled() {
                event_loop::enter(
                    ThreadTracer::start(&rec, &thread_name, Role::EventLoop),
                    true,
                );
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_park(event_loop::park)
                .on_thread_unpark(event_loop::unpark)
                .build();
            let result = match runtime {
                Ok(rt) => rt.block_on(async_requests(addr, requests, latency_ms, block_ms)),
                Err(e) => Err(e.to_string()),
            };
            if let Some(tracer) = event_loop::exit() {
                tracer.finish();
            }
            totals.add_current_thread();
            result
        })
        .map_err(|source| WorkloadError::Spawn {
            what: format!("the {name} thread"),
            source,
        })?;
    let result = handle
        .join()
        .map_err(|_| WorkloadError::Peer(format!("the {name} thread panicked")))?;
    let wall_ns = monotonic_ns() - start;
    match result {
        Ok((latencies, failed)) => Ok(LoopRun {
            wall_ns,
            latencies,
            failed,
        }),
        Err(e) => Err(WorkloadError::Peer(format!("the event loop failed: {e}"))),
    }
}

pub fn check_fd_limit(requests: u32) -> Result<(), WorkloadError> {
    let limit = raise_fd_limit();
    if u64::from(requests) + 64 > limit {
        return Err(WorkloadError::Peer(format!(
            "{requests} concurrent connections need more open files than this process may have ({limit}); raise `ulimit -n`"
        )));
    }
    Ok(())
}

/// `io-async`: K tasks on one single-threaded tokio runtime.
pub fn event_loop(ctx: &Ctx) -> Result<Output, WorkloadError> {
    let requests = ctx.param(|p| p.requests);
    check_fd_limit(requests)?;
    let latency = ctx.param(|p| p.latency_ms);
    let server = Loopback::start(ctx, latency, requests)?;
    let run = loop_run(
        ctx,
        "event-loop",
        server.db.addr,
        requests,
        latency,
        None,
        &Arc::new(Totals::default()),
    )?;
    io_output(ctx, run.wall_ns, run.latencies, run.failed)
}

/// The ticker stops once every request has been answered.
type Remaining = std::rc::Rc<std::cell::Cell<u32>>;

async fn async_requests(
    addr: SocketAddr,
    requests: u32,
    latency_ms: u32,
    block_ms: Option<u32>,
) -> Result<(Vec<u64>, bool), String> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let remaining: Remaining = std::rc::Rc::new(std::cell::Cell::new(requests));
            let mut handles = Vec::with_capacity(requests as usize);
            for id in 0..requests {
                let remaining = remaining.clone();
                let spawned = monotonic_ns();
                handles.push(tokio::task::spawn_local(event_loop::traced(
                    format!("req-{id}"),
                    WaitKind::Io,
                    async move {
                        let answer = request(addr, id).await.map(|end| end - spawned);
                        remaining.set(remaining.get().saturating_sub(1));
                        answer
                    },
                )));
            }
            let ticking = remaining.clone();
            let ticker = tokio::task::spawn_local(event_loop::traced(
                "ticker",
                WaitKind::Timer,
                async move {
                    while ticking.get() > 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                },
            ));
            let blocker = block_ms.map(|ms| {
                tokio::task::spawn_local(event_loop::traced(
                    "blocker",
                    WaitKind::Timer,
                    async move {
                        tokio::time::sleep(Duration::from_micros(u64::from(latency_ms) * 500))
                            .await;
                        // The classic mistake: CPU work inside a task, no await until it is done.
                        let until = monotonic_ns() + u64::from(ms) * 1_000_000;
                        let mut i = 0;
                        while monotonic_ns() < until {
                            std::hint::black_box(compute::unit(i));
                            i += 1;
                        }
                    },
                ))
            });
            let mut latencies = Vec::with_capacity(requests as usize);
            let mut failed = false;
            for h in handles {
                match h.await {
                    Ok(Some(latency)) => latencies.push(latency),
                    _ => failed = true,
                }
            }
            let _ = ticker.await;
            if let Some(b) = blocker {
                let _ = b.await;
            }
            Ok((latencies, failed))
        })
        .await
}

/// One request as a task: connect, send, await the answer; when the answer came
/// (`CLOCK_MONOTONIC` ns). Its latency counts from the task's spawn, as a caller of an async
/// service would see it: connecting and waiting for the loop are part of it.
async fn request(addr: SocketAddr, id: u32) -> Option<u64> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let start = monotonic_ns();
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
    let end = monotonic_ns();
    event_loop::with(|s| {
        let (rs, re) = (s.tracer.recorder().at(start), s.tracer.recorder().at(end));
        s.tracer.request(id, rs, re);
    });
    Some(end)
}
