//! One component per picture on the page.

pub mod compare;
pub mod controls;
pub mod cores;
pub mod event_loop;
pub mod gallery;
pub mod now_showing;
pub mod player;
pub mod run;
pub mod status;
pub mod summary;
pub mod timeline;
pub mod topology;

use yew::AttrValue;

/// A class attribute: `base`, and `extra` after it when given. What `classes!` makes, without
/// the set it builds at run time (and the hashing code it brings into the page).
pub fn class(base: &'static str, extra: Option<&'static str>) -> AttrValue {
    match extra {
        Some(extra) => AttrValue::from(format!("{base} {extra}")),
        None => AttrValue::Static(base),
    }
}
