//! What is shown: the line above the player naming the shown run and where it came from,
//! with its actions (back to the newest run, download it as a trace file, copy the iframe
//! snippet that embeds it).

use coreplay_shared::Fixed;
use coreplay_shared::{json, json_struct};
use std::rc::Rc;

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
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

/// Where the shown run's trace file is: its bytes as the page read them (a recorded run), or
/// the agent's kept file (a live run that ended).
enum FileAt {
    Bytes(Uint8Array),
    Url(String),
}

/// Where the shown run's trace file is, or why there is none. The page never writes a trace
/// itself: the agent is the one writer of trace files, and a download is the file as it was
/// recorded.
fn trace_file(rec: &RunRecord) -> Result<FileAt, &'static str> {
    if let Some(bytes) = &rec.file {
        return Ok(FileAt::Bytes(bytes.0.clone()));
    }
    if rec.view.running() {
        return Err("the run is still going; download it once it ends");
    }
    match (&rec.view.source, &rec.view.kept) {
        (RunSource::Live, Some(url)) => Ok(FileAt::Url(url.clone())),
        (RunSource::Live, None) => Err(
            "this agent keeps no runs (start it with --traces DIR), so there is no trace file of this run",
        ),
        (RunSource::Recorded { .. }, _) => Err("this run's file is no longer at hand"),
    }
}

/// Runs `offer` in the background on the shown run's trace file and the name it is offered
/// under (without its extension); what goes wrong goes to the status line, after `failed`.
fn with_trace_file<F, Fut>(store: &Store, failed: &'static str, offer: F)
where
    F: FnOnce(String, FileAt) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + 'static,
{
    let Some((name, file)) = store.read().shown().map(|rec| {
        let name = format!("{}-run{}", rec.view.scenario, rec.view.run % 1_000_000);
        (name, trace_file(rec))
    }) else {
        return;
    };
    match file {
        Ok(at) => {
            let (store, done) = (store.clone(), offer(name, at));
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = done.await {
                    store.apply(Action::Problem(format!("{failed}: {e}")));
                }
            });
        }
        Err(e) => store.apply(Action::Problem(e.to_string())),
    }
}

/// The trace file's bytes, gzip-compressed.
async fn file_bytes(at: FileAt) -> Result<Uint8Array, String> {
    let bytes = match at {
        FileAt::Bytes(bytes) => bytes,
        FileAt::Url(url) => js::fetch_bytes(&url, crate::load::MAX_FILE_BYTES as f64)
            .await
            .map_err(|e| js::error_text(&e))?
            .dyn_into::<Uint8Array>()
            .map_err(|_| "the browser returned no bytes")?,
    };
    js::gzipped(&bytes)
        .await
        .map_err(|e| js::error_text(&e))?
        .dyn_into::<Uint8Array>()
        .map_err(|_| "compressing the run gave nothing".to_string())
}

/// Offers the shown run's trace file.
async fn download(name: String, at: FileAt) -> Result<(), String> {
    let gz = file_bytes(at).await?;
    js::download_bytes(&format!("{name}.coreplay.gz"), &gz, "application/gzip");
    Ok(())
}

/// The page's own files, as [`js::page_parts`] reads them.
struct PageFiles {
    index: String,
    css: String,
    glue: String,
    snippets: Vec<(String, String)>,
    wasm_gz: String,
}
json_struct!(PageFiles {
    index,
    css,
    glue,
    snippets,
    wasm_gz
});

/// Writes the standalone file (the page and the shown run in one HTML file, as `coreplay
/// export --format html` writes it) and offers it as a download.
async fn standalone_file(name: String, at: FileAt, query: String) -> Result<(), String> {
    use coreplay_shared::standalone::{self, PageParts, Run};
    let parts = js::page_parts().await.map_err(|e| js::error_text(&e))?;
    let files: PageFiles = json::from_str(&parts.as_string().unwrap_or_default())
        .map_err(|e| format!("the page's files could not be read: {e}"))?;
    let run_gz = js::base64_array(&file_bytes(at).await?);
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
    let on_download = {
        let store = store.clone();
        Callback::from(move |_| {
            with_trace_file(&store, "could not download the run", download);
        })
    };
    let on_html = {
        let store = store.clone();
        let views = Rc::clone(&props.views);
        let (t, speed) = (st.playback.t, st.playback.speed);
        Callback::from(move |_| {
            // It plays as it opens, like `coreplay export --format html`.
            let query = format!("autoplay&{}", options::show_query(&views, t, speed));
            with_trace_file(&store, "could not make the HTML file", |name, at| {
                standalone_file(name, at, query)
            });
        })
    };
    // Why the run cannot be downloaded, if it cannot.
    let no_file = trace_file(rec).err();
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
                <button onclick={on_download} disabled={no_file.is_some()} data-testid="download"
                        title={no_file.unwrap_or("save this run as a trace file (.coreplay.gz) to replay or share")}>{ "download trace" }</button>
                if !standalone {
                    <button onclick={on_html} disabled={no_file.is_some()} data-testid="download-html"
                            title={no_file.unwrap_or("save the page and this run as one HTML file that plays anywhere, with no server and no network (an LMS upload, an e-mail attachment, a file on disk)")}>{ "download as one HTML file" }</button>
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
