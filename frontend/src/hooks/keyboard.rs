//! Keyboard controls, anywhere on the page but in form fields: Space or K plays and pauses,
//! ←/→ (or , and .) step, +/− change the speed, Home/End jump, L follows the live run.

use gloo_events::EventListener;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::{playback::Command, state::Action, store::Store};

/// The playback command a key stands for.
pub fn key_command(key: &str) -> Option<Command> {
    Some(match key {
        " " | "k" => Command::Toggle,
        "ArrowRight" | "." => Command::StepForward,
        "ArrowLeft" | "," => Command::StepBack,
        "+" | "=" => Command::Faster,
        "-" | "_" => Command::Slower,
        "Home" => Command::Home,
        "End" => Command::End,
        "l" | "L" => Command::Live,
        _ => return None,
    })
}

/// Listens for the keys while the component lives.
#[hook]
pub fn use_keyboard(store: &Store) {
    let store = store.clone();
    use_effect_with((), move |_| {
        let listener = web_sys::window().and_then(|w| w.document()).map(|doc| {
            EventListener::new(&doc, "keydown", move |e| {
                let Some(e) = e.dyn_ref::<web_sys::KeyboardEvent>() else {
                    return;
                };
                if e.ctrl_key() || e.meta_key() || e.alt_key() {
                    return;
                }
                let in_field = e
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                    .is_some_and(|el| {
                        matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA")
                    });
                if in_field {
                    return;
                }
                if let Some(cmd) = key_command(&e.key()) {
                    e.prevent_default();
                    store.apply(Action::Control(cmd));
                }
            })
        });
        move || drop(listener)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_commands() {
        assert_eq!(key_command(" "), Some(Command::Toggle));
        assert_eq!(key_command("ArrowLeft"), Some(Command::StepBack));
        assert_eq!(key_command("L"), Some(Command::Live));
        assert_eq!(key_command("q"), None);
    }
}
