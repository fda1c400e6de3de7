//! The real agent on loopback: hello, `/api/topology`, bad input over the WebSocket.

mod common;

use common::{Agent, children_of, task_count};
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
    let api: Topology = coreplay_shared::json::from_str(&body).expect("topology JSON");
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

async fn send_json(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_string()))
        .await
        .expect("send");
}

/// Reads until `pred` matches, returning everything read (bounded: 60 s).
async fn read_until(ws: &mut Ws, mut pred: impl FnMut(&ServerMsg) -> bool) -> Vec<ServerMsg> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; saw {} messages",
            seen.len()
        );
        let msg = next_msg(ws).await;
        let done = pred(&msg);
        seen.push(msg);
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn a_run_streams_to_every_client_and_refuses_a_second_one() {
    let agent = Agent::start(&[]);
    let (mut runner, _) = connect(&agent).await;
    let (mut watcher, _) = connect(&agent).await;
    send_json(
        &mut runner,
        r#"{"type":"run","scenario":"gil","params":{"threads":3,"work":400}}"#,
    )
    .await;
    let first = next_msg(&mut runner).await;
    let ServerMsg::RunStarted {
        run, yours: true, ..
    } = first
    else {
        panic!("expected run_started, got {first:?}")
    };
    // The watcher sees the same run, not as its own, and is refused a second one.
    let msgs = read_until(&mut watcher, |m| matches!(m, ServerMsg::RunStarted { .. })).await;
    assert!(
        matches!(msgs.last(), Some(ServerMsg::RunStarted { yours: false, run: r, .. }) if *r == run)
    );
    send_json(
        &mut watcher,
        r#"{"type":"run","scenario":"parallel-compute"}"#,
    )
    .await;
    let msgs = read_until(&mut watcher, |m| matches!(m, ServerMsg::Error { .. })).await;
    assert!(matches!(
        msgs.last(),
        Some(ServerMsg::Error {
            code: ErrorCode::Busy,
            ..
        })
    ));
    for ws in [&mut runner, &mut watcher] {
        let msgs = read_until(ws, |m| matches!(m, ServerMsg::RunEnded { .. })).await;
        let events: usize = msgs
            .iter()
            .map(|m| match m {
                ServerMsg::Events { run: r, events, .. } if *r == run => events.len(),
                _ => 0,
            })
            .sum();
        let Some(ServerMsg::RunEnded { summary, .. }) = msgs.last() else {
            panic!("no summary")
        };
        assert_eq!(
            summary.outcome,
            coreplay_shared::summary::Outcome::Completed
        );
        assert_eq!(
            events as u64, summary.events,
            "every event reached every client"
        );
        assert_eq!(summary.threads.len(), 3);
    }
}

#[tokio::test]
async fn bad_run_requests_name_the_field() {
    let agent = Agent::start(&[]);
    let (mut ws, _) = connect(&agent).await;
    let cases = [
        (
            r#"{"type":"run","scenario":"gil","params":{"threads":0}}"#,
            ErrorCode::BadParam,
            "threads",
        ),
        (
            r#"{"type":"run","scenario":"gil","params":{"latency_ms":3}}"#,
            ErrorCode::BadParam,
            "latency_ms",
        ),
        (
            r#"{"type":"run","scenario":"gil","params":{"bogus":3}}"#,
            ErrorCode::BadMessage,
            "bogus",
        ),
        (
            r#"{"type":"run","scenario":"fork-bomb"}"#,
            ErrorCode::BadMessage,
            "fork-bomb",
        ),
        (r#"{"type":"stop"}"#, ErrorCode::NoRun, "no run"),
    ];
    for (text, code, needle) in cases {
        send_json(&mut ws, text).await;
        match next_msg(&mut ws).await {
            ServerMsg::Error {
                code: c,
                message,
                field,
            } => {
                assert_eq!(c, code, "{text}: {message}");
                assert!(
                    message.contains(needle) || field.as_deref() == Some(needle),
                    "{text}: {message}"
                );
            }
            other => panic!("{text}: expected an error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn synthetic_topologies_cannot_run() {
    let agent = Agent::start(&["--synthetic", "package:2 core:16 pu:2"]);
    let (mut ws, _) = connect(&agent).await;
    send_json(&mut ws, r#"{"type":"run","scenario":"gil"}"#).await;
    assert!(matches!(
        next_msg(&mut ws).await,
        ServerMsg::Error {
            code: ErrorCode::CannotRun,
            ..
        }
    ));
}

#[tokio::test]
async fn stop_mid_run_leaves_no_thread_or_process_behind() {
    let agent = Agent::start(&[]);
    let pid = agent.pid();
    let (mut ws, _) = connect(&agent).await;
    // Let the agent settle, then count its threads.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let threads_before = task_count(pid);
    for run in [
        r#"{"type":"run","scenario":"process-pool","params":{"processes":3,"work":200000}}"#,
        r#"{"type":"run","scenario":"oversubscribed","params":{"threads":200,"work":200000}}"#,
        r#"{"type":"run","scenario":"io-threads","params":{"threads":50,"requests":10000,"latency_ms":1000}}"#,
    ] {
        send_json(&mut ws, run).await;
        read_until(&mut ws, |m| matches!(m, ServerMsg::Events { .. })).await;
        let stopped_at = std::time::Instant::now();
        send_json(&mut ws, r#"{"type":"stop"}"#).await;
        let msgs = read_until(&mut ws, |m| matches!(m, ServerMsg::RunEnded { .. })).await;
        let Some(ServerMsg::RunEnded { summary, .. }) = msgs.last() else {
            unreachable!()
        };
        assert_eq!(
            summary.outcome,
            coreplay_shared::summary::Outcome::Stopped,
            "{run}"
        );
        eprintln!("{run}: stopped in {:?}", stopped_at.elapsed());
        // Threads and children are gone once the run has ended (allow a moment for the
        // kernel to reap exiting threads).
        let mut settled = false;
        for _ in 0..100 {
            if task_count(pid) <= threads_before && children_of(pid).is_empty() {
                settled = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            settled,
            "{run}: {} threads (was {threads_before}), children {:?}",
            task_count(pid),
            children_of(pid)
        );
    }
}

#[tokio::test]
async fn a_client_joining_mid_run_is_told_about_it_and_follows_it() {
    let agent = Agent::start(&[]);
    let (mut runner, _) = connect(&agent).await;
    send_json(
        &mut runner,
        r#"{"type":"run","scenario":"gil","params":{"threads":3,"work":3000}}"#,
    )
    .await;
    read_until(&mut runner, |m| matches!(m, ServerMsg::Events { .. })).await;
    let (mut late, _) = connect(&agent).await;
    let first = next_msg(&mut late).await;
    let ServerMsg::RunStarted {
        yours: false, run, ..
    } = first
    else {
        panic!("expected the ongoing run first, got {first:?}")
    };
    let msgs = read_until(&mut late, |m| matches!(m, ServerMsg::RunEnded { .. })).await;
    assert!(matches!(msgs.last(), Some(ServerMsg::RunEnded { run: r, .. }) if *r == run));
}

/// Runs `gil` briefly on `agent` and returns the name it was kept under and its summary.
async fn a_kept_run(agent: &Agent) -> (Option<String>, coreplay_shared::summary::Summary) {
    let (mut ws, _) = connect(agent).await;
    send_json(
        &mut ws,
        r#"{"type":"run","scenario":"gil","params":{"threads":2,"work":200}}"#,
    )
    .await;
    let msgs = read_until(&mut ws, |m| matches!(m, ServerMsg::RunEnded { .. })).await;
    match msgs.into_iter().last() {
        Some(ServerMsg::RunEnded { saved, summary, .. }) => (saved, *summary),
        other => panic!("no end: {other:?}"),
    }
}

/// A live run that ends is kept as a trace file in the served folder and announced with its
/// name, so the page can embed it (`?trace=traces/NAME`): in `--traces DIR`, or else in the
/// agent's own folder under `XDG_DATA_HOME`.
#[tokio::test]
async fn a_live_run_is_kept_and_served_for_embedding() {
    let dir = std::env::temp_dir().join(format!("coreplay-kept-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let agent = Agent::start(&["--traces", dir.to_str().expect("utf-8")]);
    let (saved, summary) = a_kept_run(&agent).await;
    let name = saved.expect("the run was kept");
    assert!(
        name.starts_with("gil-") && name.ends_with(".coreplay.gz"),
        "{name}"
    );
    let (status, bytes) = agent.get_bytes(&format!("/traces/{name}"));
    assert_eq!(status, 200, "served at once");
    let trace = coreplay_agent::record::read_from(bytes.as_slice(), &name).expect("a trace file");
    assert_eq!(
        trace.events.len() as u64,
        summary.events,
        "every event kept"
    );
    assert_eq!(trace.summary, summary, "the summary the pages got");
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(kept.len(), 1, "one file, no leftovers: {kept:?}");
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);

    // Without --traces: the agent's own folder.
    let agent = Agent::start(&[]);
    let (saved, _) = a_kept_run(&agent).await;
    let name = saved.expect("kept in the default folder");
    let own = common::test_data_home().join("coreplay/runs").join(&name);
    assert!(own.is_file(), "{}", own.display());
    assert_eq!(agent.get_bytes(&format!("/traces/{name}")).0, 200);
}
