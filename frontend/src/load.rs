//! Loading recorded runs into the page: from a URL (`?trace=`, the gallery), a file picker
//! or a drop. gzip files are decompressed by the browser (`DecompressionStream`); plain text
//! is read as is (`trace.rs` reads the text). Whatever goes wrong ends as a message on the
//! status line; the page keeps its runs and keeps working.

use coreplay_shared::json::{self, FromJson, Reader};
use coreplay_shared::json_struct;
use coreplay_shared::trace_file::MAX_TRACE_BYTES;
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;

use crate::{
    js,
    state::Action,
    store::Store,
    trace::{FileBytes, LoadStats, Loaded, LoadedTrace, parse_trace},
};

/// Largest file fetched or opened, bytes (compressed traces are far smaller).
pub const MAX_FILE_BYTES: usize = 128 << 20;

/// Largest gallery index read, bytes.
const MAX_INDEX_BYTES: usize = 256 << 10;

/// One entry of `gallery/index.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryEntry {
    /// File name inside `gallery/`.
    pub file: String,
    /// Scenario id.
    pub scenario: String,
    /// What it shows.
    pub title: String,
    /// The machine it was recorded on, in one line.
    pub machine: String,
    /// When.
    pub recorded_at: String,
    /// Events in it.
    pub events: u64,
    /// Its size, bytes.
    pub bytes: u64,
}

json_struct!(GalleryEntry {
    file,
    scenario,
    title,
    machine,
    recorded_at: default,
    events: default,
    bytes: default
});

/// Checks a gallery index (untrusted: it is a file on a web server) and keeps only entries
/// whose file names are plain names inside `gallery/`.
pub fn parse_gallery(text: &str) -> Result<Vec<GalleryEntry>, String> {
    /// A list of entries, or an object with one under `traces`.
    struct Index(Vec<GalleryEntry>);
    impl FromJson for Index {
        fn read(r: &mut Reader<'_>) -> json::Result<Index> {
            if r.is_array() {
                return Vec::read(r).map(Index);
            }
            if !r.is_object() {
                return Err(r.unexpected("a list of runs, or an object with one under \"traces\""));
            }
            struct Traces {
                traces: Vec<GalleryEntry>,
            }
            json_struct!(Traces { traces });
            Traces::read(r).map(|t| Index(t.traces))
        }
    }
    let entries = match json::from_str::<Index>(text) {
        Ok(Index(l)) => l,
        Err(e) => return Err(format!("the gallery index is not valid: {e}")),
    };
    Ok(entries
        .into_iter()
        .filter(|e| {
            !e.file.is_empty()
                && e.file.len() <= 128
                && e.file
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !e.file.starts_with('.')
        })
        .take(64)
        .collect())
}

fn bytes_of(v: &wasm_bindgen::JsValue) -> Result<Uint8Array, String> {
    v.dyn_ref::<Uint8Array>()
        .cloned()
        .ok_or_else(|| "the browser returned no bytes".to_string())
}

/// Bytes to text: gzip (by its magic number) is decompressed, anything else must be UTF-8.
async fn text_of(bytes: Uint8Array) -> Result<String, String> {
    let gzip = bytes.length() >= 2 && bytes.get_index(0) == 0x1f && bytes.get_index(1) == 0x8b;
    if gzip {
        let text = js::gunzip_text(&bytes, MAX_TRACE_BYTES as f64)
            .await
            .map_err(|e| format!("cannot decompress it: {}", js::error_text(&e)))?;
        text.as_string()
            .ok_or_else(|| "decompressing gave no text".to_string())
    } else {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| "it is neither gzip nor UTF-8 text, so not a coreplay trace".to_string())
    }
}

/// A trace read: what it holds, how long reading took, and its bytes as read.
type Read = (Loaded, LoadStats, Uint8Array);

async fn read(bytes: wasm_bindgen::JsValue, t0: f64) -> Result<Read, String> {
    let bytes = bytes_of(&bytes)?;
    let n = bytes.length();
    let text = text_of(bytes.clone()).await?;
    let t1 = js::now_ms();
    let loaded = parse_trace(&text)?;
    let t2 = js::now_ms();
    let stats = LoadStats {
        bytes: n,
        text_bytes: u32::try_from(text.len()).unwrap_or(u32::MAX),
        read_ms: t1 - t0,
        decode_ms: t2 - t1,
        apply_ms: 0.0,
    };
    Ok((loaded, stats, bytes))
}

/// Fetches and reads a trace.
pub async fn from_url(url: &str) -> Result<Read, String> {
    let t0 = js::now_ms();
    let bytes = js::fetch_bytes(url, MAX_FILE_BYTES as f64)
        .await
        .map_err(|e| {
            let text = js::error_text(&e);
            // The browser says no more than this when another site does not allow reading.
            if text.contains("Failed to fetch") && (url.starts_with("http://") || url.starts_with("https://")) {
                format!("{text} (unreachable, or its server does not allow this page to read it: it must send Access-Control-Allow-Origin)")
            } else {
                text
            }
        })?;
    read(bytes, t0).await
}

/// Reads a picked or dropped file.
pub async fn from_file(file: &web_sys::File) -> Result<Read, String> {
    let t0 = js::now_ms();
    let bytes = js::file_bytes(file, MAX_FILE_BYTES as f64)
        .await
        .map_err(|e| js::error_text(&e))?;
    read(bytes, t0).await
}

/// Fetches the gallery index next to the page.
pub async fn gallery() -> Result<Vec<GalleryEntry>, String> {
    let bytes = js::fetch_bytes("gallery/index.json", MAX_INDEX_BYTES as f64)
        .await
        .map_err(|e| js::error_text(&e))?;
    let text = String::from_utf8(bytes_of(&bytes)?.to_vec())
        .map_err(|_| "the gallery index is not UTF-8".to_string())?;
    parse_gallery(&text)
}

/// Loads a trace into the store in the background; `name` labels it; problems go to the
/// status line.
pub fn spawn_url(store: Store, url: String, name: String, autoplay: bool) {
    wasm_bindgen_futures::spawn_local(async move {
        let result = from_url(&url).await;
        finish(&store, name, Some(url), result, autoplay);
    });
}

/// Loads `url` as the page's opening run (the gallery's first, when nothing else is shown). It
/// is dropped if another run arrived while it loaded: a file the user dropped meanwhile stays.
pub fn spawn_opening(store: Store, url: String, name: String) {
    wasm_bindgen_futures::spawn_local(async move {
        let result = from_url(&url).await;
        if store.read().runs.is_empty() {
            finish(&store, name, Some(url), result, false);
        }
    });
}

/// Loads a picked or dropped file into the store in the background.
pub fn spawn_file(store: Store, file: web_sys::File) {
    wasm_bindgen_futures::spawn_local(async move {
        let name = file.name();
        let result = from_file(&file).await;
        finish(&store, name, None, result, false);
    });
}

fn finish(
    store: &Store,
    name: String,
    url: Option<String>,
    result: Result<Read, String>,
    autoplay: bool,
) {
    store.apply(match result {
        Ok((loaded, stats, bytes)) => Action::Loaded(Box::new(LoadedTrace {
            name,
            url,
            loaded,
            autoplay,
            stats,
            file: Some(FileBytes(bytes)),
        })),
        Err(message) => Action::LoadFailed { name, message },
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gallery_index_keeps_only_plain_names() {
        let text = r#"[
            {"file":"gil.coreplay.gz","scenario":"gil","title":"GIL","machine":"m"},
            {"file":"../secret","scenario":"gil","title":"x","machine":"m"},
            {"file":"https://evil/x","scenario":"gil","title":"x","machine":"m"}
        ]"#;
        let g = parse_gallery(text).expect("valid");
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].file, "gil.coreplay.gz");
        assert!(parse_gallery("{").is_err());
        let wrapped = r#"{"traces":[{"file":"a.gz","scenario":"gil","title":"t","machine":"m"}]}"#;
        assert_eq!(parse_gallery(wrapped).map(|g| g.len()), Ok(1));
        let beside = r#"{"note":{"x":[1]},"traces":[{"file":"a.gz","scenario":"gil","title":"t","machine":"m"}]}"#;
        assert_eq!(parse_gallery(beside).map(|g| g.len()), Ok(1));
        let err = |text: &str| parse_gallery(text).expect_err(text);
        assert!(err(r#"{"runs":[]}"#).contains("missing field `traces`"));
        assert!(err(r#""gallery""#).contains("a list of runs"));
        assert!(err(r#"[{"file":"a.gz"}]"#).contains("missing field `scenario`"));
    }
}
