//! Event constructors for the crate's unit tests (the replay's, the frame's, the validator's),
//! so each test states its run in one line per event.

use crate::event::{Event, LockOp, Ns, OffReason, Role};

/// A worker thread `tid` of process `pid`, named `name`, starting at `at`.
pub fn thread_start(tid: u32, pid: u32, name: &str, at: Ns) -> Event {
    Event::ThreadStart {
        tid,
        pid,
        os_tid: 100 + tid,
        name: name.into(),
        role: Role::Worker,
        at,
    }
}

/// Thread `tid` ends at `at` (no CPU time or switches counted).
pub fn thread_end(tid: u32, at: Ns) -> Event {
    Event::ThreadEnd {
        tid,
        at,
        cpu_ns: 0,
        kernel_voluntary: 0,
        kernel_involuntary: 0,
    }
}

/// Thread `tid` runs on `cpu` from `start` to `end`.
pub fn on(tid: u32, cpu: u32, start: Ns, end: Ns) -> Event {
    Event::OnCpu {
        tid,
        cpu,
        start,
        end,
    }
}

/// Thread `tid` is off the CPU from `start` to `end`, for `reason`.
pub fn off(tid: u32, start: Ns, end: Ns, reason: OffReason) -> Event {
    Event::OffCpu {
        tid,
        start,
        end,
        reason,
    }
}

/// Thread `tid` takes step `op` of its process's lock at `at`.
pub fn lock(tid: u32, at: Ns, op: LockOp) -> Event {
    Event::Lock { tid, at, op }
}
