//! Per-thread tracing without privileges.
//!
//! - [`clock`]: the cheap kernel reads everything else is built on (monotonic clock, thread CPU
//!   clock, `sched_getcpu`, `getrusage(RUSAGE_THREAD)`, `/proc/thread-self/status`).
//! - [`cpustat`]: what the whole machine's hardware threads did while a run was measured
//!   (`/proc/stat`, the agent's own CPU clock), less the run's own slices: other programs' share.
//! - [`recorder`]: one run's clock origin, thread ids and event sink, with drop counting.
//! - [`selftimed`]: a thread's tracer: it times itself around small chunks of work and around
//!   blocking calls, and turns what it sees into on/off-CPU slices, switches and migrations.
//! - [`stamp`]: one-instruction timestamps (the CPU's counter) for the event loop's hot path,
//!   converted to the monotonic clock off that path.
//! - [`perf`]: exact context switches from the kernel's perf switch records.
//! - [`event_loop`]: event-loop instrumentation of a real tokio runtime: traced tasks and
//!   wakers, the loop's 24-byte records, and the consumer that turns them into events.

pub mod clock;
pub mod cpustat;
pub mod event_loop;
pub mod perf;
pub mod recorder;
pub mod selftimed;
pub mod stamp;

pub use recorder::Recorder;
pub use selftimed::ThreadTracer;
