//! Trace files as the agent writes and reads them (format 2, `docs/trace-format.md`): a real
//! `coreplay run … --out` round trip, the gzip layer (written, read back, damaged, cut short),
//! and the errors `coreplay export` gives for files it cannot read.

mod common;

use std::{path::PathBuf, process::Command};

use common::BIN;
use coreplay_agent::record::{self, ReadError};
use coreplay_shared::{
    event::Event,
    scenario::ScenarioId,
    summary::Summary,
    trace_file::{self, TraceError},
};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coreplay-tf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

fn shared_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/tests/fixtures/{name}"))
}

fn gunzip(bytes: &[u8]) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("valid gzip of UTF-8");
    text
}

#[test]
fn run_out_writes_gzip_v2_that_reads_back_identically() {
    let file = tmp("gil.coreplay.gz");
    let out = Command::new(BIN)
        .args([
            "run",
            "gil",
            "--threads",
            "2",
            "--work",
            "60",
            "--json",
            "--out",
        ])
        .arg(&file)
        .output()
        .expect("coreplay runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Summary = coreplay_shared::json::from_slice(&out.stdout).expect("--json summary");
    let bytes = std::fs::read(&file).expect("written");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");

    // The agent's reader and the shared text reader (the page's) agree.
    let trace = record::read_file(&file).expect("reads back");
    let text = gunzip(&bytes);
    let shared = trace_file::read(&text).expect("the decompressed text reads");
    assert_eq!(trace, shared);
    assert_eq!(trace.summary, printed, "file and --json agree");
    assert_eq!(trace.events.len() as u64, printed.events);

    let h = &trace.header;
    assert_eq!(h.format, trace_file::FORMAT);
    assert_eq!(h.format_version, trace_file::FORMAT_VERSION);
    assert_eq!(h.protocol_version, coreplay_shared::PROTOCOL_VERSION);
    assert_eq!(h.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(h.scenario, ScenarioId::Gil);
    assert_eq!(h.params, printed.params);
    assert_eq!(h.fidelity, printed.fidelity);
    assert!(h.machine.kernel.is_some() && h.machine.arch.is_some());
    assert!(h.machine.cpu_model.is_some());
    assert_eq!(h.recorded_at.len(), 20, "{}", h.recorded_at);
    assert!(!h.machine_line().is_empty());
    // No host name anywhere.
    assert_eq!(h.topology.machine.hostname, None);
    assert!(text.contains("\"hostname\":null"));
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if host.len() >= 4 {
            assert!(!text.contains(host), "the host name {host} is in the file");
        }
    }
    // Lines: header, batches of at most 10 000 events, summary.
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("{\"format\":\"coreplay-trace\",\"format_version\":2,"));
    assert!(lines[lines.len() - 1].starts_with("{\"summary\":"));
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("{\"events\":["))
    );
    let _ = std::fs::remove_file(&file);
}

/// The shared v2 fixture, its events repeated to fill several batches.
fn big_trace() -> trace_file::TraceFile {
    let text = std::fs::read_to_string(shared_fixture("trace-v2.jsonl")).expect("fixture");
    let mut t = trace_file::read(&text).expect("fixture reads");
    let events: Vec<Event> = t.events.iter().cycle().take(25_003).cloned().collect();
    t.events = events;
    t
}

#[test]
fn gzip_round_trip_and_plain_text() {
    let t = big_trace();
    let bytes = record::write_to(Vec::new(), &t.header, &t.events, &t.summary).expect("writes");
    let back = record::read_from(bytes.as_slice(), "mem").expect("reads");
    assert_eq!(back, t);
    let text = gunzip(&bytes);
    assert_eq!(text, trace_file::to_text(&t.header, &t.events, &t.summary));
    assert_eq!(
        text.lines().count(),
        1 + 3 + 1,
        "25 003 events in 3 batches"
    );
    // Compact: JSON of events compresses about ten to one.
    assert!(
        bytes.len() * 8 < text.len(),
        "{} of {}",
        bytes.len(),
        text.len()
    );
    // The decompressed text is read too.
    let plain = record::read_from(text.as_bytes(), "mem").expect("plain text reads");
    assert_eq!(plain, t);
    // And a file on disk.
    let file = tmp("rt.coreplay.gz");
    record::write_file(&file, &t.header, &t.events, &t.summary).expect("writes file");
    assert_eq!(record::read_file(&file).expect("reads file"), t);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn damaged_and_cut_gzip_give_clear_errors() {
    let t = big_trace();
    let bytes = record::write_to(Vec::new(), &t.header, &t.events, &t.summary).expect("writes");
    // Cut anywhere: truncated, never a panic or success.
    for cut in [
        3,
        10,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 9,
        bytes.len() - 1,
    ] {
        let err = record::read_from(&bytes[..cut], "cut").expect_err("a cut file fails");
        assert!(
            matches!(err.trace_error(), Some(TraceError::Truncated { .. })),
            "cut at {cut}: {err}"
        );
        assert!(
            err.to_string().starts_with("cut: the trace is truncated"),
            "{err}"
        );
    }
    // Flipped bits in the compressed data: an error naming the damage.
    for at in [bytes.len() / 4, bytes.len() / 2, bytes.len() - 5] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x55;
        let err = record::read_from(damaged.as_slice(), "bad").expect_err("damage is found");
        assert!(
            matches!(
                &err,
                ReadError::Gzip { .. }
                    | ReadError::Trace {
                        error: TraceError::Corrupt { .. } | TraceError::Truncated { .. },
                        ..
                    }
            ),
            "byte {at}: {err:?}"
        );
    }
    // Not a trace, not gzip: said so.
    let err = record::read_from(&b"hello\n"[..], "x").expect_err("not a trace");
    assert_eq!(err.trace_error(), Some(&TraceError::NotATrace));
    let err = record::read_from(&[0xffu8, 0xfe, 0][..], "x").expect_err("binary");
    assert_eq!(err.trace_error(), Some(&TraceError::NotATrace));
}

#[test]
fn export_of_unreadable_files_says_why_with_exit_code_2() {
    let cases = [
        ("trace-newer.jsonl", "written by a newer coreplay (0.9.0"),
        ("trace-v1.jsonl", "written by an older coreplay"),
        ("trace-corrupt.jsonl", "the trace is corrupt at line 3"),
        (
            "trace-truncated.jsonl",
            "the trace is truncated: it ends after 49 events",
        ),
    ];
    for (name, expected) in cases {
        let out = Command::new(BIN)
            .args(["export", "--format", "chrome-trace"])
            .arg(shared_fixture(name))
            .output()
            .expect("coreplay runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = Command::new(BIN)
        .args([
            "export",
            "/nonexistent/x.coreplay.gz",
            "--format",
            "chrome-trace",
        ])
        .output()
        .expect("coreplay runs");
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(BIN)
        .args(["export", "x", "--format", "svg"])
        .output()
        .expect("coreplay runs");
    assert_eq!(out.status.code(), Some(2), "unknown format is bad input");
}
