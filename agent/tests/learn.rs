//! The Learn path end to end in headless Chromium: every lesson on a static host (the
//! gallery's recorded runs, no agent) and lessons run by the real agent, each explanation
//! judged against the run's own figures (read from the trace file, or recorded by a second
//! WebSocket client), and the page keeping still while a run measures. Screenshots of every
//! lesson at 1280×800 land in `target/test-artifacts/`.
//!
//! `#[ignore]`d like the other browser tests: `scripts/test.sh` runs them with `--ignored`.

mod common;
#[path = "common/driver.rs"]
mod driver;
#[path = "common/static_server.rs"]
mod static_server;

use std::path::PathBuf;

use common::Agent;
use coreplay_shared::{replay::Replay, summary::Summary, trace_file::TraceFile};
use driver::{Driver, record_next_run, wait_for};
use fantoccini::Client;
use static_server::{StaticServer, errors};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn page_built() {
    let index = repo().join("dist/index.html");
    assert!(
        index.exists(),
        "{} is missing: build the page first (scripts/test.sh)",
        index.display()
    );
}

async fn screenshot(client: &Client, name: &str) {
    let dir = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(name), png).expect("write screenshot");
}

async fn js(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.expect("script runs")
}

fn ms(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// A figure of `summary` (and its events) that lesson `name`'s explanation must quote.
fn figure(name: &str, summary: &Summary, replay: &Replay) -> String {
    match name {
        "machine" | "watch" => {
            let peak = replay.peak_running().expect("something ran").0;
            format!("at most {peak} at once")
        }
        "parallel" | "gil" | "processes" => {
            format!("{:.2}×", summary.speedup.expect("a speedup"))
        }
        "oversubscribed" => {
            let base = summary.baseline.as_ref().expect("a baseline").wall_ns;
            format!("{:.2}×", summary.wall_ns as f64 / base as f64)
        }
        "io" => {
            let v = summary
                .variants
                .iter()
                .find(|v| v.label.contains("event loop"))
                .expect("an event-loop variant");
            format!("in {};", ms(v.wall_ns))
        }
        "event-loop" => {
            let t = summary.tasks.as_ref().expect("task totals");
            format!("{} times", t.polls)
        }
        "blocking" => {
            let p50 = |prefix: &str| {
                summary
                    .variants
                    .iter()
                    .find(|v| v.label.starts_with(prefix))
                    .and_then(|v| v.requests.as_ref())
                    .expect("latencies")
                    .p50_ns
            };
            format!("within {}", ms(p50("with ")))
        }
        other => panic!("no figure for lesson {other}"),
    }
}

fn read_trace(file: &str) -> TraceFile {
    coreplay_agent::record::read_file(&repo().join("gallery").join(file)).expect("gallery trace")
}

/// Every lesson on a static host: the question comes first (no run before a prediction),
/// the recorded run plays, and the explanation quotes that run's own figure.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn every_lesson_teaches_from_a_recorded_run_on_a_static_host() {
    page_built();
    let site = StaticServer::start(repo().join("dist"));
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .set_window_size(1280, 800)
        .await
        .expect("window size");
    // The bare page is the Learn path.
    client.goto(&site.url()).await.expect("page loads");
    let first = wait_for(
        &client,
        "the first lesson",
        "return document.querySelector('[data-testid=lesson]')?.dataset.lesson ?? null",
    )
    .await;
    assert_eq!(first, "machine", "a newcomer starts at the first lesson");
    screenshot(&client, "learn-landing.png").await;

    let lessons = [
        ("machine", "parallel-compute.coreplay.gz"),
        ("parallel", "parallel-compute.coreplay.gz"),
        ("oversubscribed", "oversubscribed.coreplay.gz"),
        ("gil", "gil.coreplay.gz"),
        ("processes", "process-pool.coreplay.gz"),
        ("io", "async-vs-threads.coreplay.gz"),
        ("event-loop", "io-async.coreplay.gz"),
        ("blocking", "event-loop-blocked.coreplay.gz"),
        ("watch", "python-cpu-threads.coreplay.gz"),
    ];
    for (name, file) in lessons {
        client
            .goto(&format!("{}?lesson={name}", site.url()))
            .await
            .expect("lesson loads");
        wait_for(
            &client,
            "the lesson's play buttons",
            "return document.querySelectorAll('[data-testid=lesson-play]').length > 0",
        )
        .await;
        let before = js(
            &client,
            "return {player: !!document.querySelector('.player'),
                     disabled: Array.from(document.querySelectorAll('[data-testid=lesson-play]')).every(b => b.disabled),
                     terms: document.querySelectorAll('.lesson .term').length,
                     defined: Array.from(document.querySelectorAll('.lesson .term-def')).every(d => d.textContent.length > 20)}",
        )
        .await;
        assert_eq!(
            before["player"], false,
            "{name}: no run before a prediction"
        );
        assert_eq!(
            before["disabled"], true,
            "{name}: play waits for a prediction"
        );
        assert!(
            before["terms"].as_u64().unwrap_or(0) >= 3,
            "{name}: {before}"
        );
        assert_eq!(before["defined"], true, "{name}: every term explained");
        // Predict (the first answer), then play the 2-hardware-thread recording.
        js(
            &client,
            "const r = document.querySelector('[data-testid=predict] input[type=radio]');
             r.click();",
        )
        .await;
        js(
            &client,
            &format!(
                "document.querySelector('[data-testid=lesson-play][data-file=\"{file}\"]').click()"
            ),
        )
        .await;
        let text = wait_for(
            &client,
            "the explanation",
            "return document.querySelector('[data-testid=lesson-explain]')?.innerText ?? null",
        )
        .await;
        let text = text.as_str().unwrap_or_default().to_string();
        let trace = read_trace(file);
        let mut replay = Replay::new();
        replay.extend(&trace.events);
        replay.prepare();
        let want = figure(name, &trace.summary, &replay);
        assert!(
            text.contains(&want),
            "{name}: the explanation quotes the run's figure {want:?}:\n{text}"
        );
        assert!(text.contains("You predicted"), "{name}: {text}");
        // What to look at, and the step to the next interesting moment moves the cursor.
        let moved = js(
            &client,
            "const b = document.querySelector('[data-testid=lesson-moment]'); if (!b) return 'no button';
             b.click(); return 'clicked';",
        )
        .await;
        assert_eq!(moved, "clicked", "{name}");
        screenshot(&client, &format!("lesson-{name}.png")).await;
        // The whole lesson, to look at.
        js(&client, "window.scrollTo(0, 0)").await;
        client
            .set_window_size(1280, 2600)
            .await
            .expect("tall window");
        screenshot(&client, &format!("lesson-{name}-full.png")).await;
        client
            .set_window_size(1280, 800)
            .await
            .expect("window size");
        assert_eq!(errors(&client).await, Vec::<String>::new(), "{name}");
    }
    // Progress is kept: the list marks the lessons run.
    let done = js(
        &client,
        "return document.querySelectorAll('.lessons li.done').length",
    )
    .await;
    assert_eq!(done, 9, "every lesson marked done");
    // A lesson embedded in another page: no list, the lesson itself.
    client
        .goto(&format!("{}?lesson=gil&embed", site.url()))
        .await
        .expect("embed loads");
    let embedded = wait_for(
        &client,
        "the embedded lesson",
        "return document.querySelector('[data-testid=lesson]') ? !document.querySelector('.lessons') : null",
    )
    .await;
    assert_eq!(embedded, true);
    screenshot(&client, "lesson-gil-embed.png").await;
    client.close().await.expect("close session");
}

/// Every lesson run by the real agent on this machine: the page keeps still while each run
/// measures (nothing on the page changes at all), then explains it with the figures a second
/// client recorded of the same run.
#[tokio::test]
#[ignore = "needs chromium, chromedriver and dist/; run by scripts/test.sh"]
async fn every_lesson_runs_here_and_the_page_keeps_still_while_it_measures() {
    page_built();
    let agent = Agent::start(&[]);
    let driver = Driver::start();
    let client = driver.client().await;
    client
        .set_window_size(1280, 800)
        .await
        .expect("window size");
    for name in [
        "parallel",
        "machine",
        "oversubscribed",
        "gil",
        "processes",
        "io",
        "event-loop",
        "blocking",
        "watch",
    ] {
        client
            .goto(&format!("{}?lesson={name}", agent.base_url()))
            .await
            .expect("page loads");
        wait_for(
            &client,
            "the run button",
            "return document.querySelector('[data-testid=lesson-run]') ? true : null",
        )
        .await;
        let recorder = record_next_run(agent.ws_url());
        // Every change to the page is counted from here.
        js(
            &client,
            "window.__mutations = 0;
             new MutationObserver(l => { window.__mutations += l.length; })
               .observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});",
        )
        .await;
        js(
            &client,
            "document.querySelector('[data-testid=predict] input[type=radio]').click();",
        )
        .await;
        wait_for(
            &client,
            "the run button, once predicted",
            "const b = document.querySelector('[data-testid=lesson-run]'); if (b.disabled) return null;
             b.click(); return true;",
        )
        .await;
        wait_for(
            &client,
            "the measuring note",
            "return document.querySelector('[data-testid=measuring]') || document.querySelector('[data-testid=lesson-explain]') ? true : null",
        )
        .await;
        // From the note on, nothing changes until the run ends.
        js(&client, "window.__mutations = 0;").await;
        let mut samples = Vec::new();
        loop {
            let v = js(
                &client,
                "return {measuring: !!document.querySelector('[data-testid=measuring]'), n: window.__mutations}",
            )
            .await;
            if v["measuring"] != true {
                break;
            }
            samples.push(v["n"].as_u64().unwrap_or(u64::MAX));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            samples.iter().all(|&n| n == 0),
            "{name}: the page changed while the run measured: {samples:?}"
        );
        if name == "parallel" {
            assert!(
                samples.len() >= 2,
                "the run measured for a while (it computes ~0.5 s): {samples:?}"
            );
        }
        let (events, summary) = recorder.await.expect("recorder");
        let text = wait_for(
            &client,
            "the explanation",
            "return document.querySelector('[data-testid=lesson-explain]')?.innerText ?? null",
        )
        .await;
        let text = text.as_str().unwrap_or_default().to_string();
        let mut replay = Replay::new();
        replay.extend(&events);
        replay.prepare();
        let want = figure(name, &summary, &replay);
        assert!(
            text.contains(&want),
            "{name}: the explanation quotes this run's figure {want:?}:\n{text}"
        );
        // And the run plays.
        wait_for(
            &client,
            "the player",
            "return document.querySelector('.lesson-player .player') ? true : null",
        )
        .await;
        screenshot(&client, &format!("lesson-{name}-live.png")).await;
    }
    client.close().await.expect("close session");
}
