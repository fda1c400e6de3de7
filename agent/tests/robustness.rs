//! The agent under hostile pages, bad input, slow clients and faults, on loopback. Loops are
//! bounded and stop by themselves; figures are printed (run with `--nocapture` to see them).

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{Agent, BIN, children_of, task_count};
use coreplay_shared::{ErrorCode, ServerMsg, decode_server, summary::Outcome};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_msg(ws: &mut Ws) -> ServerMsg {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message within 30 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return decode_server(text.as_str()).expect("valid message");
        }
    }
}

async fn until(ws: &mut Ws, mut pred: impl FnMut(&ServerMsg) -> bool) -> ServerMsg {
    for _ in 0..100_000 {
        let m = next_msg(ws).await;
        if pred(&m) {
            return m;
        }
    }
    panic!("no matching message");
}

/// Opens the WebSocket with the given Origin (and Host) headers; returns the HTTP status on refusal.
async fn ws_with(agent: &Agent, origin: Option<&str>, host: Option<&str>) -> Result<Ws, u16> {
    let mut req = agent.ws_url().into_client_request().expect("request");
    if let Some(o) = origin {
        req.headers_mut()
            .insert("Origin", HeaderValue::from_str(o).expect("header"));
    }
    if let Some(h) = host {
        req.headers_mut()
            .insert("Host", HeaderValue::from_str(h).expect("header"));
    }
    match connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected failure: {e}"),
    }
}

#[tokio::test]
async fn forged_origins_and_hosts_are_refused() {
    let agent = Agent::start(&["--allow-origin", "http://127.0.0.1:8080"]);
    let own = format!("http://{}", agent.addr);
    assert!(
        ws_with(&agent, Some(&own), None).await.is_ok(),
        "the agent's own page"
    );
    assert!(
        ws_with(&agent, None, None).await.is_ok(),
        "non-browser clients"
    );
    assert!(
        ws_with(&agent, Some("http://127.0.0.1:8080"), None)
            .await
            .is_ok(),
        "--allow-origin"
    );
    for evil in [
        "http://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
        "https://localhost",
    ] {
        assert_eq!(
            ws_with(&agent, Some(evil), None).await.err(),
            Some(403),
            "{evil}"
        );
    }
    // DNS rebinding: the attacker's name resolves to 127.0.0.1, so Origin and Host agree.
    let port = agent.addr.port();
    let rebound = format!("evil.example:{port}");
    assert_eq!(
        ws_with(&agent, Some(&format!("http://{rebound}")), Some(&rebound))
            .await
            .err(),
        Some(403)
    );
    let mut s = TcpStream::connect(agent.addr).expect("connect");
    write!(
        s,
        "GET /api/topology HTTP/1.1\r\nHost: {rebound}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
}

#[test]
fn remote_listening_needs_a_flag_and_then_a_token() {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));

    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--allow-remote"])
        .env("XDG_DATA_HOME", common::test_data_home())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut line = String::new();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    let (addr, token) = line
        .strip_prefix("coreplay is serving on http://")
        .and_then(|r| r.split_once("/?token="))
        .unwrap_or_else(|| panic!("{line:?}"));
    let port = addr.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
    let get = |path: &str| {
        let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        resp
    };
    assert!(get("/api/topology").starts_with("HTTP/1.1 401"));
    assert!(
        get("/api/topology?token=00000000000000000000000000000000").starts_with("HTTP/1.1 401")
    );
    assert!(get(&format!("/api/topology?token={token}")).starts_with("HTTP/1.1 200"));
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn floods_are_rate_limited_and_the_client_stays_served() {
    let agent = Agent::start(&[]);
    let mut ws = ws_with(&agent, None, None).await.expect("connects");
    let _hello = next_msg(&mut ws).await;
    for id in 0..150 {
        ws.send(Message::text(format!(r#"{{"type":"ping","id":{id}}}"#)))
            .await
            .expect("send");
    }
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..150 {
        match next_msg(&mut ws).await {
            ServerMsg::Pong { .. } => pongs += 1,
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    println!("flood of 150 messages: {pongs} answered, {limited} refused by the rate limit");
    assert!(limited > 0 && pongs >= 40, "{pongs}/{limited}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.send(Message::text(r#"{"type":"ping","id":7}"#))
        .await
        .expect("send");
    assert_eq!(next_msg(&mut ws).await, ServerMsg::Pong { id: 7 });
}

#[tokio::test]
async fn the_last_client_leaving_stops_the_run_quickly() {
    let agent = Agent::start(&[]);
    let pid = agent.pid();
    let mut ws = ws_with(&agent, None, None).await.expect("connects");
    let _hello = next_msg(&mut ws).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let threads_before = task_count(pid);
    ws.send(Message::text(
        r#"{"type":"run","scenario":"process-pool","params":{"processes":2,"work":200000}}"#,
    ))
    .await
    .expect("send");
    until(&mut ws, |m| matches!(m, ServerMsg::Events { .. })).await;
    assert!(!children_of(pid).is_empty());
    drop(ws);
    let left = Instant::now();
    while (!children_of(pid).is_empty() || task_count(pid) > threads_before)
        && left.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = left.elapsed();
    println!("run stopped {took:?} after its only client disconnected");
    assert!(children_of(pid).is_empty(), "worker processes left behind");
    assert!(task_count(pid) <= threads_before, "threads left behind");
    // The next run starts cleanly.
    let mut ws = ws_with(&agent, None, None).await.expect("connects");
    let _hello = next_msg(&mut ws).await;
    ws.send(Message::text(
        r#"{"type":"run","scenario":"io-sequential","params":{"requests":3,"latency_ms":1}}"#,
    ))
    .await
    .expect("send");
    let ended = until(&mut ws, |m| matches!(m, ServerMsg::RunEnded { .. })).await;
    let ServerMsg::RunEnded { summary, .. } = ended else {
        unreachable!()
    };
    assert_eq!(summary.outcome, Outcome::Completed);
}

#[tokio::test]
async fn a_stalled_client_costs_bounded_memory_and_is_told_what_it_missed() {
    let agent = Agent::start(&[]);
    let pid = agent.pid();
    let mut stalled = ws_with(&agent, None, None).await.expect("connects");
    let _hello = next_msg(&mut stalled).await;
    let mut runner = ws_with(&agent, None, None).await.expect("connects");
    let _hello = next_msg(&mut runner).await;
    // Busy scenarios, repeated for well over the 64 batches a client may have queued (one per
    // 25 ms tick); the stalled client reads nothing meanwhile.
    let mut events = 0u64;
    for run in [
        r#"{"type":"run","scenario":"io-threads","params":{"threads":200,"requests":10000,"latency_ms":1}}"#,
        r#"{"type":"run","scenario":"gil","params":{"threads":16,"switch_interval_ms":1,"work":8000}}"#,
        r#"{"type":"run","scenario":"gil","params":{"threads":16,"switch_interval_ms":1,"work":8000}}"#,
        r#"{"type":"run","scenario":"gil","params":{"threads":16,"switch_interval_ms":1,"work":8000}}"#,
        r#"{"type":"run","scenario":"gil","params":{"threads":16,"switch_interval_ms":1,"work":8000}}"#,
    ] {
        runner.send(Message::text(run)).await.expect("send");
        let ended = until(&mut runner, |m| matches!(m, ServerMsg::RunEnded { .. })).await;
        if let ServerMsg::RunEnded { summary, .. } = ended {
            events += summary.events;
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    println!(
        "peak RSS of the agent with one stalled client over {events} events: {:.1} MiB",
        hwm_kib as f64 / 1024.0
    );
    assert!(hwm_kib > 0 && hwm_kib < 512 * 1024, "{hwm_kib} KiB");
    // When it reads again, it learns how much it missed.
    let mut dropped = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), stalled.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if let Ok(ServerMsg::Events { dropped: d, .. }) = decode_server(t.as_str()) {
                    dropped += d;
                }
            }
            _ => break,
        }
    }
    println!("the stalled client was told it missed {dropped} events");
    assert!(dropped > 0);
}

#[tokio::test]
async fn many_clients_at_once_all_get_the_hello() {
    let agent = Agent::start(&[]);
    let mut clients = Vec::new();
    for _ in 0..50 {
        let mut ws = ws_with(&agent, None, None).await.expect("connects");
        assert!(matches!(next_msg(&mut ws).await, ServerMsg::Hello(_)));
        clients.push(ws);
    }
    println!("clients held at once: {}", clients.len());
}

#[tokio::test]
async fn a_killed_worker_process_fails_the_run_instead_of_hanging() {
    let agent = Agent::start(&[]);
    let pid = agent.pid();
    let mut ws = ws_with(&agent, None, None).await.expect("connects");
    let _hello = next_msg(&mut ws).await;
    ws.send(Message::text(
        r#"{"type":"run","scenario":"process-pool","params":{"processes":2,"work":200000}}"#,
    ))
    .await
    .expect("send");
    until(&mut ws, |m| matches!(m, ServerMsg::Events { .. })).await;
    let workers: Vec<u32> = children_of(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/cmdline"))
                .is_ok_and(|c| c.contains("__worker"))
        })
        .collect();
    assert!(!workers.is_empty());
    // SAFETY: killing a child process of the agent under test.
    unsafe { libc::kill(workers[0] as i32, libc::SIGKILL) };
    let ended = until(&mut ws, |m| matches!(m, ServerMsg::RunEnded { .. })).await;
    let ServerMsg::RunEnded { summary, .. } = ended else {
        unreachable!()
    };
    match &summary.outcome {
        Outcome::Failed { message } => assert!(message.contains("signal 9"), "{message}"),
        other => panic!("expected a failed run, got {other:?}"),
    }
    assert!(children_of(pid).is_empty());
}

#[tokio::test]
async fn sigterm_stops_the_run_reaps_children_and_exits() {
    let mut agent = Agent::start(&[]);
    let pid = agent.pid();
    let mut ws = ws_with(&agent, None, None).await.expect("connects");
    let _hello = next_msg(&mut ws).await;
    ws.send(Message::text(
        r#"{"type":"run","scenario":"process-pool","params":{"processes":2,"work":200000}}"#,
    ))
    .await
    .expect("send");
    until(&mut ws, |m| matches!(m, ServerMsg::Events { .. })).await;
    let workers = children_of(pid);
    assert!(!workers.is_empty());
    // SAFETY: signalling the agent under test.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let exited = agent.wait_exit(Duration::from_secs(10));
    assert_eq!(exited, Some(0), "clean exit");
    for w in workers {
        assert!(
            !std::path::Path::new(&format!("/proc/{w}")).exists(),
            "worker {w} left behind"
        );
    }
}
