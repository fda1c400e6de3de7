//! `cargo bench -p coreplay --bench skeleton` (or `scripts/bench.sh`): prints topology probe
//! times and the release page's weight. Figures, not assertions: targets are printed beside
//! them for a person to judge.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use coreplay_agent::topology::{self, Source};
use flate2::{Compression, write::GzEncoder};

/// Page weight budget, gzip: every file the page loads as it opens (index.html, the wasm, its
/// glue and snippets, the CSS, the gallery's index), that is all of dist/ but the gallery's
/// recorded runs, which are fetched when a reader opens one.
const PAGE_BUDGET_GZIP: u64 = 250 * 1024;

fn time_it(label: &str, runs: u32, mut f: impl FnMut()) {
    f(); // warm-up
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let median = samples[samples.len() / 2];
    let min = samples[0];
    println!(
        "{label:<52} median {:>9.3} ms   min {:>9.3} ms   ({runs} runs)",
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    );
}

fn gzip_len(bytes: &[u8]) -> u64 {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    let _ = enc.write_all(bytes);
    enc.finish().map(|v| v.len() as u64).unwrap_or(0)
}

fn page_weight(dist: &Path) {
    let Ok(entries) = std::fs::read_dir(dist) else {
        println!(
            "page weight: {} not found; run `trunk build --release` first",
            dist.display()
        );
        return;
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // The snippets' folder holds modules the glue imports, and the gallery its index the page
    // fetches as it opens: they count; the gallery's recorded runs do not.
    let mut i = 0;
    while i < files.len() {
        if files[i].is_dir() {
            let dir = files.remove(i);
            if let Ok(inner) = std::fs::read_dir(&dir) {
                files.extend(inner.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else {
            i += 1;
        }
    }
    files.retain(|p| !p.to_string_lossy().ends_with(".coreplay.gz"));
    files.sort();
    let (mut raw_total, mut gz_total) = (0u64, 0u64);
    for path in files.iter().filter(|p| p.is_file()) {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let gz = gzip_len(&bytes);
        raw_total += bytes.len() as u64;
        gz_total += gz;
        let name = path
            .strip_prefix(dist)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "  {name:<40} {:>9.1} KB raw  {:>8.1} KB gzip",
            bytes.len() as f64 / 1024.0,
            gz as f64 / 1024.0
        );
    }
    println!(
        "page weight (all of dist/ but the recorded runs)      {:>9.1} KB raw  {:>8.1} KB gzip   target ≤ {} KB gzip: {}",
        raw_total as f64 / 1024.0,
        gz_total as f64 / 1024.0,
        PAGE_BUDGET_GZIP / 1024,
        if gz_total <= PAGE_BUDGET_GZIP {
            "met"
        } else {
            "MISSED"
        }
    );
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter here.
    println!("== topology probe ==");
    time_it("live machine (hwloc probe + conversion)", 20, || {
        let _ = topology::load(&Source::Live);
    });
    time_it("synthetic package:2 core:16 pu:2 (64 PUs)", 50, || {
        let _ = topology::load(&Source::Synthetic("package:2 core:16 pu:2".into()));
    });
    time_it(
        "synthetic package:4 l3:1 core:32 l2:1 l1d:1 pu:2 (256)",
        50,
        || {
            let _ = topology::load(&Source::Synthetic(
                "package:4 l3:1 core:32 l2:1 l1d:1 pu:2".into(),
            ));
        },
    );
    let xml = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/synthetic-2x8x2.xml");
    time_it("XML file (32 PUs, lstopo output)", 50, || {
        let _ = topology::load(&Source::Xml(xml.clone()));
    });
    if let Ok(t) = topology::load(&Source::Synthetic(
        "package:4 l3:1 core:32 l2:1 l1d:1 pu:2".into(),
    )) {
        let hello = coreplay_shared::ServerMsg::Hello(Box::new(coreplay_shared::Hello {
            protocol_version: coreplay_shared::PROTOCOL_VERSION,
            agent_version: String::new(),
            scenarios: coreplay_shared::scenario::catalog(256),
            can_run: true,
            fidelity: coreplay_shared::event::Fidelity::SelfTimed,
            fidelity_note: None,
            watch_programs: coreplay_agent::watch::default_programs(),
            topology: t,
        }));
        let json = hello.to_json();
        println!(
            "hello message for 256 PUs                            {:>9.1} KB raw  {:>8.1} KB gzip",
            json.len() as f64 / 1024.0,
            gzip_len(json.as_bytes()) as f64 / 1024.0
        );
    }
    println!("== release page ==");
    page_weight(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist"));
}
