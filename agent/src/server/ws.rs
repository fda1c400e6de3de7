//! One WebSocket session: the hello, then requests from the client and everything the hub
//! queues for it (run events of whichever client started the run), until the client leaves.
//!
//! Everything a client sends is untrusted: text frames are size-checked and decoded with
//! [`coreplay_shared::decode_client`]; anything that fails gets an error reply naming what was
//! wrong, and the session goes on. Frames beyond [`MAX_FRAME_BYTES`] are refused by the
//! WebSocket layer itself before they are buffered.

use std::sync::Arc;

use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{Message, WebSocket},
    },
    response::Response,
};
use coreplay_shared::{
    ClientMsg, ErrorCode, Hello, PROTOCOL_VERSION, ServerMsg, decode_client, scenario,
};

use super::{AppState, hub::Hub};

/// Largest frame the WebSocket layer accepts at all. Messages between the protocol limit
/// ([`coreplay_shared::msg::MAX_CLIENT_MSG_BYTES`]) and this get a "too large" reply; beyond it
/// the connection is closed, so a hostile client cannot make the agent buffer much.
const MAX_FRAME_BYTES: usize = 1 << 20;

pub(super) async fn upgrade(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| session(socket, state))
}

/// Messages a client may send per second on average…
const RATE_PER_SEC: f64 = 20.0;
/// …and in a burst.
const RATE_BURST: f64 = 40.0;
/// Messages over the limit after which the connection is closed.
const RATE_STRIKES: u32 = 200;

/// A token bucket: the per-client message rate limit.
#[derive(Debug)]
struct RateLimit {
    tokens: f64,
    last: std::time::Instant,
    strikes: u32,
}

impl RateLimit {
    fn new() -> RateLimit {
        RateLimit {
            tokens: RATE_BURST,
            last: std::time::Instant::now(),
            strikes: 0,
        }
    }

    /// Whether one more message is allowed now.
    fn allow(&mut self) -> bool {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * RATE_PER_SEC;
        self.tokens = (self.tokens + refill).min(RATE_BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}

/// Leaves the hub when the session ends, however it ends.
struct Membership<'a> {
    hub: &'a Hub,
    id: u64,
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        self.hub.leave(self.id);
    }
}

async fn session(mut socket: WebSocket, state: Arc<AppState>) {
    let topology = state.topology.clone();
    let pus = u32::try_from(topology.pu_count()).unwrap_or(u32::MAX);
    let hello = ServerMsg::Hello(Box::new(Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        can_run: state.can_run,
        scenarios: scenario::catalog(pus),
        fidelity: state.hub.fidelity(),
        fidelity_note: state.fidelity_note.clone(),
        watch_programs: if state.can_run {
            state.hub.watch_programs().to_vec()
        } else {
            Vec::new()
        },
        topology,
    }));
    if send(&mut socket, &hello.to_json()).await.is_err() {
        return;
    }
    let (id, queue) = state.hub.join();
    let _membership = Membership {
        hub: &state.hub,
        id,
    };
    let mut rate = RateLimit::new();
    loop {
        tokio::select! {
            outgoing = queue.next() => {
                let Some(text) = outgoing else { break };
                if send(&mut socket, &text).await.is_err() {
                    break;
                }
            }
            frame = socket.recv() => {
                let counted = matches!(frame, Some(Ok(Message::Text(_) | Message::Binary(_))));
                if counted && !rate.allow() {
                    if rate.strikes > RATE_STRIKES {
                        tracing::warn!("closing a client that ignored the rate limit");
                        break;
                    }
                    let limited = ServerMsg::error(
                        ErrorCode::RateLimited,
                        format!("rate limit: at most {RATE_PER_SEC} messages per second (bursts of {RATE_BURST}); this one was ignored"),
                    );
                    if send(&mut socket, &limited.to_json()).await.is_err() {
                        break;
                    }
                    continue;
                }
                let reply = match frame {
                    Some(Ok(Message::Text(text))) => match decode_client(text.as_str()) {
                        Ok(msg) => handle(&state, id, msg),
                        Err(err) => Some(ServerMsg::from_decode_error(&err)),
                    },
                    Some(Ok(Message::Binary(_))) => Some(ServerMsg::error(
                        ErrorCode::Binary,
                        "binary frames are not part of the protocol; send JSON text",
                    )),
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(err)) => {
                        tracing::debug!("websocket closed with an error: {err}");
                        break;
                    }
                };
                if let Some(reply) = reply
                    && send(&mut socket, &reply.to_json()).await.is_err()
                {
                    break;
                }
            }
        }
    }
}

fn handle(state: &Arc<AppState>, client: u64, msg: ClientMsg) -> Option<ServerMsg> {
    match msg {
        ClientMsg::Ping { id } => Some(ServerMsg::Pong { id }),
        ClientMsg::Run { scenario, params } => {
            if !state.can_run {
                return Some(ServerMsg::error(
                    ErrorCode::CannotRun,
                    "this agent shows a topology that is not the machine it runs on (--synthetic \
                     or --topology-xml); start it without those to run scenarios",
                ));
            }
            // Success is announced to everyone through the hub (run_started).
            state
                .hub
                .start(client, scenario, &params)
                .err()
                .map(|r| *r.0)
        }
        ClientMsg::Watch { program } => {
            if !state.can_run {
                return Some(ServerMsg::error(
                    ErrorCode::CannotRun,
                    "this agent shows a topology that is not the machine it runs on (--synthetic \
                     or --topology-xml); start it without those to watch programs",
                ));
            }
            state.hub.start_watch(client, &program).err().map(|r| *r.0)
        }
        ClientMsg::Stop => state.hub.stop().err().map(|r| *r.0),
    }
}

async fn send(socket: &mut WebSocket, text: &str) -> Result<(), axum::Error> {
    socket.send(Message::Text(text.into())).await
}
