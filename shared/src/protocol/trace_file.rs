//! The recorded-run file, format version 2: gzip-compressed JSON Lines (specified in
//! `docs/trace-format.md`).
//!
//! ```text
//! {"format":"coreplay-trace","format_version":2,"protocol_version":3,"agent_version":"0.1.0",
//!  "recorded_at":"2025-06-01T12:00:00Z","machine":{…},"topology":{…},"scenario":"gil",
//!  "params":{…},"fidelity":{"kind":"exact"}}                      (one line)
//! {"events":[…]}            (any number of lines, up to 10 000 events each)
//! {"summary":{…}}
//! ```
//!
//! This module is codec-agnostic: it works on the *decompressed* text, one line at a time, so
//! that the page can feed it from the browser's `DecompressionStream('gzip')` as the bytes
//! arrive and the agent from `flate2`. [`StreamReader`] is the incremental reader; [`read`]
//! reads a whole text on top of it. The writing side ([`header_line`], [`events_lines`],
//! [`summary_line`], [`to_text`]) produces the same text; compressing it is the caller's job.
//!
//! Files are untrusted input: the reader caps the total size and each line's, checks the
//! format and versions before anything else, validates the topology, says which line is wrong,
//! and tells a file that ends before its summary (truncated) from one that is damaged
//! (corrupt). Every error's text is written to be shown to a user as is.
//!
//! Format version 1 (the provisional, uncompressed JSON Lines of protocol 2 and 3, header
//! `"format":"coreplay-trace-jsonl"`) is recognised but no longer read: it is reported as
//! [`TraceError::Older`].

use serde::Serialize;

use crate::{
    PROTOCOL_VERSION,
    event::{Event, Fidelity},
    json::{self, JsonError},
    json_struct,
    scenario::{Params, ScenarioId},
    summary::Summary,
    topology::Topology,
};

/// The `format` of the header line.
pub const FORMAT: &str = "coreplay-trace";
/// The `format` of version-1 headers (no longer read).
pub const FORMAT_V1: &str = "coreplay-trace-jsonl";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest protocol version whose trace files this crate still reads. Protocol bumps that
/// leave the event, summary and header types readable (fields and variants only added) keep
/// it; a change that old files cannot be read with raises it to the new [`PROTOCOL_VERSION`].
pub const OLDEST_READABLE_PROTOCOL: u32 = 3;
/// The most events one `{"events":[…]}` line holds when written by [`events_lines`].
pub const BATCH_EVENTS: usize = 10_000;
/// Largest decompressed text the reader accepts, bytes (every line counted with its newline).
pub const MAX_TRACE_BYTES: usize = 512 << 20;
/// Longest line the reader accepts, bytes (a full batch of events is about 1 MB).
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// The suggested file name extension (gzip-compressed).
pub const FILE_EXTENSION: &str = ".coreplay.gz";

/// The machine a run was recorded on, as far as it is worth telling a reader. No host name,
/// user name or address: trace files are meant to be shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Machine {
    /// CPU model name (`model name` in `/proc/cpuinfo`, else hwloc's), e.g.
    /// `AMD EPYC 7B13 64-Core Processor`.
    pub cpu_model: Option<String>,
    /// Kernel release (`uname -r`), e.g. `6.1.0-18-amd64`.
    pub kernel: Option<String>,
    /// Operating system (`PRETTY_NAME` in `/etc/os-release`), e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub os: Option<String>,
    /// Instruction set (`uname -m`), e.g. `x86_64`.
    pub arch: Option<String>,
}

impl Machine {
    /// One line for labels: `AMD EPYC 7B13 · 2 hardware threads · Debian GNU/Linux 12 (bookworm) ·
    /// Linux 6.1.0-18-amd64 · x86_64`; the parts not known are left out.
    pub fn describe(&self, hardware_threads: usize) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(m) = &self.cpu_model {
            parts.push(m.trim().to_string());
        }
        parts.push(format!(
            "{hardware_threads} hardware thread{}",
            if hardware_threads == 1 { "" } else { "s" }
        ));
        if let Some(os) = &self.os {
            parts.push(os.trim().to_string());
        }
        if let Some(k) = &self.kernel {
            parts.push(format!("Linux {}", k.trim()));
        }
        if let Some(a) = &self.arch {
            parts.push(a.trim().to_string());
        }
        parts.join(" · ")
    }
}

/// The header line: what was run, where, when and by whom.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version, [`FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// The protocol version of the event and summary types inside ([`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// Version of the coreplay that wrote the file.
    pub agent_version: String,
    /// When the run was recorded: RFC 3339 in UTC, e.g. `2025-06-01T12:00:00Z`.
    pub recorded_at: String,
    /// The machine it ran on.
    pub machine: Machine,
    /// Its topology (with no host name).
    pub topology: Topology,
    /// The scenario run.
    pub scenario: ScenarioId,
    /// Its parameters, defaults filled in.
    pub params: Params,
    /// How the events were obtained.
    pub fidelity: Fidelity,
}

impl Header {
    /// A header for a run recorded now by this coreplay: format and protocol versions filled in
    /// and the topology's host name removed.
    pub fn new(
        agent_version: &str,
        recorded_at: String,
        machine: Machine,
        topology: &Topology,
        scenario: ScenarioId,
        params: Params,
        fidelity: Fidelity,
    ) -> Header {
        let mut topology = topology.clone();
        topology.machine.hostname = None;
        Header {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            protocol_version: PROTOCOL_VERSION,
            agent_version: agent_version.to_string(),
            recorded_at,
            machine,
            topology,
            scenario,
            params,
            fidelity,
        }
    }

    /// The machine in one line, with its hardware thread count ([`Machine::describe`]).
    pub fn machine_line(&self) -> String {
        self.machine.describe(self.topology.pu_count())
    }
}

/// What a line after the header holds.
///
/// A struct with optional fields rather than an untagged enum: serde would buffer every
/// line of an untagged enum into an intermediate tree before trying each variant, which
/// costs time on big batches and a second copy of every deserializer in the page.
#[derive(Debug, Default)]
struct Line {
    events: Option<Vec<Event>>,
    summary: Option<Box<Summary>>,
}

/// What one line read by [`StreamReader::push_line`] produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// The header (always the first item).
    Header(Box<Header>),
    /// A batch of events, in file order.
    Events(Vec<Event>),
    /// The summary (always the last item).
    Summary(Box<Summary>),
}

/// A whole file read back.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceFile {
    /// Its header.
    pub header: Header,
    /// Every event, in file order.
    pub events: Vec<Event>,
    /// The summary.
    pub summary: Summary,
}

/// Why a file cannot be read. The texts are meant for users as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// The decompressed text is larger than the reader's cap ([`MAX_TRACE_BYTES`]).
    #[error("the trace is larger than {limit} bytes uncompressed, more than coreplay reads")]
    TooLarge {
        /// The cap, bytes.
        limit: usize,
    },
    /// One line is longer than [`MAX_LINE_BYTES`].
    #[error("line {line} is longer than {limit} bytes, more than coreplay reads")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The cap, bytes.
        limit: usize,
    },
    /// Not a coreplay trace at all (empty, not JSON, or another `format`).
    #[error("not a coreplay trace file (it does not start with a coreplay-trace header)")]
    NotATrace,
    /// Written by a newer coreplay, in a format or protocol version this one does not read.
    #[error(
        "written by a newer coreplay ({agent_version}: trace format {format_version}, protocol \
         {protocol_version}); this one reads trace format {FORMAT_VERSION}, protocol \
         {OLDEST_READABLE_PROTOCOL} to {PROTOCOL_VERSION}: open it with coreplay \
         {agent_version} or later"
    )]
    Newer {
        /// The writer's version, as its header says.
        agent_version: String,
        /// The file's format version.
        format_version: u32,
        /// The file's protocol version.
        protocol_version: u32,
    },
    /// Written by an older coreplay, in a format or protocol version this one no longer reads.
    #[error(
        "written by an older coreplay ({agent_version}: trace format {format_version}, protocol \
         {protocol_version}); this one reads trace format {FORMAT_VERSION}, protocol \
         {OLDEST_READABLE_PROTOCOL} to {PROTOCOL_VERSION} only: record the run again"
    )]
    Older {
        /// The writer's version, as its header says.
        agent_version: String,
        /// The file's format version (1 for the provisional JSON Lines format).
        format_version: u32,
        /// The file's protocol version.
        protocol_version: u32,
    },
    /// A line that is not what the format says it must be.
    #[error("the trace is corrupt at line {line}: {message}")]
    Corrupt {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The text ends before the summary line.
    #[error(
        "the trace is truncated: it ends after {events} events, before the run's summary \
         (was the download or the recording cut short?)"
    )]
    Truncated {
        /// Events read before the end.
        events: usize,
    },
}

/// Where the reader is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Body,
    Done,
}

/// Reads a trace incrementally, one decompressed line at a time, so that a page can show a
/// file as it downloads.
///
/// Push every line, blank ones included (they are skipped but counted, so that errors name the
/// right line), without its `\n` (a trailing `\r` is ignored). After the last line call
/// [`StreamReader::finish`]. Once a call has returned an error, every later call returns it
/// again.
///
/// ```
/// use coreplay_shared::trace_file::{Item, StreamReader};
/// # fn main() -> Result<(), coreplay_shared::trace_file::TraceError> {
/// # let text = "";
/// let mut reader = StreamReader::new();
/// for line in text.lines() {
///     match reader.push_line(line)? {
///         Some(Item::Header(_header)) => { /* draw the topology */ }
///         Some(Item::Events(_batch)) => { /* append */ }
///         Some(Item::Summary(_summary)) => { /* done */ }
///         None => {}
///     }
/// }
/// # let _ = reader.finish();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StreamReader {
    stage: Stage,
    line: usize,
    bytes: usize,
    events: usize,
    max_bytes: usize,
    /// A line that ended mid-value: truncation if nothing follows, corruption otherwise.
    cut_line: Option<(usize, String)>,
    failed: Option<TraceError>,
}

impl Default for StreamReader {
    fn default() -> Self {
        StreamReader::new()
    }
}

impl StreamReader {
    /// A reader at the start of a file, with the default cap ([`MAX_TRACE_BYTES`]).
    pub fn new() -> StreamReader {
        StreamReader::with_max_bytes(MAX_TRACE_BYTES)
    }

    /// A reader that refuses more than `max_bytes` of text (lines counted with their newline).
    pub fn with_max_bytes(max_bytes: usize) -> StreamReader {
        StreamReader {
            stage: Stage::Header,
            line: 0,
            bytes: 0,
            events: 0,
            max_bytes,
            cut_line: None,
            failed: None,
        }
    }

    /// Lines pushed so far.
    pub fn lines_read(&self) -> usize {
        self.line
    }

    /// Bytes of text pushed so far (each line counted with its newline).
    pub fn bytes_read(&self) -> usize {
        self.bytes
    }

    /// Events read so far.
    pub fn events_read(&self) -> usize {
        self.events
    }

    /// Whether the summary has been read (the file is complete).
    pub fn is_complete(&self) -> bool {
        self.stage == Stage::Done && self.failed.is_none()
    }

    /// Reads the next line: the header, a batch of events or the summary (`None` for a blank
    /// line, and for a line cut short, which [`StreamReader::finish`] reports as truncation
    /// and any further line as corruption).
    pub fn push_line(&mut self, line: &str) -> Result<Option<Item>, TraceError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.push(line);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn push(&mut self, line: &str) -> Result<Option<Item>, TraceError> {
        self.line += 1;
        self.bytes = self.bytes.saturating_add(line.len() + 1);
        if self.bytes > self.max_bytes {
            return Err(TraceError::TooLarge {
                limit: self.max_bytes,
            });
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(TraceError::LineTooLong {
                line: self.line,
                limit: MAX_LINE_BYTES,
            });
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            return Ok(None);
        }
        if let Some((n, message)) = self.cut_line.take() {
            return Err(TraceError::Corrupt { line: n, message });
        }
        match self.stage {
            Stage::Header => {
                let header = parse_header(line)?;
                self.stage = Stage::Body;
                Ok(Some(Item::Header(Box::new(header))))
            }
            Stage::Body => match json::from_str::<Line>(line) {
                Ok(Line {
                    events: Some(events),
                    summary: None,
                }) => {
                    self.events += events.len();
                    Ok(Some(Item::Events(events)))
                }
                Ok(Line {
                    events: None,
                    summary: Some(summary),
                }) => {
                    self.stage = Stage::Done;
                    Ok(Some(Item::Summary(summary)))
                }
                Ok(_) => Err(TraceError::Corrupt {
                    line: self.line,
                    message: "a line must hold either \"events\" or \"summary\"".into(),
                }),
                Err(e) if e.is_eof() => {
                    self.cut_line = Some((self.line, e.to_string()));
                    Ok(None)
                }
                Err(e) => Err(TraceError::Corrupt {
                    line: self.line,
                    message: line_error(line, &e),
                }),
            },
            Stage::Done => Err(TraceError::Corrupt {
                line: self.line,
                message: "more lines after the summary, which must be the last".into(),
            }),
        }
    }

    /// Says whether the file was complete: `Truncated` (with the events read) unless the
    /// summary was read, or the error a previous call returned.
    pub fn finish(&self) -> Result<(), TraceError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.stage {
            Stage::Done => Ok(()),
            // Nothing but blank lines: an empty file is not a trace.
            Stage::Header => Err(TraceError::NotATrace),
            Stage::Body => Err(TraceError::Truncated {
                events: self.events,
            }),
        }
    }
}

/// Explains a line of the body that does not parse, naming what it should have been.
fn line_error(line: &str, e: &JsonError) -> String {
    let starts = |key: &str| line.trim_start().starts_with(&format!("{{\"{key}\""));
    if starts("events") {
        format!("a bad batch of events ({e})")
    } else if starts("summary") {
        format!("a bad summary ({e})")
    } else {
        format!("expected {{\"events\":[…]}} or {{\"summary\":{{…}}}} ({e})")
    }
}

/// Checks the format and versions of the first line, then reads it whole.
fn parse_header(line: &str) -> Result<Header, TraceError> {
    struct Probe {
        format: String,
        format_version: Option<u32>,
        protocol_version: Option<u32>,
        agent_version: Option<String>,
    }
    let corrupt = |message: String| TraceError::Corrupt { line: 1, message };
    json_struct!(Probe {
        format,
        format_version,
        protocol_version,
        agent_version
    });
    let probe: Probe = match json::from_str(line) {
        Ok(probe) => probe,
        // A header cut short: the file ends within its first line.
        Err(e) if e.is_eof() && line.starts_with(&format!("{{\"format\":\"{FORMAT}")) => {
            return Err(TraceError::Truncated { events: 0 });
        }
        Err(_) => return Err(TraceError::NotATrace),
    };
    let agent_version = probe
        .agent_version
        .unwrap_or_else(|| "unknown version".into());
    let (format_version, protocol_version) = match (
        probe.format.as_str(),
        probe.format_version,
        probe.protocol_version,
    ) {
        (FORMAT_V1, _, p) => (1, p.unwrap_or(0)),
        (FORMAT, Some(f), Some(p)) => (f, p),
        (FORMAT, None, _) => return Err(corrupt("the header has no format_version".into())),
        (FORMAT, _, None) => {
            return Err(corrupt("the header has no protocol_version".into()));
        }
        _ => return Err(TraceError::NotATrace),
    };
    let newer = format_version > FORMAT_VERSION
        || (format_version == FORMAT_VERSION && protocol_version > PROTOCOL_VERSION);
    if newer {
        return Err(TraceError::Newer {
            agent_version,
            format_version,
            protocol_version,
        });
    }
    if format_version < FORMAT_VERSION || protocol_version < OLDEST_READABLE_PROTOCOL {
        return Err(TraceError::Older {
            agent_version,
            format_version,
            protocol_version,
        });
    }
    let header: Header =
        json::from_str(line).map_err(|e| corrupt(format!("a bad header ({e})")))?;
    header
        .topology
        .validate()
        .map_err(|e| corrupt(format!("invalid topology ({e})")))?;
    Ok(header)
}

/// Reads a whole decompressed text (what [`to_text`] writes).
pub fn read(text: &str) -> Result<TraceFile, TraceError> {
    if text.len() > MAX_TRACE_BYTES {
        return Err(TraceError::TooLarge {
            limit: MAX_TRACE_BYTES,
        });
    }
    let mut reader = StreamReader::new();
    let mut header = None;
    let mut events = Vec::new();
    let mut summary = None;
    // `split('\n')` rather than `lines()`: a final line without its newline is still read.
    for line in text.split('\n') {
        match reader.push_line(line)? {
            Some(Item::Header(h)) => header = Some(*h),
            Some(Item::Events(batch)) => events.extend(batch),
            Some(Item::Summary(s)) => summary = Some(*s),
            None => {}
        }
    }
    reader.finish()?;
    match (header, summary) {
        (Some(header), Some(summary)) => Ok(TraceFile {
            header,
            events,
            summary,
        }),
        // `finish` succeeded, so both were read.
        _ => Err(TraceError::Truncated {
            events: events.len(),
        }),
    }
}

/// The header line (no newline).
pub fn header_line(header: &Header) -> String {
    // These types hold no maps with non-string keys and no fallible Serialize impls, so
    // encoding cannot fail (serde_json writes non-finite floats as null).
    serde_json::to_string(header).unwrap_or_default()
}

/// The event lines (no newlines), [`BATCH_EVENTS`] events each at most; none for no events.
pub fn events_lines(events: &[Event]) -> impl Iterator<Item = String> + '_ {
    #[derive(Serialize)]
    struct EventsLine<'a> {
        events: &'a [Event],
    }
    events
        .chunks(BATCH_EVENTS)
        .map(|chunk| serde_json::to_string(&EventsLine { events: chunk }).unwrap_or_default())
}

/// The summary line (no newline).
pub fn summary_line(summary: &Summary) -> String {
    #[derive(Serialize)]
    struct SummaryLine<'a> {
        summary: &'a Summary,
    }
    serde_json::to_string(&SummaryLine { summary }).unwrap_or_default()
}

/// The whole decompressed text of a file: every line followed by `\n`.
pub fn to_text(header: &Header, events: &[Event], summary: &Summary) -> String {
    let mut out = header_line(header);
    out.push('\n');
    for line in events_lines(events) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&summary_line(summary));
    out.push('\n');
    out
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC, e.g. `2025-06-01T12:00:00Z`.
pub fn rfc3339_utc(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (non-negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

json_struct!(Machine {
    cpu_model,
    kernel,
    os,
    arch
});
json_struct!(Header {
    format,
    format_version,
    protocol_version,
    agent_version,
    recorded_at,
    machine,
    topology,
    scenario,
    params,
    fidelity
});
json_struct!(deny Line { events, summary });

#[cfg(test)]
mod tests {
    use super::*;

    fn header_with(format: &str, format_version: u32, protocol_version: u32) -> String {
        format!(
            r#"{{"format":"{format}","format_version":{format_version},"protocol_version":{protocol_version},"agent_version":"9.9.9"}}"#
        )
    }

    #[test]
    fn not_a_trace_and_versions_are_told_apart() {
        assert_eq!(read("").map(|_| ()), Err(TraceError::NotATrace));
        assert_eq!(read("\n\n").map(|_| ()), Err(TraceError::NotATrace));
        assert_eq!(read("hello\n").map(|_| ()), Err(TraceError::NotATrace));
        assert_eq!(
            read(&header_with("other", 2, PROTOCOL_VERSION)).map(|_| ()),
            Err(TraceError::NotATrace)
        );
        let newer = |f, p| TraceError::Newer {
            agent_version: "9.9.9".into(),
            format_version: f,
            protocol_version: p,
        };
        assert_eq!(
            read(&header_with(FORMAT, FORMAT_VERSION + 1, PROTOCOL_VERSION)).map(|_| ()),
            Err(newer(FORMAT_VERSION + 1, PROTOCOL_VERSION))
        );
        // A newer format is newer even if its protocol is older.
        assert_eq!(
            read(&header_with(FORMAT, FORMAT_VERSION + 1, 1)).map(|_| ()),
            Err(newer(FORMAT_VERSION + 1, 1))
        );
        assert_eq!(
            read(&header_with(FORMAT, FORMAT_VERSION, PROTOCOL_VERSION + 1)).map(|_| ()),
            Err(newer(FORMAT_VERSION, PROTOCOL_VERSION + 1))
        );
        assert_eq!(
            read(&header_with(
                FORMAT,
                FORMAT_VERSION,
                OLDEST_READABLE_PROTOCOL - 1
            ))
            .map(|_| ()),
            Err(TraceError::Older {
                agent_version: "9.9.9".into(),
                format_version: FORMAT_VERSION,
                protocol_version: OLDEST_READABLE_PROTOCOL - 1
            })
        );
        // Readable versions get past the version check (and fail later, on the missing fields).
        for p in OLDEST_READABLE_PROTOCOL..=PROTOCOL_VERSION {
            assert!(matches!(
                read(&header_with(FORMAT, FORMAT_VERSION, p)),
                Err(TraceError::Corrupt { line: 1, .. })
            ));
        }
        let v1 = format!(r#"{{"format":"{FORMAT_V1}","protocol_version":{PROTOCOL_VERSION}}}"#);
        assert_eq!(
            read(&v1).map(|_| ()),
            Err(TraceError::Older {
                agent_version: "unknown version".into(),
                format_version: 1,
                protocol_version: PROTOCOL_VERSION
            })
        );
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = TraceError::Newer {
            agent_version: "0.3.0".into(),
            format_version: 3,
            protocol_version: 5,
        };
        let text = e.to_string();
        assert!(text.contains("newer coreplay (0.3.0"), "{text}");
        assert!(
            text.contains(&format!("reads trace format {FORMAT_VERSION}")),
            "{text}"
        );
        let t = TraceError::Truncated { events: 12 }.to_string();
        assert!(t.contains("after 12 events"), "{t}");
    }

    #[test]
    fn caps_are_enforced() {
        let mut r = StreamReader::with_max_bytes(10);
        assert_eq!(
            r.push_line("0123456789"),
            Err(TraceError::TooLarge { limit: 10 })
        );
        // The error sticks.
        assert_eq!(r.push_line(""), Err(TraceError::TooLarge { limit: 10 }));
        assert_eq!(r.finish(), Err(TraceError::TooLarge { limit: 10 }));
        let mut r = StreamReader::new();
        assert_eq!(
            r.push_line(&" ".repeat(MAX_LINE_BYTES + 1)),
            Err(TraceError::LineTooLong {
                line: 1,
                limit: MAX_LINE_BYTES
            })
        );
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_748_779_200), "2025-06-01T12:00:00Z");
        assert_eq!(rfc3339_utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn describe_machine() {
        let m = Machine {
            cpu_model: Some("Example CPU".into()),
            kernel: Some("6.1.0".into()),
            os: Some("Debian GNU/Linux 12 (bookworm)".into()),
            arch: Some("x86_64".into()),
        };
        assert_eq!(
            m.describe(2),
            "Example CPU · 2 hardware threads · Debian GNU/Linux 12 (bookworm) · Linux 6.1.0 · x86_64"
        );
        assert_eq!(Machine::default().describe(1), "1 hardware thread");
    }
}
