//! The WebSocket to the agent: connect, forward every text frame to the reducer, and on
//! failure or close try again after a growing delay (see [`crate::state::backoff_ms`]).
//!
//! The loop lives as long as its [`ConnHandle`]: dropping the handle aborts the task, which
//! drops (and so closes) the socket. The component that owns the handle owns the connection.

use std::time::Duration;

use futures::{
    StreamExt,
    future::{AbortHandle, abortable},
};
use gloo_net::websocket::{Message, futures::WebSocket};
use yew::{Callback, platform::spawn_local, platform::time::sleep};

use crate::state::{Action, backoff_ms, validate_agent_url};

/// Default agent address when the page is not served by an agent (e.g. opened from a file).
pub const DEFAULT_AGENT_URL: &str = "ws://127.0.0.1:7878/ws";

/// Keeps the connection loop alive; dropping it stops the loop and closes the socket.
#[derive(Debug)]
pub struct ConnHandle(AbortHandle);

impl Drop for ConnHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts connecting to `url`, reporting everything through `dispatch`.
pub fn start(url: String, dispatch: Callback<Action>) -> ConnHandle {
    let (task, handle) = abortable(run(url, dispatch));
    spawn_local(async move {
        // Aborted means the owner dropped the handle on purpose.
        let _ = task.await;
    });
    ConnHandle(handle)
}

async fn run(url: String, dispatch: Callback<Action>) {
    let mut attempt = 0u32;
    loop {
        dispatch.emit(Action::Connecting { attempt });
        let socket = match WebSocket::open(&url) {
            Ok(socket) => socket,
            Err(err) => {
                // The browser refused the URL itself; retrying cannot help.
                dispatch.emit(Action::BadUrl(format!("cannot open {url}: {err}")));
                return;
            }
        };
        let (_write, mut read) = socket.split();
        while let Some(frame) = read.next().await {
            match frame {
                Ok(Message::Text(text)) => {
                    attempt = 0;
                    dispatch.emit(Action::Frame(text));
                }
                // The protocol is text only; a binary frame means a confused peer.
                Ok(Message::Bytes(_)) => {}
                Err(_) => break,
            }
        }
        attempt = attempt.saturating_add(1);
        dispatch.emit(Action::Closed { attempt });
        sleep(Duration::from_millis(u64::from(backoff_ms(attempt)))).await;
    }
}

/// The agent URL for this page: `?agent=` if given (validated), else the agent that served
/// the page, else [`DEFAULT_AGENT_URL`].
pub fn agent_url_from_location() -> Result<String, String> {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return Ok(DEFAULT_AGENT_URL.to_string());
    };
    let search = location.search().unwrap_or_default();
    if let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search)
        && let Some(agent) = params.get("agent")
    {
        return validate_agent_url(&agent);
    }
    let protocol = location.protocol().unwrap_or_default();
    let host = location.host().unwrap_or_default();
    match protocol.as_str() {
        "http:" if !host.is_empty() => Ok(format!("ws://{host}/ws")),
        "https:" if !host.is_empty() => Ok(format!("wss://{host}/ws")),
        _ => Ok(DEFAULT_AGENT_URL.to_string()),
    }
}
