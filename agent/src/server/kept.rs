//! Runs the agent keeps: each live run that ends is written as a trace file into the served
//! folder (`--traces DIR`, or the per-user default), so that the page can embed it
//! (`?trace=traces/NAME`) and play it again after the agent restarts. Files are written under a
//! hidden temporary name and renamed, so a half-written run is never served. In the default
//! folder, which only the agent writes, the oldest runs beyond [`KEEP_IN_DEFAULT`] are removed;
//! an operator's own folder is never pruned.
//!
//! Several agents may keep runs in one folder at once (the default folder is per user, not per
//! agent): each writes under a temporary name of its own (process id and a count), and a kept
//! file is never replaced. Two runs that would share a name (same scenario, second and run
//! number) get `-2`, `-3`, … instead.

use std::{
    io,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use coreplay_shared::Topology;

use crate::{record, run::Finished};

/// Runs kept in the default folder.
pub const KEEP_IN_DEFAULT: usize = 100;

/// Names tried for one run before giving up: `NAME`, then `NAME-2` … `NAME-{MAX_NAMES}`.
const MAX_NAMES: u32 = 100;

/// Files written by this process, for temporary names no other writer shares.
static WRITES: AtomicU64 = AtomicU64::new(0);

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
/// trace name that `/traces/NAME` serves. `nth` counts names already taken (1: the first).
pub fn file_name(scenario: &str, secs: u64, run: u64, nth: u32) -> String {
    let scenario: String = scenario
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let nth = if nth > 1 {
        format!("-{nth}")
    } else {
        String::new()
    };
    format!("{scenario}-{secs}-run{run}{nth}.coreplay.gz")
}

impl Keeper {
    /// Writes `finished` (run number `run`) into the folder; its file name, or `None` (logged)
    /// when it could not be written.
    pub fn keep(&self, run: u64, finished: &Finished) -> Option<String> {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match self.keep_at(run, finished, secs) {
            Ok(name) => Some(name),
            Err(e) => {
                tracing::warn!("could not keep run {run} in {}: {e}", self.dir.display());
                None
            }
        }
    }

    /// [`Keeper::keep`] with the time of its name given.
    fn keep_at(&self, run: u64, finished: &Finished, secs: u64) -> io::Result<String> {
        let scenario = finished.summary.scenario.to_string();
        let tmp = self.dir.join(format!(
            ".{}.{}-{}.part",
            file_name(&scenario, secs, run, 1),
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let header = record::header_for(&self.topology, &finished.summary);
        let kept = record::write_file(&tmp, &header, &finished.events, &finished.summary)
            .and_then(|()| publish(&tmp, &self.dir, |nth| file_name(&scenario, secs, run, nth)));
        let _ = std::fs::remove_file(&tmp);
        let name = kept?;
        if self.own_folder {
            prune(&self.dir, KEEP_IN_DEFAULT);
        }
        Ok(name)
    }
}

/// Gives the written file `tmp` the first free name of `dir` among `name(1)`, `name(2)`, …,
/// never replacing a file already there (another agent's run may have taken the name). A hard
/// link makes the file appear whole under its name, or fails because the name is taken; where
/// the folder's file system has no hard links, a rename to a name not yet there does (a file
/// another writer makes between the look and the rename would be replaced). `tmp` stays for
/// the caller to remove.
fn publish(tmp: &Path, dir: &Path, name: impl Fn(u32) -> String) -> io::Result<String> {
    for nth in 1..=MAX_NAMES {
        let candidate = name(nth);
        let path = dir.join(&candidate);
        match std::fs::hard_link(tmp, &path) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if !path.exists() => {
                return std::fs::rename(tmp, &path).map(|()| candidate);
            }
            Err(_) => continue,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} and its {MAX_NAMES} variants are taken", name(1)),
    ))
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
            file_name("parallel-compute", 1_780_000_000, 3, 1),
            "parallel-compute-1780000000-run3.coreplay.gz"
        );
        assert_eq!(file_name("a b/..", 1, 2, 1), "a-b----1-run2.coreplay.gz");
        assert_eq!(file_name("gil", 7, 2, 3), "gil-7-run2-3.coreplay.gz");
    }

    fn finished(scenario: coreplay_shared::scenario::ScenarioId, wall_ns: u64) -> Finished {
        use coreplay_shared::{
            event::Fidelity,
            scenario::Params,
            summary::{Outcome, Summary},
        };
        let mut summary = Summary::empty(
            scenario,
            Params::default(),
            Outcome::Completed,
            Fidelity::Exact,
        );
        summary.wall_ns = wall_ns;
        Finished {
            summary,
            events: Vec::new(),
        }
    }

    /// Two agents sharing the default folder (as tests do, and two agents of one user) end
    /// runs with the same name in the same second, at the same time: each keeps its own file,
    /// nothing is replaced and no temporary file is left.
    #[test]
    fn runs_sharing_a_name_are_each_kept_whole() {
        use coreplay_shared::scenario::ScenarioId;
        let dir = std::env::temp_dir().join(format!("coreplay-same-name-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let keeper = Keeper {
            dir: dir.clone(),
            topology: crate::topology::synthetic("core:2 pu:1").expect("topology"),
            own_folder: true,
        };
        const AT_ONCE: u64 = 8;
        let names: Vec<String> = std::thread::scope(|s| {
            let keeper = &keeper;
            let writers: Vec<_> = (0..AT_ONCE)
                .map(|i| {
                    s.spawn(move || {
                        keeper
                            .keep_at(2, &finished(ScenarioId::Gil, 1_000 + i), 1_780_000_000)
                            .expect("kept")
                    })
                })
                .collect();
            writers
                .into_iter()
                .map(|w| w.join().expect("writer"))
                .collect()
        });
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "one name each: {names:?}");
        for (i, name) in names.iter().enumerate() {
            let trace = record::read_file(&dir.join(name)).expect("a whole trace");
            assert_eq!(
                trace.summary.wall_ns,
                1_000 + i as u64,
                "{name} is its own run"
            );
        }
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, sorted, "no temporary file left");
        let _ = std::fs::remove_dir_all(&dir);
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
