//! A chromedriver-driven headless Chromium for the browser tests and the page benchmark, and
//! the steps they share on the page's run panel.
#![allow(dead_code)] // Each binary that includes it uses a different subset.

use std::{
    net::TcpListener,
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver process on a free port, killed on drop.
pub struct Driver {
    child: Child,
    url: String,
    profile: PathBuf,
}

impl Driver {
    pub fn start() -> Driver {
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

    pub async fn client(&self) -> Client {
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
pub async fn wait_for(client: &Client, what: &str, script: &str) -> Value {
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

/// Keeps what the page's download buttons write instead of saving it to disk: the blobs in
/// `window.__saved`, in order, and the last file name offered in `window.__savedName`.
pub async fn hook_downloads(client: &Client) {
    client
        .execute(
            "window.__saved = [];
             const make = URL.createObjectURL.bind(URL);
             URL.createObjectURL = (blob) => { window.__saved.push(blob); return make(blob); };
             HTMLAnchorElement.prototype.click = function () { window.__savedName = this.download; };",
            vec![],
        )
        .await
        .expect("hook downloads");
}

/// Picks `scenario` in the page's picker and waits for one of its parameters, `shown`.
pub async fn pick(client: &Client, scenario: &str, shown: &str) {
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
pub async fn set_params(client: &Client, values: &[(&str, &str)]) {
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
pub async fn click_run(client: &Client) {
    client
        .execute(
            "document.querySelector('[data-testid=run]').click()",
            vec![],
        )
        .await
        .expect("click run");
}

/// Moves the page's playback cursor to `t_ns` with the page's own `postMessage` command (the
/// one an embedding page sends); the caller waits for the clock to show it.
pub async fn seek(client: &Client, t_ns: u64) {
    client
        .execute(
            &format!("window.postMessage({{coreplay: 'seek', t: '{t_ns}ns'}}, '*')"),
            vec![],
        )
        .await
        .expect("seek");
}

/// Records the next run over a WebSocket client of its own (at `ws_url`), independently of
/// the page: every event, and the summary it ends with.
pub fn record_next_run(
    ws_url: String,
) -> tokio::task::JoinHandle<(
    Vec<coreplay_shared::event::Event>,
    coreplay_shared::summary::Summary,
)> {
    let timed = record_next_run_timed(ws_url, Default::default());
    tokio::spawn(async move {
        let (events, summary, _) = timed.await.expect("recorder");
        (events, summary)
    })
}

/// What [`record_next_run_timed`] recorded: every event, the summary, and when each event
/// message came with its size in bytes.
pub type TimedRun = (
    Vec<coreplay_shared::event::Event>,
    coreplay_shared::summary::Summary,
    Vec<(std::time::Instant, usize)>,
);

/// [`record_next_run`], also noting when each event message came and its size; `so_far` counts
/// the bytes of event messages as they come, for a test that paces itself by the stream.
pub fn record_next_run_timed(
    ws_url: String,
    so_far: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<TimedRun> {
    use futures_util::StreamExt;
    use tokio_tungstenite::{connect_async, tungstenite::Message};
    tokio::spawn(async move {
        let (mut ws, _) = connect_async(ws_url).await.expect("ws connects");
        let (mut events, mut came) = (Vec::new(), Vec::new());
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            match coreplay_shared::decode_server(&text) {
                Ok(coreplay_shared::ServerMsg::Events {
                    events: batch,
                    dropped,
                    ..
                }) => {
                    // What this client records is what the run streamed: all of it.
                    assert_eq!(
                        dropped, 0,
                        "the agent dropped events for the test's own client"
                    );
                    came.push((std::time::Instant::now(), text.len()));
                    so_far.fetch_add(text.len(), std::sync::atomic::Ordering::Relaxed);
                    events.extend(batch)
                }
                Ok(coreplay_shared::ServerMsg::RunEnded { summary, .. }) => {
                    return (events, *summary, came);
                }
                _ => {}
            }
        }
        panic!("the run never ended");
    })
}
