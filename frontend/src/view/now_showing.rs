//! What is shown: the line above the player naming the shown run and where it came from,
//! with its actions (back to the newest run, download it as a trace file, copy the iframe
//! snippet that embeds it).

use coreplay_shared::Fixed;
use std::rc::Rc;

use yew::prelude::*;

use crate::{
    js,
    options::{self, ViewKind},
    state::{Action, RECORDED_RUN_BASE, RunRecord, RunSource, run_label},
    store::Store,
};

/// Properties of [`NowShowing`].
#[derive(Debug, Properties, PartialEq)]
pub struct NowShowingProps {
    /// The page's state.
    pub store: Store,
    /// Changes whenever the page redraws.
    pub draws: u64,
    /// The views shown (an embed snippet shows the same).
    pub views: Rc<Vec<ViewKind>>,
}

/// The shown run as a trace file's text, with the file name it is offered under (without
/// its extension).
fn trace_text(rec: &RunRecord, agent_version: &str) -> Result<(String, String), String> {
    use coreplay_shared::trace_file::{Header, Machine, rfc3339_utc, to_text};
    let summary = rec
        .view
        .summary
        .as_deref()
        .ok_or("the run is still going; download it once it ends")?;
    let topology = rec
        .topology
        .as_deref()
        .ok_or("the run's machine is unknown")?;
    // A recorded run keeps when and where it was recorded; a live one is recorded now, here.
    let recorded_at = rec
        .recorded_at
        .clone()
        .unwrap_or_else(|| rfc3339_utc((js_sys::Date::now() / 1000.0) as u64));
    let machine = rec
        .recorded_machine
        .clone()
        .unwrap_or_else(|| Machine::from_topology(topology));
    let header = Header::new(
        agent_version,
        recorded_at,
        machine,
        topology,
        rec.view.scenario,
        rec.view.params.clone(),
        rec.view.fidelity,
    );
    let name = format!("{}-run{}", rec.view.scenario, rec.view.run % 1_000_000);
    Ok((name, to_text(&header, &rec.events, summary)))
}

/// Offers the shown run as a trace file.
fn download(rec: &RunRecord, agent_version: &str) -> Result<(), String> {
    let (name, text) = trace_text(rec, agent_version)?;
    wasm_bindgen_futures::spawn_local(async move {
        let _ = js::download_gzip(&format!("{name}.coreplay.gz"), &text).await;
    });
    Ok(())
}

/// The page's own files, as [`js::page_parts`] reads them.
#[derive(serde::Deserialize)]
struct PageFiles {
    index: String,
    css: String,
    glue: String,
    snippets: Vec<(String, String)>,
    wasm_gz: String,
}

/// Writes the standalone file (the page and the shown run in one HTML file, as `coreplay
/// export --format html` writes it) and offers it as a download.
async fn standalone_file(name: String, text: String, query: String) -> Result<(), String> {
    use coreplay_shared::standalone::{self, PageParts, Run};
    let parts = js::page_parts().await.map_err(|e| js::error_text(&e))?;
    let files: PageFiles = serde_json::from_str(&parts.as_string().unwrap_or_default())
        .map_err(|e| format!("the page's files could not be read: {e}"))?;
    let run_gz = js::gzip_base64(&text)
        .await
        .map_err(|e| js::error_text(&e))?
        .as_string()
        .ok_or("compressing the run gave nothing")?;
    let snippets: Vec<(&str, &str)> = files
        .snippets
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let file_name = format!("{name}.coreplay.gz");
    let html = standalone::assemble(
        &PageParts {
            index_html: &files.index,
            css: &files.css,
            glue: &files.glue,
            snippets: &snippets,
            wasm_gz_base64: &files.wasm_gz,
        },
        &Run {
            name: &file_name,
            gz_base64: &run_gz,
            query: &query,
        },
        &|b| js::base64(b),
    )
    .map_err(|e| e.to_string())?;
    js::download_text(&format!("{name}.html"), &html, "text/html");
    Ok(())
}

/// The line naming the shown run, when one is shown.
#[function_component(NowShowing)]
pub fn now_showing(props: &NowShowingProps) -> Html {
    let embed_code = use_state(|| None::<String>);
    let store = &props.store;
    let st = store.read();
    let Some(rec) = st.shown() else {
        return html! {};
    };
    let recorded = rec.view.run >= RECORDED_RUN_BASE;
    let agent_version = st
        .hello
        .as_ref()
        .map_or_else(|| "page".to_string(), |h| h.agent_version.clone());
    let on_download = {
        let store = store.clone();
        let agent_version = agent_version.clone();
        Callback::from(move |_| {
            let result = store
                .read()
                .shown()
                .map(|rec| download(rec, &agent_version));
            if let Some(Err(e)) = result {
                store.apply(Action::Problem(e));
            }
        })
    };
    let on_html = {
        let store = store.clone();
        let views = Rc::clone(&props.views);
        let (t, speed) = (st.playback.t, st.playback.speed);
        let agent_version = agent_version.clone();
        Callback::from(move |_| {
            let shown = store
                .read()
                .shown()
                .map(|rec| trace_text(rec, &agent_version));
            match shown {
                Some(Ok((name, text))) => {
                    // It plays as it opens, like `coreplay export --format html`.
                    let query = format!("autoplay&{}", options::show_query(&views, t, speed));
                    let store = store.clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        if let Err(e) = standalone_file(name, text, query).await {
                            store.apply(Action::Problem(format!(
                                "could not make the HTML file: {e}"
                            )));
                        }
                    });
                }
                Some(Err(e)) => store.apply(Action::Problem(e)),
                None => {}
            }
        })
    };
    let standalone = options::standalone();
    let trace_url = rec.url().map(str::to_string).filter(|_| !standalone);
    let on_embed = {
        let (embed_code, views, t, speed) = (
            embed_code.clone(),
            Rc::clone(&props.views),
            st.playback.t,
            st.playback.speed,
        );
        let trace_url = trace_url.clone();
        Callback::from(move |_| {
            let Some(url) = &trace_url else { return };
            let code = options::embed_code(
                &options::page_base(),
                &options::absolute(url),
                &views,
                t,
                speed,
            );
            let copy = code.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let _ = js::copy_text(&copy).await;
            });
            embed_code.set(Some(code));
        })
    };
    let show_newest = {
        let store = store.clone();
        Callback::from(move |_| store.apply(Action::ShowNewest))
    };
    html! {
        <>
            <div class="now-showing" data-load={st.last_load.filter(|_| recorded).map(|l| format!(
                "{{\"events\":{},\"bytes\":{},\"text_bytes\":{},\"read_ms\":{},\"decode_ms\":{},\"apply_ms\":{}}}",
                rec.view.events, l.bytes, l.text_bytes, Fixed(l.read_ms, 1), Fixed(l.decode_ms, 1), Fixed(l.apply_ms, 1)))}>
                { if recorded { format!("Showing a recorded run: {}", run_label(rec)) } else { format!("Showing run {}: {}", rec.view.run, run_label(rec)) } }
                if let RunSource::Recorded { name, .. } = &rec.view.source {
                    <span class="note" data-testid="recorded-from">
                        { format!("from {name}; recorded on {}{}", rec.machine.clone().unwrap_or_default(),
                            rec.recorded_at.as_ref().map(|t| format!(" at {t}")).unwrap_or_default()) }
                    </span>
                }
                if st.selected.is_some() {
                    <button onclick={show_newest}>{ "back to the newest run" }</button>
                }
                <button onclick={on_download} disabled={rec.view.summary.is_none()} data-testid="download"
                        title="save this run as a trace file (.coreplay.gz) to replay or share">{ "download trace" }</button>
                if !standalone {
                    <button onclick={on_html} disabled={rec.view.summary.is_none()} data-testid="download-html"
                            title="save the page and this run as one HTML file that plays anywhere, with no server and no network (an LMS upload, an e-mail attachment, a file on disk)">{ "download as one HTML file" }</button>
                }
                if trace_url.is_some() {
                    <button onclick={on_embed} data-testid="embed-code"
                            title="copy an iframe snippet showing this run at this time">{ "copy embed code" }</button>
                } else if rec.view.source == RunSource::Live && !standalone {
                    <button disabled=true data-testid="embed-code"
                            title={ if rec.view.summary.is_none() {
                                "the agent keeps the run when it ends; then it can be embedded"
                            } else {
                                "this agent keeps no runs (start it with --traces DIR); download the trace or the HTML file instead"
                            } }>{ "copy embed code" }</button>
                }
            </div>
            if let Some(code) = &*embed_code {
                <textarea class="embed-code" readonly=true rows="3" data-testid="embed-snippet" value={code.clone()} />
            }
        </>
    }
}
