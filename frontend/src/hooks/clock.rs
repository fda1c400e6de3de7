//! The animation clock: once per animation frame the store indexes new events and moves the
//! cursor; the page redraws only when something changed. While the page keeps still for a
//! measuring run it asks for no frames at all, until the store wakes it.
//!
//! Messages fold into the state as they arrive (no copy of the run's events per message);
//! drawing happens at most once per animation frame, and only when something changed or the
//! clock moves.

use std::{cell::RefCell, rc::Rc};

use gloo_render::{AnimationFrame, request_animation_frame};
use yew::prelude::*;

use crate::store::Store;

fn schedule(
    store: Store,
    redraw: UseForceUpdateHandle,
    draws: Rc<RefCell<u64>>,
    slot: Rc<RefCell<Option<AnimationFrame>>>,
) {
    let next = Rc::clone(&slot);
    let frame = request_animation_frame(move |now| {
        if store.tick(now) {
            *draws.borrow_mut() += 1;
            redraw.force_update();
        }
        if store.still() {
            // No frames at all while a run measures (each costs the browser some CPU): the
            // store wakes the clock when the run ends.
            let wake_store = store.clone();
            store.on_wake(move || schedule(wake_store, redraw, draws, next));
        } else {
            schedule(store, redraw, draws, next);
        }
    });
    *slot.borrow_mut() = Some(frame);
}

/// Runs the clock while the component lives; redraws it when something changed. Returns the
/// number of redraws so far: components that draw from the store take it as a property, so
/// they redraw with the page.
#[hook]
pub fn use_animation_clock(store: &Store) -> u64 {
    let redraw = use_force_update();
    let draws = use_mut_ref(|| 0u64);
    {
        let (store, draws) = (store.clone(), Rc::clone(&draws));
        use_effect_with((), move |_| {
            let slot = Rc::new(RefCell::new(None));
            schedule(store, redraw, draws, Rc::clone(&slot));
            move || {
                slot.borrow_mut().take();
            }
        });
    }
    *draws.borrow()
}
