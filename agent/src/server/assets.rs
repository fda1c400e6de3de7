//! The page, served from the files Trunk builds into `dist/`.
//!
//! A release build embeds `dist/` in the binary, so `coreplay` alone serves the page; a debug
//! build reads `dist/` from disk at request time (rust-embed's behaviour), so a `trunk build`
//! shows up without rebuilding the agent. When no page was built, every page request gets a
//! short HTML explanation of how to build it instead of a bare 404.

use axum::{
    http::{HeaderValue, StatusCode, Uri, header},
    response::{Html, IntoResponse, Response},
};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../dist"]
#[allow_missing = true]
struct Page;

/// Whether the built page is available (embedded, or on disk for debug builds).
pub fn page_is_built() -> bool {
    Page::get("index.html").is_some()
}

/// Every file of the built page (path inside `dist/`, contents), for `export --format site`;
/// empty when the page is not built. The page's own gallery is left out: a site carries the
/// runs it is made with.
pub fn page_files() -> Vec<(String, Vec<u8>)> {
    Page::iter()
        .filter(|p| !p.starts_with("gallery/"))
        .filter_map(|p| Page::get(&p).map(|f| (p.to_string(), f.data.into_owned())))
        .collect()
}

/// How to build the page, for people who started an agent without one.
pub const BUILD_HINT: &str = "the page is not built: run `scripts/run.sh` from the coreplay \
     checkout (or `trunk build --release` and then rebuild the agent)";

pub(super) async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    if let Some(file) = Page::get(path) {
        return file_response(file);
    }
    if !page_is_built() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(format!(
                "<!doctype html><meta charset=utf-8><title>coreplay: page not built</title>\
                 <h1>coreplay agent is running, but its page is not built</h1>\
                 <p>{BUILD_HINT}.</p><p>The agent itself works: \
                 <a href=\"/api/topology\">/api/topology</a>, WebSocket at <code>/ws</code>.</p>"
            )),
        )
            .into_response();
    }
    (StatusCode::NOT_FOUND, "not found").into_response()
}

fn file_response(file: rust_embed::EmbeddedFile) -> Response {
    let mime = HeaderValue::from_str(file.metadata.mimetype())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    // index.html names the other files; it must never be cached, or a rebuilt page loads stale
    // wasm. The rest is small and revalidated too: Trunk's file hashing is off (see Trunk.toml).
    let cache = HeaderValue::from_static("no-cache");
    (
        [(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, cache)],
        file.data,
    )
        .into_response()
}
