//! The root component: owns the state reducer and the connection, lays out the views.

use yew::prelude::*;

use crate::{
    conn,
    state::{Action, AppState},
    view::{status::StatusLine, topology::TopologyView},
};

/// The whole page.
#[function_component(App)]
pub fn app() -> Html {
    let state = use_reducer(|| match conn::agent_url_from_location() {
        Ok(url) => AppState::new(url),
        Err(message) => {
            let mut state = AppState::new(String::new());
            state.apply(Action::BadUrl(message));
            state
        }
    });

    // The connection lives while the state says it may; a final state (incompatible agent,
    // bad URL) drops the handle, which closes the socket.
    {
        let dispatcher = state.dispatcher();
        let url = state.agent_url.clone();
        use_effect_with(state.conn.is_final(), move |is_final| {
            let handle = (!*is_final)
                .then(|| conn::start(url, Callback::from(move |a| dispatcher.dispatch(a))));
            move || drop(handle)
        });
    }

    html! {
        <>
            <header class="topbar">
                <h1 class="brand">{ "coreplay" }</h1>
                <StatusLine
                    conn={state.conn.clone()}
                    agent_url={state.agent_url.clone()}
                    agent_version={state.hello.as_ref().map(|h| h.agent_version.clone())}
                    last_error={state.last_error.clone()}
                />
            </header>
            <main>
                if let Some(hello) = state.hello.clone() {
                    <TopologyView {hello} />
                } else {
                    <p class="placeholder">{ "The machine's topology appears here once an agent is connected." }</p>
                }
            </main>
        </>
    }
}
