//! The real agent on loopback: hello, `/api/topology`, bad input over the WebSocket.

mod common;

use common::Agent;
use coreplay_shared::{ErrorCode, PROTOCOL_VERSION, ServerMsg, Topology, decode_server};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{connect_async, tungstenite::Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_msg(ws: &mut Ws) -> ServerMsg {
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("a message within 10 s")
        .expect("connection open")
        .expect("frame");
    match frame {
        Message::Text(text) => decode_server(text.as_str()).expect("valid server message"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn connect(agent: &Agent) -> (Ws, Topology) {
    let (mut ws, _) = connect_async(agent.ws_url()).await.expect("ws connects");
    match next_msg(&mut ws).await {
        ServerMsg::Hello(hello) => {
            assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
            assert_eq!(hello.agent_version, env!("CARGO_PKG_VERSION"));
            (ws, hello.topology)
        }
        other => panic!("first message is not a hello: {other:?}"),
    }
}

#[tokio::test]
async fn hello_topology_equals_api_topology() {
    let agent = Agent::start(&[]);
    let (_ws, topology) = connect(&agent).await;
    let (status, body) = agent.get("/api/topology");
    assert_eq!(status, 200);
    let api: Topology = serde_json::from_str(&body).expect("topology JSON");
    assert_eq!(api, topology);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    assert_eq!(topology.pu_count(), threads);
    assert!(topology.machine.source.is_live());
}

#[tokio::test]
async fn synthetic_topology_is_served() {
    let agent = Agent::start(&["--synthetic", "package:2 core:16 pu:2"]);
    let (_ws, topology) = connect(&agent).await;
    assert_eq!(topology.pu_count(), 64);
    assert_eq!(topology.pu_os_indices(), (0..64).collect::<Vec<u32>>());
}

#[tokio::test]
async fn xml_topology_is_served() {
    let xml = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/synthetic-2x8x2.xml"
    );
    let agent = Agent::start(&["--topology-xml", xml]);
    let (_ws, topology) = connect(&agent).await;
    assert_eq!(topology.package_count(), 2);
    assert_eq!(topology.core_count(), 16);
    assert_eq!(topology.pu_count(), 32);
}

#[tokio::test]
async fn bad_messages_get_error_replies_and_the_session_goes_on() {
    let agent = Agent::start(&[]);
    let (mut ws, _) = connect(&agent).await;
    let cases: Vec<(Message, ErrorCode)> = vec![
        (Message::text("not json"), ErrorCode::BadMessage),
        (Message::text(r#"{"type":"launch"}"#), ErrorCode::BadMessage),
        (
            Message::text(r#"{"type":"ping","id":"x"}"#),
            ErrorCode::BadMessage,
        ),
        (Message::text("x".repeat(100_000)), ErrorCode::TooLarge),
        (Message::binary(vec![0u8, 159, 146, 150]), ErrorCode::Binary),
    ];
    for (frame, expected) in cases {
        ws.send(frame).await.expect("send");
        match next_msg(&mut ws).await {
            ServerMsg::Error { code, message, .. } => {
                assert_eq!(code, expected, "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    ws.send(Message::text(r#"{"type":"ping","id":42}"#))
        .await
        .expect("send");
    assert_eq!(next_msg(&mut ws).await, ServerMsg::Pong { id: 42 });
}

#[tokio::test]
async fn a_huge_frame_closes_the_connection_without_harming_the_agent() {
    let agent = Agent::start(&[]);
    let (mut ws, _) = connect(&agent).await;
    // Past the WebSocket layer's own limit the connection is dropped, not buffered.
    let _ = ws.send(Message::text("x".repeat(4 << 20))).await;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection not closed");
    // The agent still serves others.
    let (_ws, topology) = connect(&agent).await;
    assert!(topology.pu_count() >= 1);
}

#[test]
fn the_page_or_its_build_hint_is_served() {
    let agent = Agent::start(&[]);
    let (status, body) = agent.get("/");
    match status {
        200 => assert!(body.contains("coreplay"), "{body}"),
        503 => assert!(body.contains("scripts/run.sh"), "{body}"),
        other => panic!("unexpected status {other}"),
    }
    let (status, _) = agent.get("/no-such-file.js");
    assert!(status == 404 || status == 503, "{status}");
}
