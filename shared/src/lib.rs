//! The coreplay protocol: every type that crosses the wire between the agent and the page.
//!
//! This crate is the single source of truth for the protocol. It must stay wasm-clean: it
//! depends on serde, serde_json and thiserror only (the agent's tests check that), so that the
//! page and the agent compile the very same definitions.
//!
//! - [`topology`]: the machine as hwloc sees it (packages, caches, cores, hardware threads, NUMA).
//! - [`msg`]: [`ClientMsg`] and [`ServerMsg`], their JSON encoding and [`PROTOCOL_VERSION`].
//! - [`scenario`]: the catalog of workloads, their parameters and validation.
//! - [`event`]: what is recorded during a run; [`summary`]: the figures of a finished run.
//! - [`replay`]: a run indexed by time; [`frame`]: what is drawn at one instant (the page's
//!   animation and `coreplay render` both draw from it).
//! - [`trace_file`]: the recorded-run file and its validating reader.
//! - [`validate`]: the one well-formedness check of a run's events (readers, tests, fuzzer).
//! - [`watch`]: watching a real program: the operator's program list, sampling rates.

pub mod event;
pub mod frame;
pub mod msg;
pub mod replay;
pub mod scenario;
pub mod summary;
#[cfg(test)]
mod testkit;
pub mod topology;
pub mod trace_file;
pub mod validate;
pub mod watch;

pub use msg::{
    ClientMsg, DecodeError, ErrorCode, Hello, PROTOCOL_VERSION, ServerMsg, decode_client,
    decode_server,
};
pub use topology::{CacheType, MachineInfo, Node, NodeKind, NumaNode, Topology, TopologyError};
