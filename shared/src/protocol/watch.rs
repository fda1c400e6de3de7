//! Watching a real program: the programs an agent's operator lets the page start, what a
//! watch run follows, and the sampling rates the agent accepts.
//!
//! The page can only name a program from the agent's list ([`crate::Hello::watch_programs`]);
//! it never sends a command line. The agent refuses any other name.

use serde::Serialize;

use crate::json_struct;

/// Slowest `/proc` sampling rate accepted, polls per second.
pub const MIN_HZ: u32 = 10;
/// Fastest `/proc` sampling rate accepted, polls per second.
pub const MAX_HZ: u32 = 10_000;
/// The default sampling rate, polls per second.
pub const DEFAULT_HZ: u32 = 1_000;

/// Longest program name accepted from a client.
pub const MAX_PROGRAM_NAME: usize = 64;

/// A program the agent's operator allows the page to start and watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchProgram {
    /// What the page sends back in [`crate::ClientMsg::Watch`], e.g. `cpu_threads`.
    pub name: String,
    /// What it shows, for people.
    pub title: String,
    /// The command the agent runs (fixed by the operator, shown for information).
    pub command: Vec<String>,
}

/// What a watch run follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchTarget {
    /// The program's name from the agent's list, when the page started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The command started (empty when an already running process is followed).
    pub command: Vec<String>,
    /// The first process followed.
    pub pid: u32,
}

/// A sampling rate outside [`MIN_HZ`]..=[`MAX_HZ`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sampling rate {0} Hz is out of range: allowed {MIN_HZ}..={MAX_HZ}")]
pub struct HzError(pub u32);

/// Checks a sampling rate.
pub fn check_hz(hz: u32) -> Result<u32, HzError> {
    if (MIN_HZ..=MAX_HZ).contains(&hz) {
        Ok(hz)
    } else {
        Err(HzError(hz))
    }
}

/// Finds `name` in `programs`, or says which names there are.
pub fn find_program<'a>(
    programs: &'a [WatchProgram],
    name: &str,
) -> Result<&'a WatchProgram, String> {
    programs.iter().find(|p| p.name == name).ok_or_else(|| {
        let shown: String = name.chars().take(MAX_PROGRAM_NAME).collect();
        if programs.is_empty() {
            format!(
                "unknown program {}: this agent offers no programs to watch (its operator \
                 can add some with --watch-program NAME=COMMAND)",
                crate::json::quote(&shown)
            )
        } else {
            let names: Vec<&str> = programs.iter().map(|p| p.name.as_str()).collect();
            format!(
                "unknown program {}; this agent offers: {} (the page can only start \
                 programs its operator listed)",
                crate::json::quote(&shown),
                names.join(", ")
            )
        }
    })
}

json_struct!(WatchProgram {
    name,
    title,
    command
});
json_struct!(WatchTarget {
    program,
    command,
    pid
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hz_range() {
        assert_eq!(check_hz(DEFAULT_HZ), Ok(DEFAULT_HZ));
        assert!(check_hz(MIN_HZ).is_ok() && check_hz(MAX_HZ).is_ok());
        let err = check_hz(MAX_HZ + 1).expect_err("too fast");
        assert!(err.to_string().contains("10..=10000"), "{err}");
        assert!(check_hz(0).is_err());
    }

    #[test]
    fn unknown_programs_are_named_with_the_choices() {
        let programs = vec![WatchProgram {
            name: "cpu_threads".into(),
            title: "t".into(),
            command: vec!["python3".into()],
        }];
        assert!(find_program(&programs, "cpu_threads").is_ok());
        let err = find_program(&programs, "rm -rf /").expect_err("unknown");
        assert!(
            err.contains("cpu_threads") && err.contains("rm -rf"),
            "{err}"
        );
        assert!(
            find_program(&[], "x")
                .expect_err("none")
                .contains("--watch-program")
        );
    }
}
