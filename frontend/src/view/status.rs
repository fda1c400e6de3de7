//! The connection status line: connecting, connected, unreachable (with the command that
//! starts an agent), or why the page gave up.

use crate::view::el;
use coreplay_shared::Fixed;
use yew::prelude::*;

use crate::state::Conn;

/// Properties of [`StatusLine`].
#[derive(Debug, Properties, PartialEq)]
pub struct StatusProps {
    /// Connection status.
    pub conn: Conn,
    /// The agent's WebSocket URL.
    pub agent_url: String,
    /// The connected agent's release, once known.
    pub agent_version: Option<String>,
    /// The last problem with a message from the agent.
    pub last_error: Option<String>,
}

/// One line (two when something needs explaining) saying where the connection stands.
#[function_component(StatusLine)]
pub fn status_line(props: &StatusProps) -> Html {
    let url = props.agent_url.clone();
    let (class, text, help): (&str, String, Html) = match &props.conn {
        Conn::Connecting { attempt: 0 } => {
            ("connecting", format!("Connecting to {url} …"), html! {})
        }
        Conn::Connecting { attempt } => (
            "connecting",
            format!("Connecting to {url} … (attempt {})", attempt + 1),
            html! {},
        ),
        Conn::Connected => (
            "connected",
            format!(
                "Connected to coreplay agent {} at {url}",
                props.agent_version.as_deref().unwrap_or("")
            ),
            html! {},
        ),
        Conn::Unreachable { retry_in_ms, .. } => (
            "unreachable",
            format!(
                "Agent not reachable at {url}; retrying in {} s",
                Fixed(f64::from(*retry_in_ms) / 1000.0, 1)
            ),
            html! {
                <span class="help">
                    { "Start one with " }{ el!("code", [], "coreplay serve") }
                    { " (or " }{ el!("code", [], "scripts/run.sh") }{ " in a coreplay checkout)." }
                </span>
            },
        ),
        Conn::Offline => (
            "offline",
            "No agent: playing recorded runs".to_string(),
            html! {
                <span class="help">
                    { "To watch your own machine, run " }{ el!("code", [], "coreplay serve") }{ " and open the page it prints." }
                </span>
            },
        ),
        Conn::Incompatible { message } => (
            "incompatible",
            "This page cannot talk to that agent".to_string(),
            el!("span", "help", message.clone()),
        ),
        Conn::BadUrl { message } => (
            "bad-url",
            "The agent address is not usable".to_string(),
            el!("span", "help", message.clone()),
        ),
    };
    html! {
        <div class={format!("status {class}")} role="status" aria-live="polite" data-conn={class}>
            <span class="dot" aria-hidden="true"></span>
            { el!("span", "text", text) }
            { help }
            if let Some(err) = &props.last_error {
                { el!("span", "help warn", err.clone()) }
            }
        </div>
    }
}
