//! coreplay's page: a Yew app that connects to an agent and draws what it streams.
//!
//! - [`state`]: a pure reducer over connection events and protocol messages (tested natively).
//! - [`playback`]: the animation clock (pure); what is drawn at an instant comes from
//!   `coreplay_shared::frame`.
//! - [`conn`]: owns the WebSocket, with reconnect back-off.
//! - [`view`]: one component per picture.
//! - [`app`]: wires them together.

pub mod app;
pub mod conn;
pub mod js;
pub mod load;
pub mod options;
pub mod playback;
pub mod state;
pub mod view;
