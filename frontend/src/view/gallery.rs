//! The gallery: the recorded runs that come with the page, one list per machine they were
//! recorded on; a click opens one.

use std::rc::Rc;

use crate::view::el;
use yew::prelude::*;

use crate::{
    load::{self, GalleryEntry},
    store::Store,
};

/// Properties of [`Gallery`].
#[derive(Debug, Properties, PartialEq)]
pub struct GalleryProps {
    /// Where an opened run goes.
    pub store: Store,
    /// The gallery's runs, in the order its index names them.
    pub entries: Rc<Vec<GalleryEntry>>,
    /// Whether the list starts open.
    pub open: bool,
}

/// The gallery, when it has runs.
#[function_component(Gallery)]
pub fn gallery(props: &GalleryProps) -> Html {
    let entries = &props.entries;
    if entries.is_empty() {
        return html! {};
    }
    let mut machines: Vec<&str> = Vec::new();
    for g in entries.iter() {
        if !machines.contains(&g.machine.as_str()) {
            machines.push(&g.machine);
        }
    }
    let open_entry = |entry: &GalleryEntry| {
        let (store, url, title) = (
            props.store.clone(),
            format!("gallery/{}", entry.file),
            entry.title.clone(),
        );
        Callback::from(move |_| load::spawn_url(store.clone(), url.clone(), title.clone(), false))
    };
    html! {
        <details class="gallery" open={props.open} data-testid="gallery">
            { el!("summary", [], format!("Gallery: {} runs recorded by the agent on real machines", entries.len())) }
            // One list per machine, in the order the index names them.
            { for machines.iter().map(|machine| html! {
                <section class="gallery-machine">
                    { el!("p", "note", format!("Recorded on {machine} (hover an entry for when):")) }
                    <ul>
                        { for entries.iter().filter(|g| g.machine == *machine).map(|g| html! {
                            <li title={format!("recorded on {} at {}", g.machine, g.recorded_at)}>
                                <button onclick={open_entry(g)} data-gallery={g.file.clone()}>{ g.title.clone() }</button>
                                { el!("span", "note", format!(" {} events", g.events)) }
                            </li>
                        }) }
                    </ul>
                </section>
            }) }
        </details>
    }
}
