//! End to end in headless Chromium over WebDriver: the real agent serves the real page, and
//! we check what the page shows. Needs `chromedriver`, `chromium` and a built page (`dist/`);
//! `scripts/test.sh` provides all three. Screenshots land in `target/test-artifacts/`.
//!
//! These tests are `#[ignore]`d so a bare `cargo test` on a machine without a browser stays
//! green; the test script runs them with `--ignored`, where a missing browser fails loudly.

mod common;

use std::{
    net::TcpListener,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::Agent;
use coreplay_shared::Topology;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver process on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        // Its own process group, so dropping the driver also ends the browser it started,
        // even when a test panics before closing its session.
        let child = Command::new(&bin)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} ({e}); run scripts/test.sh, which installs it")
            });
        let profile = std::env::temp_dir().join(format!("coreplay-chromium-{port}"));
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile,
        }
    }

    async fn client(&self) -> Client {
        let caps = json!({
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", self.profile.display()),
                ]
            }
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        };
        let start = Instant::now();
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                Err(e) if start.elapsed() < WAIT => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            // SAFETY: signalling the process group we created for chromedriver.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Evaluates `script` until it returns something other than `null`/`false`, or panics.
async fn wait_for(client: &Client, what: &str, script: &str) -> Value {
    let start = Instant::now();
    loop {
        let value = client.execute(script, vec![]).await.expect("script runs");
        if !value.is_null() && value != Value::Bool(false) {
            return value;
        }
        if start.elapsed() > WAIT {
            let status = client
                .execute(
                    "return document.querySelector('.status')?.innerText",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what}; status line: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const CONNECTED_PUS: &str = "
    if (!document.querySelector('[data-conn=connected]')) return null;
    const pus = Array.from(document.querySelectorAll('[data-pu]')).map(e => Number(e.dataset.pu));
    return pus.length ? pus : null;";

fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir.join(name)
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(artifact(name), png).expect("write screenshot");
}

fn page_built() {
    let index = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist/index.html");
    assert!(
        index.exists(),
        "{} is missing: build the page first (trunk build --release, or scripts/test.sh)",
        index.display()
    );
}

/// Opens the page on an agent and returns the OS indices of the hardware threads it draws.
async fn shown_pus(client: &Client, agent: &Agent, shot: &str) -> Vec<u32> {
    client.goto(&agent.page_url()).await.expect("page loads");
    let pus = wait_for(client, "the topology", CONNECTED_PUS).await;
    screenshot(client, shot).await;
    serde_json::from_value(pus).expect("indices")
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn page_shows_one_box_per_hardware_thread() {
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;

    let live = Agent::start(&[]);
    let (_, body) = live.get("/api/topology");
    let topology: Topology = serde_json::from_str(&body).expect("topology");
    let mut expected = topology.pu_os_indices();
    let mut shown = shown_pus(&client, &live, "topology-live.png").await;
    expected.sort_unstable();
    shown.sort_unstable();
    assert_eq!(shown, expected);

    let synthetic = Agent::start(&["--synthetic", "package:2 core:16 pu:2"]);
    let mut shown = shown_pus(&client, &synthetic, "topology-2x16x2.png").await;
    shown.sort_unstable();
    assert_eq!(shown, (0..64).collect::<Vec<u32>>());
    let counts = client
        .execute(
            "return document.querySelector('[data-testid=counts]').innerText",
            vec![],
        )
        .await
        .expect("counts");
    assert_eq!(counts, json!("2 packages · 32 cores · 64 hardware threads"));

    let big = Agent::start(&["--synthetic", "package:4 l3:1 core:32 l2:1 l1d:1 pu:2"]);
    let shown = shown_pus(&client, &big, "topology-256.png").await;
    assert_eq!(shown.len(), 256);
    // Legible at 256 threads: every thread box is at least 12 px wide and tall, and the text
    // in it is not clipped.
    let fits = client
        .execute(
            "return Array.from(document.querySelectorAll('[data-pu]')).every(e => {
                const r = e.getBoundingClientRect();
                return r.width >= 12 && r.height >= 12 && e.scrollWidth <= e.clientWidth + 1;
            })",
            vec![],
        )
        .await
        .expect("measure");
    assert_eq!(fits, json!(true));
    client.close().await.expect("close session");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn page_explains_unreachable_agents_and_bad_urls_and_recovers() {
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;
    let agent = Agent::start(&[]);

    // A port where nothing listens.
    let dead = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    client
        .goto(&format!("{}?agent=ws://{dead}/ws", agent.page_url()))
        .await
        .expect("page loads");
    let text = wait_for(
        &client,
        "the unreachable notice",
        "const s = document.querySelector('[data-conn=unreachable]'); return s && s.innerText",
    )
    .await;
    let text = text.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("not reachable") && text.contains("coreplay serve"),
        "{text}"
    );
    screenshot(&client, "status-unreachable.png").await;

    client
        .goto(&format!("{}?agent=javascript:alert(1)", agent.page_url()))
        .await
        .expect("page loads");
    let text = wait_for(
        &client,
        "the bad-URL notice",
        "const s = document.querySelector('[data-conn=bad-url]'); return s && s.innerText",
    )
    .await;
    assert!(
        text.as_str().unwrap_or_default().contains("ws://"),
        "{text}"
    );

    // An agent that appears later is found by the reconnect loop.
    let late = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    client
        .goto(&format!("{}?agent=ws://{late}/ws", agent.page_url()))
        .await
        .expect("page loads");
    wait_for(
        &client,
        "a failed attempt",
        "return !!document.querySelector('[data-conn=unreachable]')",
    )
    .await;
    // Killed on drop, even if the wait below panics.
    struct Late(std::process::Child);
    impl Drop for Late {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _late = Late(
        Command::new(common::BIN)
            // The page comes from the first agent, so this one must accept its origin.
            .args([
                "serve",
                "--listen",
                &late.to_string(),
                "--allow-origin",
                &format!("http://{}", agent.addr),
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("late agent starts"),
    );
    let late_agent = wait_for(&client, "the reconnect", CONNECTED_PUS).await;
    assert!(late_agent.as_array().is_some_and(|a| !a.is_empty()));
    client.close().await.expect("close session");
}

/// Opens the page on `agent` and waits until it is connected with its run controls shown.
async fn open_lab(client: &Client, agent: &Agent) {
    client.goto(&agent.page_url()).await.expect("page loads");
    wait_for(client, "the run controls", "return !!document.querySelector('[data-testid=run]') && !!document.querySelector('[data-conn=connected]')").await;
}

/// Picks `scenario` in the page's picker and waits for one of its parameters, `shown`.
async fn pick(client: &Client, scenario: &str, shown: &str) {
    client
        .execute(
            &format!(
                "const s = document.querySelector('[data-testid=scenario]');
                 s.value = '{scenario}'; s.dispatchEvent(new Event('change', {{bubbles: true}}));"
            ),
            vec![],
        )
        .await
        .expect("pick a scenario");
    wait_for(
        client,
        "the scenario's parameters",
        &format!("return !!document.querySelector('[data-param={shown}]')"),
    )
    .await;
}

/// Types parameter values into the page's inputs.
async fn set_params(client: &Client, values: &[(&str, &str)]) {
    for (name, value) in values {
        client
            .execute(
                &format!(
                    "const i = document.querySelector('[data-param={name}]');
                     i.value = '{value}'; i.dispatchEvent(new InputEvent('input', {{bubbles: true}}));"
                ),
                vec![],
            )
            .await
            .expect("set a parameter");
    }
}

/// Clicks Run.
async fn click_run(client: &Client) {
    client
        .execute(
            "document.querySelector('[data-testid=run]').click()",
            vec![],
        )
        .await
        .expect("click run");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_scenario_runs_from_the_page_and_its_summary_is_shown() {
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;
    let agent = Agent::start(&[]);
    open_lab(&client, &agent).await;

    // Choose gil, 3 threads; first a bad value, which the page explains without sending.
    pick(&client, "gil", "switch_interval_ms").await;
    set_params(&client, &[("threads", "0")]).await;
    click_run(&client).await;
    let problem = wait_for(
        &client,
        "the parameter problem",
        "const p = document.querySelector('.problem'); return p && p.innerText",
    )
    .await;
    assert!(
        problem.as_str().unwrap_or_default().contains("threads"),
        "{problem}"
    );

    set_params(&client, &[("threads", "3"), ("work", "600")]).await;
    click_run(&client).await;
    let text = wait_for(
        &client,
        "the summary",
        "const s = document.querySelector('[data-testid=summary]'); return s && s.innerText",
    )
    .await;
    let text = text.as_str().unwrap_or_default().to_string();
    assert!(text.contains("Summary: gil"), "{text}");
    assert!(text.contains("completed"), "{text}");
    assert!(text.contains("lock hand-overs"), "{text}");
    // Three worker threads are listed.
    let rows = client
        .execute("return Array.from(document.querySelectorAll('table.threads td:first-child')).map(td => td.innerText)", vec![])
        .await
        .expect("rows");
    let names: Vec<String> = serde_json::from_value(rows).expect("names");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("py-thread-")).count(),
        3,
        "{names:?}"
    );
    screenshot(&client, "run-gil-summary.png").await;
    client.close().await.expect("close session");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn the_event_loop_is_shown_for_an_async_run() {
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;
    let agent = Agent::start(&[]);
    open_lab(&client, &agent).await;
    pick(&client, "event-loop-blocked", "block_ms").await;
    set_params(
        &client,
        &[
            ("requests", "150"),
            ("latency_ms", "20"),
            ("block_ms", "60"),
        ],
    )
    .await;
    click_run(&client).await;
    wait_for(
        &client,
        "the summary",
        "return !!document.querySelector('[data-testid=summary]')",
    )
    .await;
    // Two loops of 150 requests plus a ticker each and one blocker: 303 futures resolved.
    let completed = wait_for(
        &client,
        "the completed count",
        "const c = document.querySelector('[data-testid=completed]'); return c && c.innerText",
    )
    .await;
    assert_eq!(completed, json!("303 futures resolved"));
    let variants = client
        .execute(
            "return document.querySelector('[data-testid=variants]').innerText",
            vec![],
        )
        .await
        .expect("variants");
    let variants = variants.as_str().unwrap_or_default().to_string();
    assert!(
        variants.contains("without the blocking task")
            && variants.contains("60 ms without awaiting"),
        "{variants}"
    );
    screenshot(&client, "event-loop-blocked.png").await;
    client.close().await.expect("close session");
}
