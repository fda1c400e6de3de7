//! Entry point of the WebAssembly page.

fn main() {
    yew::Renderer::<coreplay_frontend::app::App>::new().render();
}
