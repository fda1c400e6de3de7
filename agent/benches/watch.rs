//! `cargo bench -p coreplay --bench watch`: what following a program costs.
//!
//! A child process (this benchmark re-executed) starts 100 threads that either sleep or work
//! lightly (50 µs of computation every 10 ms, so they switch 100 times a second each); the
//! sampler follows it by pid for a few seconds. Printed: the sampler's CPU time as a share of
//! one core, the sampling rate it asked for and the one it achieved, per configuration.
//! Figures only, no assertions (the aim: ≥ 1 kHz for no more than a few % of a core).

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use coreplay_agent::watch::{self, FidelityChoice, ProgramOutput, Target, WatchSpec};

const CHILD_ENV: &str = "COREPLAY_WATCH_BENCH_CHILD";
const THREADS: usize = 100;
const SECS: u64 = 3;

/// The followed program: `THREADS` threads, sleeping or working lightly, until killed.
fn child_main(mode: &str) -> ! {
    let work = mode == "work";
    for _ in 0..THREADS {
        let _ = std::thread::Builder::new().spawn(move || {
            loop {
                if work {
                    let start = Instant::now();
                    let mut x = 1u64;
                    while start.elapsed() < Duration::from_micros(50) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                    std::thread::sleep(Duration::from_millis(10));
                } else {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        });
    }
    std::thread::sleep(Duration::from_secs(3600));
    std::process::exit(0)
}

fn spawn_child(mode: &str) -> Option<Child> {
    let exe = std::env::current_exe().ok()?;
    let child = Command::new(exe)
        .env(CHILD_ENV, mode)
        .stdin(Stdio::null())
        .spawn()
        .ok()?;
    // Let its threads start.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let n = std::fs::read_dir(format!("/proc/{}/task", child.id()))
            .map(|d| d.count())
            .unwrap_or(0);
        if n > THREADS {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(child)
}

fn measure(mode: &str, hz: u32, fidelity: FidelityChoice) {
    let Some(mut child) = spawn_child(mode) else {
        println!("  could not start the followed process");
        return;
    };
    let spec = WatchSpec {
        target: Target::Pid(child.id()),
        program: None,
        hz,
        fidelity,
        cap: Duration::from_secs(SECS + 30),
        output: ProgramOutput::Inherit,
        python_probe: false,
    };
    match watch::start(&spec) {
        Ok(watched) => {
            let label = watched.fidelity();
            let cancel = Arc::new(AtomicBool::new(false));
            let stopper = Arc::clone(&cancel);
            let timer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(SECS));
                stopper.store(true, Ordering::Relaxed);
            });
            let done = watched.run(cancel, |_| {});
            let _ = timer.join();
            let s = done.stats;
            println!(
                "  {THREADS} {mode:<5} threads, {label:<20}: sampler {:>5.1} % of one core, \
                 {hz:>5} Hz asked, {:>7.1} Hz achieved ({:.1} µs per thread sample), {} events",
                s.cpu_percent(),
                s.achieved_hz(),
                s.cpu_ns as f64 / 1e3 / s.samples.max(1) as f64,
                done.finished.events.len()
            );
        }
        Err(e) => println!("  {mode} at {hz} Hz: {e}"),
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        child_main(&mode);
    }
    println!("== coreplay watch: sampler overhead, {SECS} s per line ==");
    for (mode, hz) in [
        ("sleep", 1_000),
        ("work", 1_000),
        ("work", 100),
        ("work", 10_000),
    ] {
        measure(mode, hz, FidelityChoice::Sampled);
    }
    measure("work", 1_000, FidelityChoice::Exact);
    python_probe_cost();
}

/// `examples/python/asyncio_loopback.py` watched with and without the Python probe, runs
/// alternating (the machine's state drifts alike for both): the medians of the program's wall
/// time side by side, and their ratio against the target (≤ 1.25×).
fn python_probe_cost() {
    const RUNS: usize = 7;
    println!("== the Python probe: asyncio_loopback.py wall time, median of {RUNS} ==");
    let Ok(out) = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
    else {
        println!("  no python3: skipped");
        return;
    };
    let py = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let script = format!(
        "{}/../examples/python/asyncio_loopback.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let wall = |probe: bool| -> Option<f64> {
        let spec = WatchSpec {
            target: Target::Command(vec![py.clone(), script.clone()]),
            program: None,
            hz: 1_000,
            fidelity: FidelityChoice::Auto,
            cap: Duration::from_secs(60),
            output: ProgramOutput::Capture,
            python_probe: probe,
        };
        let watched = watch::start(&spec).ok()?;
        let done = watched.run(Arc::new(AtomicBool::new(false)), |_| {});
        let tasks = done
            .finished
            .events
            .iter()
            .filter(|e| matches!(e, coreplay_shared::event::Event::TaskSpawn { .. }))
            .count();
        if probe && tasks == 0 {
            println!(
                "  the probe recorded no task: {:?}",
                done.finished.summary.notes
            );
        }
        Some(done.finished.summary.wall_ns as f64 / 1e6)
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        without.extend(wall(false));
        with.extend(wall(true));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    match (median(&mut without), median(&mut with)) {
        (Some(a), Some(b)) => println!(
            "  without probe {a:>8.1} ms   with probe {b:>8.1} ms   ratio {:.2}x (target <= 1.25x)",
            b / a
        ),
        _ => println!("  could not watch python3"),
    }
}
