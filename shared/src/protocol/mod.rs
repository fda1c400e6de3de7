//! What crosses the wire between the agent and the page, and what a trace file stores: the
//! single source of truth for both sides. A change here is a protocol change: bump
//! [`msg::PROTOCOL_VERSION`] and keep older traces readable in [`trace_file`].

pub mod event;
// How the enums and events are read (`crate::json`), written out to compile small.
mod event_de;
pub mod msg;
pub mod scenario;
pub mod summary;
mod tagged_de;
pub mod topology;
pub mod trace_file;
pub mod watch;
