//! The WebSocket to the agent: connect, forward every text frame to the reducer, and on
//! failure or close try again after a growing delay (see [`crate::state::backoff_ms`]).
//!
//! The socket itself lives in a worker (`js::agent_socket`), so that it is read as the agent
//! writes, whatever the page is busy with: a page that stopped reading for a moment (a long
//! frame, a redraw) would otherwise have the agent drop events for it. The messages come
//! here in order, a batch at a time.
//!
//! The loop lives as long as its [`ConnHandle`]: dropping the handle aborts the task, which
//! drops (and so stops) the worker and its socket. The component that owns the handle owns
//! the connection.

use std::time::Duration;

use coreplay_shared::ClientMsg;
use futures::{
    FutureExt, StreamExt,
    channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded},
    future::{AbortHandle, abortable},
    select,
};
use js_sys::{Uint8Array, Uint32Array};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use yew::{Callback, platform::spawn_local, platform::time::sleep};

use crate::{
    js::{self, AgentSocket},
    state::{Action, backoff_ms},
};

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

/// What the socket's worker tells.
enum Incoming {
    Text(String),
    Closed,
    Refused(String),
}

/// One socket: its worker, stopped when this is dropped, and what it tells.
struct Socket {
    worker: AgentSocket,
    incoming: UnboundedReceiver<Incoming>,
    _on: Closure<dyn FnMut(u32, JsValue, JsValue)>,
}

impl Socket {
    /// Starts the socket's worker; the browser's reason when it will not.
    fn open(url: &str) -> Result<Socket, String> {
        let (tx, incoming) = unbounded();
        let on = Closure::new(move |kind: u32, a: JsValue, b: JsValue| match kind {
            0 => {
                let (Some(bytes), Some(lens)) =
                    (a.dyn_ref::<Uint8Array>(), b.dyn_ref::<Uint32Array>())
                else {
                    return;
                };
                // One copy into the page's memory and one UTF-8 check for the whole batch
                // (one per message cost a call into JavaScript each: 6 % of a busy live page's
                // time). The worker wrote them with a TextEncoder, one after the other.
                let Ok(all) = String::from_utf8(bytes.to_vec()) else {
                    return;
                };
                let mut at = 0usize;
                for len in lens.to_vec() {
                    let end = at.saturating_add(len as usize);
                    // Each message is whole UTF-8, so its ends are character boundaries.
                    if let Some(text) = all.get(at..end) {
                        let _ = tx.unbounded_send(Incoming::Text(text.to_owned()));
                    }
                    at = end;
                }
            }
            1 => {
                let _ = tx.unbounded_send(Incoming::Closed);
            }
            _ => {
                let _ = tx.unbounded_send(Incoming::Refused(js::error_text(&a)));
            }
        });
        Ok(Socket {
            worker: js::agent_socket(url, &on).map_err(|e| js::error_text(&e))?,
            incoming,
            _on: on,
        })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.worker.stop();
    }
}

async fn run(url: String, dispatch: Callback<Action>, mut inbox: UnboundedReceiver<String>) {
    let mut attempt = 0u32;
    loop {
        dispatch.emit(Action::Connecting { attempt });
        let mut socket = match Socket::open(&url) {
            Ok(socket) => socket,
            Err(err) => {
                // The browser will not run the connection's worker here; retrying cannot help.
                dispatch.emit(Action::BadUrl(format!("cannot connect to {url}: {err}")));
                return;
            }
        };
        // Whatever was asked while disconnected is stale now.
        while inbox.try_recv().is_ok() {}
        // An agent says hello at once; a socket that stays silent (a handshake lost on the
        // way) is given up and opened again rather than waited on for ever.
        let mut silent = Box::pin(sleep(HELLO_WITHIN).fuse());
        let mut heard = false;
        loop {
            select! {
                () = silent => if !heard { break },
                came = socket.incoming.next() => match came {
                    Some(Incoming::Text(text)) => {
                        attempt = 0;
                        heard = true;
                        dispatch.emit(Action::Frame(text));
                    }
                    Some(Incoming::Refused(err)) => {
                        // The browser refused the URL itself, or will not run the worker:
                        // retrying cannot help.
                        dispatch.emit(Action::BadUrl(format!("cannot open {url}: {err}")));
                        return;
                    }
                    Some(Incoming::Closed) | None => break,
                },
                out = inbox.next() => match out {
                    Some(text) => socket.worker.send(&text),
                    None => return,
                },
            }
        }
        drop(socket);
        attempt = attempt.saturating_add(1);
        dispatch.emit(Action::Closed { attempt });
        sleep(Duration::from_millis(u64::from(backoff_ms(attempt)))).await;
    }
}
