//! What the whole machine did while a run was measured: each hardware thread's busy time from
//! the kernel's `/proc/stat` and the agent process's own CPU clock, read at the start and the
//! end of the measured work ([`Snapshot`]), then less what the run's own threads ran
//! ([`other_load`], pure) — the summary's [`OtherLoad`].
//!
//! `/proc/stat` counts in ticks of `sysconf(_SC_CLK_TCK)` (10 ms at the usual 100 Hz) and,
//! on most kernels, by sampling at the scheduler tick, so a CPU's figure is known to a tick or
//! two; the run's own time comes from its slices, to the ns. Nothing read from `/proc` is
//! trusted: a line that does not parse is left out, a file that cannot be read gives no
//! measurement.

use coreplay_shared::{
    event::Ns,
    summary::{CpuOther, OtherLoad},
};

use super::Recorder;

/// Each hardware thread's busy ticks in a `/proc/stat` text, by OS index: every time field but
/// idle and iowait (user, nice, system, irq, softirq, steal). guest and guest_nice are left
/// out because the kernel already counts them inside user and nice. The machine-wide `cpu`
/// line, other lines and lines that do not parse are skipped.
pub fn parse_proc_stat(text: &str) -> Vec<(u32, u64)> {
    text.lines().filter_map(parse_cpu_line).collect()
}

fn parse_cpu_line(line: &str) -> Option<(u32, u64)> {
    let mut fields = line.split_ascii_whitespace();
    let cpu: u32 = fields.next()?.strip_prefix("cpu")?.parse().ok()?;
    let mut times = [0u64; 8];
    // Kernels before 2.6.11 had fewer columns: the missing ones count nothing.
    let mut seen = 0;
    for (slot, field) in times.iter_mut().zip(fields) {
        *slot = field.parse().ok()?;
        seen += 1;
    }
    if seen < 4 {
        return None;
    }
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = times;
    Some((
        cpu,
        user.saturating_add(nice)
            .saturating_add(system)
            .saturating_add(irq)
            .saturating_add(softirq)
            .saturating_add(steal),
    ))
}

/// The length of one `/proc/stat` tick, ns (`None` where the system does not say).
pub fn tick_ns() -> Option<u64> {
    // SAFETY: sysconf reads a constant of the system; no memory is touched.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|&hz| hz > 0)
        .map(|hz| 1_000_000_000 / hz)
}

/// The agent process's CPU time so far, every thread of it together, ended ones included, ns.
pub fn process_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the process CPU clock exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(
        u64::try_from(ts.tv_sec)
            .ok()?
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(ts.tv_nsec).ok()?),
    )
}

/// The machine's counters at one instant of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// When, ns on the run's clock.
    pub at: Ns,
    /// Busy ticks per hardware thread ([`parse_proc_stat`]).
    pub busy_ticks: Vec<(u32, u64)>,
    /// The agent process's CPU time so far, ns ([`process_cpu_ns`]).
    pub process_cpu_ns: u64,
}

impl Snapshot {
    /// Reads the counters now; `None` when `/proc/stat` or the process clock cannot be read.
    pub fn take(rec: &Recorder) -> Option<Snapshot> {
        let at = rec.now();
        let busy_ticks = parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?);
        let process_cpu_ns = process_cpu_ns()?;
        (!busy_ticks.is_empty()).then_some(Snapshot {
            at,
            busy_ticks,
            process_cpu_ns,
        })
    }
}

/// The measured part of a run: its two snapshots, what a tick is worth and the agent's pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// At the start of the measured work.
    pub start: Snapshot,
    /// At its end (before any baseline measured afterwards).
    pub end: Snapshot,
    /// One tick of `/proc/stat`, ns.
    pub tick_ns: u64,
    /// The agent's own pid: its traced threads are the run's, the rest is its recording.
    pub pid: u32,
}

impl Window {
    /// The window from two snapshots of this process; `None` when either is missing.
    pub fn new(start: Option<Snapshot>, end: Option<Snapshot>) -> Option<Window> {
        Some(Window {
            start: start?,
            end: end?,
            tick_ns: tick_ns()?,
            pid: std::process::id(),
        })
    }
}

/// What others took of each hardware thread in the window: its busy time less what the run's
/// threads ran there (`run_busy(cpu, from, to)`, from the run's slices), at least 0 and at most
/// the window; and the agent's CPU time less its traced threads' (`agent_traced_ns`): its own
/// recording. A CPU is listed when both snapshots have it (one taken offline between them is
/// not).
pub fn other_load(
    w: &Window,
    run_busy: impl Fn(u32, Ns, Ns) -> Ns,
    agent_traced_ns: Ns,
) -> OtherLoad {
    let (from, to) = (w.start.at, w.end.at.max(w.start.at));
    let window_ns = to - from;
    let cpus = w
        .end
        .busy_ticks
        .iter()
        .filter_map(|&(cpu, end)| {
            let (_, start) = w.start.busy_ticks.iter().find(|(c, _)| *c == cpu)?;
            let busy = end.saturating_sub(*start).saturating_mul(w.tick_ns);
            Some(CpuOther {
                cpu,
                other_ns: busy.saturating_sub(run_busy(cpu, from, to)).min(window_ns),
            })
        })
        .collect();
    OtherLoad {
        start_ns: from,
        window_ns,
        cpus,
        agent_ns: w
            .end
            .process_cpu_ns
            .saturating_sub(w.start.process_cpu_ns)
            .saturating_sub(agent_traced_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on this 2-core VM (Linux 6.1), one line shortened.
    const PROC_STAT: &str = "\
cpu  1043991 32139 216591 875640 4286 0 4430 214 0 0
cpu0 504585 15878 108153 456993 1305 0 1599 107 0 0
cpu1 539406 16260 108437 418646 2980 0 2831 107 0 0
intr 19571092 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 14 0 0
ctxt 73912801
btime 1764070000
processes 218861
procs_running 3
procs_blocked 0
softirq 8386385 2 2127606 2 381735 0 0 1019340 2397839 0 2459861
";

    #[test]
    fn per_cpu_busy_ticks_leave_idle_iowait_and_guest_out() {
        assert_eq!(
            parse_proc_stat(PROC_STAT),
            vec![
                (0, 504_585 + 15_878 + 108_153 + 1_599 + 107),
                (1, 539_406 + 16_260 + 108_437 + 2_831 + 107)
            ]
        );
        // guest (9th) and guest_nice (10th) are inside user and nice already.
        assert_eq!(
            parse_proc_stat("cpu3 10 0 0 5 5 0 0 0 7 7\n"),
            vec![(3, 10)]
        );
        // An old kernel's four columns.
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), vec![(0, 6)]);
        // OS indices need not be contiguous (offline CPUs are not listed).
        assert_eq!(
            parse_proc_stat("cpu0 1 0 0 0\ncpu5 2 0 0 0\n"),
            vec![(0, 1), (5, 2)]
        );
    }

    #[test]
    fn what_does_not_parse_is_left_out() {
        for bad in [
            "",
            "cpu0",
            "cpu0 1 2",
            "cpux 1 2 3 4",
            "cpu-1 1 2 3 4",
            "cpu0 1 2 x 4",
            "cpu0 1 2 -3 4",
            "cpu0 99999999999999999999999 0 0 0",
            "intr 1 2 3 4",
            "\u{0}\u{ff}cpu1 1 1 1 1",
        ] {
            assert_eq!(parse_proc_stat(bad), vec![], "{bad:?}");
        }
        assert_eq!(
            parse_proc_stat("cpu0 bad\ncpu1 1 1 1 1\n"),
            vec![(1, 3)],
            "one bad line spoils only itself"
        );
        let max = format!("cpu0 {} {} 0 0\n", u64::MAX, u64::MAX);
        assert_eq!(parse_proc_stat(&max), vec![(0, u64::MAX)], "saturates");
    }

    fn snap(at: Ns, busy: &[(u32, u64)], process_cpu_ns: u64) -> Snapshot {
        Snapshot {
            at,
            busy_ticks: busy.to_vec(),
            process_cpu_ns,
        }
    }

    #[test]
    fn others_are_the_busy_time_the_run_did_not_use() {
        const MS: u64 = 1_000_000;
        // 500 ms at 100 Hz: CPU 0 busy 48 ticks (480 ms), 470 ms of it the run's;
        // CPU 1 busy 30 ticks (300 ms), 20 ms the run's; CPU 2 appeared between the reads.
        let w = Window {
            start: snap(100 * MS, &[(0, 1_000), (1, 2_000)], 50 * MS),
            end: snap(600 * MS, &[(0, 1_048), (1, 2_030), (2, 5)], 560 * MS),
            tick_ns: 10 * MS,
            pid: 42,
        };
        let run = |cpu: u32, from: Ns, to: Ns| {
            assert_eq!((from, to), (100 * MS, 600 * MS));
            match cpu {
                0 => 470 * MS,
                1 => 20 * MS,
                _ => 0,
            }
        };
        let load = other_load(&w, run, 490 * MS);
        assert_eq!(
            load,
            OtherLoad {
                start_ns: 100 * MS,
                window_ns: 500 * MS,
                cpus: vec![
                    CpuOther {
                        cpu: 0,
                        other_ns: 10 * MS
                    },
                    CpuOther {
                        cpu: 1,
                        other_ns: 280 * MS
                    },
                ],
                agent_ns: 20 * MS,
            }
        );
        // The run's exact slices can exceed the sampled ticks: never below 0. Ticks beyond
        // the window (a tick's rounding): never above it.
        let w2 = Window {
            end: snap(600 * MS, &[(0, 1_046), (1, 2_055)], 40 * MS),
            ..w
        };
        let load = other_load(&w2, |_, _, _| 470 * MS, 0);
        assert_eq!(load.cpus[0].other_ns, 0);
        assert_eq!(load.cpus[1].other_ns, 80 * MS);
        let load = other_load(&w2, |_, _, _| 0, 0);
        assert_eq!(load.cpus[1].other_ns, 500 * MS, "capped at the window");
        assert_eq!(load.agent_ns, 0, "a clock read out of order gives 0");
    }

    #[test]
    fn the_counters_read_here() {
        let (rec, _rx) = Recorder::new(false, std::sync::Arc::default());
        let a = Snapshot::take(&rec).expect("/proc/stat reads");
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let b = Snapshot::take(&rec).expect("/proc/stat reads");
        assert!(b.at >= a.at && b.process_cpu_ns > a.process_cpu_ns);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(a.busy_ticks.len() >= cpus, "{:?}", a.busy_ticks);
        assert!(tick_ns().is_some_and(|t| t > 0));
        let w = Window::new(Some(a), Some(b)).expect("a window");
        assert_eq!(w.pid, std::process::id());
    }
}
