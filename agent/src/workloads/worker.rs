//! The worker process of `process-pool`: the agent re-executed as `coreplay __worker …`.
//!
//! It joins the parent's run clock (`CLOCK_MONOTONIC` is system-wide), computes its share of
//! the job on its main thread under its *own* global lock, and streams [`WorkerMsg`] JSON
//! lines on stdout. If the parent goes away (stdout closed), it stops.

use std::{
    io::{BufWriter, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use coreplay_shared::event::{Event, Ns, Role};
use coreplay_shared::json::{self, FromJson, Reader};
use coreplay_shared::json_struct;
use serde::Serialize;

use super::{compute_threads::gil_worker, gil::Gil};
use crate::trace::{Recorder, ThreadTracer, clock::peak_rss_bytes};

/// Messages from a worker process to the agent, one JSON object per line.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerMsg {
    /// The worker is up and about to compute (run ns).
    Ready {
        /// When.
        at: Ns,
    },
    /// A batch of the worker's events (thread ids local to the worker).
    Events(Vec<Event>),
    /// The worker finished.
    Done {
        /// Primes it found.
        primes: u64,
        /// Its peak resident memory, bytes.
        peak_rss_bytes: Option<u64>,
    },
}

impl FromJson for WorkerMsg {
    fn read(r: &mut Reader<'_>) -> json::Result<WorkerMsg> {
        struct Ready {
            at: Ns,
        }
        json_struct!(Ready { at });
        struct Done {
            primes: u64,
            peak_rss_bytes: Option<u64>,
        }
        json_struct!(Done {
            primes,
            peak_rss_bytes
        });
        let mut msg = None;
        r.one_variant(
            "a worker message",
            &["ready", "events", "done"],
            &mut |r, i| {
                msg = Some(match i {
                    0 => WorkerMsg::Ready {
                        at: Ready::read(r)?.at,
                    },
                    1 => WorkerMsg::Events(Vec::read(r)?),
                    _ => {
                        let d = Done::read(r)?;
                        WorkerMsg::Done {
                            primes: d.primes,
                            peak_rss_bytes: d.peak_rss_bytes,
                        }
                    }
                });
                Ok(())
            },
        )?;
        msg.ok_or_else(|| r.fail("expected a worker message"))
    }
}

/// What the parent tells a worker.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// The run's clock origin, `CLOCK_MONOTONIC` ns.
    pub origin_ns: u64,
    /// First work unit.
    pub first: u32,
    /// Number of work units.
    pub count: u32,
    /// Switch interval of the worker's own lock, ms.
    pub interval_ms: u32,
    /// Worker number, for names.
    pub index: u32,
    /// Whether to record events.
    pub trace: bool,
    /// Whether to record exact switches.
    pub exact: bool,
}

fn write_line(out: &mut impl Write, msg: &WorkerMsg) -> bool {
    serde_json::to_writer(&mut *out, msg).is_ok()
        && out.write_all(b"\n").is_ok()
        && out.flush().is_ok()
}

/// Runs the worker; returns the process exit code.
pub fn main(args: &WorkerArgs) -> i32 {
    let cancel = Arc::new(AtomicBool::new(false));
    let (rec, rx) = Recorder::with_origin(args.origin_ns, args.trace, Arc::clone(&cancel));
    rec.set_exact(args.exact);
    let stdout = std::io::stdout();
    if !write_line(&mut stdout.lock(), &WorkerMsg::Ready { at: rec.now() }) {
        return 1;
    }
    let writer_cancel = Arc::clone(&cancel);
    let writer = std::thread::spawn(move || {
        let mut out = BufWriter::new(std::io::stdout().lock());
        for batch in rx {
            if !write_line(&mut out, &WorkerMsg::Events(batch.into_events())) {
                // The parent is gone: stop computing for nobody.
                writer_cancel.store(true, Ordering::Relaxed);
                break;
            }
        }
    });
    let gil = Gil::new(Duration::from_millis(u64::from(args.interval_ms)));
    let mut tracer = ThreadTracer::start(&rec, &format!("proc-{}/main", args.index), Role::Worker);
    let primes = gil_worker(
        &mut tracer,
        &gil,
        args.first..args.first.saturating_add(args.count),
    );
    tracer.finish();
    drop(rec);
    let _ = writer.join();
    let done = WorkerMsg::Done {
        primes,
        peak_rss_bytes: peak_rss_bytes(),
    };
    if cancel.load(Ordering::Relaxed) || !write_line(&mut stdout.lock(), &done) {
        return 1;
    }
    0
}
