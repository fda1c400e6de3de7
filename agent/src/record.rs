//! Trace files on disk: the gzip-compressed JSON Lines of [`coreplay_shared::trace_file`]
//! (specified in `docs/trace-format.md`), written after a run and read back for export, plus
//! the description of this machine that their header carries.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, BufWriter, Read, Write},
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use coreplay_shared::{
    Topology,
    event::Event,
    summary::Summary,
    trace_file::{self, Header, Item, Machine, StreamReader, TraceError, TraceFile},
};
use flate2::{Compression, bufread::MultiGzDecoder, write::GzEncoder};

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a trace file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: io::Error,
    },
    /// The gzip data is damaged (not merely cut short, which is [`TraceError::Truncated`]).
    #[error("{path}: the compressed data is corrupt after line {line} ({message})")]
    Gzip {
        /// The file.
        path: String,
        /// Lines read before the damage.
        line: usize,
        /// What the decompressor said.
        message: String,
    },
    /// The text is not a readable trace.
    #[error("{path}: {error}")]
    Trace {
        /// The file.
        path: String,
        /// Why.
        error: TraceError,
    },
}

impl ReadError {
    /// The trace-level error, if that is what it is (for tests and exit codes).
    pub fn trace_error(&self) -> Option<&TraceError> {
        match self {
            ReadError::Trace { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// This machine as a trace header describes it: CPU model from `/proc/cpuinfo` (else the
/// topology's), kernel release and architecture from `uname`, OS from `/etc/os-release`.
/// Never the host name.
pub fn this_machine(topology: &Topology) -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| cpuinfo_model(&text))
        .or_else(|| topology.machine.cpu_model.clone());
    let os = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| os_release_pretty_name(&text));
    let (kernel, arch) = uname();
    Machine {
        cpu_model,
        kernel,
        os,
        arch,
    }
}

/// The first `model name` of `/proc/cpuinfo` text.
fn cpuinfo_model(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name" && !value.trim().is_empty()).then(|| value.trim().to_string())
    })
}

/// `PRETTY_NAME` (else `NAME`) of `os-release` text, unquoted.
fn os_release_pretty_name(text: &str) -> Option<String> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let value = l.strip_prefix(key)?.strip_prefix('=')?.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            (!unquoted.is_empty()).then(|| unquoted.replace("\\\"", "\""))
        })
    };
    get("PRETTY_NAME").or_else(|| get("NAME"))
}

/// Kernel release and machine (architecture) from `uname(2)`.
fn uname() -> (Option<String>, Option<String>) {
    // SAFETY: `utsname` is plain bytes; all-zero is a valid value, and `uname` fills it with
    // NUL-terminated strings or fails.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname`.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (None, Some(std::env::consts::ARCH.to_string()));
    }
    let field = |chars: &[libc::c_char]| {
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        let s = String::from_utf8_lossy(&bytes).trim().to_string();
        (!s.is_empty()).then_some(s)
    };
    (
        field(&uts.release),
        field(&uts.machine).or_else(|| Some(std::env::consts::ARCH.to_string())),
    )
}

/// The header for a run that just ended on this machine: the scenario, parameters and
/// fidelity come from its summary, the time is now.
pub fn header_for(topology: &Topology, summary: &Summary) -> Header {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Header::new(
        env!("CARGO_PKG_VERSION"),
        trace_file::rfc3339_utc(now),
        this_machine(topology),
        topology,
        summary.scenario,
        summary.params.clone(),
        summary.fidelity,
    )
}

/// Writes a trace as gzip-compressed JSON Lines to `out`.
pub fn write_to<W: Write>(
    out: W,
    header: &Header,
    events: &[Event],
    summary: &Summary,
) -> io::Result<W> {
    let mut gz = GzEncoder::new(out, Compression::best());
    gz.write_all(trace_file::header_line(header).as_bytes())?;
    gz.write_all(b"\n")?;
    for line in trace_file::events_lines(events) {
        gz.write_all(line.as_bytes())?;
        gz.write_all(b"\n")?;
    }
    gz.write_all(trace_file::summary_line(summary).as_bytes())?;
    gz.write_all(b"\n")?;
    gz.finish()
}

/// Writes a trace file (gzip-compressed JSON Lines) to `path`.
pub fn write_file(
    path: &Path,
    header: &Header,
    events: &[Event],
    summary: &Summary,
) -> io::Result<()> {
    let file = BufWriter::new(File::create(path)?);
    let mut file = write_to(file, header, events, summary)?;
    file.flush()?;
    file.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()
}

/// Reads a trace from `input`: gzip-compressed (as written), or the plain decompressed text.
/// `path` only names the source in errors.
pub fn read_from<R: Read>(input: R, path: &str) -> Result<TraceFile, ReadError> {
    let io_err = |error: io::Error| ReadError::Io {
        path: path.to_string(),
        error,
    };
    let mut input = BufReader::with_capacity(1 << 16, input);
    let gzipped = input.fill_buf().map_err(io_err)?.starts_with(&GZIP_MAGIC);
    let mut reader = StreamReader::new();
    let result = if gzipped {
        read_lines(
            BufReader::with_capacity(1 << 16, MultiGzDecoder::new(input)),
            &mut reader,
        )
    } else {
        read_lines(input, &mut reader)
    };
    let trace_err = |error: TraceError| ReadError::Trace {
        path: path.to_string(),
        error,
    };
    match result {
        Ok(trace) => trace.ok_or_else(|| trace_err(TraceError::Truncated { events: 0 })),
        Err(LinesError::Trace(e)) => Err(trace_err(e)),
        // The compressed stream ends early: the file was cut short.
        Err(LinesError::Io(e)) if gzipped && e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(trace_err(TraceError::Truncated {
                events: reader.events_read(),
            }))
        }
        Err(LinesError::Io(e)) if gzipped && e.kind() == io::ErrorKind::InvalidInput => {
            Err(ReadError::Gzip {
                path: path.to_string(),
                line: reader.lines_read(),
                message: e.to_string(),
            })
        }
        Err(LinesError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
            if gzipped {
                Err(ReadError::Gzip {
                    path: path.to_string(),
                    line: reader.lines_read(),
                    message: e.to_string(),
                })
            } else if reader.lines_read() == 0 {
                Err(trace_err(TraceError::NotATrace))
            } else {
                Err(trace_err(TraceError::Corrupt {
                    line: reader.lines_read() + 1,
                    message: "not UTF-8 text".into(),
                }))
            }
        }
        Err(LinesError::Io(e)) => Err(io_err(e)),
    }
}

enum LinesError {
    Io(io::Error),
    Trace(TraceError),
}

/// Feeds `input`'s lines to `reader`; `None` if it never produced a header and summary.
fn read_lines<R: BufRead>(
    mut input: R,
    reader: &mut StreamReader,
) -> Result<Option<TraceFile>, LinesError> {
    let mut header = None;
    let mut events = Vec::new();
    let mut summary = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Read at most one line more than the cap, so a line without newlines cannot take
        // all memory.
        let n = (&mut input)
            .take(trace_file::MAX_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(LinesError::Io)?;
        if n == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let line = std::str::from_utf8(&buf)
            .map_err(|e| LinesError::Io(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        match reader.push_line(line).map_err(LinesError::Trace)? {
            Some(Item::Header(h)) => header = Some(*h),
            Some(Item::Events(batch)) => events.extend(batch),
            Some(Item::Summary(s)) => summary = Some(*s),
            None => {}
        }
    }
    reader.finish().map_err(LinesError::Trace)?;
    Ok(header.zip(summary).map(|(header, summary)| TraceFile {
        header,
        events,
        summary,
    }))
}

/// Reads a trace file (gzip-compressed or plain).
pub fn read_file(path: &Path) -> Result<TraceFile, ReadError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|error| ReadError::Io {
        path: name.clone(),
        error,
    })?;
    read_from(file, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_description_sources() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n";
        assert_eq!(
            cpuinfo_model(cpuinfo).as_deref(),
            Some("AMD EPYC 7B13 64-Core Processor")
        );
        assert_eq!(cpuinfo_model("processor : 0\n"), None);
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(
            os_release_pretty_name(os).as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(
            os_release_pretty_name("NAME=Alpine\n").as_deref(),
            Some("Alpine")
        );
        let (kernel, arch) = uname();
        assert!(kernel.is_some_and(|k| !k.is_empty()));
        assert_eq!(arch.as_deref(), Some(std::env::consts::ARCH));
    }
}
