//! Entry point of the WebAssembly page.

fn main() {
    coreplay_frontend::panic::install();
    yew::Renderer::<coreplay_frontend::app::App>::new().render();
}
