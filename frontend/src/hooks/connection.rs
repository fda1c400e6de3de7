//! The connection to the agent, as the component's lifetime: it lives while the state says
//! it may; a final state (incompatible agent, bad URL, offline) drops the handle, which closes
//! the socket. What arrives goes to the store.

use std::{cell::RefCell, rc::Rc};

use coreplay_shared::ClientMsg;
use yew::prelude::*;

use crate::{
    conn::{self, ConnHandle},
    store::Store,
};

/// Keeps the connection while the component lives; returns how to send to the agent.
#[hook]
pub fn use_connection(store: &Store) -> Callback<ClientMsg> {
    let conn: Rc<RefCell<Option<ConnHandle>>> = use_mut_ref(|| None);
    let (is_final, url) = {
        let st = store.read();
        (st.conn.is_final(), st.agent_url.clone())
    };
    {
        let (store, conn) = (store.clone(), Rc::clone(&conn));
        use_effect_with(is_final, move |is_final| {
            if !*is_final {
                *conn.borrow_mut() =
                    Some(conn::start(url, Callback::from(move |a| store.apply(a))));
            }
            move || drop(conn.borrow_mut().take())
        });
    }
    Callback::from(move |msg: ClientMsg| {
        if let Some(handle) = conn.borrow().as_ref() {
            handle.send(&msg);
        }
    })
}
