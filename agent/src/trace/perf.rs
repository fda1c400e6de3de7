//! Exact context switches from the kernel: a per-thread `perf_event_open` software event with
//! `context_switch = 1`, whose ring buffer receives a `PERF_RECORD_SWITCH` at every switch in
//! and out of the thread, stamped with `CLOCK_MONOTONIC` and the CPU, and flagged when the
//! switch out was a preemption.
//!
//! Works as root, with CAP_PERFMON, or where `/proc/sys/kernel/perf_event_paranoid` allows a
//! process to observe itself. [`probe`] tells at start whether it works here and, if not, why.

use std::{
    io,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering, fence},
};

/// `struct perf_event_attr` up to `sig_data` (PERF_ATTR_SIZE_VER7, Linux ≥ 5.13; older
/// kernels reject the size and we fall back).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
    aux_sample_size: u32,
    reserved_3: u32,
    sig_data: u64,
}

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_DUMMY: u64 = 9;
const PERF_SAMPLE_TID: u64 = 1 << 1;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_CPU: u64 = 1 << 7;
const FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
const FLAG_EXCLUDE_HV: u64 = 1 << 6;
const FLAG_SAMPLE_ID_ALL: u64 = 1 << 18;
const FLAG_USE_CLOCKID: u64 = 1 << 25;
const FLAG_CONTEXT_SWITCH: u64 = 1 << 26;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const PERF_RECORD_SWITCH: u32 = 14;
const MISC_SWITCH_OUT: u16 = 1 << 13;
const MISC_SWITCH_OUT_PREEMPT: u16 = 1 << 14;
/// Offset of `data_head` in `struct perf_event_mmap_page`; `data_tail` follows it.
const DATA_HEAD_OFFSET: usize = 1024;
/// Ring buffer data pages (a power of two): 32 KiB holds 1 024 switch records.
const DATA_PAGES: usize = 8;

/// One switch of the traced thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchRecord {
    /// `CLOCK_MONOTONIC` ns.
    pub time: u64,
    /// OS index of the CPU.
    pub cpu: u32,
    /// Switched out (else in).
    pub out: bool,
    /// Switched out by preemption (involuntary).
    pub preempted: bool,
}

/// The calling thread's switch records.
#[derive(Debug)]
pub struct PerfSwitches {
    fd: libc::c_int,
    base: NonNull<u8>,
    len: usize,
    data_size: usize,
    /// Records lost because the buffer was full (the kernel's LOST records).
    pub lost: u64,
}

// SAFETY: the mapping and the fd belong to this value alone; moving it to another thread is
// fine (it then reads the original thread's records, which is what the owner wants).
unsafe impl Send for PerfSwitches {}

impl PerfSwitches {
    /// Opens switch recording for the calling thread.
    pub fn open() -> io::Result<PerfSwitches> {
        PerfSwitches::open_thread(0)
    }

    /// Opens switch recording for the thread with OS id `tid` (0: the calling thread). For
    /// another process's thread the kernel also asks for ptrace-like access to it (the same
    /// user and `perf_event_paranoid` ≤ 1, CAP_PERFMON, or root).
    pub fn open_thread(tid: u32) -> io::Result<PerfSwitches> {
        let pid = libc::pid_t::try_from(tid)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "thread id out of range"))?;
        let attr = PerfEventAttr {
            type_: PERF_TYPE_SOFTWARE,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: PERF_COUNT_SW_DUMMY,
            sample_period: 1,
            sample_type: PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU,
            flags: FLAG_EXCLUDE_KERNEL
                | FLAG_EXCLUDE_HV
                | FLAG_SAMPLE_ID_ALL
                | FLAG_USE_CLOCKID
                | FLAG_CONTEXT_SWITCH,
            clockid: libc::CLOCK_MONOTONIC,
            ..PerfEventAttr::default()
        };
        // SAFETY: `attr` is a valid, initialised perf_event_attr of the size it declares;
        // pid (0: this thread) and cpu -1 mean "that thread, any CPU"; no group.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttr,
                pid,
                -1 as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = fd as libc::c_int;
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let len = page * (1 + DATA_PAGES);
        // SAFETY: mapping a perf fd as documented in perf_event_open(2): one metadata page and
        // a power of two of data pages, shared and writable (we write data_tail).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            // SAFETY: closing the fd we just opened.
            unsafe { libc::close(fd) };
            return Err(err);
        }
        let base =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(PerfSwitches {
            fd,
            base,
            len,
            data_size: page * DATA_PAGES,
            lost: 0,
        })
    }

    fn head_tail(&self) -> (&AtomicU64, &AtomicU64) {
        // SAFETY: data_head and data_tail are 8-byte aligned u64 fields of the metadata page,
        // which lives as long as `self`; the kernel writes head, we write tail, so they are
        // accessed atomically.
        unsafe {
            let head = &*self.base.as_ptr().add(DATA_HEAD_OFFSET).cast::<AtomicU64>();
            let tail = &*self
                .base
                .as_ptr()
                .add(DATA_HEAD_OFFSET + 8)
                .cast::<AtomicU64>();
            (head, tail)
        }
    }

    fn byte(&self, pos: u64) -> u8 {
        let page = self.len - self.data_size;
        let offset = (pos as usize) & (self.data_size - 1);
        // SAFETY: offset < data_size, inside the mapped data area.
        unsafe { *self.base.as_ptr().add(page + offset) }
    }

    fn bytes<const N: usize>(&self, pos: u64) -> [u8; N] {
        std::array::from_fn(|i| self.byte(pos + i as u64))
    }

    /// Whether the kernel wrote records since the last [`PerfSwitches::drain`] (two loads from
    /// shared memory, no system call).
    pub fn has_records(&self) -> bool {
        let (head, tail) = self.head_tail();
        head.load(Ordering::Acquire) != tail.load(Ordering::Relaxed)
    }

    /// Takes every record the kernel wrote since the last call, appending to `out`.
    pub fn drain(&mut self, out: &mut Vec<SwitchRecord>) {
        let (head, tail) = self.head_tail();
        let head = head.load(Ordering::Acquire);
        let mut pos = tail.load(Ordering::Relaxed);
        while pos + 8 <= head {
            let header: [u8; 8] = self.bytes(pos);
            let kind = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
            let misc = u16::from_ne_bytes([header[4], header[5]]);
            let size = u16::from_ne_bytes([header[6], header[7]]) as u64;
            if size < 8 {
                break; // Corrupt; never seen, but do not loop forever.
            }
            if kind == PERF_RECORD_SWITCH && size >= 8 + 24 {
                // sample_id trailer: pid, tid (u32 each), time (u64), cpu, res (u32 each).
                let time = u64::from_ne_bytes(self.bytes(pos + 16));
                let cpu = u32::from_ne_bytes(self.bytes(pos + 24));
                let out_flag = misc & MISC_SWITCH_OUT != 0;
                out.push(SwitchRecord {
                    time,
                    cpu,
                    out: out_flag,
                    preempted: out_flag && misc & MISC_SWITCH_OUT_PREEMPT != 0,
                });
            } else if kind == 2 {
                // PERF_RECORD_LOST: id (u64), lost (u64).
                self.lost += u64::from_ne_bytes(self.bytes(pos + 16));
            }
            pos += size;
        }
        fence(Ordering::Release);
        let (_, tail) = self.head_tail();
        tail.store(pos, Ordering::Release);
    }
}

impl Drop for PerfSwitches {
    fn drop(&mut self) {
        // SAFETY: unmapping and closing what `open` mapped and opened, once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
            libc::close(self.fd);
        }
    }
}

/// Whether exact switch recording works here; the reason if not.
pub fn probe() -> Result<(), String> {
    match PerfSwitches::open() {
        Ok(_) => Ok(()),
        Err(e) => {
            let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            Err(format!(
                "perf_event_open refused ({e}); perf_event_paranoid is {paranoid}. Run as root, \
                 grant CAP_PERFMON (setcap cap_perfmon+ep coreplay), or lower \
                 /proc/sys/kernel/perf_event_paranoid to 1 for exact switch times"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_of_a_sleeping_thread_are_recorded_when_permitted() {
        let Ok(mut perf) = PerfSwitches::open() else {
            // Not permitted on this machine: probe must then explain why.
            let why = probe().expect_err("open failed, so probe fails");
            assert!(why.contains("perf_event_paranoid"), "{why}");
            return;
        };
        for _ in 0..3 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let mut records = Vec::new();
        perf.drain(&mut records);
        let outs = records.iter().filter(|r| r.out).count();
        let ins = records.iter().filter(|r| !r.out).count();
        assert!(outs >= 3 && ins >= 3, "{records:?}");
        assert!(records.windows(2).all(|w| w[0].time <= w[1].time));
        // Sleeping is voluntary.
        assert!(records.iter().filter(|r| r.out).all(|r| !r.preempted));
        let now = super::super::clock::monotonic_ns();
        assert!(
            records
                .iter()
                .all(|r| r.time <= now && r.time + 10_000_000_000 > now),
            "CLOCK_MONOTONIC stamps"
        );
    }
}
