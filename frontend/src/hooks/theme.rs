//! The light or dark theme: the system's preference at first, then the user's choice, set on
//! the document root (`data-theme`); and the media queries the page asks.

use yew::prelude::*;

fn set_theme(dark: bool) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-theme", if dark { "dark" } else { "light" });
    }
}

/// Whether the browser matches a media query, e.g. `(prefers-reduced-motion: reduce)`.
pub fn prefers(query: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.match_media(query).ok().flatten())
        .is_some_and(|m| m.matches())
}

/// Whether the theme is dark, and a callback that switches it.
#[hook]
pub fn use_theme() -> (bool, Callback<MouseEvent>) {
    let dark = use_state(|| prefers("(prefers-color-scheme: dark)"));
    use_effect_with(*dark, move |&d| set_theme(d));
    let toggle = {
        let dark = dark.clone();
        Callback::from(move |_| dark.set(!*dark))
    };
    (*dark, toggle)
}
