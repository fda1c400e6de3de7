//! Who may talk to the agent. The agent runs CPU-heavy work on request, so by default only
//! its own page on this machine may ask:
//!
//! - **Host** (loopback binding): requests must name a loopback host (`127.0.0.1`,
//!   `localhost`, `[::1]`) with the agent's port. This defeats DNS rebinding, where a web page
//!   makes its own host name resolve to 127.0.0.1.
//! - **Origin** (WebSocket): a browser always sends one; it must be the agent's own page
//!   (`http://<the Host asked for>`) or an origin the operator allowed (`--allow-origin`).
//!   This stops cross-site WebSocket hijacking by a page open in another tab. Clients that
//!   are not browsers send none and are let through (they could forge it anyway).
//! - **Token** (non-loopback binding, `--allow-remote`): `/ws`, `/api/` and `/traces/` need
//!   `?token=…` (or `Authorization: Bearer …`); the page carries it along from its own URL.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::AppState;

/// The access rules, fixed at start.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Required on `/ws` and `/api/` when set.
    pub token: Option<String>,
    /// Origins allowed besides the agent's own page, e.g. `http://127.0.0.1:8080` for
    /// `trunk serve`.
    pub allowed_origins: Vec<Origin>,
}

/// A web origin a page may connect from: `http` or `https`, a host, an optional port, and
/// nothing else (no path, query, user or trailing slash), exactly as a browser sends it in
/// its `Origin` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

/// Why a text is not an [`Origin`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected an origin like http://127.0.0.1:8080 (scheme, host, port; no path)")]
pub struct BadOrigin(String);

impl std::str::FromStr for Origin {
    type Err = BadOrigin;

    fn from_str(s: &str) -> Result<Origin, BadOrigin> {
        let bad = || BadOrigin(s.to_string());
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
            .ok_or_else(bad)?;
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal's colons sit inside brackets.
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        let host_ok = !host.is_empty()
            && (host.starts_with('[') && host.ends_with(']')
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
        if host_ok && port_ok {
            Ok(Origin(s.to_string()))
        } else {
            Err(bad())
        }
    }
}

impl Origin {
    /// As the browser sends it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A fresh random access token (128 bits from the OS, hex).
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn refuse(status: StatusCode, why: &str) -> Response {
    tracing::warn!("refused a request: {why}");
    (status, format!("coreplay: {why}\n")).into_response()
}

/// Whether `host` (a Host header) names this machine's loopback at `port`.
fn is_loopback_host(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p.parse::<u16>() == Ok(port) && matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn token_of(req: &Request) -> Option<String> {
    let from_query = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(str::to_string)
    });
    from_query.or_else(|| {
        req.headers()
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::to_string)
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The middleware applying the rules above.
pub(super) async fn guard(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let local: SocketAddr = state.local_addr;
    let host = header_str(req.headers(), header::HOST)
        .unwrap_or_default()
        .to_string();
    if local.ip().is_loopback() && !is_loopback_host(&host, local.port()) {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!(
                "unexpected Host {host:?}; open the agent as http://127.0.0.1:{}/",
                local.port()
            ),
        );
    }
    let path = req.uri().path();
    let protected = path == "/ws" || path.starts_with("/api/") || path.starts_with("/traces/");
    if protected && let Some(expected) = &state.access.token {
        match token_of(&req) {
            Some(given) if same(&given, expected) => {}
            _ => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong access token (use the URL the agent printed)",
                );
            }
        }
    }
    if path == "/ws"
        && let Some(origin) = header_str(req.headers(), header::ORIGIN)
    {
        let own = format!("http://{host}");
        if origin != own
            && !state
                .access
                .allowed_origins
                .iter()
                .any(|o| o.as_str() == origin)
        {
            return refuse(
                StatusCode::FORBIDDEN,
                &format!(
                    "WebSocket from origin {origin:?} refused; only the agent's own page (or --allow-origin) may connect"
                ),
            );
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "http://127.0.0.1:8080",
            "https://course.example.org",
            "http://localhost",
            "http://[::1]:8080",
        ] {
            assert_eq!(good.parse::<Origin>().map(|o| o.0), Ok(good.to_string()));
        }
        for bad in [
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://host/path",
            "ftp://host",
            "http://",
            "http://host:0",
            "http://host:99999",
            "http://user@host",
            "http://host?x=1",
        ] {
            let err = bad.parse::<Origin>().expect_err(bad).to_string();
            assert!(err.contains("expected an origin like"), "{bad}: {err}");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1:7878", 7878));
        assert!(is_loopback_host("localhost:7878", 7878));
        assert!(is_loopback_host("[::1]:7878", 7878));
        assert!(!is_loopback_host("127.0.0.1:7879", 7878));
        assert!(!is_loopback_host("evil.example:7878", 7878));
        assert!(!is_loopback_host("127.0.0.1", 7878));
    }

    #[test]
    fn tokens() {
        let t = new_token().expect("urandom");
        assert_eq!(t.len(), 32);
        assert_ne!(t, new_token().expect("urandom"));
        assert!(same(&t, &t.clone()));
        assert!(!same(&t, &t[1..]));
    }
}
