//! Pins trace format 2 (the decompressed text; the gzip layer is tested in the agent) and the
//! reader's documented errors, with committed fixtures:
//!
//! - `trace-v2.jsonl`: a real io-async run (K = 3) recorded by `coreplay run … --out` and
//!   decompressed; re-encoding what is read must give the very same bytes;
//! - `trace-protocol-2.jsonl`, `trace-v1.jsonl`: format 1 (protocols 2 and 3), refused as older;
//! - `trace-newer.jsonl`: the v2 fixture claiming format 3 from coreplay 0.9.0;
//! - `trace-corrupt.jsonl`: its events split into two batch lines (49 + 49), the second
//!   damaged (line 3);
//! - `trace-truncated.jsonl`: the same two batches, cut in the middle of the second.
//!
//! A change that breaks the pin is a format or protocol change: bump `PROTOCOL_VERSION` (or
//! `FORMAT_VERSION`) and record the fixture again (`docs/trace-format.md`).

use coreplay_shared::{
    PROTOCOL_VERSION,
    event::Event,
    scenario::ScenarioId,
    trace_file::{
        self, FORMAT, FORMAT_VERSION, Item, OLDEST_READABLE_PROTOCOL, StreamReader, TraceError,
    },
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn v2_fixture_reads_and_its_encoding_is_pinned() {
    let text = fixture("trace-v2.jsonl");
    let trace = trace_file::read(&text).expect("the v2 fixture reads");
    let h = &trace.header;
    assert_eq!(h.format, FORMAT);
    assert_eq!(h.format_version, FORMAT_VERSION);
    assert!(
        (OLDEST_READABLE_PROTOCOL..=PROTOCOL_VERSION).contains(&h.protocol_version),
        "{}",
        h.protocol_version
    );
    assert_eq!(h.scenario, ScenarioId::IoAsync);
    assert_eq!(h.params.requests, Some(3));
    assert_eq!(h.topology.machine.hostname, None, "no host name in files");
    assert!(h.machine.cpu_model.is_some() && h.machine.kernel.is_some());
    assert!(h.recorded_at.ends_with('Z') && h.recorded_at.len() == 20);
    assert_eq!(trace.summary.scenario, h.scenario);
    assert_eq!(trace.summary.params, h.params);
    let polls = trace
        .events
        .iter()
        .filter(|e| matches!(e, Event::Poll { .. }))
        .count();
    assert!(polls >= 6, "{polls} polls");
    // The writer gives back the same bytes: field names, order and encoding are pinned.
    assert_eq!(
        trace_file::to_text(&trace.header, &trace.events, &trace.summary),
        text
    );
}

#[test]
fn streaming_gives_header_batches_summary_in_order() {
    let text = fixture("trace-v2.jsonl");
    let whole = trace_file::read(&text).expect("reads");
    let mut reader = StreamReader::new();
    let mut items = Vec::new();
    for line in text.lines() {
        if let Some(item) = reader.push_line(line).expect("each line reads") {
            items.push(item);
        }
        assert!(reader.is_complete() == matches!(items.last(), Some(Item::Summary(_))));
    }
    reader.finish().expect("complete");
    assert!(matches!(items.first(), Some(Item::Header(h)) if **h == whole.header));
    assert!(matches!(items.last(), Some(Item::Summary(s)) if **s == whole.summary));
    let events: Vec<Event> = items
        .iter()
        .filter_map(|i| match i {
            Item::Events(batch) => Some(batch.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(events, whole.events);
    assert_eq!(reader.events_read(), events.len());
    assert_eq!(reader.lines_read(), text.lines().count());
    assert_eq!(reader.bytes_read(), text.len());
}

#[test]
fn round_trip_through_the_writer() {
    let text = fixture("trace-v2.jsonl");
    let t = trace_file::read(&text).expect("reads");
    // Many events: more than one batch line.
    let events: Vec<Event> = t
        .events
        .iter()
        .cycle()
        .take(trace_file::BATCH_EVENTS * 2 + 7)
        .cloned()
        .collect();
    let written = trace_file::to_text(&t.header, &events, &t.summary);
    assert_eq!(written.lines().count(), 1 + 3 + 1);
    let back = trace_file::read(&written).expect("reads back");
    assert_eq!(
        (back.header, back.events, back.summary),
        (t.header.clone(), events, t.summary.clone())
    );
    // No events at all is a valid file.
    let empty = trace_file::to_text(&t.header, &[], &t.summary);
    assert_eq!(empty.lines().count(), 2);
    assert!(trace_file::read(&empty).expect("reads").events.is_empty());
}

#[test]
fn older_files_are_refused_as_older() {
    for (name, protocol) in [("trace-protocol-2.jsonl", 2), ("trace-v1.jsonl", 3)] {
        let err = trace_file::read(&fixture(name))
            .map(|_| ())
            .expect_err("fails");
        assert_eq!(
            err,
            TraceError::Older {
                agent_version: "0.1.0".into(),
                format_version: 1,
                protocol_version: protocol,
            },
            "{name}"
        );
        let text = err.to_string();
        assert!(
            text.contains("older coreplay") && text.contains("record the run again"),
            "{text}"
        );
    }
}

#[test]
fn newer_files_say_which_coreplay_reads_them() {
    let err = trace_file::read(&fixture("trace-newer.jsonl"))
        .map(|_| ())
        .expect_err("fails");
    assert_eq!(
        err,
        TraceError::Newer {
            agent_version: "0.9.0".into(),
            format_version: 3,
            protocol_version: trace_file::read(&fixture("trace-v2.jsonl"))
                .expect("reads")
                .header
                .protocol_version,
        }
    );
    assert!(
        err.to_string()
            .starts_with("written by a newer coreplay (0.9.0: trace format 3, protocol"),
        "{err}"
    );
    assert!(
        err.to_string().contains("this one reads trace format 2"),
        "{err}"
    );
}

#[test]
fn corrupt_and_truncated_files_are_told_apart() {
    let err = trace_file::read(&fixture("trace-corrupt.jsonl"))
        .map(|_| ())
        .expect_err("fails");
    assert!(
        matches!(&err, TraceError::Corrupt { line: 3, message } if message.contains("batch")),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("the trace is corrupt at line 3: "),
        "{err}"
    );

    let v2 = trace_file::read(&fixture("trace-v2.jsonl")).expect("reads");
    let err = trace_file::read(&fixture("trace-truncated.jsonl"))
        .map(|_| ())
        .expect_err("fails");
    assert_eq!(err, TraceError::Truncated { events: 49 });
    assert!(err.to_string().contains("ends after 49 events"), "{err}");

    // Cut at every line end before the summary: truncated, with the events read so far.
    let text = fixture("trace-v2.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    for keep in 1..lines.len() {
        let cut = lines[..keep].join("\n");
        assert!(
            matches!(trace_file::read(&cut), Err(TraceError::Truncated { .. })),
            "{keep} lines"
        );
    }
    // The header cut short is truncation too, not "not a trace".
    assert_eq!(
        trace_file::read(&lines[0][..lines[0].len() / 2]).map(|_| ()),
        Err(TraceError::Truncated { events: 0 })
    );
    // A line cut short with more lines after it is corruption at that line.
    let spliced = format!("{}\n{}\n{}\n", lines[0], &lines[1][..40], lines[1]);
    assert!(matches!(
        trace_file::read(&spliced),
        Err(TraceError::Corrupt { line: 2, .. })
    ));
    // Anything after the summary is corruption.
    let after = format!("{text}{}\n", lines[1]);
    assert!(matches!(
        trace_file::read(&after),
        Err(TraceError::Corrupt { line, .. }) if line == lines.len() + 1
    ));
    // Blank lines and CRLF are fine.
    let crlf = text.replace('\n', "\r\n\r\n");
    assert_eq!(trace_file::read(&crlf).expect("CRLF reads"), v2);
}

#[test]
fn a_topology_that_does_not_validate_is_corrupt() {
    let text = fixture("trace-v2.jsonl");
    let bad = text.replacen("\"pus\":[0,1]", "\"pus\":[0,0]", 1);
    assert_ne!(bad, text);
    assert!(matches!(
        trace_file::read(&bad),
        Err(TraceError::Corrupt { line: 1, message }) if message.contains("topology")
    ));
}
