//! `coreplay export RUN… --format site --out DIR`: a folder any static web host serves (or
//! `python3 -m http.server` in it): the page, the runs under `gallery/`, and the gallery's
//! `index.json`, so that publishing one's own recordings needs no Trunk, no agent and no
//! cross-origin permission (`?trace=gallery/NAME` and the page's gallery list both work).

use std::{
    io,
    path::{Path, PathBuf},
};

use coreplay_shared::{scenario, trace_file::TraceFile};
use serde::Serialize;

/// One run in the site's `gallery/index.json` (the form the page reads).
#[derive(Debug, Serialize)]
struct Entry {
    file: String,
    scenario: String,
    title: String,
    machine: String,
    recorded_at: String,
    events: usize,
    bytes: u64,
}

/// What was written.
#[derive(Debug, PartialEq, Eq)]
pub struct Site {
    /// Files of the page.
    pub page_files: usize,
    /// Their size, bytes.
    pub page_bytes: u64,
    /// Runs in its gallery.
    pub runs: usize,
}

/// Why a site cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The page is not built into this coreplay.
    #[error("the page is not built: {}", crate::server::BUILD_HINT)]
    NoPage,
    /// The output folder has files in it already.
    #[error("{0} is not empty: choose a new folder (nothing is overwritten)")]
    NotEmpty(PathBuf),
    /// Two runs would have the same file name.
    #[error("two runs are called {0}: rename one")]
    SameName(String),
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Write {
        /// Where.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// A run's line in the gallery: what it is, in the page's words.
fn title(trace: &TraceFile) -> String {
    if let Some(w) = &trace.summary.watch {
        return match &w.program {
            Some(p) => format!("watch {p}"),
            None => format!("watch {}", w.command.join(" ")),
        };
    }
    scenario::info(trace.header.scenario, 1).title
}

/// Writes the site to `out` (created; it must not hold files already): the page, and each of
/// `runs` (its source file, read and checked) under `gallery/` with its index.
pub fn write(runs: &[(PathBuf, TraceFile)], out: &Path) -> Result<Site, SiteError> {
    let page = crate::server::page_files();
    if page.is_empty() {
        return Err(SiteError::NoPage);
    }
    if out.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(SiteError::NotEmpty(out.to_path_buf()));
    }
    let write = |path: PathBuf, bytes: &[u8]| -> Result<(), SiteError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| SiteError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, bytes).map_err(|source| SiteError::Write { path, source })
    };
    let mut page_bytes = 0u64;
    for (name, bytes) in &page {
        // Names come from the embedded build (`dist/`), never from outside.
        write(out.join(name), bytes)?;
        page_bytes += bytes.len() as u64;
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (source, trace) in runs {
        let bytes = std::fs::read(source).map_err(|e| SiteError::Write {
            path: source.clone(),
            source: e,
        })?;
        let file = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run.coreplay.gz".into());
        if entries.iter().any(|e| e.file == file) {
            return Err(SiteError::SameName(file));
        }
        write(out.join("gallery").join(&file), &bytes)?;
        entries.push(Entry {
            file,
            scenario: trace.header.scenario.to_string(),
            title: title(trace),
            machine: trace.header.machine_line(),
            recorded_at: trace.header.recorded_at.clone(),
            events: trace.events.len(),
            bytes: bytes.len() as u64,
        });
    }
    let index = serde_json::to_vec_pretty(&entries).map_err(|e| SiteError::Write {
        path: out.join("gallery/index.json"),
        source: io::Error::other(e),
    })?;
    write(out.join("gallery/index.json"), &index)?;
    Ok(Site {
        page_files: page.len(),
        page_bytes,
        runs: entries.len(),
    })
}
