//! The WebSocket to the agent: connect, forward every text frame to the reducer, and on
//! failure or close try again after a growing delay (see [`crate::state::backoff_ms`]).
//!
//! The loop lives as long as its [`ConnHandle`]: dropping the handle aborts the task, which
//! drops (and so closes) the socket. The component that owns the handle owns the connection.

use std::time::Duration;

use coreplay_shared::ClientMsg;
use futures::{
    FutureExt, SinkExt, StreamExt,
    channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded},
    future::{AbortHandle, abortable},
    select,
};
use gloo_net::websocket::{Message, futures::WebSocket};
use yew::{Callback, platform::spawn_local, platform::time::sleep};

use crate::state::{Action, backoff_ms};

/// Default agent address when the page is not served by an agent (e.g. opened from a file);
/// `options.rs` picks the agent for a page.
pub const DEFAULT_AGENT_URL: &str = "ws://127.0.0.1:7878/ws";

/// How long a new socket may stay silent before the agent's hello.
const HELLO_WITHIN: Duration = Duration::from_secs(4);

/// Keeps the connection loop alive; dropping it stops the loop and closes the socket.
#[derive(Debug)]
pub struct ConnHandle {
    abort: AbortHandle,
    outbox: UnboundedSender<String>,
}

impl ConnHandle {
    /// Sends a message to the agent if connected; messages are not kept across reconnects
    /// (a run request to an agent that is gone would start a surprise run later).
    pub fn send(&self, msg: &ClientMsg) {
        let _ = self.outbox.unbounded_send(msg.to_json());
    }
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// Starts connecting to `url`, reporting everything through `dispatch`.
pub fn start(url: String, dispatch: Callback<Action>) -> ConnHandle {
    let (outbox, inbox) = unbounded();
    let (task, abort) = abortable(run(url, dispatch, inbox));
    spawn_local(async move {
        // Aborted means the owner dropped the handle on purpose.
        let _ = task.await;
    });
    ConnHandle { abort, outbox }
}

async fn run(url: String, dispatch: Callback<Action>, mut inbox: UnboundedReceiver<String>) {
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
        let (mut write, mut read) = socket.split();
        // Whatever was asked while disconnected is stale now.
        while inbox.try_recv().is_ok() {}
        // An agent says hello at once; a socket that stays silent (a handshake lost on the
        // way) is given up and opened again rather than waited on for ever.
        let mut silent = Box::pin(sleep(HELLO_WITHIN).fuse());
        let mut heard = false;
        loop {
            select! {
                () = silent => if !heard { break },
                frame = read.next().fuse() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        attempt = 0;
                        heard = true;
                        dispatch.emit(Action::Frame(text));
                    }
                    // The protocol is text only; a binary frame means a confused peer.
                    Some(Ok(Message::Bytes(_))) => {}
                    Some(Err(_)) | None => break,
                },
                out = inbox.next() => match out {
                    Some(text) => {
                        if write.send(Message::Text(text)).await.is_err() {
                            break;
                        }
                    }
                    None => return,
                },
            }
        }
        attempt = attempt.saturating_add(1);
        dispatch.emit(Action::Closed { attempt });
        sleep(Duration::from_millis(u64::from(backoff_ms(attempt)))).await;
    }
}
