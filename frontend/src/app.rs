//! The root component: owns the state reducer and the connection, lays out the views.

use std::{cell::RefCell, rc::Rc};

use coreplay_shared::ClientMsg;
use yew::prelude::*;

use crate::{
    conn::{self, ConnHandle},
    state::{Action, AppState, Conn},
    view::{
        event_loop::EventLoopView, run::RunPanel, status::StatusLine, summary::SummaryView,
        topology::TopologyView,
    },
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
    let conn: Rc<RefCell<Option<ConnHandle>>> = use_mut_ref(|| None);

    // The connection lives while the state says it may; a final state (incompatible agent,
    // bad URL) drops the handle, which closes the socket.
    {
        let dispatcher = state.dispatcher();
        let url = state.agent_url.clone();
        let conn = Rc::clone(&conn);
        use_effect_with(state.conn.is_final(), move |is_final| {
            if !*is_final {
                *conn.borrow_mut() = Some(conn::start(
                    url,
                    Callback::from(move |a| dispatcher.dispatch(a)),
                ));
            }
            move || drop(conn.borrow_mut().take())
        });
    }
    let send = {
        let conn = Rc::clone(&conn);
        Callback::from(move |msg: ClientMsg| {
            if let Some(handle) = conn.borrow().as_ref() {
                handle.send(&msg);
            }
        })
    };

    let scenarios = use_memo(state.hello.clone(), |hello| {
        hello
            .as_ref()
            .map(|h| h.scenarios.clone())
            .unwrap_or_default()
    });
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
                    <RunPanel
                        scenarios={scenarios}
                        pus={u32::try_from(hello.topology.pu_count()).unwrap_or(u32::MAX)}
                        can_run={hello.can_run}
                        connected={state.conn == Conn::Connected}
                        run={state.run.clone()}
                        fidelity={hello.fidelity}
                        fidelity_note={hello.fidelity_note.clone()}
                        {send}
                    />
                    if let Some(event_loop) = state.run.as_ref().and_then(|r| r.event_loop.clone()) {
                        <EventLoopView {event_loop} />
                    }
                    if let Some(summary) = state.run.as_ref().and_then(|r| r.summary.clone()) {
                        <SummaryView {summary} />
                    }
                    <TopologyView {hello} />
                } else {
                    <p class="placeholder">{ "The machine's topology appears here once an agent is connected." }</p>
                }
            </main>
        </>
    }
}
