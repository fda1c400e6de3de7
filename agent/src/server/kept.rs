//! Runs the agent keeps: each live run that ends is written as a trace file into the served
//! folder (`--traces DIR`, or the per-user default), so that the page can embed it
//! (`?trace=traces/NAME`) and play it again after the agent restarts. Files are written under a
//! hidden temporary name and renamed, so a half-written run is never served. In the default
//! folder, which only the agent writes, the oldest runs beyond [`KEEP_IN_DEFAULT`] are removed;
//! an operator's own folder is never pruned.

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use coreplay_shared::Topology;

use crate::{record, run::Finished};

/// Runs kept in the default folder.
pub const KEEP_IN_DEFAULT: usize = 100;

/// Where and how runs are kept.
#[derive(Debug, Clone)]
pub struct Keeper {
    /// The served folder (canonical).
    pub dir: PathBuf,
    /// The machine the runs ran on, for the files' headers.
    pub topology: Topology,
    /// Whether the folder is the agent's own default (then pruned).
    pub own_folder: bool,
}

/// The per-user default folder: `$XDG_DATA_HOME/coreplay/runs`, else
/// `$HOME/.local/share/coreplay/runs`; `None` when neither variable is set.
pub fn default_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let base = nonempty("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("coreplay").join("runs"))
}

/// The file name run `run` of `scenario`, ended at unix time `secs`, is kept under: a plain
/// trace name that `/traces/NAME` serves.
pub fn file_name(scenario: &str, secs: u64, run: u64) -> String {
    let scenario: String = scenario
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{scenario}-{secs}-run{run}.coreplay.gz")
}

impl Keeper {
    /// Writes `finished` (run number `run`) into the folder; its file name, or `None` (logged)
    /// when it could not be written.
    pub fn keep(&self, run: u64, finished: &Finished) -> Option<String> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = file_name(&finished.summary.scenario.to_string(), secs, run);
        let tmp = self.dir.join(format!(".{name}.part"));
        let header = record::header_for(&self.topology, &finished.summary);
        let written = record::write_file(&tmp, &header, &finished.events, &finished.summary)
            .and_then(|()| std::fs::rename(&tmp, self.dir.join(&name)));
        if let Err(e) = written {
            tracing::warn!("could not keep run {run} in {}: {e}", self.dir.display());
            let _ = std::fs::remove_file(&tmp);
            return None;
        }
        if self.own_folder {
            prune(&self.dir, KEEP_IN_DEFAULT);
        }
        Some(name)
    }
}

/// Removes the oldest trace files of `dir` beyond the newest `keep`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut runs: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".coreplay.gz"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if runs.len() <= keep {
        return;
    }
    runs.sort();
    for (_, path) in &runs[..runs.len() - keep] {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_trace_names() {
        assert_eq!(
            file_name("parallel-compute", 1_780_000_000, 3),
            "parallel-compute-1780000000-run3.coreplay.gz"
        );
        assert_eq!(file_name("a b/..", 1, 2), "a-b----1-run2.coreplay.gz");
    }

    #[test]
    fn only_the_newest_runs_stay() {
        let dir = std::env::temp_dir().join(format!("coreplay-prune-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for i in 0..5u64 {
            let p = dir.join(format!("r{i}.coreplay.gz"));
            std::fs::write(&p, b"x").expect("write");
            let f = std::fs::File::options().write(true).open(&p).expect("open");
            f.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i))
                .expect("mtime");
        }
        std::fs::write(dir.join("notes.txt"), b"mine").expect("write");
        prune(&dir, 2);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["notes.txt", "r3.coreplay.gz", "r4.coreplay.gz"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
