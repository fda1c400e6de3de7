//! The recorded-run file (provisional format, JSON Lines, until record/replay settles a
//! compressed one): a header line, lines of events, and the summary line.
//!
//! ```text
//! {"format":"coreplay-trace-jsonl","protocol_version":2,"agent_version":"0.1.0","topology":{…}}
//! {"events":[…]}            (any number of lines, up to 10 000 events each)
//! {"summary":{…}}
//! ```
//!
//! Files are untrusted input: [`read`] caps the size, checks the format and version before
//! anything else, validates the topology, and says which line is wrong. A file that ends
//! before its summary is reported as truncated, with how many events it did hold.

use serde::{Deserialize, Serialize};

use crate::{PROTOCOL_VERSION, event::Event, summary::Summary, topology::Topology};

/// The `format` of the header line.
pub const FORMAT: &str = "coreplay-trace-jsonl";
/// Largest file [`read`] accepts, bytes.
pub const MAX_TRACE_BYTES: usize = 512 << 20;

/// The header line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The protocol version of the event and summary types inside.
    pub protocol_version: u32,
    /// The agent that wrote the file.
    pub agent_version: String,
    /// The machine the run happened on.
    pub topology: Topology,
}

/// One line after the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    /// A batch of events.
    Events {
        /// The events.
        events: Vec<Event>,
    },
    /// The summary (last line).
    Summary {
        /// The summary.
        summary: Box<Summary>,
    },
}

/// A file read back.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceFile {
    /// Its header.
    pub header: Header,
    /// Every event, in file order.
    pub events: Vec<Event>,
    /// The summary.
    pub summary: Summary,
}

/// Why a file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// Larger than [`MAX_TRACE_BYTES`].
    #[error("the file is {0} bytes, more than the {MAX_TRACE_BYTES} accepted")]
    TooLarge(usize),
    /// Not a coreplay trace at all.
    #[error("not a coreplay trace file (the first line is not a {FORMAT} header)")]
    NotATrace,
    /// Written by a newer coreplay.
    #[error(
        "written by a newer coreplay (protocol {0}, this one reads {PROTOCOL_VERSION}): update coreplay"
    )]
    Newer(u32),
    /// Written by an older, incompatible coreplay.
    #[error(
        "written by an older coreplay (protocol {0}, this one reads {PROTOCOL_VERSION}): record it again"
    )]
    Older(u32),
    /// A line that does not parse.
    #[error("line {line}: {message}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Ends before the summary.
    #[error("the file is truncated: it ends after {events} events, before the run's summary")]
    Truncated {
        /// Events read before the end.
        events: usize,
    },
}

/// Writes the header line.
pub fn header_line(agent_version: &str, topology: &Topology) -> String {
    #[derive(Serialize)]
    struct H<'a> {
        format: &'static str,
        protocol_version: u32,
        agent_version: &'a str,
        topology: &'a Topology,
    }
    serde_json::to_string(&H {
        format: FORMAT,
        protocol_version: PROTOCOL_VERSION,
        agent_version,
        topology,
    })
    .unwrap_or_default()
}

/// Reads a whole file.
pub fn read(text: &str) -> Result<TraceFile, TraceError> {
    if text.len() > MAX_TRACE_BYTES {
        return Err(TraceError::TooLarge(text.len()));
    }
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or(TraceError::NotATrace)?;
    #[derive(Deserialize)]
    struct Probe {
        format: String,
        protocol_version: u32,
    }
    let probe: Probe = serde_json::from_str(first).map_err(|_| TraceError::NotATrace)?;
    if probe.format != FORMAT {
        return Err(TraceError::NotATrace);
    }
    if probe.protocol_version > PROTOCOL_VERSION {
        return Err(TraceError::Newer(probe.protocol_version));
    }
    if probe.protocol_version < PROTOCOL_VERSION {
        return Err(TraceError::Older(probe.protocol_version));
    }
    let bad = |line: usize, message: String| TraceError::BadLine {
        line: line + 1,
        message,
    };
    let header: Header = serde_json::from_str(first).map_err(|e| bad(0, e.to_string()))?;
    header
        .topology
        .validate()
        .map_err(|e| bad(0, format!("invalid topology: {e}")))?;
    let mut events = Vec::new();
    for (n, line) in lines {
        match serde_json::from_str::<Line>(line) {
            Ok(Line::Events { events: batch }) => events.extend(batch),
            Ok(Line::Summary { summary }) => {
                return Ok(TraceFile {
                    header,
                    events,
                    summary: *summary,
                });
            }
            // A last line cut short is truncation, not corruption.
            Err(e) if e.is_eof() => {
                return Err(TraceError::Truncated {
                    events: events.len(),
                });
            }
            Err(e) => return Err(bad(n, e.to_string())),
        }
    }
    Err(TraceError::Truncated {
        events: events.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_trace_and_versions_are_told_apart() {
        assert_eq!(read(""), Err(TraceError::NotATrace));
        assert_eq!(read("hello\n"), Err(TraceError::NotATrace));
        assert_eq!(
            read(r#"{"format":"other","protocol_version":2}"#),
            Err(TraceError::NotATrace)
        );
        let newer = format!(
            r#"{{"format":"{FORMAT}","protocol_version":{}}}"#,
            PROTOCOL_VERSION + 1
        );
        assert_eq!(read(&newer), Err(TraceError::Newer(PROTOCOL_VERSION + 1)));
        let older = format!(r#"{{"format":"{FORMAT}","protocol_version":1}}"#);
        assert_eq!(read(&older), Err(TraceError::Older(1)));
    }
}
