//! An embed fits its frame: the views a slide or notebook iframe asks for are scaled down
//! (CSS `zoom` on the embed, so they also reflow to the wider layout) until everything lies
//! inside the frame with no scrollbar. A `ResizeObserver` on the content sees every change (the
//! frame resized, a view drawn, queues growing); the scale shrinks whenever content overflows
//! and grows back only when a tenth of the frame is left over, so it does not flicker while a
//! run plays. Below [`MIN_ZOOM`] text would be unreadable: the frame scrolls instead.

use std::{cell::Cell, rc::Rc};

use wasm_bindgen::{JsCast, closure::Closure};
use yew::prelude::*;

/// The smallest scale: about 7 px text.
pub const MIN_ZOOM: f64 = 0.5;

/// How far the content overflows the frame: the largest of its bottom (and right) edge over the
/// viewport's, and of each wide picture's content over its box (≤ 1: it fits).
fn overflow(outer: &web_sys::HtmlElement, inner: &web_sys::Element) -> Option<f64> {
    let window = web_sys::window()?;
    let h = window.inner_height().ok()?.as_f64()?;
    let w = window.inner_width().ok()?.as_f64()?;
    let r = inner.get_bounding_client_rect();
    let mut worst = (r.bottom() / h).max(r.right() / w);
    // Wide pictures scroll inside their own box; a narrower scale makes their box wider.
    if let Ok(wide) = outer.query_selector_all(".machine, table.threads") {
        for i in 0..wide.length() {
            if let Some(el) = wide
                .item(i)
                .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
            {
                let (sw, cw) = (f64::from(el.scroll_width()), f64::from(el.client_width()));
                if cw > 0.0 {
                    worst = worst.max(sw / cw);
                }
            }
        }
    }
    Some(worst)
}

/// Sets `outer`'s zoom from how far its content overflows; returns whether it changed.
fn refit(outer: &web_sys::HtmlElement, inner: &web_sys::Element, zoom: &Cell<f64>) -> bool {
    let Some(over) = overflow(outer, inner) else {
        return false;
    };
    let z = zoom.get();
    let next = if over > 1.005 {
        (z / over * 0.99).max(MIN_ZOOM)
    } else if over < 0.9 && z < 1.0 {
        (z / over * 0.97).min(1.0)
    } else {
        z
    };
    // Steps of 1 %: no endless tiny adjustments.
    let next = (next * 100.0).floor() / 100.0;
    if (next - z).abs() < 0.005 {
        return false;
    }
    zoom.set(next);
    let _ = outer.style().set_property("zoom", &format!("{next}"));
    frame_scrolls(next <= MIN_ZOOM);
    true
}

/// Whether the frame may scroll: only at the smallest scale (else a scrollbar flashing up
/// while the scale settles would change the width being fitted).
fn frame_scrolls(scrolls: bool) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = root
            .style()
            .set_property("overflow", if scrolls { "auto" } else { "hidden" });
    }
}

/// Keeps the embed in `outer` (its content in `inner`) inside the frame, when `embedded`.
#[hook]
pub fn use_fit_to_frame(embedded: bool, outer: NodeRef, inner: NodeRef) {
    use_effect_with(embedded, move |&embedded| {
        let active = embedded.then(|| fit(outer, inner));
        move || drop(active)
    });
}

/// Starts fitting; dropping the result stops it.
fn fit(outer: NodeRef, inner: NodeRef) -> impl Drop {
    {
        frame_scrolls(false);
        let zoom = Rc::new(Cell::new(1.0));
        let pending = Rc::new(Cell::new(false));
        let on_resize = {
            let (outer, inner) = (outer.clone(), inner.clone());
            Closure::<dyn FnMut()>::new(move || {
                // Not inside the observer's callback (a size change there is a loop error),
                // and once per burst of changes.
                if pending.replace(true) {
                    return;
                }
                let (outer, inner, zoom, pending) = (
                    outer.clone(),
                    inner.clone(),
                    Rc::clone(&zoom),
                    Rc::clone(&pending),
                );
                let later = Closure::once_into_js(move || {
                    pending.set(false);
                    if let (Some(o), Some(i)) = (
                        outer.cast::<web_sys::HtmlElement>(),
                        inner.cast::<web_sys::Element>(),
                    ) {
                        refit(&o, &i, &zoom);
                    }
                });
                crate::js::after_ms(50.0, &later);
            })
        };
        let observer = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()).ok();
        if let (Some(o), Some(i)) = (&observer, inner.cast::<web_sys::Element>()) {
            o.observe(&i);
        }
        // The frame itself resizing (a slide going full screen) moves no content box.
        let listener = web_sys::window().map(|w| {
            let f = on_resize
                .as_ref()
                .unchecked_ref::<js_sys::Function>()
                .clone();
            gloo_events::EventListener::new(&w, "resize", move |_| {
                let _ = f.call0(&wasm_bindgen::JsValue::NULL);
            })
        });
        Fitting {
            observer,
            _listener: listener,
            _on_resize: on_resize,
        }
    }
}

/// A fit in progress: observing until dropped.
struct Fitting {
    observer: Option<web_sys::ResizeObserver>,
    _listener: Option<gloo_events::EventListener>,
    _on_resize: Closure<dyn FnMut()>,
}

impl Drop for Fitting {
    fn drop(&mut self) {
        if let Some(o) = &self.observer {
            o.disconnect();
        }
    }
}
