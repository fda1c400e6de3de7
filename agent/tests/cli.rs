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
    let t: Topology = coreplay_shared::json::from_slice(&out.stdout).expect("JSON topology");
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
    let t: Topology = coreplay_shared::json::from_slice(&out.stdout).expect("JSON topology");
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
        svg.contains("gil — at 20.000 ms"),
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
    assert!(
        svg.contains("Thread colours (busiest first):"),
        "a legend of the threads' colours"
    );
    // A name whose extension names no picture format gets nothing written into it.
    let jpg = out.with_extension("jpg");
    assert_one_line_error(
        &[
            "render",
            trace,
            "--at",
            "20ms",
            "--out",
            jpg.to_str().expect("utf-8"),
        ],
        "must end in .svg or .png",
    );
    assert!(!jpg.exists(), "nothing written under a name that lies");
}

/// Decodes a PNG: its size and RGBA pixels.
fn decode_png(bytes: &[u8]) -> ((u32, u32), Vec<u8>) {
    let mut d = png::Decoder::new(std::io::Cursor::new(bytes));
    d.set_transformations(png::Transformations::EXPAND);
    let mut reader = d.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    buf.truncate(info.buffer_size());
    ((info.width, info.height), buf)
}

/// Distinct colours among RGBA pixels (a blank picture has one).
fn colours(rgba: &[u8]) -> usize {
    rgba.chunks_exact(4)
        .map(|p| (p[0], p[1], p[2]))
        .collect::<std::collections::HashSet<_>>()
        .len()
}

#[test]
fn render_writes_png_stills_and_gif_animations_by_extension() {
    let gallery = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gallery");
    let dir = std::env::temp_dir().join(format!("coreplay-raster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    let io = gallery.join("io-async.coreplay.gz");
    let io = io.to_str().expect("utf-8 path");

    // A still as PNG: real pixels, the drawing's own width, many colours.
    let o = run(&["render", io, "--at", "30ms", "--out", &path("still.png")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("wrote") && stderr(&o).contains("1000x"),
        "{}",
        stderr(&o)
    );
    let bytes = std::fs::read(path("still.png")).expect("written");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG, not SVG");
    let ((w, h), rgba) = decode_png(&bytes);
    assert_eq!(w, 1000);
    assert!(h > 300, "cores, event loop, timeline and legend: {h} px");
    assert!(colours(&rgba) > 20, "not blank: {} colours", colours(&rgba));
    // The same instant as SVG draws the event loop as the page does.
    let o = run(&[
        "render",
        io,
        "--at",
        "30ms",
        "--view",
        "cores",
        "--out",
        &path("still.svg"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(path("still.svg")).expect("written");
    for box_title in [
        "Ready queue (",
        "Running task",
        "Selector (epoll wait)",
        "Parked on I/O (",
        "Parked on timers (",
        "Completed (",
    ] {
        assert!(
            svg.contains(box_title),
            "the event loop's {box_title:?} box"
        );
    }
    // --size scales the drawing to fit.
    let o = run(&[
        "render",
        io,
        "--at",
        "30ms",
        "--size",
        "640x360",
        "--out",
        &path("small.png"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ((w, h), _) = decode_png(&std::fs::read(path("small.png")).expect("written"));
    assert_eq!((w, h), (640, 360));

    // An animation: 10 ms of the run at 50 ms per second and 10 fps is 2 s: 21 frames.
    let o = run(&[
        "render",
        io,
        "--from",
        "20ms",
        "--to",
        "30ms",
        // 10 ms of the run at 5 ms a second: a 2-second GIF.
        "--speed",
        "5ms",
        "--fps",
        "10",
        "--size",
        "480x270",
        "--out",
        &path("anim.gif"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("21 frames at 10 fps"), "{}", stderr(&o));
    let bytes = std::fs::read(path("anim.gif")).expect("written");
    assert!(bytes.starts_with(b"GIF89a"), "a GIF");
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut d = opts.read_info(bytes.as_slice()).expect("decodes");
    assert_eq!((d.width(), d.height()), (480, 270));
    let (mut frames, mut most) = (0, 0);
    let mut distinct = std::collections::HashSet::new();
    while let Some(f) = d.read_next_frame().expect("a frame") {
        assert_eq!(f.delay, 10, "10 fps: 10 hundredths of a second each");
        most = most.max(colours(&f.buffer));
        distinct.insert(f.buffer.to_vec());
        frames += 1;
    }
    assert_eq!(frames, 21);
    assert!(most > 10, "frames are not blank");
    assert!(
        distinct.len() > 1,
        "the picture changes as the cursor moves"
    );

    // Flags that do not apply, bad windows and rates are one-line errors; nothing is written.
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["--from", "1ms", "--at", "2ms"],
            "x.png",
            "--from does not apply to a PNG file",
        ),
        (
            &["--at", "2ms"],
            "x.gif",
            "--at does not apply to a GIF file",
        ),
        (
            &["--from", "30ms", "--to", "20ms"],
            "x.gif",
            "must end after it starts",
        ),
        (&["--to", "1000s"], "x.gif", "the run lasts"),
        (&["--fps", "60"], "x.gif", "--fps 60: allowed 1..=50"),
        (
            &["--speed", "1us", "--fps", "50"],
            "x.gif",
            "frames: at most 1500",
        ),
    ];
    for (flags, name, says) in cases {
        let out = path(name);
        let mut args = vec!["render", io];
        args.extend_from_slice(flags);
        args.extend(["--out", &out]);
        assert_one_line_error(&args, says);
        assert!(
            !std::path::Path::new(&out).exists(),
            "{name}: nothing written"
        );
    }
    assert_one_line_error(&["render", io, "--out", &path("x.png")], "needs --at");
    let o = run(&[
        "render",
        io,
        "--at",
        "1ms",
        "--size",
        "99999x10",
        "--out",
        &path("x.png"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
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
