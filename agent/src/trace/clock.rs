//! Thin, safe wrappers over the kernel reads tracing needs. The clocks and `sched_getcpu` go
//! through the vDSO (tens of ns); `getrusage(RUSAGE_THREAD)` is a real syscall (a few hundred
//! ns), still well under 1 % of a 50 µs chunk of work.

/// The kernel's context-switch counters of one thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwitchCounts {
    /// The thread blocked (gave the CPU up).
    pub voluntary: u64,
    /// The thread was preempted.
    pub involuntary: u64,
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clock ids are supported on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC` in ns: one clock for every thread and process of a run.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time the calling thread has used, ns.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// OS index of the hardware thread the caller runs on right now.
pub fn current_cpu() -> u32 {
    // SAFETY: no arguments, no memory touched.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).unwrap_or(0)
}

/// The calling thread's OS thread id.
pub fn os_tid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    u32::try_from(tid).unwrap_or(0)
}

/// The calling thread's switch counters from `getrusage(RUSAGE_THREAD)`.
pub fn thread_switch_counts() -> SwitchCounts {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable; RUSAGE_THREAD is supported on Linux ≥ 2.6.26.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return SwitchCounts::default();
    }
    SwitchCounts {
        voluntary: usage.ru_nvcsw as u64,
        involuntary: usage.ru_nivcsw as u64,
    }
}

/// The calling thread's switch counters as `/proc/thread-self/status` reports them: an
/// independent reading used to reconcile the counts the tracer collected.
pub fn proc_switch_counts() -> Option<SwitchCounts> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(SwitchCounts {
        voluntary: field("voluntary_ctxt_switches:")?,
        involuntary: field("nonvoluntary_ctxt_switches:")?,
    })
}

/// Peak resident memory of this process (`VmHWM`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:")
}

/// Current resident memory of this process (`VmRSS`), bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:")
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_move_forward() {
        let (w0, c0) = (monotonic_ns(), thread_cpu_ns());
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(monotonic_ns() > w0);
        assert!(thread_cpu_ns() > c0);
    }

    #[test]
    fn cpu_is_one_of_ours() {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // Linux numbers CPUs from 0; with an affinity mask the index can exceed n, so only
        // check that it is plausible.
        assert!((current_cpu() as usize) < n.max(1024));
    }

    #[test]
    fn both_kernel_readings_agree() {
        std::thread::sleep(std::time::Duration::from_millis(2));
        let a = thread_switch_counts();
        let b = proc_switch_counts().expect("/proc readable");
        let c = thread_switch_counts();
        assert!(a.voluntary >= 1, "the sleep blocked");
        assert!(a.voluntary <= b.voluntary && b.voluntary <= c.voluntary);
        assert!(a.involuntary <= b.involuntary && b.involuntary <= c.involuntary);
        assert!(os_tid() > 0);
        assert!(peak_rss_bytes().is_some_and(|b| b > 0));
    }
}
