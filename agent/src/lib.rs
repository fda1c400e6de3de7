//! The coreplay agent as a library: topology probing, the scenario workloads and their
//! tracing, the run orchestrator and the server, so that integration tests and benchmarks
//! drive the same code the `coreplay` binary runs.

pub mod export;
pub mod record;
pub mod render;
pub mod report;
pub mod run;
pub mod server;
pub mod summarize;
pub mod topology;
pub mod trace;
pub mod watch;
pub mod workloads;

/// The address the agent listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
