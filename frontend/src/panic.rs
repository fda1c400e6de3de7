//! What the page does if its own code fails: a WebAssembly panic would otherwise leave the
//! page frozen at its last drawing, saying nothing. The message is shown at the top of the
//! page (and in the console), with what to do.

/// Installs the panic hook (Yew's own, which would only write to the console, is replaced).
///
/// The release page (`scripts/page.sh`) stops at once on a panic, before any hook could run:
/// there `index.html`'s script says the page failed, and the hook is an empty one (so neither
/// this message nor Yew's default hook is built into it).
#[cfg(panic = "immediate-abort")]
pub fn install() {
    yew::set_custom_panic_hook(Box::new(|_| {}));
}

/// Installs the panic hook (Yew's own, which would only write to the console, is replaced).
#[cfg(not(panic = "immediate-abort"))]
pub fn install() {
    yew::set_custom_panic_hook(Box::new(|info| {
        let text = format!("coreplay's page failed: {info}");
        web_sys::console::error_1(&text.clone().into());
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        let Some(body) = doc.body() else {
            return;
        };
        if let Ok(el) = doc.create_element("p") {
            el.set_class_name("problem page-failed");
            let _ = el.set_attribute("role", "alert");
            let _ = el.set_attribute("data-testid", "page-failed");
            el.set_text_content(Some(&format!(
                "{text}. Reload the page; if it happens again, please report it with this message."
            )));
            let _ = body.prepend_with_node_1(&el);
        }
    }));
}
