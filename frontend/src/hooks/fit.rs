//! An embed fits its frame: the views a slide or notebook iframe asks for are scaled down
//! (CSS `zoom` on the embed, whose width stays the frame's, so at a smaller scale the views
//! reflow side by side) until everything lies inside the frame with no scrollbar. A
//! `ResizeObserver` on the content sees every change (a view drawn, queues growing) and only
//! shrinks the scale, so it never flickers between layouts while a run plays; the frame
//! itself resizing starts again from full size. Below [`MIN_ZOOM`] text would be unreadable:
//! the frame scrolls instead.

use coreplay_shared::Fixed;
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
    // The page's own height too: the embed's padding and margins below the content.
    if let Some(root) = window.document().and_then(|d| d.document_element()) {
        worst = worst.max(f64::from(root.scroll_height()) / h);
    }
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

/// Sets the embed's scale: `--fit` (its width is the frame's divided by it) and `zoom`.
fn set_zoom(outer: &web_sys::HtmlElement, z: f64) {
    let style = outer.style();
    let z_text = Fixed(z, 4).to_string();
    let _ = style.set_property("--fit", &z_text);
    let _ = style.set_property("zoom", &z_text);
    frame_scrolls(z <= MIN_ZOOM);
}

/// Shrinks `outer`'s zoom while its content overflows; returns whether it changed.
fn refit(outer: &web_sys::HtmlElement, inner: &web_sys::Element, zoom: &Cell<f64>) -> bool {
    let Some(over) = overflow(outer, inner) else {
        return false;
    };
    let z = zoom.get();
    let next = if over > 1.005 {
        (z / over.min(1.25) * 0.99).max(MIN_ZOOM)
    } else {
        z
    };
    // Steps of 1 %: no endless tiny adjustments.
    let next = (next * 100.0).floor() / 100.0;
    if (next - z).abs() < 0.005 {
        return false;
    }
    zoom.set(next);
    set_zoom(outer, next);
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
    frame_scrolls(false);
    let zoom = Rc::new(Cell::new(1.0));
    let pending = Rc::new(Cell::new(false));
    // Refits a moment later (not inside the observer's callback, where a size change is a
    // loop error) and once per burst of changes; `reset`: from full size again.
    let schedule = {
        let (outer, inner, zoom, pending) = (outer.clone(), inner.clone(), zoom, pending);
        Rc::new(move |reset: bool| {
            if reset && let Some(o) = outer.cast::<web_sys::HtmlElement>() {
                zoom.set(1.0);
                set_zoom(&o, 1.0);
            }
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
                    // Each step shrinks by at most a fifth: settle in a few.
                    for _ in 0..12 {
                        if !refit(&o, &i, &zoom) {
                            break;
                        }
                    }
                }
            });
            crate::js::after_ms(50.0, &later);
        })
    };
    let on_resize = {
        let schedule = Rc::clone(&schedule);
        Closure::<dyn FnMut()>::new(move || schedule(false))
    };
    let observer = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()).ok();
    if let (Some(o), Some(i)) = (&observer, inner.cast::<web_sys::Element>()) {
        o.observe(&i);
    }
    // The frame itself resizing (a slide going full screen) starts again from full size.
    let listener = web_sys::window()
        .map(|w| gloo_events::EventListener::new(&w, "resize", move |_| schedule(true)));
    Fitting {
        observer,
        _listener: listener,
        _on_resize: on_resize,
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
