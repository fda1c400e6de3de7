//! The embedding page's messages: each `postMessage` meant for coreplay becomes a playback
//! command for the store (which answers with where playback stands), or an error answer;
//! messages meant for other scripts are left alone. The API itself is in `embed.rs`.

use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::{
    embed::{self, Notice},
    state::Action,
    store::Store,
};

/// Listens for the messages while the component lives.
#[hook]
pub fn use_embed_messages(store: &Store) {
    let store = store.clone();
    use_effect_with((), move |_| {
        let listener = web_sys::window().map(|w| {
            EventListener::new(&w, "message", move |e| {
                let Some(e) = e.dyn_ref::<web_sys::MessageEvent>() else {
                    return;
                };
                let Some(json) = js_sys::JSON::stringify(&e.data())
                    .ok()
                    .and_then(|s| s.as_string())
                else {
                    return;
                };
                match embed::parse_embed_message(&json) {
                    Ok(None) => {}
                    // Before the run has loaded, commands wait for it (in order).
                    Ok(Some(cmd)) => store.apply(Action::Steer(cmd)),
                    Err(message) => embed::post(&Notice::Error { message }),
                }
            })
        });
        move || drop(listener)
    });
}
