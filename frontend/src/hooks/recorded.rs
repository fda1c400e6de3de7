//! The recorded runs a page opens by itself: the address's `trace=` at start, the gallery's
//! list (not in embed mode, except for a lesson), and, with no agent, nothing shown and no
//! lesson, the gallery's first run.

use std::rc::Rc;

use yew::prelude::*;

use crate::{
    hooks::prefers,
    load::{self, GalleryEntry},
    options::{self, PageOptions},
    state::Conn,
    store::Store,
};

/// Opens what the page asks for; returns the gallery (empty until it has been fetched).
#[hook]
pub fn use_recorded_runs(store: &Store, opts: &Rc<PageOptions>) -> Rc<Vec<GalleryEntry>> {
    let gallery = use_state(|| Rc::new(Vec::<GalleryEntry>::new()));
    let auto_loaded = use_mut_ref(|| false);
    {
        let (store, opts, gallery) = (store.clone(), Rc::clone(opts), gallery.clone());
        use_effect_with((), move |_| {
            if let Some(url) = opts.trace.clone() {
                let autoplay = opts.autoplay && !prefers("(prefers-reduced-motion: reduce)");
                load::spawn_url(store, url.clone(), url, autoplay);
            }
            // The standalone file holds one run and has no gallery beside it.
            if (!opts.embed || opts.lesson.is_some()) && !options::standalone() {
                wasm_bindgen_futures::spawn_local(async move {
                    if let Ok(list) = load::gallery().await {
                        gallery.set(Rc::new(list));
                    }
                });
            }
        });
    }
    // With no agent and nothing shown, show a real recorded run at once.
    let first = {
        let st = store.read();
        (st.runs.is_empty()
            && !*auto_loaded.borrow()
            && matches!(st.conn, Conn::Unreachable { .. } | Conn::Offline)
            && opts.trace.is_none()
            // The lessons ask for a prediction before any run is shown.
            && !opts.learn())
        .then(|| gallery.first())
        .flatten()
    };
    if let Some(first) = first {
        *auto_loaded.borrow_mut() = true;
        load::spawn_opening(
            store.clone(),
            format!("gallery/{}", first.file),
            first.title.clone(),
        );
    }
    Rc::clone(&gallery)
}
