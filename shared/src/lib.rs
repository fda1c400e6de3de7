//! coreplay's shared crate, compiled into both the agent and the page. It must stay
//! wasm-clean: it depends on serde, serde_json and thiserror only (the agent's tests check
//! that), so that the page and the agent compile the very same definitions.
//!
//! Two parts, kept apart so that a change to how a run is interpreted never looks like a
//! change to what crosses the wire:
//!
//! - [`protocol`] — what crosses the wire and what is stored, the single source of truth:
//!   [`topology`] (the machine as hwloc sees it), [`msg`] ([`ClientMsg`], [`ServerMsg`] and
//!   [`PROTOCOL_VERSION`]), [`scenario`] (the catalog of workloads and their parameters),
//!   [`event`] (what is recorded during a run), [`summary`] (a finished run's figures),
//!   [`trace_file`] (the recorded-run file and its reader), [`watch`] (the operator's program
//!   list, sampling rates).
//! - [`model`] — the one interpretation of a run's events: [`validate`] (which events make
//!   sense), [`replay`] (the facts: who runs where, who holds and who waits for each process's
//!   lock, every thread's one state, the task lifecycle, and what they add up to) and
//!   [`frame`] (what is drawn at one instant). The summary, the Chrome export, `render` and
//!   every view of the page derive from it.
//!
//! Beside them, [`standalone`] assembles the one-file page (the page and a run in one HTML
//! file that plays from `file://`), for the agent's export and the page's download alike.
//!
//! Each module is also reachable at the crate root (`coreplay_shared::event`, …).

pub mod fixed;
pub mod json;
pub mod model;
pub mod protocol;
pub mod sort;
pub mod standalone;
#[cfg(test)]
mod testkit;
pub mod vec_map;

pub use fixed::Fixed;
pub use model::{columns, frame, replay, validate};
pub use protocol::{event, msg, scenario, summary, topology, trace_file, watch};

pub use msg::{
    ClientMsg, DecodeError, ErrorCode, Hello, PROTOCOL_VERSION, ServerMsg, decode_client,
    decode_server,
};
pub use topology::{CacheType, MachineInfo, Node, NodeKind, NumaNode, Topology, TopologyError};
