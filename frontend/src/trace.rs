//! A trace file's text (already decompressed) read into what the page shows: its header,
//! its events (those that contradict the run left out, and said), its summary, and how long
//! reading took. Pure, so tested natively; `load.rs` gets the bytes.

use coreplay_shared::{
    event::Event,
    summary::Summary,
    trace_file::{Header, Item, StreamReader, TraceError},
};

/// How long loading a trace took, by stage (shown on the page as data attributes, which
/// the page benchmark reads).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadStats {
    /// Bytes read (compressed).
    pub bytes: u32,
    /// Bytes of text after decompression.
    pub text_bytes: u32,
    /// Reading and decompressing, ms.
    pub read_ms: f64,
    /// Decoding the JSON lines into events, ms.
    pub decode_ms: f64,
    /// Folding the events into the time index, ms.
    pub apply_ms: f64,
}

/// A trace file read in the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// Its header.
    pub header: Header,
    /// Its events.
    pub events: Vec<Event>,
    /// Its summary (absent when the file was cut short).
    pub summary: Option<Summary>,
    /// What was wrong with it, when it could still be shown (cut short).
    pub problem: Option<String>,
}

/// Reads a trace file's text (already decompressed). A file cut short is still shown, with a
/// note; any other problem is an error whose text is meant for the user.
pub fn parse_trace(text: &str) -> Result<Loaded, String> {
    let mut reader = StreamReader::new();
    let mut header = None;
    // About 70 bytes of JSON per event: reserving for that spares the doubling copies of a
    // vector that grows to hundreds of thousands of events.
    let mut events = Vec::with_capacity(text.len() / 80);
    let mut summary = None;
    for line in text.split('\n') {
        match reader.push_line(line).map_err(|e| e.to_string())? {
            Some(Item::Header(h)) => header = Some(*h),
            Some(Item::Events(batch)) => events.extend(batch),
            Some(Item::Summary(s)) => summary = Some(*s),
            None => {}
        }
    }
    let problem = match reader.finish() {
        Ok(()) => None,
        Err(e @ TraceError::Truncated { .. }) if header.is_some() => Some(e.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    let header = header.ok_or_else(|| TraceError::NotATrace.to_string())?;
    // Events that contradict the run (a CPU the machine lacks, a thread never started, a lock
    // released by a thread that does not hold it, …) are said and left out; the rest is shown.
    let report = coreplay_shared::validate::check(&header.topology, &events, summary.is_some());
    let said = report.headline().map(|line| {
        format!(
            "{line}; {} of them are left out, the rest is shown",
            report.left_out()
        )
    });
    let problem = match (problem, said) {
        (problem, None) => problem,
        (None, Some(line)) => Some(line),
        (Some(p), Some(line)) => Some(format!("{p}; {line}")),
    };
    let events = report.keep_good(events);
    Ok(Loaded {
        header,
        events,
        summary,
        problem,
    })
}

/// A trace read by the page, ready to be shown.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedTrace {
    /// The file or URL it came from, for people.
    pub name: String,
    /// The URL, when it came from one (so it can be embedded).
    pub url: Option<String>,
    /// What it holds.
    pub loaded: Loaded,
    /// Whether to play it at once.
    pub autoplay: bool,
    /// How long reading it took.
    pub stats: LoadStats,
    /// The file's bytes as read (gzip or text), offered again by "download trace". `None` in
    /// native tests.
    pub file: Option<FileBytes>,
}

/// A trace file's bytes as read, held by the browser (never copied into the page's memory).
#[derive(Debug, Clone)]
pub struct FileBytes(pub js_sys::Uint8Array);

/// The same bytes: the same JavaScript array.
impl PartialEq for FileBytes {
    fn eq(&self, other: &Self) -> bool {
        let (a, b): (&wasm_bindgen::JsValue, &wasm_bindgen::JsValue) =
            (self.0.as_ref(), other.0.as_ref());
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace whose events contradict it is shown without them, and the page says so.
    #[test]
    fn inconsistent_events_are_named_and_left_out() {
        let good = include_str!("../../shared/tests/corpus-trace/io-async.jsonl");
        let clean = parse_trace(good).expect("the corpus trace reads");
        assert_eq!(clean.problem, None);
        // The same run with one slice on a CPU the machine lacks and one release of a lock
        // nobody holds (the browser test opens this file too).
        let bad = include_str!("../../shared/tests/fixtures/trace-inconsistent.jsonl");
        let loaded = parse_trace(bad).expect("still shown");
        let problem = loaded.problem.expect("the page says so");
        assert!(
            problem.starts_with("2 events of ")
                && problem.contains("inconsistent (first: event")
                && problem.contains("CPU 7 is not a hardware thread")
                && problem.contains("2 of them are left out, the rest is shown"),
            "{problem}"
        );
        // One damaged event and one added: both left out.
        assert_eq!(loaded.events.len(), clean.events.len() - 1);
        assert!(
            !loaded
                .events
                .iter()
                .any(|e| matches!(e, Event::OnCpu { cpu: 7, .. }))
        );
    }
}
