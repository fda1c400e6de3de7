//! Replay without an agent and embedding, end to end in headless Chromium over WebDriver:
//! the built page (`dist/`) on a plain static file server started here (no agent anywhere),
//! every gallery trace replayed, the examples in `examples/embed/` opened for real (the plain
//! page steering the iframe with `postMessage`, the slides' and notebook's iframe addresses),
//! and the embed parameters. Screenshots land in `target/test-artifacts/`.
//!
//! The file server adds one script at the top of every HTML page it serves: it records
//! uncaught errors, unhandled promise rejections, `console.error` calls and `alert`s into
//! `window.__coreplayErrors`, which the tests require to stay empty (WebDriver's own log
//! endpoint is not part of the W3C protocol fantoccini speaks).
//!
//! Browser tests are `#[ignore]`d like `browser.rs`; `scripts/test.sh` runs them with
//! `cargo test -p coreplay --test embed -- --ignored --test-threads=1`.
//! `examples_are_well_formed` needs no browser and runs in every `cargo test`.

mod common;
#[path = "common/driver.rs"]
mod driver;
#[path = "common/static_server.rs"]
mod static_server;

use std::{
    collections::BTreeSet,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::Agent;
use driver::{Driver, hook_downloads, seek, wait_for};
use fantoccini::{Client, Locator};
use serde_json::Value;
use static_server::{StaticServer, errors};

/// Where the examples' iframes point by default (a local `coreplay serve`).
const DEFAULT_BASE: &str = "http://127.0.0.1:7878/";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn artifact(name: &str) -> PathBuf {
    let dir = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir.join(name)
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(artifact(name), png).expect("write screenshot");
}

fn page_built() {
    let index = repo().join("dist/index.html");
    assert!(
        index.exists(),
        "{} is missing: build the page first (trunk build --release, or scripts/test.sh)",
        index.display()
    );
}

/// The gallery the static build ships: `dist/gallery/index.json`.
fn gallery() -> Vec<Value> {
    let path = repo().join("dist/gallery/index.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the page build copies gallery/)", path.display()));
    let list: Vec<Value> = serde_json::from_str(&text).expect("gallery index is JSON");
    assert!(!list.is_empty(), "the gallery is empty");
    list
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name]
        .as_str()
        .unwrap_or_else(|| panic!("gallery entry without {name}: {entry}"))
}

/// `python3 -m http.server` on dist/: a stock static server, untouched pages.
struct PythonServer {
    child: Child,
    port: u16,
}

impl PythonServer {
    fn start(root: &Path) -> PythonServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("-d")
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 starts (it is needed by the export tests too)");
        let server = PythonServer { child, port };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "python3 -m http.server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Page probes.

/// What a page with a recorded run shows, once it shows it (`None` while loading).
const RECORDED_SHOWN: &str = "
    const warn = document.querySelector('.status .warn, .problem');
    if (warn) return { failed: warn.innerText };
    const shown = document.querySelector('.now-showing[data-load]');
    if (!shown) return null;
    const canvas = document.querySelector('[data-testid=timeline] canvas');
    return {
        load: JSON.parse(shown.dataset.load),
        pus: document.querySelectorAll('[data-testid=cores] .pu.live').length,
        status: document.querySelector('.status')?.innerText ?? '',
        conn: document.querySelector('.status')?.dataset.conn ?? '',
        from: document.querySelector('[data-testid=recorded-from]')?.innerText ?? '',
        canvas: canvas ? [canvas.clientWidth, canvas.clientHeight] : null,
    };";

async fn alerts(client: &Client) -> Vec<String> {
    let v = client
        .execute(
            "return Array.from(document.querySelectorAll('[role=alert]')).map(e => e.innerText)",
            vec![],
        )
        .await
        .expect("read alerts");
    serde_json::from_value(v).unwrap_or_default()
}

/// The player's clock, ns (in the current frame).
async fn clock(client: &Client) -> u64 {
    wait_for(
        client,
        "the clock",
        "const c = document.querySelector('[data-testid=clock]'); return c ? Number(c.dataset.t) : null",
    )
    .await
    .as_u64()
    .expect("clock is a number")
}

/// Waits until the clock (in the current frame) is past `t`; returns it.
async fn clock_past(client: &Client, what: &str, t: u64) -> u64 {
    wait_for(
        client,
        what,
        &format!(
            "const c = document.querySelector('[data-testid=clock]');
             const t = c ? Number(c.dataset.t) : 0; return t > {t} ? t : null"
        ),
    )
    .await
    .as_u64()
    .expect("clock is a number")
}

/// Waits until the clock (in the current frame) reads exactly `t`.
async fn clock_at(client: &Client, what: &str, t: u64) {
    wait_for(
        client,
        what,
        &format!(
            "const c = document.querySelector('[data-testid=clock]');
             return !!c && Number(c.dataset.t) === {t}"
        ),
    )
    .await;
}

async fn present(client: &Client, selector: &str) -> bool {
    client
        .execute(
            &format!("return !!document.querySelector({selector:?})"),
            vec![],
        )
        .await
        .expect("query")
        == Value::Bool(true)
}

// ---------------------------------------------------------------------------------------------
// (a) Static hosting without an agent.

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn every_gallery_trace_replays_from_a_static_host_without_an_agent() {
    page_built();
    let entries = gallery();
    let server = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;

    for entry in &entries {
        let file = field(entry, "file");
        let name = file.trim_end_matches(".coreplay.gz");
        client
            .goto(&format!("{}?trace=gallery/{file}", server.url()))
            .await
            .expect("page loads");
        let shown = wait_for(&client, &format!("{file} to show"), RECORDED_SHOWN).await;
        assert!(shown.get("failed").is_none(), "{file}: {shown}");
        assert!(
            shown["pus"].as_u64().unwrap_or(0) > 0,
            "{file}: no cores drawn: {shown}"
        );
        assert_eq!(shown["conn"], "offline", "{file}: {shown}");
        let status = shown["status"].as_str().unwrap_or_default();
        assert!(
            status.contains("No agent"),
            "{file}: status line {status:?}"
        );
        assert_eq!(
            shown["load"]["events"].as_u64(),
            entry["events"].as_u64(),
            "{file}: events loaded vs the gallery index"
        );
        let from = shown["from"].as_str().unwrap_or_default();
        assert!(
            from.contains("recorded on") && from.contains(field(entry, "machine")),
            "{file}: the run must be labelled with its machine: {from:?} vs {entry}"
        );
        let canvas = &shown["canvas"];
        assert!(
            canvas[0].as_u64().unwrap_or(0) > 0 && canvas[1].as_u64().unwrap_or(0) > 0,
            "{file}: timeline canvas {canvas}"
        );
        // Playing it moves the clock and keeps the page whole.
        let t0 = clock(&client).await;
        client
            .find(Locator::Css("[data-testid=play]"))
            .await
            .expect("play button")
            .click()
            .await
            .expect("click play");
        clock_past(&client, &format!("{file} to play"), t0).await;
        assert_eq!(alerts(&client).await, Vec::<String>::new(), "{file}");
        assert_eq!(errors(&client).await, Vec::<String>::new(), "{file}");
        screenshot(&client, &format!("gallery-{name}.png")).await;
    }

    // With a trace named, the page never looked for an agent.
    let asked = server.requests();
    assert!(
        !asked
            .iter()
            .any(|r| r.starts_with("/ws") || r.starts_with("/api/")),
        "asked a static host for an agent's endpoints: {asked:?}"
    );

    // The lab lists the gallery, and a click opens a run.
    client
        .goto(&format!("{}?lab", server.url()))
        .await
        .expect("page loads");
    let buttons = wait_for(
        &client,
        "the gallery list",
        &format!(
            "const b = Array.from(document.querySelectorAll('[data-testid=gallery] [data-gallery]'));
             return b.length >= {} ? b.map(e => e.dataset.gallery) : null",
            entries.len()
        ),
    )
    .await;
    let listed: Vec<String> = serde_json::from_value(buttons).expect("names");
    let expected: Vec<String> = entries
        .iter()
        .map(|e| field(e, "file").to_string())
        .collect();
    assert_eq!(listed, expected);
    let pick = entries.last().expect("non-empty");
    client
        .find(Locator::Css(&format!(
            "[data-gallery=\"{}\"]",
            field(pick, "file")
        )))
        .await
        .expect("gallery button")
        .click()
        .await
        .expect("click");
    wait_for(
        &client,
        "the picked gallery run",
        &format!(
            "const f = document.querySelector('[data-testid=recorded-from]');
             return !!f && f.innerText.includes({:?})",
            field(pick, "title")
        ),
    )
    .await;
    assert_eq!(errors(&client).await, Vec::<String>::new());

    // The "open trace" file picker reads a file from disk.
    let pick = entries.first().expect("non-empty");
    let path = repo()
        .join("dist/gallery")
        .join(field(pick, "file"))
        .canonicalize()
        .expect("gallery file");
    client
        .find(Locator::Css("[data-testid=open-trace]"))
        .await
        .expect("file picker")
        .send_keys(&path.display().to_string())
        .await
        .expect("pick the file");
    wait_for(
        &client,
        "the picked file",
        &format!(
            "const f = document.querySelector('[data-testid=recorded-from]');
             return !!f && f.innerText.startsWith('from ' + {:?})",
            field(pick, "file")
        ),
    )
    .await;
    assert_eq!(errors(&client).await, Vec::<String>::new());
    client.close().await.expect("close session");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_stock_static_server_serves_the_page_and_a_trace() {
    page_built();
    let server = PythonServer::start(&repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .goto(&format!(
            "http://127.0.0.1:{}/?trace=gallery/gil.coreplay.gz",
            server.port
        ))
        .await
        .expect("page loads");
    let shown = wait_for(&client, "the gil trace", RECORDED_SHOWN).await;
    assert!(shown.get("failed").is_none(), "{shown}");
    assert!(shown["pus"].as_u64().unwrap_or(0) > 0, "{shown}");
    assert_eq!(shown["conn"], "offline", "{shown}");
    assert_eq!(alerts(&client).await, Vec::<String>::new());
    client.close().await.expect("close session");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn the_theme_button_switches_the_page_and_redraws_the_timeline() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .goto(&format!("{}/?trace=gallery/gil.coreplay.gz", site.url()))
        .await
        .expect("page loads");
    let shown = wait_for(&client, "the gil trace", RECORDED_SHOWN).await;
    assert!(shown.get("failed").is_none(), "{shown}");
    // The canvas draws its own labels and axis, so it must be redrawn in each theme.
    const THEMES: &str = "const c = document.querySelector('[data-testid=timeline] canvas');
        return c && c.dataset.drawnTheme && [document.documentElement.dataset.theme, c.dataset.drawnTheme]";
    let before = wait_for(&client, "the timeline drawn", THEMES).await;
    assert_eq!(before[0], before[1], "{before}");
    client
        .execute("document.querySelector('button.theme').click()", vec![])
        .await
        .expect("click the theme button");
    let other = if before[0] == "dark" { "light" } else { "dark" };
    let after = wait_for(
        &client,
        "the other theme, drawn",
        &format!(
            "const c = document.querySelector('[data-testid=timeline] canvas');
             return document.documentElement.dataset.theme === '{other}' && c.dataset.drawnTheme === '{other}'"
        ),
    )
    .await;
    assert_eq!(after, Value::Bool(true));
    client
        .find(Locator::Css("[data-testid=timeline]"))
        .await
        .expect("timeline")
        .screenshot()
        .await
        .map(|png| std::fs::write(artifact(&format!("timeline-{other}.png")), png))
        .expect("timeline screenshot")
        .expect("write screenshot");
    client.close().await.expect("close session");
}

/// Drops a file on the page as a user dragging it in would: `arguments[0]` is a URL to fetch or
/// the index of a blob the download button wrote, `arguments[1]` the file's name.
const DROP_FILE: &str = "const [source, name, done] = arguments;
    (async () => {
        const blob = typeof source === 'string'
            ? await (await fetch(source)).blob()
            : window.__saved[source];
        const dt = new DataTransfer();
        dt.items.add(new File([blob], name));
        document.querySelector('.page').dispatchEvent(
            new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
        done(true);
    })().catch(e => done(String(e)));";

/// The events of the run the page shows, once it shows the one loaded from `name`.
async fn shown_file(client: &Client, name: &str) -> u64 {
    let script = format!(
        "const from = document.querySelector('[data-testid=recorded-from]');
         const shown = document.querySelector('.now-showing[data-load]');
         if (!from || !shown || !from.innerText.includes({name:?})) return null;
         return JSON.parse(shown.dataset.load).events;"
    );
    let events = wait_for(client, &format!("{name} to show"), &script).await;
    events.as_u64().unwrap_or(0)
}

/// The compare view charts the speedup of each kept run that has one against its threads: two
/// recorded `parallel-compute` runs (2 and 16 threads) are two points, each placed by its own
/// figures and labelled with them.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn the_compare_view_charts_each_runs_speedup() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .goto(&format!("{}?lab", site.url()))
        .await
        .expect("page loads");
    for name in ["parallel-compute", "xeon16-parallel-compute"] {
        let file = format!("{name}.coreplay.gz");
        let dropped = client
            .execute_async(
                DROP_FILE,
                vec![
                    Value::from(format!("gallery/{file}")),
                    Value::from(file.clone()),
                ],
            )
            .await
            .expect("drop runs");
        assert_eq!(dropped, Value::Bool(true), "{dropped}");
        shown_file(&client, &file).await;
    }
    // The page may also keep the gallery's opening run (another T=2 run) if it loaded first.
    let points = wait_for(
        &client,
        "the speedup chart's points of both runs",
        "const c = document.querySelector('[data-testid=speedup-chart]');
         const pts = c ? [...c.querySelectorAll('circle')].map(p => [Number(p.getAttribute('cx')),
             Number(p.getAttribute('cy')), p.querySelector('title').textContent]) : [];
         const two = pts.find(p => p[2].includes('T=2:'));
         const sixteen = pts.find(p => p[2].includes('T=16:'));
         return two && sixteen ? [two, sixteen] : null;",
    )
    .await;
    let points: Vec<(f64, f64, String)> = serde_json::from_value(points).expect("points");
    let speedup = |title: &str| -> f64 {
        title
            .rsplit_once(": ")
            .and_then(|(_, x)| x.strip_suffix('×'))
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("no speedup in {title:?}"))
    };
    let (a, b) = (&points[0], &points[1]);
    assert!(
        a.0.is_finite() && a.1.is_finite() && b.0.is_finite() && b.1.is_finite(),
        "{points:?}"
    );
    assert!(a.0 < b.0, "16 threads further right than 2: {points:?}");
    let (sa, sb) = (speedup(&a.2), speedup(&b.2));
    assert!(
        sa > 1.0 && sb > sa,
        "16 threads on 16 did more than 2 on 2: {points:?}"
    );
    assert!(b.1 < a.1, "the higher speedup is drawn higher: {points:?}");
    // Side by side, each timeline has a lane per hardware thread of its own machine: the run
    // of the 2-thread machine is not drawn with 14 CPUs it never had.
    let lanes = wait_for(
        &client,
        "both compare timelines drawn",
        "const c = [...document.querySelectorAll('[data-testid=compare] canvas[data-cpu-lanes]')];
         return c.length === 2 ? c.map(e => Number(e.dataset.cpuLanes)).sort((a, b) => a - b) : null;",
    )
    .await;
    assert_eq!(
        lanes,
        serde_json::json!([2, 16]),
        "CPU lanes of the two timelines"
    );
    assert_eq!(errors(&client).await, Vec::<String>::new());
    client
        .execute(
            "document.querySelector('[data-testid=speedup-chart]').scrollIntoView()",
            vec![],
        )
        .await
        .expect("scroll to the chart");
    screenshot(&client, "compare-speedup-chart.png").await;
    client.close().await.expect("close session");
}

/// A trace dropped on the page loads like a picked one; the download button writes a trace
/// file which, dropped back in, shows the same run with the same events.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_dropped_trace_loads_and_its_download_round_trips() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .goto(&format!("{}?lab", site.url()))
        .await
        .expect("page loads");
    // Keep what the download button writes instead of saving it to disk.
    hook_downloads(&client).await;
    let dropped = client
        .execute_async(
            DROP_FILE,
            vec![
                Value::from("gallery/gil.coreplay.gz"),
                Value::from("dropped-gil.coreplay.gz"),
            ],
        )
        .await
        .expect("drop runs");
    assert_eq!(dropped, Value::Bool(true), "{dropped}");
    let events = shown_file(&client, "dropped-gil.coreplay.gz").await;
    assert!(events > 100, "{events} events");
    const RECORDED_ON: &str =
        "const t = document.querySelector('[data-testid=recorded-from]').innerText;
        return t.slice(t.indexOf('recorded on'));";
    let recorded_on = client
        .execute(RECORDED_ON, vec![])
        .await
        .expect("recorded on");
    assert!(
        recorded_on.as_str().is_some_and(|t| t.contains("Debian")),
        "{recorded_on}"
    );

    client
        .find(Locator::Css("[data-testid=download]"))
        .await
        .expect("download button")
        .click()
        .await
        .expect("click download");
    let size = wait_for(
        &client,
        "the download",
        "return window.__saved.length > 0 && window.__saved[0].size",
    )
    .await;
    assert!(size.as_u64().unwrap_or(0) > 1_000, "{size}");
    let dropped = client
        .execute_async(
            DROP_FILE,
            vec![Value::from(0), Value::from("downloaded.coreplay.gz")],
        )
        .await
        .expect("drop runs");
    assert_eq!(dropped, Value::Bool(true), "{dropped}");
    assert_eq!(shown_file(&client, "downloaded.coreplay.gz").await, events);
    // The copy keeps when and where the run was recorded.
    let copy_recorded_on = client
        .execute(RECORDED_ON, vec![])
        .await
        .expect("recorded on");
    assert_eq!(copy_recorded_on, recorded_on);
    let shown = wait_for(&client, "the downloaded run", RECORDED_SHOWN).await;
    assert!(shown.get("failed").is_none(), "{shown}");
    assert!(shown["pus"].as_u64().unwrap_or(0) > 0, "{shown}");
    assert_eq!(errors(&client).await, Vec::<String>::new());
    assert_eq!(alerts(&client).await, Vec::<String>::new());
    screenshot(&client, "dropped-downloaded.png").await;
    client.close().await.expect("close session");
}

// ---------------------------------------------------------------------------------------------
// (b) The plain-page example, steering the iframe with postMessage.

/// Serves a copy of `examples/embed/plain.html` whose `COREPLAY` is `base`.
fn plain_example(base: &str) -> (StaticServer, tempdir::Dir) {
    let text = std::fs::read_to_string(repo().join("examples/embed/plain.html"))
        .expect("examples/embed/plain.html");
    let line = format!("const COREPLAY = \"{DEFAULT_BASE}\";");
    assert_eq!(
        text.matches(&line).count(),
        1,
        "plain.html must set COREPLAY in one line: {line}"
    );
    let dir = tempdir::Dir::new("coreplay-embed-example");
    std::fs::write(
        dir.path().join("plain.html"),
        text.replace(&line, &format!("const COREPLAY = \"{base}\";")),
    )
    .expect("write the example");
    (StaticServer::start(dir.path().to_path_buf()), dir)
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A temporary folder, removed when dropped.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> Dir {
            let path = std::env::temp_dir().join(format!(
                "{prefix}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            std::fs::create_dir_all(&path).expect("temp dir");
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn enter_player(client: &Client) {
    client
        .find(Locator::Css("iframe#coreplay"))
        .await
        .expect("the iframe")
        .enter_frame()
        .await
        .expect("enter the iframe");
}

async fn leave_player(client: &Client) {
    client.enter_parent_frame().await.expect("back to the page");
}

async fn reply_count(client: &Client) -> usize {
    client
        .execute("return window.coreplayReplies.length", vec![])
        .await
        .expect("replies")
        .as_u64()
        .expect("a count") as usize
}

/// Waits for reply number `n` (0-based) from the iframe, in the parent page.
async fn reply(client: &Client, n: usize, what: &str) -> Value {
    wait_for(
        client,
        what,
        &format!("const r = window.coreplayReplies; return r.length > {n} ? r[{n}] : null"),
    )
    .await
}

/// Clicks one of the example's command buttons and returns the iframe's answer.
async fn click_command(client: &Client, cmd: &str) -> Value {
    let n = reply_count(client).await;
    client
        .find(Locator::Css(&format!("button[data-cmd={cmd}]")))
        .await
        .expect("command button")
        .click()
        .await
        .expect("click");
    let answer = reply(client, n, &format!("the answer to {cmd}")).await;
    assert_eq!(
        reply_count(client).await,
        n + 1,
        "one answer per command ({cmd})"
    );
    answer
}

/// Posts `msg` (a JavaScript expression) to the iframe and returns the answer.
async fn post(client: &Client, msg: &str) -> Value {
    let n = reply_count(client).await;
    client
        .execute(
            &format!("document.getElementById('coreplay').contentWindow.postMessage({msg}, '*')"),
            vec![],
        )
        .await
        .expect("post");
    reply(client, n, &format!("the answer to {msg}")).await
}

fn state_t(v: &Value) -> u64 {
    assert_eq!(v["coreplay"], "state", "{v}");
    v["t"].as_u64().unwrap_or_else(|| panic!("t in {v}"))
}

/// Opens the plain-page example with `COREPLAY = base` and steers its iframe. `hooked`: the
/// embedded page comes from our file server, which adds the error hook.
async fn drive_plain_example(client: &Client, base: &str, hooked: bool, shot: Option<&str>) {
    let (example, _dir) = plain_example(base);
    client
        .goto(&format!("{}plain.html", example.url()))
        .await
        .expect("example loads");

    // The iframe shows the run and plays it (autoplay).
    enter_player(client).await;
    wait_for(
        client,
        "the embedded run",
        "return !!document.querySelector('[data-testid=embed] [data-testid=cores] .pu.live')",
    )
    .await;
    assert!(
        !present(client, ".status").await,
        "no status bar in embed mode"
    );
    let t0 = clock(client).await;
    let t1 = clock_past(client, "the animation to advance", t0).await;
    clock_past(client, "the animation to keep advancing", t1).await;
    // The page told its parent when the run was ready to be steered.
    leave_player(client).await;
    let ready = wait_for(
        client,
        "the ready message",
        "return window.coreplayReplies.find(r => r.coreplay === 'ready') || null",
    )
    .await;
    assert!(ready["end_ns"].as_u64().unwrap_or(0) > 0, "{ready}");
    assert!(ready["events"].as_u64().unwrap_or(0) > 0, "{ready}");
    enter_player(client).await;
    assert_eq!(alerts(client).await, Vec::<String>::new());
    leave_player(client).await;
    if let Some(shot) = shot {
        screenshot(client, shot).await;
    }

    // Pause stops the clock.
    let paused = click_command(client, "pause").await;
    assert_eq!(paused["playing"], false, "{paused}");
    let t = state_t(&paused);
    enter_player(client).await;
    clock_at(client, "the clock to stop where the answer says", t).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(clock(client).await, t, "paused, the clock must not move");
    leave_player(client).await;

    // Seek lands on 5 ms exactly; step and back move to neighbouring events.
    let seek = click_command(client, "seek5").await;
    assert_eq!(state_t(&seek), 5_000_000, "{seek}");
    assert_eq!(seek["playing"], false, "{seek}");
    enter_player(client).await;
    clock_at(client, "the clock at 5 ms", 5_000_000).await;
    leave_player(client).await;
    let step = post(client, "{coreplay: 'step'}").await;
    assert!(state_t(&step) > 5_000_000, "{step}");
    let back = post(client, "{coreplay: 'back'}").await;
    assert!(state_t(&back) < state_t(&step), "{back} after {step}");
    let seek = post(client, "{coreplay: 'seek', t: 5}").await;
    assert_eq!(state_t(&seek), 5_000_000, "a number is ms: {seek}");

    // Slow motion, then play resumes from 5 ms.
    let slow = click_command(client, "slow").await;
    assert_eq!(slow["speed_ns_per_s"], 10_000, "{slow}");
    let play = click_command(client, "play").await;
    assert_eq!(play["playing"], true, "{play}");
    enter_player(client).await;
    clock_past(client, "playing again", 5_000_000).await;
    leave_player(client).await;
    let normal = click_command(client, "normal").await;
    assert_eq!(normal["speed_ns_per_s"], 1_000_000, "{normal}");
    assert_eq!(normal["playing"], true, "{normal}");
    let toggled = post(client, "{coreplay: 'toggle'}").await;
    assert_eq!(toggled["playing"], false, "{toggled}");
    let state_text = client
        .execute("return document.getElementById('state').innerText", vec![])
        .await
        .expect("state text");
    assert!(
        state_text.as_str().unwrap_or_default().contains("paused"),
        "the example shows the state: {state_text}"
    );

    // Bad commands get an error answer; other scripts' messages are ignored.
    for bad in [
        "{coreplay: 'fly'}",
        "{coreplay: 'seek'}",
        "{coreplay: 'seek', t: '-3ms'}",
        "{coreplay: 'seek', t: 1e12}",
        "{coreplay: 'speed', speed: 'warp'}",
        "{coreplay: 'seek', t: {}}",
    ] {
        let answer = post(client, bad).await;
        assert_eq!(answer["coreplay"], "error", "{bad}: {answer}");
        assert!(
            !answer["message"].as_str().unwrap_or_default().is_empty(),
            "{bad}: {answer}"
        );
    }
    let n = reply_count(client).await;
    client
        .execute(
            "const w = document.getElementById('coreplay').contentWindow;
             w.postMessage({other: 'thing'}, '*');
             w.postMessage('not even JSON', '*');
             w.postMessage({coreplay: 'pause'}, '*');",
            vec![],
        )
        .await
        .expect("post");
    let answer = reply(client, n, "the answer to pause").await;
    assert_eq!(answer["coreplay"], "state", "{answer}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reply_count(client).await,
        n + 1,
        "a foreign message got an answer"
    );

    assert_eq!(
        errors(client).await,
        Vec::<String>::new(),
        "the example page"
    );
    enter_player(client).await;
    if hooked {
        assert_eq!(
            errors(client).await,
            Vec::<String>::new(),
            "the embedded page"
        );
    }
    assert_eq!(
        alerts(client).await,
        Vec::<String>::new(),
        "the embedded page"
    );
    leave_player(client).await;
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn the_plain_page_example_steers_the_embed_with_post_message() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    // The page on a static host, embedded from another origin.
    drive_plain_example(&client, &site.url(), true, Some("embed.png")).await;
    // The same with the page served by an agent, the examples' default.
    let agent = Agent::start(&[]);
    drive_plain_example(&client, &agent.base_url(), false, None).await;
    client.close().await.expect("close session");
}

/// `coreplay export RUN… --format site --out DIR` writes a folder a stock static server
/// publishes: its gallery lists the runs it was made with, and each plays.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn an_exported_site_plays_its_runs_from_any_static_host() {
    page_built();
    let out = std::env::temp_dir().join(format!("coreplay-site-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let runs = [
        repo().join("gallery/gil.coreplay.gz"),
        repo().join("gallery/io-async.coreplay.gz"),
    ];
    let export = |out: &Path, runs: &[PathBuf]| {
        Command::new(env!("CARGO_BIN_EXE_coreplay"))
            .arg("export")
            .args(runs)
            .args(["--format", "site", "--out"])
            .arg(out)
            .output()
            .expect("coreplay runs")
    };
    let o = export(&out, &runs);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 runs in its gallery"));
    // Nothing is overwritten: the same folder again is refused.
    let again = export(&out, &runs);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    // One chrome-trace file at a time.
    let two = Command::new(env!("CARGO_BIN_EXE_coreplay"))
        .arg("export")
        .args(&runs)
        .args(["--format", "chrome-trace"])
        .output()
        .expect("coreplay runs");
    assert_eq!(two.status.code(), Some(2));

    let site = StaticServer::start(out.clone());
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .goto(&format!("{}?lab", site.url()))
        .await
        .expect("page loads");
    let listed = wait_for(
        &client,
        "the site's gallery",
        "const b = Array.from(document.querySelectorAll('[data-testid=gallery] [data-gallery]'));
         return b.length ? b.map(e => e.dataset.gallery) : null",
    )
    .await;
    assert_eq!(
        listed,
        serde_json::json!(["gil.coreplay.gz", "io-async.coreplay.gz"]),
        "exactly the runs it was made with"
    );
    client
        .goto(&format!(
            "{}?trace=gallery/io-async.coreplay.gz",
            site.url()
        ))
        .await
        .expect("run loads");
    wait_for(
        &client,
        "the exported run",
        "return document.querySelector('[data-testid=event-loop]') ? true : null",
    )
    .await;
    assert_eq!(errors(&client).await, Vec::<String>::new());
    client.close().await.expect("close session");
    let _ = std::fs::remove_dir_all(&out);
}

/// One's own recordings, served by the agent with `--traces DIR`: the page plays
/// `?trace=traces/NAME`, and nothing but plain trace names inside DIR is served.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn own_recordings_play_from_the_agent_serving_a_folder() {
    page_built();
    let dir = std::env::temp_dir().join(format!("coreplay-own-traces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(
        repo().join("gallery/gil.coreplay.gz"),
        dir.join("my-gil.coreplay.gz"),
    )
    .expect("copy a recording");
    let text = std::fs::read_to_string(repo().join("shared/tests/fixtures/trace-v2.jsonl"))
        .expect("fixture");
    std::fs::write(dir.join("mine.jsonl"), &text).expect("write");
    std::fs::write(dir.join("notes.txt"), "not a trace").expect("write");
    let outside = dir.with_extension("outside.coreplay.gz");
    std::fs::write(&outside, "secret").expect("write");
    std::os::unix::fs::symlink(&outside, dir.join("escape.coreplay.gz")).expect("symlink");
    let agent = Agent::start(&["--traces", dir.to_str().expect("utf-8")]);
    assert_eq!(agent.get("/traces/mine.jsonl"), (200, text));
    for (path, status) in [
        ("/traces/notes.txt", 400),
        ("/traces/..%2Fsecret.coreplay.gz", 400),
        ("/traces/.hidden.coreplay.gz", 400),
        ("/traces/missing.coreplay.gz", 404),
        ("/traces/escape.coreplay.gz", 403),
    ] {
        assert_eq!(agent.get(path).0, status, "{path}");
    }
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .goto(&format!(
            "{}?trace=traces/my-gil.coreplay.gz",
            agent.base_url()
        ))
        .await
        .expect("page loads");
    let shown = wait_for(
        &client,
        "the served recording",
        "const s = document.querySelector('.now-showing'); return s && s.innerText.includes('my-gil') ? s.innerText : null",
    )
    .await;
    assert!(
        shown.as_str().unwrap_or_default().contains("gil"),
        "{shown}"
    );
    let alert = client
        .execute(
            "return document.querySelector('[role=alert]')?.innerText ?? null",
            vec![],
        )
        .await
        .expect("alerts");
    assert_eq!(alert, Value::Null, "no problem shown");
    client.close().await.expect("close session");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&outside);
}

/// Opened from disk (`file://`), where a browser will not load the page's WebAssembly, the
/// page says what to do instead of staying blank.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_page_opened_from_disk_says_what_to_do() {
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;
    let index = repo().join("dist/index.html");
    client
        .goto(&format!("file://{}", index.display()))
        .await
        .expect("page loads");
    let text = wait_for(
        &client,
        "the file:// message",
        "return document.querySelector('[data-testid=file-url]')?.innerText ?? null",
    )
    .await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("coreplay serve")
            && text.contains("http.server")
            && text.contains("--format html"),
        "{text}"
    );
    client.close().await.expect("close session");
}

/// A failure of the page's own code (its WebAssembly trapping: what a panic is in the release
/// build) is said at the top of the page, once, rather than leaving it frozen. The trap here is
/// a real one, from a one-instruction module (`unreachable`), thrown from a timer and from a
/// promise as the page's callbacks and futures would throw it.
/// A script that makes `trap`: the one function of a module whose body is `unreachable`.
const TRAP: &str = "const trap = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array([
    0,97,115,109,1,0,0,0, 1,4,1,96,0,0, 3,2,1,0, 7,5,1,1,102,0,0, 10,5,1,3,0,0,11]))).exports.f;";

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_failure_of_the_page_s_own_code_is_said() {
    page_built();
    let server = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    client.goto(&server.url()).await.expect("page loads");
    wait_for(
        &client,
        "the page",
        "return document.querySelector('.brand') ? true : null",
    )
    .await;
    assert!(!present(&client, "[data-testid=page-failed]").await);
    client
        .execute(
            &format!(
                "{TRAP} setTimeout(trap, 0); setTimeout(() => Promise.resolve().then(trap), 50);"
            ),
            vec![],
        )
        .await
        .expect("script");
    let text = wait_for(
        &client,
        "the failure message",
        "return document.querySelector('[data-testid=page-failed]')?.innerText ?? null",
    )
    .await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.starts_with("coreplay's page failed (RuntimeError: unreachable")
            && text.contains("Reload the page"),
        "{text}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let shown = client
        .execute(
            "return document.querySelectorAll('[data-testid=page-failed]').length",
            vec![],
        )
        .await
        .expect("count");
    assert_eq!(shown, Value::from(1), "said once");
    screenshot(&client, "page-failed.png").await;
    // A trap in a promise alone (as in the page's futures) is said too.
    client
        .execute(
            &format!(
                "document.querySelector('[data-testid=page-failed]').remove();
                 {TRAP} Promise.resolve().then(trap);"
            ),
            vec![],
        )
        .await
        .expect("script");
    let text = wait_for(
        &client,
        "the failure message from a promise",
        "return document.querySelector('[data-testid=page-failed]')?.innerText ?? null",
    )
    .await;
    assert!(
        text.as_str()
            .unwrap_or_default()
            .starts_with("coreplay's page failed (RuntimeError: unreachable"),
        "{text}"
    );
    client.close().await.expect("close session");
}

/// The lab's parts arrive in any order (the gallery's list from the site, the agent's hello
/// over the WebSocket): the page never fails to draw them. Yew once panicked inserting a node
/// when they came in one order (3 of 12 loads here), leaving a page frozen at "Connecting".
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn the_lab_draws_its_parts_whatever_order_they_arrive_in() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let origin = site.url().trim_end_matches('/').to_string();
    let driver = Driver::start();
    let client = driver.client().await;
    let live = Agent::start(&["--allow-origin", &origin]);
    let synthetic = Agent::start(&[
        "--synthetic",
        "package:2 core:16 pu:2",
        "--allow-origin",
        &origin,
    ]);
    for round in 0..6 {
        for agent in [&live, &synthetic] {
            client
                .goto(&format!(
                    "{}?lab&follow&agent={}",
                    site.url(),
                    agent.ws_url()
                ))
                .await
                .expect("page loads");
            wait_for(
                &client,
                "the agent's topology",
                "return document.querySelector('[data-conn=connected]') && document.querySelector('[data-pu]') ? true : null",
            )
            .await;
            assert_eq!(errors(&client).await, Vec::<String>::new(), "round {round}");
        }
    }
    client.close().await.expect("close session");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn bad_traces_are_explained_in_the_embed_and_nothing_breaks() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    for (trace, expect) in [
        ("javascript:alert(1)", "must be a path or an http(s) URL"),
        ("data:text/plain,hello", "must be a path or an http(s) URL"),
        ("gallery/missing.coreplay.gz", "404"),
        ("index.html", "could not open the trace"),
    ] {
        client
            .goto(&format!("{}?embed&autoplay&trace={trace}", site.url()))
            .await
            .expect("page loads");
        let text = wait_for(
            &client,
            &format!("the problem with {trace}"),
            "const p = document.querySelector('[data-testid=embed] .problem[role=alert]');
             return p && p.innerText",
        )
        .await;
        let text = text.as_str().unwrap_or_default().to_string();
        assert!(text.contains(expect), "{trace}: {text:?}");
        // Still alive a moment later: the embed root is there and nothing was thrown.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(present(&client, "[data-testid=embed]").await, "{trace}");
        assert_eq!(errors(&client).await, Vec::<String>::new(), "{trace}");
        if trace.starts_with("javascript") {
            screenshot(&client, "embed-bad-trace.png").await;
        }
    }
    client.close().await.expect("close session");
}

/// Copies a folder (the built page) into another, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_trace_with_inconsistent_events_says_so_and_shows_the_rest() {
    page_built();
    // The page and a damaged copy of a recorded run (shared/tests/fixtures): one slice on
    // CPU 7 of a 2-CPU machine, one release of a lock nobody holds.
    let dir = tempdir::Dir::new("coreplay-damaged");
    copy_dir(&repo().join("dist"), dir.path());
    let good = std::fs::read_to_string(repo().join("shared/tests/corpus-trace/io-async.jsonl"))
        .expect("corpus trace");
    std::fs::copy(
        repo().join("shared/tests/fixtures/trace-inconsistent.jsonl"),
        dir.path().join("damaged.jsonl"),
    )
    .expect("copy the damaged trace");
    let site = StaticServer::start(dir.path().to_path_buf());
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .goto(&format!("{}?trace=damaged.jsonl", site.url()))
        .await
        .expect("page loads");
    let shown = wait_for(
        &client,
        "the damaged run shown with its problem",
        "const shown = document.querySelector('.now-showing[data-load]');
         const warn = document.querySelector('.status .warn');
         if (!shown || !warn) return null;
         return { load: JSON.parse(shown.dataset.load), warn: warn.innerText,
                  pus: document.querySelectorAll('[data-testid=cores] .pu.live').length };",
    )
    .await;
    let warn = shown["warn"].as_str().unwrap_or_default();
    assert!(
        warn.contains("2 events of")
            && warn.contains("inconsistent (first: event")
            && warn.contains("CPU 7 is not a hardware thread")
            && warn.contains("2 of them are left out, the rest is shown"),
        "{warn}"
    );
    let clean = coreplay_shared::trace_file::read(&good).expect("reads");
    assert_eq!(
        shown["load"]["events"].as_u64(),
        Some(clean.events.len() as u64 - 1),
        "{shown}"
    );
    assert_eq!(shown["pus"].as_u64(), Some(2), "{shown}");
    assert_eq!(errors(&client).await, Vec::<String>::new());
    screenshot(&client, "damaged-trace.png").await;
    client.close().await.expect("close session");
}

/// What the cores view shows, read from the DOM: every place each thread's token is drawn
/// (a core, a core's queue, a lock's waiters, a waiting area), the lock holders, and each
/// lock's and area's count beside the tokens it lists.
const CORES_DOM: &str = "
    const root = document.querySelector('[data-testid=cores]');
    if (!root) return null;
    const places = {};
    const add = (tid, where) => { (places[tid] = places[tid] || []).push(where); };
    root.querySelectorAll('.pu.live').forEach(pu => {
        const r = pu.querySelector('.slot .tok.running');
        if (r) add(r.dataset.tid, 'core ' + pu.dataset.pu);
        pu.querySelectorAll('.runq .tok').forEach(t => add(t.dataset.tid, 'queue ' + pu.dataset.pu));
    });
    const locks = [...root.querySelectorAll('[data-testid=lock]')].map(l => {
        const w = l.querySelector('[data-testid=lock-waiters]');
        const toks = [...w.querySelectorAll('.tok')];
        toks.forEach(t => add(t.dataset.tid, 'lock ' + l.dataset.pid));
        const h = l.querySelector('[data-testid=lock-holder]');
        return { pid: l.dataset.pid, holder: h ? h.dataset.tid : '', count: +w.dataset.count,
                 listed: toks.length };
    });
    const areas = [...root.querySelectorAll('.area')].map(a => {
        const toks = [...a.querySelectorAll('.tok')];
        toks.forEach(t => add(t.dataset.tid, 'area ' + a.dataset.area));
        const m = a.querySelector('h4').innerText.match(/[(]([0-9]+)[)]$/);
        return { area: a.dataset.area, count: m ? +m[1] : -1, listed: toks.length };
    });
    return { t: +document.querySelector('[data-testid=clock]').dataset.t, places, locks, areas };";

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn the_cores_view_shows_each_thread_once_and_each_process_its_own_lock() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    for (file, processes) in [
        ("gil.coreplay.gz", 1),
        ("process-pool.coreplay.gz", 2),
        ("xeon16-process-pool.coreplay.gz", 16),
    ] {
        let trace = coreplay_agent::record::read_file(&repo().join("gallery").join(file))
            .expect("gallery trace");
        let mut replay = coreplay_shared::replay::Replay::new();
        replay.extend(&trace.events);
        replay.prepare();
        let (start, end) = (replay.start(), replay.end());
        client
            .goto(&format!(
                "{}?embed&view=cores&trace=gallery/{file}",
                site.url()
            ))
            .await
            .expect("page loads");
        wait_for(&client, &format!("{file}: the cores view"), CORES_DOM).await;
        assert!(
            present(&client, "[data-testid=legend] .gil").await,
            "{file}: a run with a lock explains its mark"
        );
        let mut most_locks = 0;
        let instants = 60u64;
        for i in 0..instants {
            let t = start + (end - start) * i / instants;
            seek(&client, t).await;
            let dom = wait_for(
                &client,
                &format!("{file}: the view at {t} ns"),
                &format!(
                    "const d = (() => {{ {CORES_DOM} }})(); return d && d.t === {t} ? d : null;"
                ),
            )
            .await;
            let what = format!("{file} at {t} ns");
            let places = dom["places"].as_object().expect("places");
            for (tid, at) in places {
                let at = at.as_array().expect("list");
                assert_eq!(at.len(), 1, "{what}: thread {tid} drawn in {at:?}");
            }
            let locks = dom["locks"].as_array().expect("locks");
            most_locks = most_locks.max(locks.len());
            let pids: BTreeSet<&str> = locks.iter().filter_map(|l| l["pid"].as_str()).collect();
            assert_eq!(
                pids.len(),
                locks.len(),
                "{what}: a process with two locks: {dom}"
            );
            for l in locks {
                let holder = l["holder"].as_str().unwrap_or_default();
                if !holder.is_empty() {
                    let at = places.get(holder).and_then(|v| v.as_array()).cloned();
                    assert!(
                        at.unwrap_or_default()
                            .iter()
                            .all(|p| !p.as_str().unwrap_or_default().starts_with("lock")),
                        "{what}: holder {holder} also waits: {dom}"
                    );
                }
                let (count, listed) = (l["count"].as_u64(), l["listed"].as_u64());
                if processes <= 2 {
                    assert_eq!(count, listed, "{what}: lock count vs waiters listed: {l}");
                }
            }
            for a in dom["areas"].as_array().expect("areas") {
                let (count, listed) = (
                    a["count"].as_u64().unwrap_or(0),
                    a["listed"].as_u64().unwrap_or(0),
                );
                assert!(count > 0, "{what}: empty area drawn: {a}");
                assert_eq!(listed, count.min(24), "{what}: area count vs tokens: {a}");
            }
        }
        assert_eq!(
            most_locks, processes,
            "{file}: one lock per process that has one"
        );
        screenshot(&client, &format!("consistency-{file}.png")).await;
    }
    assert_eq!(errors(&client).await, Vec::<String>::new());
    // A run with no lock has no lock mark to explain.
    client
        .goto(&format!(
            "{}?embed&view=cores&trace=gallery/parallel-compute.coreplay.gz",
            site.url()
        ))
        .await
        .expect("page loads");
    wait_for(&client, "parallel-compute: the cores view", CORES_DOM).await;
    assert!(
        present(&client, "[data-testid=legend]").await
            && !present(&client, "[data-testid=legend] .gil").await,
        "no GIL in the legend of a run without a lock"
    );
    client.close().await.expect("close session");
}

// ---------------------------------------------------------------------------------------------
// (c) Embed parameters, and every iframe address in the examples.

/// `data-testid` of each view name in `view=`.
fn view_testid(name: &str) -> &'static str {
    match name {
        "cores" => "cores",
        "loop" | "event-loop" => "event-loop",
        "timeline" => "timeline",
        "summary" => "summary",
        other => panic!("unknown view {other}"),
    }
}

/// Opens `?QUERY` on `base` and checks the embed shows exactly the views it names.
async fn check_embed(client: &Client, base: &str, query: &str) {
    client
        .goto(&format!("{base}{query}"))
        .await
        .expect("page loads");
    wait_for(
        client,
        &format!("the player for {query}"),
        "const p = document.querySelector('[data-testid=embed] .problem');
         if (p) return p.innerText;
         return !!document.querySelector('[data-testid=embed] [data-testid=clock]')",
    )
    .await;
    assert_eq!(alerts(client).await, Vec::<String>::new(), "{query}");
    let params = query_pairs(query);
    let views: Vec<&str> = params
        .iter()
        .find(|(k, _)| *k == "view")
        .map_or(vec!["cores", "loop", "timeline", "summary"], |(_, v)| {
            v.split(',').collect()
        });
    let wanted: BTreeSet<&str> = views.iter().map(|v| view_testid(v)).collect();
    for id in ["cores", "event-loop", "timeline", "summary"] {
        let selector = format!("[data-testid=embed] [data-testid={id}]");
        if wanted.contains(id) {
            wait_for(
                client,
                &format!("view {id} for {query}"),
                &format!("return !!document.querySelector({selector:?})"),
            )
            .await;
        } else {
            assert!(
                !present(client, &selector).await,
                "{query}: view {id} shown but not asked for"
            );
        }
    }
    if wanted.contains("timeline") {
        let size = client
            .execute(
                "const c = document.querySelector('[data-testid=timeline] canvas');
                 return c ? c.clientWidth * c.clientHeight : 0",
                vec![],
            )
            .await
            .expect("canvas");
        assert!(size.as_u64().unwrap_or(0) > 0, "{query}: empty timeline");
    }
    if let Some((_, t)) = params.iter().find(|(k, _)| *k == "t") {
        let want = duration_ns(t);
        let at = clock(client).await;
        if params.iter().any(|(k, _)| *k == "autoplay") {
            assert!(at >= want, "{query}: clock {at} before t");
        } else {
            assert_eq!(at, want, "{query}");
        }
    }
    assert_eq!(errors(client).await, Vec::<String>::new(), "{query}");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn embed_parameters_choose_views_time_speed_and_loop() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    let base = site.url();

    check_embed(
        &client,
        &base,
        "?embed&view=timeline&trace=gallery/gil.coreplay.gz",
    )
    .await;
    screenshot(&client, "embed-timeline.png").await;
    check_embed(
        &client,
        &base,
        "?embed&view=cores&trace=gallery/gil.coreplay.gz&t=12.5ms",
    )
    .await;
    assert!(present(&client, "[data-testid=lock-holder]").await);
    check_embed(
        &client,
        &base,
        "?embed&view=loop,summary&trace=gallery/event-loop-blocked.coreplay.gz",
    )
    .await;

    // speed= picks the offered speed in the compact controls.
    client
        .goto(&format!(
            "{base}?embed&view=cores&trace=gallery/gil.coreplay.gz&speed=10us"
        ))
        .await
        .expect("page loads");
    let label = wait_for(
        &client,
        "the speed",
        "const s = document.querySelector('[data-testid=speed]');
         return s && s.selectedOptions[0]?.innerText",
    )
    .await;
    assert!(
        label.as_str().unwrap_or_default().contains("10 µs"),
        "{label}"
    );

    // Real time with loop: the ~0.1 s run starts over, so the clock goes back at some point.
    client
        .goto(&format!(
            "{base}?embed&view=cores&trace=gallery/gil.coreplay.gz&speed=1s&autoplay&loop"
        ))
        .await
        .expect("page loads");
    wait_for(
        &client,
        "a loop",
        "const c = document.querySelector('[data-testid=clock]');
         if (!c) return null;
         const t = Number(c.dataset.t);
         const seen = window.__seen = window.__seen || [];
         seen.push(t);
         return seen.some((v, i) => i > 0 && v < seen[i - 1])",
    )
    .await;
    // Without loop, it stops at the end.
    client
        .goto(&format!(
            "{base}?embed&view=cores&trace=gallery/gil.coreplay.gz&speed=1s&autoplay"
        ))
        .await
        .expect("page loads");
    wait_for(
        &client,
        "the end of the run",
        "const p = document.querySelector('[data-testid=play]');
         const c = document.querySelector('[data-testid=clock]');
         return !!p && !!c && Number(c.dataset.t) > 0 && p.getAttribute('aria-pressed') === 'false'",
    )
    .await;
    let end = clock(&client).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(clock(&client).await, end, "stopped at the end");
    assert_eq!(errors(&client).await, Vec::<String>::new());
    client.close().await.expect("close session");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn every_iframe_address_in_the_examples_plays() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    let queries = example_queries();
    assert!(queries.len() >= 4, "{queries:?}");
    for (file, query) in &queries {
        eprintln!("{file}: {query}");
        check_embed(&client, &site.url(), query).await;
    }
    client.close().await.expect("close session");
}

// ---------------------------------------------------------------------------------------------
// The examples themselves (no browser).

/// Every `?embed…` iframe address written out in the examples (plain.html builds its own in
/// script and is opened for real above), with the file it is in.
fn example_queries() -> Vec<(String, String)> {
    let dir = repo().join("examples/embed");
    let mut out = Vec::new();
    for file in [
        "reveal-slide.html",
        "quarto-slide.qmd",
        "jupyter_cell.py",
        "jupyter.ipynb",
    ] {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("examples/embed/{file}: {e}"));
        assert!(
            text.contains(DEFAULT_BASE),
            "{file} should point at {DEFAULT_BASE} by default"
        );
        for (i, _) in text.match_indices("?embed&") {
            let rest = &text[i..];
            let end = rest
                .find(['"', '\\', '\'', ' ', '\n'])
                .unwrap_or(rest.len());
            out.push((file.to_string(), rest[..end].replace("&amp;", "&")));
        }
    }
    out
}

fn query_pairs(query: &str) -> Vec<(&str, &str)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

/// `12.5ms` → ns, as the page reads it (a bare number is ms).
fn duration_ns(s: &str) -> u64 {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a duration"));
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "" | "ms" => 1e6,
        "s" => 1e9,
        other => panic!("unknown unit {other:?} in {s:?}"),
    };
    (v * scale) as u64
}

#[test]
fn examples_are_well_formed() {
    let dir = repo().join("examples/embed");
    for file in [
        "README.md",
        "plain.html",
        "reveal-slide.html",
        "quarto-slide.qmd",
        "jupyter.ipynb",
        "jupyter_cell.py",
    ] {
        assert!(dir.join(file).exists(), "examples/embed/{file} is missing");
    }

    // The notebook is nbformat 4 JSON whose code cell is jupyter_cell.py.
    let nb: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("jupyter.ipynb")).expect("notebook"),
    )
    .expect("the notebook is JSON");
    assert_eq!(nb["nbformat"], 4);
    assert!(nb["nbformat_minor"].is_u64());
    assert!(nb["metadata"].is_object());
    let cells = nb["cells"].as_array().expect("cells");
    let mut code = Vec::new();
    for cell in cells {
        assert!(
            cell["metadata"].is_object() && cell["source"].is_array(),
            "{cell}"
        );
        match cell["cell_type"].as_str() {
            Some("code") => {
                assert!(cell["outputs"].is_array() && cell.get("execution_count").is_some());
                let source: String = cell["source"]
                    .as_array()
                    .expect("source lines")
                    .iter()
                    .map(|l| l.as_str().expect("a line"))
                    .collect();
                code.push(source);
            }
            Some("markdown" | "raw") => {}
            other => panic!("unknown cell type {other:?}"),
        }
    }
    let cell = std::fs::read_to_string(dir.join("jupyter_cell.py")).expect("cell");
    assert_eq!(code, vec![cell.trim_end().to_string()]);
    assert!(cell.contains("from IPython.display import IFrame") && cell.contains("IFrame("));

    // Every iframe address uses only parameters the page knows, names a shipped trace and
    // valid views and times.
    let queries = example_queries();
    assert!(queries.len() >= 4, "{queries:?}");
    for (file, query) in &queries {
        let mut trace = None;
        for (k, v) in query_pairs(query) {
            match k {
                "embed" | "autoplay" | "loop" => assert!(v.is_empty(), "{file}: {query}"),
                "trace" => trace = Some(v),
                "view" => {
                    for name in v.split(',') {
                        view_testid(name);
                    }
                }
                "t" | "speed" => {
                    duration_ns(v);
                }
                other => panic!("{file}: unknown parameter {other} in {query}"),
            }
        }
        let trace = trace.unwrap_or_else(|| panic!("{file}: no trace in {query}"));
        let shipped = repo().join(trace);
        assert!(
            trace.starts_with("gallery/") && shipped.exists(),
            "{file}: {trace} is not in the gallery"
        );
    }
    let plain = std::fs::read_to_string(dir.join("plain.html")).expect("plain.html");
    assert!(plain.contains(&format!("const COREPLAY = \"{DEFAULT_BASE}\";")));
}

/// `coreplay export RUN --format html`: one file, opened from disk (`file://`) with no server
/// anywhere, plays the run (the clock advances, the views show its threads) and loads nothing
/// from anywhere.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_standalone_html_file_plays_from_disk_with_nothing_else() {
    page_built();
    let out = std::env::temp_dir().join(format!("coreplay-html-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("temp dir");
    let driver = Driver::start();
    let client = driver.client().await;
    for (run, view, shows) in [
        ("gil", "cores,timeline", "[data-testid=timeline]"),
        ("io-async", "loop", "[data-testid=event-loop]"),
    ] {
        let file = out.join(format!("{run}.html"));
        let o = Command::new(env!("CARGO_BIN_EXE_coreplay"))
            .arg("export")
            .arg(repo().join(format!("gallery/{run}.coreplay.gz")))
            .args(["--format", "html", "--view", view, "--out"])
            .arg(&file)
            .output()
            .expect("coreplay runs");
        let said = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{said}");
        let size = std::fs::metadata(&file).expect("written").len();
        assert!(said.contains(&format!("{} KB", size / 1024)), "{said}");
        client
            .goto(&format!("file://{}", file.display()))
            .await
            .expect("page loads");
        let t0 = clock(&client).await;
        clock_past(&client, "the run playing", t0).await;
        wait_for(
            &client,
            "the chosen view",
            &format!("return document.querySelector({shows:?}) ? true : null"),
        )
        .await;
        assert!(
            !present(&client, "[data-testid=file-url]").await,
            "no 'opened from a file' message: this file plays"
        );
        let loaded = client
            .execute(
                "return performance.getEntriesByType('resource').map(e => e.name)
                   .filter(n => !n.startsWith('data:') && !n.startsWith('blob:'))",
                vec![],
            )
            .await
            .expect("resources");
        assert_eq!(
            loaded,
            serde_json::json!([]),
            "nothing is loaded from anywhere"
        );
        assert_eq!(alerts(&client).await, Vec::<String>::new());
        screenshot(&client, &format!("standalone-{run}.png")).await;
    }
    // The page's own "download as one HTML file" writes the same kind of file: it plays too.
    let agent = Agent::start(&[]);
    client
        .goto(&format!(
            "{}?trace=gallery/io-async.coreplay.gz&view=loop",
            agent.base_url()
        ))
        .await
        .expect("page loads");
    wait_for(
        &client,
        "the run",
        "return document.querySelector('[data-testid=download-html]:not([disabled])') ? true : null",
    )
    .await;
    client
        .execute(
            "const made = URL.createObjectURL.bind(URL);
             URL.createObjectURL = (blob) => { window.__offered = blob; return made(blob); };
             document.querySelector('[data-testid=download-html]').click();",
            vec![],
        )
        .await
        .expect("click");
    wait_for(
        &client,
        "the file offered",
        "return window.__offered ? true : null",
    )
    .await;
    let html = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__offered.text().then(done, (e) => done('failed: ' + e));",
            vec![],
        )
        .await
        .expect("read the file");
    let html = html.as_str().expect("text");
    assert!(
        html.starts_with("<!doctype html>"),
        "{}",
        &html[..html.len().min(200)]
    );
    let file = out.join("downloaded.html");
    std::fs::write(&file, html).expect("write");
    client
        .goto(&format!("file://{}", file.display()))
        .await
        .expect("page loads");
    let t0 = clock(&client).await;
    clock_past(&client, "the downloaded file playing", t0).await;
    wait_for(
        &client,
        "the event loop view",
        "return document.querySelector('[data-testid=event-loop]') ? true : null",
    )
    .await;
    screenshot(&client, "standalone-downloaded.png").await;

    // Only HTML is written under an HTML name, and only one run goes in a file.
    let refused = Command::new(env!("CARGO_BIN_EXE_coreplay"))
        .arg("export")
        .arg(repo().join("gallery/gil.coreplay.gz"))
        .args(["--format", "html", "--out"])
        .arg(out.join("gil.png"))
        .output()
        .expect("coreplay runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("must end in .html"));
    client.close().await.expect("close session");
    let _ = std::fs::remove_dir_all(&out);
}

// ---------------------------------------------------------------------------------------------
// (d) Embeds that fit the frames slides and notebooks give them.

/// Inside the current frame: whether the page or any of its boxes scrolls (a scrollbar), and
/// where each asked-for view lies relative to the frame's viewport.
const FIT_PROBE: &str = "
    const [want] = arguments;
    const root = document.scrollingElement;
    const W = innerWidth, H = innerHeight;
    const scrollers = [];
    if (root.scrollHeight > H + 1 || root.scrollWidth > W + 1)
        scrollers.push(`the page: ${root.scrollWidth}x${root.scrollHeight} in ${W}x${H}`);
    for (const el of document.querySelectorAll('body *')) {
        const s = getComputedStyle(el);
        const x = (s.overflowX === 'auto' || s.overflowX === 'scroll') && el.scrollWidth > el.clientWidth + 1;
        const y = (s.overflowY === 'auto' || s.overflowY === 'scroll') && el.scrollHeight > el.clientHeight + 1;
        if ((x || y) && el.clientWidth > 0)
            scrollers.push(`${el.tagName.toLowerCase()}.${el.className}: ${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}`);
    }
    const views = {};
    for (const id of want) {
        const el = document.querySelector(`[data-testid=embed] [data-testid=${id}]`);
        if (!el) { views[id] = 'missing'; continue; }
        const r = el.getBoundingClientRect();
        views[id] = (r.width > 0 && r.height > 0 && r.left >= -1 && r.top >= -1
            && r.right <= W + 1 && r.bottom <= H + 1)
            ? 'inside' : `outside: ${Math.round(r.left)},${Math.round(r.top)} to ${Math.round(r.right)},${Math.round(r.bottom)} in ${W}x${H}`;
    }
    return { scrollers, views };";

/// At 960×540 (a 16:9 slide), 640×360 and 560×420 (a notebook's or course page's iframe),
/// the views an embed asks for fit the frame: no scrollbar anywhere, every view wholly inside.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn embeds_fit_slide_and_notebook_frames_without_scrollbars() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let host_dir = tempdir::Dir::new("coreplay-fit");
    let host = StaticServer::start(host_dir.path().to_path_buf());
    let driver = Driver::start();
    let client = driver.client().await;
    let embeds: [(&str, &[&str]); 4] = [
        (
            "view=cores,timeline&trace=gallery/gil.coreplay.gz&t=12ms",
            &["cores", "timeline"],
        ),
        (
            "view=loop,timeline&trace=gallery/io-async.coreplay.gz&t=30ms",
            &["event-loop", "timeline"],
        ),
        (
            "view=cores&trace=gallery/process-pool.coreplay.gz&t=40ms",
            &["cores"],
        ),
        (
            "view=timeline&trace=gallery/oversubscribed.coreplay.gz",
            &["timeline"],
        ),
    ];
    let mut problems = Vec::new();
    for (w, h) in [(960, 540), (640, 360), (560, 420)] {
        for (i, (query, want)) in embeds.iter().enumerate() {
            let name = format!("fit-{w}x{h}-{i}.html");
            std::fs::write(
                host_dir.path().join(&name),
                format!(
                    r#"<!doctype html><html><body style="margin:0;background:#333">
<iframe id="coreplay" src="{}?embed&{query}" width="{w}" height="{h}" style="border:0;display:block"></iframe>
</body></html>"#,
                    site.url()
                ),
            )
            .expect("host page");
            client
                .goto(&format!("{}{name}", host.url()))
                .await
                .expect("host page loads");
            enter_player(&client).await;
            wait_for(
                &client,
                &format!("the embed {query}"),
                "return !!document.querySelector('[data-testid=embed] [data-testid=clock]')",
            )
            .await;
            // The fit settles after the views are drawn (a few steps of 50 ms, longer on a busy
            // machine): what counts is where it settles, within 5 s.
            let ids: Vec<Value> = want.iter().map(|s| Value::from(*s)).collect();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let probe = loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let probe = client
                    .execute(FIT_PROBE, vec![Value::Array(ids.clone())])
                    .await
                    .expect("probe");
                let settled = probe["scrollers"].as_array().is_some_and(Vec::is_empty)
                    && want.iter().all(|id| probe["views"][*id] == "inside");
                if settled || std::time::Instant::now() >= deadline {
                    break probe;
                }
            };
            leave_player(&client).await;
            if w == 640 || i == 0 {
                screenshot(&client, &format!("embed-fit-{w}x{h}-{i}.png")).await;
            }
            let scrollers = probe["scrollers"].as_array().cloned().unwrap_or_default();
            if !scrollers.is_empty() {
                problems.push(format!("{w}x{h} {query}: scrollbars: {scrollers:?}"));
            }
            for id in *want {
                if probe["views"][id] != "inside" {
                    problems.push(format!("{w}x{h} {query}: {id} {}", probe["views"][id]));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    client.close().await.expect("close session");
}

/// A copy of the built page (without the gallery's runs) whose addresses start with `prefix`
/// instead of `./`, as Trunk writes them for `--public-url prefix`.
fn page_copy_under(prefix: &str) -> tempdir::Dir {
    let dir = tempdir::Dir::new("coreplay-pack");
    for entry in std::fs::read_dir(repo().join("dist"))
        .expect("dist")
        .flatten()
    {
        let target = dir.path().join(entry.file_name());
        if entry.file_name() == "snippets" {
            copy_dir(&entry.path(), &target);
        } else if entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
    let index = dir.path().join("index.html");
    let html = std::fs::read_to_string(&index).expect("index.html");
    let moved = html
        .replace("href=\"./", &format!("href=\"{prefix}"))
        .replace("src=\"./", &format!("src=\"{prefix}"));
    std::fs::write(&index, moved).expect("write index.html");
    dir
}

/// `scripts/pack-page.mjs` on `dir`, as Trunk's hook runs it for a page built for `public_url`.
fn pack(dir: &Path, public_url: &str) -> std::process::Output {
    Command::new("node")
        .arg(repo().join("scripts/pack-page.mjs"))
        .arg(dir)
        .env("TRUNK_PUBLIC_URL", public_url)
        .output()
        .expect("node runs (scripts/setup.sh installs it)")
}

#[test]
#[ignore = "needs dist/ and the tools scripts/setup.sh installs; run by scripts/test.sh"]
fn the_page_packs_for_a_subfolder_and_its_integrity_hashes_hold() {
    page_built();
    let dir = page_copy_under("/that/folder/");
    let out = pack(dir.path(), "/that/folder/");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("pack-page:"), "{said}");
    let html = std::fs::read_to_string(dir.path().join("index.html")).expect("index.html");
    assert!(
        html.contains("href=\"/that/folder/style.css\" integrity=\"sha384-"),
        "{html}"
    );
    assert!(
        !dir.path().join("style.css.packed").exists(),
        "nothing left beside"
    );
}

#[test]
#[ignore = "needs dist/ and the tools scripts/setup.sh installs; run by scripts/test.sh"]
fn a_file_that_does_not_match_its_integrity_hash_stops_the_packing() {
    page_built();
    let dir = page_copy_under("./");
    let css = dir.path().join("style.css");
    let mut text = std::fs::read_to_string(&css).expect("style.css");
    text.push_str("\n.changed{color:red}\n");
    std::fs::write(&css, &text).expect("write style.css");
    let out = pack(dir.path(), "./");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("integrity hash of style.css does not match"),
        "{said}"
    );
    // Nothing was written: the file is as it was given.
    assert_eq!(std::fs::read_to_string(&css).expect("style.css"), text);
}
