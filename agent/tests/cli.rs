//! The `coreplay` command line: topology output, bad input, port in use.

mod common;

use std::process::{Command, Output};

use common::BIN;
use coreplay_shared::Topology;

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("coreplay runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn topology_json_is_the_shared_type() {
    let out = run(&[
        "topology",
        "--json",
        "--synthetic",
        "package:2 core:16 pu:2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t: Topology = serde_json::from_slice(&out.stdout).expect("JSON topology");
    t.validate().expect("valid");
    assert_eq!(
        (t.package_count(), t.core_count(), t.pu_count()),
        (2, 32, 64)
    );
}

#[test]
fn topology_tree_of_the_live_machine() {
    let out = run(&["topology"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.starts_with("Machine"), "{tree}");
    assert!(tree.contains("PU 0"), "{tree}");
}

#[test]
fn real_lstopo_xml_loads() {
    let xml = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/debian-vm-2core.xml"
    );
    let out = run(&["topology", "--json", "--xml", xml]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t: Topology = serde_json::from_slice(&out.stdout).expect("JSON topology");
    assert_eq!(t.pu_count(), 2);
    // lstopo's XML of this VM has L1i, L1d, L2 per core and one shared L3: 7 caches.
    assert_eq!(t.caches().count(), 7);
    assert_eq!(t.machine.cpu_model.as_deref(), Some("AMD EPYC"));
}

fn assert_one_line_error(args: &[&str], needle: &str) {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("coreplay: ") && err.contains(needle),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_sources_are_one_line_errors_with_exit_code_2() {
    assert_one_line_error(&["topology", "--synthetic", "package:two"], "package:two");
    assert_one_line_error(&["topology", "--xml", "/no/such/file.xml"], "cannot read");
    let dir = std::env::temp_dir().join(format!("coreplay-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bad = dir.join("bad.xml");
    std::fs::write(&bad, "<?xml version=\"1.0\"?><topology><object").expect("write");
    assert_one_line_error(
        &["topology", "--xml", bad.to_str().expect("utf-8 path")],
        "not a valid hwloc XML",
    );
    assert_one_line_error(&["serve", "--synthetic", "core:0"], "core:0");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    assert_one_line_error(&["serve", "--listen", &addr], "already in use");
}

#[test]
fn bad_listen_address_is_refused_by_the_parser() {
    let out = run(&["serve", "--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--listen"), "{}", stderr(&out));
}

#[test]
fn shared_crate_stays_wasm_clean() {
    // The protocol crate is compiled into the page: nothing heavier than serde may creep in.
    let manifest = include_str!("../../shared/Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap_or_default();
    for line in deps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
        assert!(
            ["serde", "serde_json", "thiserror"].contains(&name),
            "shared/ depends on {name}; keep it to serde, serde_json and thiserror"
        );
    }
}

#[test]
fn render_draws_a_still_of_a_gallery_trace_and_refuses_bad_instants() {
    let gallery = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gallery");
    let trace = gallery.join("gil.coreplay.gz");
    let trace = trace.to_str().expect("utf-8 path");
    let out = std::env::temp_dir().join(format!("coreplay-render-{}.svg", std::process::id()));
    let out_s = out.to_str().expect("utf-8 path");
    let o = run(&["render", trace, "--at", "20ms", "--out", out_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&out).expect("svg written");
    let _ = std::fs::remove_file(&out);
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert!(
        svg.contains("gil at 20.000 ms"),
        "names the scenario and instant"
    );
    assert!(
        svg.contains("CPU 0") && svg.contains("held by"),
        "cores and the lock"
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_one_line_error(
        &["render", trace, "--at", "1000s", "--out", out_s],
        "after its end",
    );
    // A malformed time is refused by the argument parser (clap's usual message, exit 2).
    let o = run(&["render", trace, "--at", "soon", "--out", out_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("\"soon\" is not a duration like 12.5ms"),
        "{}",
        stderr(&o)
    );
    // A file that cannot be read is an I/O failure (exit 1), as for `export`.
    let o = run(&[
        "render",
        "/nonexistent/x.coreplay.gz",
        "--at",
        "1ms",
        "--out",
        out_s,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("coreplay: cannot read /nonexistent/x.coreplay.gz"));
    assert!(!out.exists(), "no file written on error");
    // A .png (or any other) name never gets SVG written into it.
    let png = out.with_extension("png");
    assert_one_line_error(
        &[
            "render",
            trace,
            "--at",
            "20ms",
            "--out",
            png.to_str().expect("utf-8"),
        ],
        "must end in .svg",
    );
    assert!(!png.exists(), "nothing written under a name that lies");
}

#[test]
fn check_names_inconsistent_events_and_export_warns() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let fixture = format!("{root}/shared/tests/fixtures/trace-inconsistent.jsonl");
    // A consistent run: exit 0, one line.
    let out = run(&["check", &format!("{root}/gallery/gil.coreplay.gz")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("consistent (536 events, 4 threads)"),
        "{text}"
    );
    // One slice on a CPU the machine lacks, one lock released by a thread not holding it:
    // exit 1, each named.
    let out = run(&["check", &fixture]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("2 events of 99 in this run are inconsistent")
            && text.contains("CPU 7 is not a hardware thread of the recorded machine")
            && text.contains("thread 1 releases the lock of process")
            && text.contains("without holding it"),
        "{text}"
    );
    // Not a trace at all: exit 2.
    let out = run(&["check", &format!("{root}/README.md")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a coreplay trace"),
        "{}",
        stderr(&out)
    );
    let out = run(&["check", "/nonexistent/run.coreplay.gz"]);
    assert_eq!(out.status.code(), Some(2));
    // export still writes, and says so on stderr.
    let out = run(&["export", &fixture, "--format", "chrome-trace"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning") && stderr(&out).contains("2 events of 99"),
        "{}",
        stderr(&out)
    );
}
