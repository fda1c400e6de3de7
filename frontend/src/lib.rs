//! coreplay's page: a Yew app that connects to an agent and draws what it streams.
//!
//! - [`state`]: a pure reducer over every [`state::Action`] (connection events, protocol
//!   messages, loaded traces, the user's and the embedding page's commands; tested natively).
//! - [`store`]: the one shared state, changed only through [`store::Store::apply`].
//! - [`playback`]: the animation clock (pure); what is drawn at an instant comes from
//!   `coreplay_shared::frame`.
//! - [`options`], [`embed`]: the page's URL parameters; the embedding page's `postMessage`
//!   API (typed commands and notices).
//! - [`conn`], [`load`], [`trace`]: the WebSocket; recorded runs from URLs, files, drops.
//! - [`hooks`]: the clock, keyboard, messages, connection and theme, tied to the store.
//! - [`learn`]: the lessons (content, glossary, outcome sentences, progress, components).
//! - [`view`]: one component per picture.
//! - [`app`]: the root layout; [`panic`]: a failure of the page's own code, shown instead of
//!   a frozen page.

pub mod app;
pub mod conn;
pub mod embed;
pub mod hooks;
pub mod js;
pub mod learn;
pub mod load;
pub mod options;
pub mod panic;
pub mod playback;
pub mod state;
pub mod store;
pub mod trace;
pub mod view;
