//! One WebSocket session: the hello, then request/answer until the client leaves.
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
use coreplay_shared::{ClientMsg, ErrorCode, Hello, PROTOCOL_VERSION, ServerMsg, decode_client};

use super::AppState;

/// Largest frame the WebSocket layer accepts at all. Messages between the protocol limit
/// ([`coreplay_shared::msg::MAX_CLIENT_MSG_BYTES`]) and this get a "too large" reply; beyond it
/// the connection is closed, so a hostile client cannot make the agent buffer much.
const MAX_FRAME_BYTES: usize = 1 << 20;

pub(super) async fn upgrade(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| session(socket, state))
}

async fn session(mut socket: WebSocket, state: Arc<AppState>) {
    let hello = ServerMsg::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        topology: state.topology.clone(),
    });
    if send(&mut socket, &hello).await.is_err() {
        return;
    }
    while let Some(frame) = socket.recv().await {
        let reply = match frame {
            Ok(Message::Text(text)) => match decode_client(text.as_str()) {
                Ok(msg) => handle(msg),
                Err(err) => ServerMsg::from_decode_error(&err),
            },
            Ok(Message::Binary(_)) => ServerMsg::Error {
                code: ErrorCode::Binary,
                message: "binary frames are not part of the protocol; send JSON text".into(),
            },
            // Pings are answered by the WebSocket layer itself.
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) => break,
            Err(err) => {
                tracing::debug!("websocket closed with an error: {err}");
                break;
            }
        };
        if send(&mut socket, &reply).await.is_err() {
            break;
        }
    }
}

fn handle(msg: ClientMsg) -> ServerMsg {
    match msg {
        ClientMsg::Ping { id } => ServerMsg::Pong { id },
    }
}

async fn send(socket: &mut WebSocket, msg: &ServerMsg) -> Result<(), axum::Error> {
    socket.send(Message::Text(msg.to_json().into())).await
}
