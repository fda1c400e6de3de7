//! What is shown: the line above the player naming the shown run and where it came from,
//! with its actions (back to the newest run, download it as a trace file, copy the iframe
//! snippet that embeds it).

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

/// Offers the shown run as a trace file.
fn download(rec: &RunRecord, agent_version: &str) -> Result<(), String> {
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
    let text = to_text(&header, &rec.events, summary);
    let name = format!(
        "{}-run{}.coreplay.gz",
        rec.view.scenario,
        rec.view.run % 1_000_000
    );
    wasm_bindgen_futures::spawn_local(async move {
        let _ = js::download_gzip(&name, &text).await;
    });
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
    let trace_url = rec.url().map(str::to_string);
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
                "{{\"events\":{},\"bytes\":{},\"text_bytes\":{},\"read_ms\":{:.1},\"decode_ms\":{:.1},\"apply_ms\":{:.1}}}",
                rec.view.events, l.bytes, l.text_bytes, l.read_ms, l.decode_ms, l.apply_ms))}>
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
                if trace_url.is_some() {
                    <button onclick={on_embed} data-testid="embed-code"
                            title="copy an iframe snippet showing this run at this time">{ "copy embed code" }</button>
                }
            </div>
            if let Some(code) = &*embed_code {
                <textarea class="embed-code" readonly=true rows="3" data-testid="embed-snippet" value={code.clone()} />
            }
        </>
    }
}
