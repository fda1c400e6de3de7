//! A thread's self-timed tracer.
//!
//! The thread calls [`ThreadTracer::checkpoint`] after every small chunk of work (tens of µs)
//! and wraps blocking calls in [`ThreadTracer::off_cpu`]. At each point it reads the monotonic
//! clock, its own CPU clock, the CPU it is on and the kernel's switch counters:
//! - wall time beyond CPU time since the last point means it was off the CPU for the
//!   difference: preempted if the involuntary count rose, blocked if the voluntary one did;
//! - a different CPU than before is a migration;
//! - otherwise nothing is emitted and the current on-CPU slice simply grows.
//!
//! So a thread running undisturbed costs one slice, however long. Switch *counts* are the
//! kernel's own; their *times* are known to within one chunk.

use std::sync::Arc;

use coreplay_shared::event::{Event, LockOp, Ns, OffReason, Role};

use super::{
    Recorder,
    clock::{
        SwitchCounts, current_cpu, os_tid, proc_switch_counts, thread_cpu_ns, thread_switch_counts,
    },
    perf::{PerfSwitches, SwitchRecord},
};

/// Off-CPU time below this, with no switch counted, is noise (cache misses, timer interrupts).
const OFF_THRESHOLD_NS: u64 = 20_000;
/// Wall time beyond CPU time above this means the thread may have been switched out, so the
/// kernel's counters are read at once; below it they are read at most every
/// [`COUNTS_EVERY_NS`]. A switch out and back in costs microseconds, so none is missed; this
/// saves the one real syscall of a checkpoint on most chunks.
const GAP_NS: u64 = 1_500;
/// A chunk whose wall time exceeds this (work units average 50 µs) may have been interrupted,
/// so the thread checks at once; otherwise it checks at most every [`FULL_EVERY_NS`]. The CPU
/// clock costs a real syscall in many VMs (0.6 µs here), so this keeps tracing near 1 %.
const CHUNK_SUSPECT_NS: u64 = 150_000;
/// Longest time between two full checks, ns (a CPU change always triggers one).
const FULL_EVERY_NS: u64 = 200_000;
/// Longest time between two readings of the switch counters, ns.
const COUNTS_EVERY_NS: u64 = 1_000_000;
/// Flush the local buffer at this many events…
const FLUSH_EVENTS: usize = 512;
/// …or when it has waited this long, so a live view is never far behind.
const FLUSH_NS: u64 = 20_000_000;

/// One thread's tracer. Create it on the thread it traces; it finishes on drop.
#[derive(Debug)]
pub struct ThreadTracer {
    rec: Arc<Recorder>,
    tid: u32,
    enabled: bool,
    buf: Vec<Event>,
    cpu: u32,
    slice_start: Ns,
    /// The first slice's start; exact mode ignores switch records before it.
    started_at: Ns,
    last_wall: Ns,
    prev_wall: Ns,
    last_cpu_ns: u64,
    counts: SwitchCounts,
    counts_read_at: Ns,
    start_counts: SwitchCounts,
    last_flush: Ns,
    off_since: Option<(Ns, u64, SwitchCounts)>,
    finished: bool,
    exact: Option<Exact>,
}

/// Exact mode's state: the kernel's switch records and the blocking calls they fall into.
#[derive(Debug)]
struct Exact {
    perf: PerfSwitches,
    records: Vec<SwitchRecord>,
    /// Blocking calls (start, end, reason) not yet matched with switch records.
    windows: Vec<(Ns, Ns, OffReason)>,
    /// Switched out at (run ns), and whether by preemption.
    out_at: Option<(Ns, bool)>,
    /// Start of the current blocking call.
    window_start: Option<Ns>,
}

impl ThreadTracer {
    /// Registers the calling thread with the run and starts its first on-CPU slice.
    pub fn start(rec: &Arc<Recorder>, name: &str, role: Role) -> ThreadTracer {
        let tid = rec.next_tid();
        let enabled = rec.enabled();
        let mut tracer = ThreadTracer {
            rec: Arc::clone(rec),
            tid,
            enabled,
            buf: Vec::new(),
            cpu: 0,
            slice_start: 0,
            started_at: 0,
            last_wall: 0,
            prev_wall: 0,
            last_cpu_ns: 0,
            counts: SwitchCounts::default(),
            counts_read_at: 0,
            start_counts: SwitchCounts::default(),
            last_flush: 0,
            off_since: None,
            finished: false,
            exact: None,
        };
        if enabled {
            // Exact mode opens the kernel's switch recording *before* the first slice is
            // stamped: a thread preempted or moved while opening it would otherwise claim a
            // CPU it had left (another thread's slice there overlapped it by a quantum).
            // Records older than the first stamp are skipped (see `drain_exact_until`).
            if rec.exact() {
                match PerfSwitches::open() {
                    Ok(perf) => {
                        tracer.exact = Some(Exact {
                            perf,
                            records: Vec::with_capacity(64),
                            windows: Vec::new(),
                            out_at: None,
                            window_start: None,
                        });
                    }
                    Err(_) => rec.note_fallback(),
                }
            }
            // The CPU is read before the clock: a switch between the two leaves a switch-in
            // record before the first stamp, which corrects it (see `drain_exact_until`).
            tracer.cpu = current_cpu();
            let now = rec.now();
            tracer.buf.reserve(FLUSH_EVENTS);
            tracer.buf.push(Event::ThreadStart {
                tid,
                pid: std::process::id(),
                os_tid: os_tid(),
                name: name.to_string(),
                role,
                at: now,
            });
            tracer.slice_start = now;
            tracer.started_at = now;
            tracer.last_wall = now;
            tracer.prev_wall = now;
            tracer.last_flush = now;
            tracer.last_cpu_ns = thread_cpu_ns();
            tracer.counts = thread_switch_counts();
            tracer.start_counts = tracer.counts;
        }
        tracer
    }

    /// This thread's run-wide id.
    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// The recorder this tracer reports to.
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.rec
    }

    /// Now, in run ns.
    pub fn now(&self) -> Ns {
        self.rec.now()
    }

    /// Call after each chunk of work: detects preemption and migration since the last call.
    ///
    /// Cheap on most chunks (the monotonic clock and `sched_getcpu`, both in the vDSO); the
    /// full check with the thread's CPU clock runs when the chunk took suspiciously long, the
    /// CPU changed, or [`FULL_EVERY_NS`] passed.
    #[inline]
    pub fn checkpoint(&mut self) {
        if !self.enabled {
            return;
        }
        if self.exact.is_some() {
            let now = self.rec.now();
            if now.saturating_sub(self.last_wall) >= FULL_EVERY_NS {
                self.last_wall = now;
                self.drain_exact();
                if now.saturating_sub(self.last_flush) > FLUSH_NS {
                    self.flush(now);
                }
            }
            return;
        }
        let now = self.rec.now();
        let cpu = current_cpu();
        let chunk = now.saturating_sub(self.prev_wall);
        self.prev_wall = now;
        if cpu == self.cpu
            && chunk < CHUNK_SUSPECT_NS
            && now.saturating_sub(self.last_wall) < FULL_EVERY_NS
        {
            return;
        }
        self.full_check(now, cpu);
    }

    /// Compares wall and CPU time and the kernel's counters since the last full check.
    fn full_check(&mut self, now: Ns, cpu: u32) {
        let cpu_ns = thread_cpu_ns();
        let wall = now.saturating_sub(self.last_wall);
        let ran = cpu_ns.saturating_sub(self.last_cpu_ns).min(wall);
        let off = wall - ran;
        let counts = if off > GAP_NS
            || cpu != self.cpu
            || now.saturating_sub(self.counts_read_at) > COUNTS_EVERY_NS
        {
            self.counts_read_at = now;
            thread_switch_counts()
        } else {
            self.counts
        };
        let switched = counts != self.counts;
        if switched || off > OFF_THRESHOLD_NS || cpu != self.cpu {
            // Where in the chunk the thread left is unknown; put the running part first.
            let left_at = self.last_wall + ran;
            self.close_slice(left_at);
            if off > 0 && (switched || off > OFF_THRESHOLD_NS) {
                let reason = if counts.involuntary > self.counts.involuntary {
                    OffReason::Preempted
                } else if counts.voluntary > self.counts.voluntary {
                    // It blocked inside a chunk, e.g. an idle pool thread waiting for work.
                    OffReason::Sleep
                } else {
                    OffReason::Unknown
                };
                self.push(Event::OffCpu {
                    tid: self.tid,
                    start: left_at,
                    end: now,
                    reason,
                });
            }
            self.note_switches(left_at, counts);
            self.note_cpu(now, cpu);
            self.slice_start = now;
        }
        self.last_wall = now;
        self.last_cpu_ns = cpu_ns;
        if now.saturating_sub(self.last_flush) > FLUSH_NS {
            self.flush(now);
        }
    }

    /// Runs a call that may block and records the time off the CPU with `reason` (only if it
    /// really left the CPU: an uncontended lock or a ready socket costs no slice).
    pub fn off_cpu<R>(&mut self, reason: OffReason, f: impl FnOnce() -> R) -> R {
        self.begin_off();
        let r = f();
        self.end_off(reason);
        r
    }

    /// First half of [`ThreadTracer::off_cpu`], for callers that cannot wrap a closure (event
    /// loop park hooks).
    pub fn begin_off(&mut self) {
        if !self.enabled {
            return;
        }
        let now = self.rec.now();
        if let Some(exact) = self.exact.as_mut() {
            exact.window_start = Some(now);
        } else {
            self.prev_wall = now;
            self.full_check(now, current_cpu());
        }
        // The thread may now block for long; what it recorded so far should not wait for it.
        self.flush(now);
        self.off_since = Some((self.last_wall, self.last_cpu_ns, self.counts));
    }

    /// Second half of [`ThreadTracer::off_cpu`].
    pub fn end_off(&mut self, reason: OffReason) {
        if !self.enabled {
            return;
        }
        if let Some(exact) = self.exact.as_mut() {
            if let Some(start) = exact.window_start.take() {
                let end = self.rec.now();
                exact.windows.push((start, end, reason));
            }
            self.drain_exact();
            return;
        }
        let Some((start, start_cpu_ns, _)) = self.off_since.take() else {
            return;
        };
        let now = self.rec.now();
        let cpu_ns = thread_cpu_ns();
        let counts = thread_switch_counts();
        let cpu = current_cpu();
        let wall = now.saturating_sub(start);
        let ran = cpu_ns.saturating_sub(start_cpu_ns).min(wall);
        let switched = counts != self.counts;
        if switched || wall - ran > OFF_THRESHOLD_NS {
            self.close_slice(start);
            let reason = if counts.voluntary > self.counts.voluntary || !switched {
                reason
            } else {
                OffReason::Preempted
            };
            self.push(Event::OffCpu {
                tid: self.tid,
                start,
                end: now,
                reason,
            });
            self.note_switches(start, counts);
            self.note_cpu(now, cpu);
            self.slice_start = now;
        } else if cpu != self.cpu {
            self.close_slice(now);
            self.note_cpu(now, cpu);
            self.slice_start = now;
        }
        self.last_wall = now;
        self.prev_wall = now;
        self.last_cpu_ns = cpu_ns;
    }

    /// Records an event about this thread's work (event-loop tasks and the like).
    pub fn record(&mut self, event: Event) {
        if self.enabled {
            self.push(event);
        }
    }

    /// Records a step of the global-lock protocol.
    pub fn lock(&mut self, op: LockOp) {
        if self.enabled {
            let at = self.rec.now();
            self.push(Event::Lock {
                tid: self.tid,
                at,
                op,
            });
        }
    }

    /// Records a span of pure computation (used where the scenario must prove when it
    /// computed, e.g. only while holding the lock).
    pub fn compute(&mut self, start: Ns, end: Ns) {
        if self.enabled {
            self.push(Event::Compute {
                tid: self.tid,
                start,
                end,
            });
        }
    }

    /// Records one request to the loopback server.
    pub fn request(&mut self, id: u32, start: Ns, end: Ns) {
        if self.enabled {
            self.push(Event::Request {
                tid: self.tid,
                id,
                start,
                end,
            });
        }
    }

    /// Ends the thread's trace: last slice, remaining switches, and the kernel's own counts
    /// read independently from `/proc` for reconciliation.
    pub fn finish(mut self) {
        self.finish_inner();
    }

    fn finish_inner(&mut self) {
        if self.finished || !self.enabled {
            self.finished = true;
            return;
        }
        self.finished = true;
        let now = self.rec.now();
        if self.exact.is_some() {
            // The trace ends at `now`: a switch after it is not part of it.
            self.drain_exact_until(now);
        } else {
            self.full_check(now, current_cpu());
        }
        self.close_slice(now);
        let kernel = proc_switch_counts().unwrap_or_else(thread_switch_counts);
        self.push(Event::ThreadEnd {
            tid: self.tid,
            at: now,
            cpu_ns: thread_cpu_ns(),
            kernel_voluntary: kernel.voluntary.saturating_sub(self.start_counts.voluntary),
            kernel_involuntary: kernel
                .involuntary
                .saturating_sub(self.start_counts.involuntary),
        });
        self.flush(now);
    }

    /// Turns the kernel's switch records into slices, off-CPU intervals, switches and
    /// migrations (exact mode).
    fn drain_exact(&mut self) {
        self.drain_exact_until(Ns::MAX);
    }

    /// [`ThreadTracer::drain_exact`] for the records from the thread's first stamp to `until`.
    /// Between opening the recording and the first stamp, the thread may already have been
    /// switched out and back in. The first slice starts after that, so those records only
    /// say which CPU it starts on (the switch counts, read after the first stamp, leave them
    /// out too).
    fn drain_exact_until(&mut self, until: Ns) {
        let Some(mut exact) = self.exact.take() else {
            return;
        };
        exact.records.clear();
        let lost_before = exact.perf.lost;
        exact.perf.drain(&mut exact.records);
        if exact.perf.lost > lost_before {
            // Switch records were lost: count them, and do not pair a switch-out with a
            // switch-in that may not be its own.
            self.rec.note_dropped(exact.perf.lost - lost_before);
            exact.out_at = None;
        }
        for r in &exact.records {
            let t = self.rec.at(r.time);
            if t < self.started_at {
                if !r.out {
                    self.cpu = r.cpu;
                }
                continue;
            }
            if t > until {
                continue;
            }
            if r.out {
                self.close_slice(t);
                exact.out_at = Some((t, r.preempted));
                self.push(Event::Switch {
                    tid: self.tid,
                    at: t,
                    voluntary: u32::from(!r.preempted),
                    involuntary: u32::from(r.preempted),
                });
            } else {
                if let Some((out, preempted)) = exact.out_at.take() {
                    let reason = if preempted {
                        OffReason::Preempted
                    } else {
                        exact
                            .windows
                            .iter()
                            .find(|(s, e, _)| *s <= out && out <= *e)
                            .map_or(OffReason::Sleep, |w| w.2)
                    };
                    self.push(Event::OffCpu {
                        tid: self.tid,
                        start: out,
                        end: t,
                        reason,
                    });
                }
                self.note_cpu(t, r.cpu);
                self.slice_start = t;
            }
        }
        // Windows that ended before the last record can no longer match anything.
        if let Some(last) = exact.records.last().map(|r| self.rec.at(r.time)) {
            exact.windows.retain(|(_, end, _)| *end >= last);
        }
        if exact.windows.len() > 1024 {
            exact.windows.drain(..512);
        }
        self.exact = Some(exact);
    }

    fn close_slice(&mut self, end: Ns) {
        if end > self.slice_start {
            self.push(Event::OnCpu {
                tid: self.tid,
                cpu: self.cpu,
                start: self.slice_start,
                end,
            });
        }
        self.slice_start = end;
    }

    fn note_switches(&mut self, at: Ns, counts: SwitchCounts) {
        let voluntary = counts.voluntary.saturating_sub(self.counts.voluntary);
        let involuntary = counts.involuntary.saturating_sub(self.counts.involuntary);
        if voluntary + involuntary > 0 {
            self.push(Event::Switch {
                tid: self.tid,
                at,
                voluntary: u32::try_from(voluntary).unwrap_or(u32::MAX),
                involuntary: u32::try_from(involuntary).unwrap_or(u32::MAX),
            });
        }
        self.counts = counts;
    }

    fn note_cpu(&mut self, at: Ns, cpu: u32) {
        if cpu != self.cpu {
            self.push(Event::Migrate {
                tid: self.tid,
                at,
                from: self.cpu,
                to: cpu,
            });
            self.cpu = cpu;
        }
    }

    fn push(&mut self, event: Event) {
        self.buf.push(event);
        if self.buf.len() >= FLUSH_EVENTS {
            let now = self.rec.now();
            self.flush(now);
        }
    }

    fn flush(&mut self, now: Ns) {
        self.last_flush = now;
        if !self.buf.is_empty() {
            let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(FLUSH_EVENTS));
            self.rec.send(batch);
        }
    }
}

impl Drop for ThreadTracer {
    fn drop(&mut self) {
        self.finish_inner();
    }
}
