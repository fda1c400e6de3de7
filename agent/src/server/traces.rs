//! `coreplay serve --traces DIR`: the operator's own recordings, served read-only to the page
//! at `/traces/NAME`, so that `?trace=traces/NAME` plays one's own runs without another web
//! server (and without the cross-origin refusals a slide or a notebook meets when fetching a
//! file from somewhere else).
//!
//! Only plain names of trace files are served: letters, digits, `.`, `_` and `-`, ending in
//! `.coreplay.gz` or `.jsonl`, not starting with a dot. A file must be a regular file inside
//! DIR once every link is followed: a symbolic link out of DIR is refused.

use std::path::{Path, PathBuf};

use axum::{
    extract::{Path as UrlPath, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::AppState;

/// Longest name served.
const MAX_NAME: usize = 200;
/// Largest file served, bytes (the page reads no more than this either).
const MAX_BYTES: u64 = 512 << 20;

/// Why a name is not one of a trace file.
fn check_name(name: &str) -> Result<(), &'static str> {
    let plain = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !plain {
        return Err(
            "a trace name is letters, digits, '.', '_' and '-' only, not starting with '.'",
        );
    }
    if !(name.ends_with(".coreplay.gz") || name.ends_with(".jsonl")) {
        return Err("only trace files (.coreplay.gz, .jsonl) are served");
    }
    Ok(())
}

/// The file `name` names inside `dir` (canonical), or why it is not served.
fn resolve(dir: &Path, name: &str) -> Result<PathBuf, (StatusCode, String)> {
    check_name(name).map_err(|why| (StatusCode::BAD_REQUEST, why.to_string()))?;
    let path = dir.join(name);
    let real = path.canonicalize().map_err(|_| {
        (
            StatusCode::NOT_FOUND,
            format!("no trace called {name} is served here"),
        )
    })?;
    if !real.starts_with(dir) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("{name} leads out of the served folder"),
        ));
    }
    match real.metadata() {
        Ok(m) if m.is_file() && m.len() <= MAX_BYTES => Ok(real),
        Ok(m) if m.is_file() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{name} is larger than {MAX_BYTES} bytes"),
        )),
        _ => Err((StatusCode::NOT_FOUND, format!("{name} is not a file"))),
    }
}

/// `GET /traces/NAME`.
pub(super) async fn serve(
    State(state): State<std::sync::Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let Some(dir) = state.traces.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "this agent serves no traces (start it with --traces DIR)\n",
        )
            .into_response();
    };
    let path = match resolve(dir, &name) {
        Ok(p) => p,
        Err((status, why)) => return (status, format!("coreplay: {why}\n")).into_response(),
    };
    let read = tokio::task::spawn_blocking(move || std::fs::read(&path)).await;
    match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(bytes) => {
            let kind = if name.ends_with(".gz") {
                "application/gzip"
            } else {
                "application/x-ndjson"
            };
            let mut res = bytes.into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("coreplay: cannot read {name}: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_trace_names_inside_the_folder_are_served() {
        let dir = std::env::temp_dir().join(format!("coreplay-traces-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("dir");
        let dir = dir.canonicalize().expect("canonical");
        std::fs::write(dir.join("run.coreplay.gz"), b"x").expect("write");
        std::fs::write(dir.join("notes.txt"), b"x").expect("write");
        let outside = std::env::temp_dir().join(format!(
            "coreplay-outside-{}.coreplay.gz",
            std::process::id()
        ));
        std::fs::write(&outside, b"secret").expect("write");
        let _ = std::os::unix::fs::symlink(&outside, dir.join("escape.coreplay.gz"));
        assert_eq!(
            resolve(&dir, "run.coreplay.gz"),
            Ok(dir.join("run.coreplay.gz"))
        );
        for (name, status) in [
            ("../run.coreplay.gz", StatusCode::BAD_REQUEST),
            ("sub/run.coreplay.gz", StatusCode::BAD_REQUEST),
            (".hidden.coreplay.gz", StatusCode::BAD_REQUEST),
            ("notes.txt", StatusCode::BAD_REQUEST),
            ("", StatusCode::BAD_REQUEST),
            ("missing.coreplay.gz", StatusCode::NOT_FOUND),
            ("escape.coreplay.gz", StatusCode::FORBIDDEN),
        ] {
            assert_eq!(resolve(&dir, name).map_err(|e| e.0), Err(status), "{name}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&outside);
    }
}
