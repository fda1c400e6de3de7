//! End to end in headless Chromium over WebDriver: the real agent serves the real page, and
//! we check what the page shows. Needs `chromedriver`, `chromium` and a built page (`dist/`);
//! `scripts/test.sh` provides all three. Screenshots land in `target/test-artifacts/`.
//!
//! These tests are `#[ignore]`d so a bare `cargo test` on a machine without a browser stays
//! green; the test script runs them with `--ignored`, where a missing browser fails loudly.

mod common;
#[path = "common/driver.rs"]
mod driver;

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use common::Agent;
use coreplay_shared::Topology;
use driver::{
    Driver, click_run, hook_downloads, pick, record_next_run, record_next_run_timed, seek,
    set_params, wait_for,
};
use fantoccini::Client;
use serde_json::json;

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
    let topology: Topology = coreplay_shared::json::from_str(&body).expect("topology");
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
        .goto(&format!("{}&agent=ws://{dead}/ws", agent.page_url()))
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
        .goto(&format!("{}&agent=javascript:alert(1)", agent.page_url()))
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
        .goto(&format!("{}&agent=ws://{late}/ws", agent.page_url()))
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
            .env("XDG_DATA_HOME", common::test_data_home())
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
    // The run has ended: the summary says what other programs took of the machine, and a
    // hardware thread with none of the run's threads on it (and no hand-over just shown) says
    // what other programs took of it over the run (measured), not "idle or other". Instants
    // through the run until one shows such a hardware thread (with the GIL, one thread
    // computes at a time: on two or more, most instants do).
    assert!(text.contains("other programs"), "{text}");
    let span = wait_for(
        &client,
        "the run's span",
        "const r = document.querySelector('[data-testid=playback] input.scrub');
         return r ? [+r.min, +r.max] : null;",
    )
    .await;
    let [start, end]: [u64; 2] = serde_json::from_value(span).expect("start and end");
    client
        .execute("window.postMessage({coreplay: 'pause'}, '*')", vec![])
        .await
        .expect("pause");
    let mut marks: Vec<String> = Vec::new();
    for i in 1..=40u64 {
        let t = start + (end - start) * i / 41;
        seek(&client, t).await;
        let shown = wait_for(
            &client,
            &format!("the cores at {t} ns"),
            &format!(
                "if (document.querySelector('[data-testid=clock]')?.dataset.t !== '{t}') return null;
                 return Array.from(document.querySelectorAll('[data-testid=cores] [data-testid=idle-mark]'))
                     .map(e => e.innerText);"
            ),
        )
        .await;
        marks.extend(serde_json::from_value::<Vec<String>>(shown).unwrap_or_default());
        if !marks.is_empty() {
            break;
        }
    }
    assert!(
        marks.iter().all(|m| m == "idle"
            || m.strip_prefix("other programs: ")
                .and_then(|p| p.strip_suffix(" %"))
                .is_some_and(|n| n.parse::<u32>().is_ok())),
        "{marks:?}"
    );
    assert!(
        !marks.is_empty() || agent_pus(&client).await.len() < 2,
        "no instant of the run showed a hardware thread without a thread of the run"
    );
    eprintln!("the cores of a gil run from the page, once it ended: {marks:?}");
    view_shot(&client, "[data-testid=cores]", "view-cores-gil-ended.png").await;

    // Its trace file is the one the agent kept: "download trace" offers those very bytes (the
    // page writes no trace itself).
    hook_downloads(&client).await;
    click(&client, "download").await;
    let saved = wait_for(
        &client,
        "the live run's download",
        "return window.__saved.length > 0 ? [window.__savedName, window.__saved[0].size] : null",
    )
    .await;
    assert!(
        saved[0]
            .as_str()
            .is_some_and(|n| n.starts_with("gil-run") && n.ends_with(".coreplay.gz")),
        "{saved}"
    );

    // The ended live run can be embedded: the agent kept it, and the embed code plays it.
    click(&client, "embed-code").await;
    let code = wait_for(
        &client,
        "the embed code of a live run",
        "return document.querySelector('[data-testid=embed-snippet]')?.value ?? null",
    )
    .await;
    let code = code.as_str().unwrap_or_default().to_string();
    let src = code
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no src in {code}"))
        .replace("&amp;", "&");
    assert!(src.contains("trace=") && src.contains("traces"), "{src}");
    let kept = src
        .split("trace=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap_or_default()
        .to_string();
    let same = client
        .execute_async(
            "const [kept, done] = arguments;
             (async () => {
               const a = new Uint8Array(await (await fetch(decodeURIComponent(kept))).arrayBuffer());
               const b = new Uint8Array(await window.__saved[0].arrayBuffer());
               done(a.length > 0 && a.length === b.length && a.every((x, i) => x === b[i])
                 ? true : `kept ${a.length} bytes, downloaded ${b.length}`);
             })().catch(e => done(String(e)));",
            vec![serde_json::Value::from(kept.clone())],
        )
        .await
        .expect("compare the download with the kept file");
    assert_eq!(same, serde_json::Value::Bool(true), "{kept}: {same}");
    client.goto(&src).await.expect("the embed loads");
    let shown = wait_for(
        &client,
        "the kept run in the embed",
        "const p = document.querySelector('[data-testid=embed] .problem');
         if (p) return 'problem: ' + p.innerText;
         const c = document.querySelector('[data-testid=embed] [data-testid=clock]');
         return c && Number(c.dataset.t) > 0 ? document.querySelector('[data-testid=embed]').innerText : null",
    )
    .await;
    let shown = shown.as_str().unwrap_or_default();
    assert!(!shown.starts_with("problem"), "{shown}");
    assert!(shown.contains("py-thread-"), "the run's threads: {shown}");
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
    // Two loops one after the other; the view shows the one that polled last, the second:
    // its 150 requests, its ticker and the blocker resolved (not the first loop's 151).
    let completed = wait_for(
        &client,
        "the completed count",
        "const c = document.querySelector('[data-testid=completed]'); return c && c.innerText",
    )
    .await;
    assert_eq!(completed, json!("152 futures resolved"));
    let shown = wait_for(
        &client,
        "which loop is shown",
        "const c = document.querySelector('[data-testid=loop-shown]'); return c && c.innerText",
    )
    .await;
    assert!(
        shown
            .as_str()
            .is_some_and(|s| s.contains("2 event loops") && s.contains("thread event-loop-blocked")),
        "{shown}"
    );
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
    view_shot(&client, "[data-testid=event-loop]", "view-event-loop.png").await;
    client.close().await.expect("close session");
}

/// The lock holder at `t` by a plain fold over the lock steps (independent of the page's
/// index): each thread's last step at or before `t`, releases ordered before acquires.
fn holder_at(events: &[coreplay_shared::event::Event], t: u64) -> Option<u32> {
    use coreplay_shared::event::{Event, LockOp};
    let mut steps: Vec<(u64, u8, u32, LockOp)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Lock { tid, at, op } if *at <= t => {
                let rank = match op {
                    LockOp::Release => 0,
                    LockOp::Request => 1,
                    LockOp::DropRequest => 2,
                    LockOp::Acquire => 3,
                };
                Some((*at, rank, *tid, *op))
            }
            _ => None,
        })
        .collect();
    steps.sort_by_key(|s| (s.0, s.1));
    let mut last = std::collections::HashMap::new();
    for (_, _, tid, op) in steps {
        last.insert(tid, op);
    }
    last.into_iter()
        .find(|(_, op)| *op == LockOp::Acquire)
        .map(|(tid, _)| tid)
}

async fn click(client: &Client, testid: &str) {
    client
        .execute(
            &format!("document.querySelector('[data-testid={testid}]').click()"),
            vec![],
        )
        .await
        .expect("click");
}

/// Screenshot of one element (a view), so each view is an artifact of its own. A WebDriver
/// element screenshot shows only the part inside the window, so the window grows to the
/// element's height for it (the cores view was cut off above its cores).
async fn view_shot(client: &Client, selector: &str, name: &str) {
    let el = client
        .find(fantoccini::Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector} shown: {e}"));
    let height = client
        .execute(
            "const r = arguments[0].getBoundingClientRect(); return Math.ceil(r.height)",
            vec![serde_json::to_value(&el).expect("element as argument")],
        )
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(900);
    let tall = u32::try_from(height + 250).unwrap_or(4000).clamp(900, 4000);
    client
        .set_window_size(1280, tall)
        .await
        .expect("grow the window");
    // From the top of the view (the screenshot does not scroll it there), clear of the sticky
    // playback bar.
    client
        .execute(
            "arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -60)",
            vec![serde_json::to_value(&el).expect("element as argument")],
        )
        .await
        .expect("scroll the view to the top");
    let png = el.screenshot().await.expect("element screenshot");
    client
        .set_window_size(1280, 900)
        .await
        .expect("restore the window");
    std::fs::write(artifact(name), png).expect("write screenshot");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn stepping_a_live_gil_run_shows_the_traces_lock_holder() {
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;
    let agent = Agent::start(&[]);
    open_lab(&client, &agent).await;
    pick(&client, "gil", "switch_interval_ms").await;
    set_params(&client, &[("threads", "4"), ("work", "6000")]).await;
    let recorder = record_next_run(agent.ws_url());
    tokio::time::sleep(Duration::from_millis(300)).await;
    click_run(&client).await;
    // Live: the lock is drawn once the first steps arrive; then pause and step.
    wait_for(
        &client,
        "a lock holder on the live run",
        "const h = document.querySelector('[data-testid=lock-holder]'); return h && h.dataset.tid !== '' && document.querySelector('[data-testid=progress]').dataset.running === 'true'",
    )
    .await;
    click(&client, "play").await;
    let mut seen: Vec<(u64, Option<u32>)> = Vec::new();
    for _ in 0..25 {
        click(&client, "step").await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        let v = client
            .execute(
                "return [document.querySelector('[data-testid=clock]').dataset.t,
                         document.querySelector('[data-testid=lock-holder]').dataset.tid]",
                vec![],
            )
            .await
            .expect("read clock and holder");
        let t: u64 = v[0].as_str().and_then(|s| s.parse().ok()).expect("clock");
        let holder = v[1].as_str().and_then(|s| s.parse().ok());
        seen.push((t, holder));
    }
    view_shot(&client, "[data-testid=cores]", "view-cores-gil.png").await;
    view_shot(&client, "[data-testid=timeline]", "view-timeline-gil.png").await;
    let (events, _) = tokio::time::timeout(Duration::from_secs(60), recorder)
        .await
        .expect("the run ends")
        .expect("recorder");
    assert!(
        seen.windows(2).all(|w| w[1].0 >= w[0].0),
        "steps move forwards: {seen:?}"
    );
    assert!(
        seen.iter()
            .map(|s| s.0)
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 5,
        "steps land on distinct times: {seen:?}"
    );
    assert!(seen.iter().any(|s| s.1.is_some()), "someone holds the lock");
    for (t, shown) in &seen {
        assert_eq!(
            *shown,
            holder_at(&events, *t),
            "holder shown at t = {t} ns differs from the trace"
        );
    }
    // The timeline's redraws are held back while events stream in (at most five a second);
    // once the run has ended it shows every event the page took in.
    let drawn = wait_for(
        &client,
        "the timeline drawn with the run's last events",
        "const p = document.querySelector('[data-testid=progress]');
         const c = document.querySelector('[data-testid=timeline] canvas');
         const m = p && p.innerText.match(/(\\d+) events from/);
         return p && p.dataset.running === 'false' && c && m && c.dataset.drawnEvents === m[1]
             && c.dataset.drawnToEnd === 'true' ? m[1] : null",
    )
    .await;
    assert_eq!(
        drawn.as_str().and_then(|s| s.parse::<usize>().ok()),
        Some(events.len()),
        "the page took in every event of the run"
    );
    client.close().await.expect("close session");
}

/// The page reads the agent's socket in a worker: a page that stops for seconds in the
/// middle of the busiest live run (here a script that keeps its main thread busy, as a long
/// frame or a slow machine would) still takes in every event, and the agent drops none for it.
/// The stall counts only if the run streamed, meanwhile, twice what the agent keeps for a
/// client that does not read (`MAX_QUEUED_BYTES`): a page reading on its main thread then
/// loses events (measured with the release agent: 217 k events lost to a 0.8 s stall).
/// How fast a run streams depends on the machine and what else it runs (CI streamed 4.9 MB/s,
/// one VM 3.1–5.8 MB/s from one run to the next), so the stall's length comes from a control
/// measured in the same run just before it: the pace of the stream over one second, and the
/// stall lasts long enough to carry twice the bytes needed at that pace (at least 3 s, at most
/// 25 s, inside WebDriver's 30 s script timeout).
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_page_busy_for_seconds_loses_no_events_of_a_live_run() {
    use coreplay_agent::server::hub::MAX_QUEUED_BYTES;
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;
    let agent = Agent::start(&[]);
    open_lab(&client, &agent).await;
    pick(&client, "gil", "switch_interval_ms").await;
    set_params(
        &client,
        &[
            ("threads", "64"),
            ("switch_interval_ms", "1"),
            ("work", "20000"),
        ],
    )
    .await;
    let so_far = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let recorder = record_next_run_timed(agent.ws_url(), so_far.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    click_run(&client).await;
    wait_for(
        &client,
        "the live run streaming",
        "const p = document.querySelector('[data-testid=progress]');
         return p && p.dataset.running === 'true' && /[1-9]\\d* events from/.test(p.innerText)",
    )
    .await;
    // The control: how fast this run streams here and now.
    let (paced_from, bytes_from) = (
        std::time::Instant::now(),
        so_far.load(std::sync::atomic::Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pace = (so_far.load(std::sync::atomic::Ordering::Relaxed) - bytes_from) as f64
        / paced_from.elapsed().as_secs_f64();
    let needed = 2 * MAX_QUEUED_BYTES;
    let stall_ms = (2.0 * needed as f64 / pace.max(1.0) * 1000.0).clamp(3000.0, 25000.0) as u64;
    eprintln!(
        "the run streams {:.1} MB/s; the page stays busy for {stall_ms} ms",
        pace / 1e6
    );
    let stall_from = std::time::Instant::now();
    client
        .execute(
            "const end = performance.now() + arguments[0]; while (performance.now() < end) {}",
            vec![json!(stall_ms)],
        )
        .await
        .expect("the page's main thread kept busy");
    let stall_to = std::time::Instant::now();
    // The debug agent runs this for about 35 s on 2 cores (800 k events); the limit
    // only guards against a run that never ends.
    let (events, _, came) = tokio::time::timeout(Duration::from_secs(300), recorder)
        .await
        .expect("the run ends")
        .expect("recorder");
    let streamed: usize = came
        .iter()
        .filter(|(at, _)| (stall_from..stall_to).contains(at))
        .map(|(_, bytes)| bytes)
        .sum();
    eprintln!(
        "{} events; {streamed} bytes streamed while the page was busy for {:?}",
        events.len(),
        stall_to - stall_from
    );
    let last = came.last().map(|(at, _)| *at);
    assert!(
        streamed > needed,
        "the run streamed only {streamed} bytes while the page was busy ({:?}; {:.1} MB/s \
         measured just before; the run's last events came {:?} after the stall began): too \
         little to tell",
        stall_to - stall_from,
        pace / 1e6,
        last.map(|l| l.saturating_duration_since(stall_from)),
    );
    // Once the run has ended the page says how many events it took in (and any dropped).
    let taken = wait_for(
        &client,
        "the page to take in the whole run",
        &format!(
            "const p = document.querySelector('[data-testid=progress]');
             if (!p || p.dataset.running !== 'false') return null;
             return p.innerText.includes('dropped') || p.innerText.includes('{} events from') ? p.innerText : null",
            events.len()
        ),
    )
    .await;
    let taken = taken.as_str().unwrap_or_default();
    assert!(!taken.contains("dropped"), "{taken}");
    assert!(
        taken.contains(&format!("{} events from", events.len())),
        "the page took in {taken:?}; the run had {} events ({streamed} bytes streamed while it was busy)",
        events.len()
    );
    client.close().await.expect("close session");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn every_core_shows_a_worker_during_parallel_compute() {
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;
    let agent = Agent::start(&[]);
    open_lab(&client, &agent).await;
    let pus = agent_pus(&client).await;
    pick(&client, "parallel-compute", "work").await;
    set_params(
        &client,
        &[("threads", &pus.len().to_string()), ("work", "60000")],
    )
    .await;
    let recorder = record_next_run(agent.ws_url());
    tokio::time::sleep(Duration::from_millis(300)).await;
    click_run(&client).await;
    // While it runs, the page follows it live: a rayon worker on a core.
    wait_for(
        &client,
        "a worker on a core while the run goes on",
        "if (document.querySelector('[data-testid=progress]')?.dataset.running !== 'true') return null;
         const cells = Array.from(document.querySelectorAll('.pu.live'));
         return cells.some(c => (c.querySelector('.tok.running')?.getAttribute('title') || '').startsWith('rayon-'));",
    )
    .await;
    screenshot(&client, "run-parallel-compute-live.png").await;
    // Before the run ends nothing is measured yet: a hardware thread with none of its threads
    // on it is neither called idle nor given a figure.
    let live_marks = client
        .execute(
            "if (document.querySelector('[data-testid=progress]')?.dataset.running !== 'true') return [];
             return Array.from(document.querySelectorAll('[data-testid=cores] [data-testid=idle-mark]'))
                 .map(e => e.innerText);",
            vec![],
        )
        .await
        .expect("idle marks");
    let live_marks: Vec<String> = serde_json::from_value(live_marks).unwrap_or_default();
    assert!(
        live_marks.iter().all(|m| m == "not this run"),
        "{live_marks:?}"
    );
    // Let the pool run a while (300 ms of the run drawn) before stopping it.
    wait_for(
        &client,
        "300 ms of the run followed",
        "return +(document.querySelector('[data-testid=clock]')?.dataset.t || 0) > 300000000",
    )
    .await;
    click(&client, "stop").await;
    wait_for(
        &client,
        "the run to stop",
        "return document.querySelector('[data-testid=progress]')?.dataset.running === 'false'",
    )
    .await;
    // The run as a second client recorded it is the control: the page, stepped through it,
    // shows on each hardware thread the thread the run says ran there. Where the run had a
    // rayon worker on every hardware thread at once (on a quiet machine, nearly all along;
    // beside another busy program the kernel may keep both workers on one core for the
    // whole run, which is then what the page must show), the page shows exactly that.
    let (events, _) = tokio::time::timeout(Duration::from_secs(60), recorder)
        .await
        .expect("the run ends")
        .expect("recorder");
    let mut replay = coreplay_shared::replay::Replay::new();
    replay.extend(&events);
    replay.prepare();
    let (start, end) = (replay.start(), replay.end());
    assert!(end > start, "the run was recorded");
    let running_at = |t: u64| -> BTreeMap<String, String> {
        replay
            .cpus_at(t)
            .into_iter()
            .filter_map(|c| {
                c.running
                    .map(|(tid, _)| (c.cpu.to_string(), tid.to_string()))
            })
            .collect()
    };
    let mut instants: Vec<u64> = (1..40u64).map(|i| start + (end - start) * i / 40).collect();
    // The first instants where every hardware thread runs a worker, if the run has any.
    let all_busy: Vec<u64> = (1..400u64)
        .map(|i| start + (end - start) * i / 400)
        .filter(|&t| running_at(t).len() == pus.len())
        .collect();
    let busy_share = all_busy.len();
    let all_busy: Vec<u64> = all_busy.into_iter().take(5).collect();
    instants.extend(&all_busy);
    let mut shown_all = 0;
    for t in instants {
        seek(&client, t).await;
        let shown = wait_for(
            &client,
            &format!("the cores at {t} ns"),
            &format!(
                "if (document.querySelector('[data-testid=clock]')?.dataset.t !== '{t}') return null;
                 const out = {{}};
                 document.querySelectorAll('.pu.live').forEach(c => {{
                     if (c.dataset.running) out[c.dataset.pu] = c.dataset.running; }});
                 return out;"
            ),
        )
        .await;
        let shown: BTreeMap<String, String> = serde_json::from_value(shown).unwrap_or_default();
        assert_eq!(
            shown,
            running_at(t),
            "at {t} ns: the page vs the recorded run"
        );
        if shown.len() == pus.len() {
            shown_all += 1;
        }
    }
    assert!(
        all_busy.is_empty() || shown_all > 0,
        "the run had a worker on every hardware thread at {all_busy:?}, the page never showed it"
    );
    eprintln!(
        "parallel-compute: {busy_share} of 399 instants of the recorded run had a worker on every \
         hardware thread"
    );
    view_shot(&client, "[data-testid=cores]", "view-cores-parallel.png").await;
    view_shot(&client, "[data-testid=compare]", "view-compare.png").await;
    client.close().await.expect("close session");
}

/// The hardware threads of the agent's machine, as the page lists them before any run.
async fn agent_pus(client: &Client) -> Vec<u32> {
    let pus = wait_for(client, "the topology", CONNECTED_PUS).await;
    serde_json::from_value(pus).expect("indices")
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn a_python_program_is_watched_from_the_page() {
    page_built();
    let driver = Driver::start();
    let client = driver.client().await;
    let agent = Agent::start(&[]);
    open_lab(&client, &agent).await;
    // The agent offers the shipped Python examples (python3 is on this machine).
    let offered = wait_for(
        &client,
        "the watch picker",
        "const s = document.querySelector('[data-testid=watch-program]');
         return s && Array.from(s.options).map(o => o.value)",
    )
    .await;
    let offered: Vec<String> = serde_json::from_value(offered).expect("names");
    assert!(offered.contains(&"cpu_threads".to_string()), "{offered:?}");
    client
        .execute(
            "const s = document.querySelector('[data-testid=watch-program]');
             s.value = 'cpu_threads'; s.dispatchEvent(new Event('change', {bubbles: true}));
             document.querySelector('[data-testid=watch]').click();",
            vec![],
        )
        .await
        .expect("start the watch");
    // The run is shown as a watch of that program, and its compute threads appear by name.
    let state = "return [document.querySelector('.now-showing')?.innerText,
                  Array.from(document.querySelectorAll('.proc .tok')).map(t => t.innerText),
                  document.querySelector('[data-testid=progress]')?.innerText]";
    let mut seen = serde_json::Value::Null;
    for _ in 0..300 {
        seen = client.execute(state, vec![]).await.expect("page state");
        let names: Vec<String> = serde_json::from_value(seen[1].clone()).unwrap_or_default();
        if seen[0].as_str().unwrap_or_default().contains("watch")
            && (0..4).all(|i| names.contains(&format!("compute-{i}")))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(&client, "run-watch.png").await;
    let names: Vec<String> = serde_json::from_value(seen[1].clone()).unwrap_or_default();
    assert!(
        (0..4).all(|i| names.contains(&format!("compute-{i}"))),
        "the watched program's compute threads are shown by name; the page shows {seen}"
    );
    let summary = wait_for(
        &client,
        "the watch's summary",
        "const s = document.querySelector('[data-testid=summary]'); return s && s.innerText",
    )
    .await;
    assert!(
        summary.as_str().unwrap_or_default().contains("completed"),
        "{summary}"
    );
    view_shot(&client, "[data-testid=cores]", "view-cores-watch.png").await;
    client.close().await.expect("close session");
}
