//! The coreplay agent as a library: topology probing and the server, so that integration
//! tests and benchmarks drive the same code the `coreplay` binary runs.

pub mod server;
pub mod topology;

/// The address the agent listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
