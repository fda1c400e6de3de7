//! What other programs took of each hardware thread during a run, as the real
//! `coreplay run --json` reports it (the summary's `other_load`), checked against a CPU hog
//! this test pins to one CPU and against the run's own slices read from its trace file.
//!
//! Nothing here depends on how busy the machine is. The agent is pinned (`sched_setaffinity`,
//! inherited by every thread it starts) so that the test knows which CPU its run used, and
//! every bound rests on what the kernel guarantees, not on timing:
//!
//! - a CPU with a runnable thread pinned to it is never idle, so over the window its busy time
//!   in `/proc/stat` is the whole window (to a tick or two), whoever else runs there too;
//! - what is reported as others' is that busy time less the run's own slices there, so others'
//!   time plus the run's own is the busy time: at most the window, and, on a CPU that never
//!   idled, the whole window.
//!
//! With the hog on CPU H and the run on CPU R, others take nearly all of H. Without the hog,
//! the same run pinned to H: if the run's own time there were counted as others' (the bug this
//! guards against), others' time plus the run's would be the window plus the run's ~0.5 s of
//! work, far over the window; subtracted, it is the window. A plain "H is well below that
//! without the hog" would be a timing threshold: another program busy on H (a build beside the
//! tests) would break it, while the run's share of H would shrink to make room.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::BIN;
use coreplay_shared::{event::Event, summary::OtherLoad};
use std::os::unix::process::CommandExt as _;

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<u32> {
    // SAFETY: an all-zero cpu_set_t is the empty set, a valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid and writable, of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity");
    (0..libc::CPU_SETSIZE as u32)
        // SAFETY: the index is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c as usize, &set) })
        .collect()
}

/// `cmd` started pinned to one CPU.
fn pinned(cmd: &mut Command, cpu: u32) -> &mut Command {
    // SAFETY: between fork and exec the closure only calls sched_setaffinity on a set built
    // on its own stack: async-signal-safe, no allocation, no lock.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A busy loop in a shell pinned to one CPU, killed and reaped when dropped.
struct Hog(Child);

impl Hog {
    fn start(cpu: u32) -> Hog {
        let child = pinned(
            Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .stdin(Stdio::null()),
            cpu,
        )
        .spawn()
        .expect("sh starts");
        let hog = Hog(child);
        // Running, not just started: its CPU time has begun to count.
        let stat = format!("/proc/{}/stat", hog.0.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ticks = std::fs::read_to_string(&stat).ok().and_then(|s| {
                let after = s.rsplit_once(") ")?.1;
                let f: Vec<&str> = after.split_whitespace().collect();
                Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
            });
            if ticks.is_some_and(|t| t > 0) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        hog
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `parallel-compute` run with one thread, pinned to `cpu`: its reported other load and
/// its events.
fn run_on(cpu: u32, dir: &Path, name: &str, fidelity: &str) -> (OtherLoad, Vec<Event>) {
    let file: PathBuf = dir.join(format!("{name}.coreplay.gz"));
    let out = pinned(
        Command::new(BIN)
            .args(["run", "parallel-compute", "--threads", "1", "--json"])
            .args(["--fidelity", fidelity, "--out"])
            .arg(&file),
        cpu,
    )
    .output()
    .expect("coreplay runs");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    let load: OtherLoad = coreplay_shared::json::from_str(&json["other_load"].to_string())
        .unwrap_or_else(|e| panic!("{name}: no other_load in the summary ({e}): {json}"));
    let trace = coreplay_agent::record::read_file(&file).expect("the trace reads back");
    assert_eq!(
        trace.summary.other_load.as_ref(),
        Some(&load),
        "file and --json agree"
    );
    (load, trace.events)
}

/// The run's own time on `cpu` within the window, from its slices (not through the replay
/// model the agent uses).
fn own_ns(load: &OtherLoad, events: &[Event], cpu: u32) -> u64 {
    let (from, to) = (load.start_ns, load.start_ns + load.window_ns);
    events
        .iter()
        .filter_map(|e| match *e {
            Event::OnCpu {
                cpu: c, start, end, ..
            } if c == cpu => Some(end.min(to).saturating_sub(start.max(from))),
            _ => None,
        })
        .sum()
}

fn other_ns(load: &OtherLoad, cpu: u32) -> u64 {
    load.cpus
        .iter()
        .find(|c| c.cpu == cpu)
        .unwrap_or_else(|| panic!("CPU {cpu} not measured: {load:?}"))
        .other_ns
}

fn tick_ns() -> u64 {
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000_000 / u64::try_from(hz).expect("a positive tick rate")
}

/// Checks, for every CPU: others' time plus the run's own is at most the window (to a tick at
/// each end), so the run's own time was not counted as others'; and on the CPU that was never
/// idle, it is the whole window. Prints the figures.
fn check_sums(name: &str, load: &OtherLoad, events: &[Event], busy_cpu: u32) {
    let w = load.window_ns;
    let slack = 3 * tick_ns() + w / 100;
    assert!(
        w >= 100_000_000,
        "{name}: a window of {w} ns is too short to judge"
    );
    for c in &load.cpus {
        let own = own_ns(load, events, c.cpu);
        eprintln!(
            "{name}: CPU {}: others {:.1} % of the {:.0} ms window, the run's own {:.1} %",
            c.cpu,
            c.other_ns as f64 * 100.0 / w as f64,
            w as f64 / 1e6,
            own as f64 * 100.0 / w as f64,
        );
        assert!(
            c.other_ns + own <= w + slack,
            "{name}: CPU {}: others {} ns + the run's own {own} ns exceed the {w} ns window: \
             the run's own time was counted as others'",
            c.cpu,
            c.other_ns
        );
    }
    let busy = other_ns(load, busy_cpu) + own_ns(load, events, busy_cpu);
    assert!(
        busy * 4 >= w * 3,
        "{name}: CPU {busy_cpu} always had a runnable thread pinned to it, yet only {busy} ns of \
         the {w} ns window are told"
    );
}

#[test]
fn a_pinned_hog_is_told_as_other_load_and_the_runs_own_time_is_not() {
    let cpus = allowed_cpus();
    let [hog_cpu, run_cpu, ..] = cpus[..] else {
        eprintln!("skipped: this test needs two CPUs, it may use {cpus:?}");
        return;
    };
    let dir = std::env::temp_dir().join(format!("coreplay-other-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");

    // The hog on H, the run on R.
    let (load, events) = {
        let _hog = Hog::start(hog_cpu);
        run_on(run_cpu, &dir, "hog", "auto")
    };
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::OnCpu { cpu, .. } if *cpu != run_cpu)),
        "the pinned run ran only on CPU {run_cpu}"
    );
    check_sums("with the hog", &load, &events, run_cpu);
    let hog = other_ns(&load, hog_cpu);
    eprintln!(
        "with the hog: CPU {hog_cpu} others {:.1} %, machine {:.1} % (coreplay's own recording \
         {:.1} %)",
        hog as f64 * 100.0 / load.window_ns as f64,
        load.programs_share() * 100.0,
        load.agent_share() * 100.0
    );
    assert!(
        hog * 4 >= load.window_ns * 3,
        "the hog kept CPU {hog_cpu} busy for the whole window, yet others took {hog} ns of {} ns",
        load.window_ns
    );
    // The agent's own recording ran on R, so it is inside R's figure.
    assert!(
        load.agent_ns <= other_ns(&load, run_cpu) + 3 * tick_ns() + load.window_ns / 100,
        "{load:?}"
    );

    // The control: no hog, the same run on H itself, in both fidelities.
    for fidelity in ["auto", "self-timed"] {
        let name = format!("control ({fidelity})");
        let (load, events) = run_on(hog_cpu, &dir, &format!("control-{fidelity}"), fidelity);
        check_sums(&name, &load, &events, hog_cpu);
        let own = own_ns(&load, &events, hog_cpu);
        assert!(
            own >= 100_000_000,
            "{name}: the run's work ({own} ns) ran on CPU {hog_cpu}"
        );
        let others = other_ns(&load, hog_cpu);
        assert!(
            others + own <= load.window_ns + 3 * tick_ns() + load.window_ns / 100,
            "{name}: others on CPU {hog_cpu} ({others} ns) include the run's own ({own} ns)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
