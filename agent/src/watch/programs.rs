//! The programs `coreplay watch` may start from the page: the Python examples found beside
//! the agent, and the operator's own (`--watch-program NAME=COMMAND`, split into words as a
//! shell would); and the thread table the command line prints after a watch.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use coreplay_shared::{
    frame::{HELPER_CPU_NS, Helpers, MIN_HELPERS},
    summary::{Summary, ThreadSummary},
    watch::{self, WatchProgram},
};

/// The example programs in `examples/python/`: (name, file, title).
pub const PYTHON_EXAMPLES: [(&str, &str, &str); 4] = [
    (
        "cpu_threads",
        "cpu_threads.py",
        "Python: CPU-bound work on 4 threads (the GIL lets one run at a time)",
    ),
    (
        "pools",
        "pools.py",
        "Python: the same work on a ThreadPoolExecutor, then a ProcessPoolExecutor",
    ),
    (
        "asyncio_sleeps",
        "asyncio_sleeps.py",
        "Python: 1000 concurrent asyncio sleeps on one thread",
    ),
    (
        "asyncio_loopback",
        "asyncio_loopback.py",
        "Python: asyncio with concurrent loopback TCP requests to its own server",
    ),
];

/// Where `examples/python/` is: beside the sources this agent was built from, under the
/// current directory, or two levels above the executable (`target/release/coreplay`).
pub fn examples_dir() -> Option<PathBuf> {
    let mut candidates = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python")];
    if let Ok(cwd) = std::env::current_dir() {
        candidates.push(cwd.join("examples/python"));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent)
    {
        candidates.push(root.join("examples/python"));
    }
    candidates
        .into_iter()
        .filter(|d| d.join(PYTHON_EXAMPLES[0].1).is_file())
        .find_map(|d| d.canonicalize().ok())
}

/// Whether `program` is an executable file on `PATH`.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The programs the page may start by default: the Python examples, when `python3` is on
/// `PATH` and the examples are found.
pub fn default_programs() -> Vec<WatchProgram> {
    if !on_path("python3") {
        return Vec::new();
    }
    let Some(dir) = examples_dir() else {
        return Vec::new();
    };
    // The interpreter itself rather than `python3`, which may be a version manager's shell
    // shim whose own processes would show up in every watch.
    let python = python_executable("python3").unwrap_or_else(|| "python3".to_string());
    PYTHON_EXAMPLES
        .iter()
        .filter(|(_, file, _)| dir.join(file).is_file())
        .map(|(name, file, title)| WatchProgram {
            name: (*name).to_string(),
            title: (*title).to_string(),
            command: vec![
                python.clone(),
                dir.join(file).to_string_lossy().into_owned(),
            ],
        })
        .collect()
}

/// The interpreter a Python command runs (`sys.executable`), asked of the command itself.
fn python_executable(program: &str) -> Option<String> {
    Command::new(program)
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|p| p.trim().to_string())
        .filter(|p| Path::new(p).is_file())
}

/// Where `program` is: itself when it names a path, else the first match on `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// When `program` is a Python wrapper script (a pyenv shim, a virtualenv launcher written as
/// a shell script: a file named `python…` that starts with `#!` and is not an interpreter
/// binary), the interpreter it starts, so that a watch follows the program rather than the
/// wrapper's helper processes (as the page's example programs do).
pub fn python_behind_wrapper(program: &str) -> Option<String> {
    let name = Path::new(program).file_name()?.to_str()?;
    if !name.starts_with("python") {
        return None;
    }
    let file = find_program(program)?;
    let mut head = [0u8; 2];
    use std::io::Read as _;
    std::fs::File::open(&file)
        .ok()?
        .read_exact(&mut head)
        .ok()?;
    if &head != b"#!" {
        return None;
    }
    python_executable(program).filter(|real| Path::new(real) != file)
}

/// Splits a command line into words as a POSIX shell would ([`shlex`]): single and double
/// quotes, backslashes, and a `#` starting a word begins a comment; nothing else (no
/// variables, globs or operators: use `sh -c '…'` for those). An unterminated quote or a
/// backslash at the end is an error.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    shlex::split(line).ok_or_else(|| {
        "unbalanced quotes: a quote is not closed, or the line ends in a backslash".to_string()
    })
}

/// Parses `NAME=COMMAND ARGS…` (`--watch-program`): a name of letters, digits, `_` and `-`,
/// and a command split into words as a shell would (quotes and backslashes; no variables or
/// operators: wrap those in `sh -c '…'`).
pub fn parse_program(spec: &str) -> Result<WatchProgram, String> {
    let (name, command) = spec
        .split_once('=')
        .ok_or_else(|| format!("{spec:?}: expected NAME=COMMAND, e.g. busy=\"python3 busy.py\""))?;
    let name = name.trim();
    if name.is_empty()
        || name.len() > watch::MAX_PROGRAM_NAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{name:?}: a program name is 1 to {} letters, digits, '_' or '-'",
            watch::MAX_PROGRAM_NAME
        ));
    }
    let command = split_words(command).map_err(|e| format!("{name}: {e}"))?;
    if command.is_empty() {
        return Err(format!("{name}: the command is empty"));
    }
    Ok(WatchProgram {
        name: name.to_string(),
        title: command.join(" "),
        command,
    })
}

/// The summary's threads as a table: one line per thread with its CPU time and switches.
pub fn thread_table(summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let root = summary.watch.as_ref().map(|w| w.pid);
    let (own, helpers) = split_helpers(&summary.threads, root);
    let _ = writeln!(
        out,
        "{:>5} {:>8} {:<16} {:>11} {:>10} {:>10} {:>6} {:>12}",
        "tid", "pid", "name", "CPU ms", "voluntary", "involunt.", "migr.", "runnable ms"
    );
    for t in own {
        let name: String = t.name.chars().take(16).collect();
        let _ = writeln!(
            out,
            "{:>5} {:>8} {:<16} {:>11.2} {:>10} {:>10} {:>6} {:>12.2}",
            t.tid,
            t.pid,
            name,
            t.cpu_ns as f64 / 1e6,
            t.voluntary_switches,
            t.involuntary_switches,
            t.migrations,
            t.runnable_wait_ns as f64 / 1e6
        );
    }
    if !helpers.is_empty() {
        let folded = Helpers::of(helpers.iter().map(|t| t.name.as_str()));
        let cpu: u64 = helpers.iter().map(|t| t.cpu_ns).sum();
        let _ = writeln!(
            out,
            "  … and {} short-lived helper processes of one thread each, under {} ms CPU each \
             ({}): {:.2} ms CPU in all",
            folded.count,
            HELPER_CPU_NS / 1_000_000,
            folded.list(),
            cpu as f64 / 1e6
        );
    }
    out
}

/// A wrapper (a pyenv shim is a shell script) starts helpers that live a moment and use almost
/// no CPU: the thread table gives them one line, so the program's own threads stand out.
/// Returns (the rows to list, the helpers to fold), the helpers empty when there are fewer
/// than [`MIN_HELPERS`].
fn split_helpers(
    threads: &[ThreadSummary],
    root: Option<u32>,
) -> (Vec<&ThreadSummary>, Vec<&ThreadSummary>) {
    let mut per_pid: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for t in threads {
        *per_pid.entry(t.pid).or_default() += 1;
    }
    let helper = |t: &ThreadSummary| {
        per_pid.get(&t.pid) == Some(&1) && Some(t.pid) != root && t.cpu_ns < HELPER_CPU_NS
    };
    let (helpers, own): (Vec<&ThreadSummary>, Vec<&ThreadSummary>) =
        threads.iter().partition(|t| helper(t));
    if helpers.len() >= MIN_HELPERS {
        (own, helpers)
    } else {
        (threads.iter().collect(), Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tid: u32, pid: u32, name: &str, cpu_ms: u64) -> ThreadSummary {
        ThreadSummary {
            tid,
            pid,
            name: name.into(),
            role: coreplay_shared::event::Role::Worker,
            cpu_ns: cpu_ms * 1_000_000,
            wall_ns: 0,
            voluntary_switches: 0,
            involuntary_switches: 0,
            migrations: 0,
            runnable_wait_ns: 0,
            lock_wait_ns: 0,
        }
    }

    #[test]
    fn a_wrappers_short_lived_helpers_fold_into_one_line() {
        let threads = vec![
            row(1, 10, "python3", 50),
            row(2, 11, "readlink", 0),
            row(3, 12, "bash", 1),
            row(4, 10, "compute-0", 130),
            row(5, 13, "bash", 2),
            // A one-thread child that works is the program's, not a helper.
            row(6, 14, "worker", 90),
        ];
        let (own, helpers) = split_helpers(&threads, Some(10));
        let names = |v: &[&ThreadSummary]| v.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&own), ["python3", "compute-0", "worker"]);
        assert_eq!(names(&helpers), ["readlink", "bash", "bash"]);
        // Two are not worth a line of their own.
        let (own, helpers) = split_helpers(&threads[..4], Some(10));
        assert_eq!(own.len(), 4);
        assert!(helpers.is_empty());
    }

    #[test]
    fn program_specs() {
        let p = parse_program("busy=sh -c  true").expect("valid");
        assert_eq!(p.name, "busy");
        assert_eq!(p.command, vec!["sh", "-c", "true"]);
        assert_eq!(p.title, "sh -c true");
        assert!(parse_program("busy").is_err());
        assert!(parse_program("=sh").is_err());
        assert!(parse_program("a b=sh").is_err());
        assert!(parse_program("x=  ").is_err());
        let p = parse_program(r#"spin=sh -c 'a & b; wait' "x y" z\ w"#).expect("quoted");
        assert_eq!(p.command, vec!["sh", "-c", "a & b; wait", "x y", "z w"]);
        let err = parse_program("x=sh -c 'open").expect_err("unbalanced");
        assert!(err.starts_with("x: unbalanced quotes"), "{err}");
    }

    #[test]
    fn words_split_as_a_shell_would() {
        assert_eq!(
            split_words(r#"a "b \"c\" \$d \x" 'e\f' g\ h"#),
            Ok(vec![
                "a".to_string(),
                r#"b "c" $d \x"#.to_string(),
                r"e\f".to_string(),
                "g h".to_string(),
            ])
        );
        assert_eq!(split_words("  "), Ok(Vec::new()));
        assert_eq!(split_words(r#""""#), Ok(vec![String::new()]));
        for bad in ["'open", "\"open", r#""open \""#, "end\\"] {
            let err = split_words(bad).expect_err(bad);
            assert!(err.contains("unbalanced quotes"), "{bad}: {err}");
        }
    }
}
