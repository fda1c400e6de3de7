//! Exact mode of `coreplay watch`: a thread's `perf_event_open` switch records become its
//! slices, switches and migrations, and `/proc` adds its CPU time, counters and why it sleeps
//! (asleep or in I/O). The records' meaning ([`Thread::exact_step`], [`Thread::exact_finish`])
//! is pure and tested with hand-made records; [`sample`] does the reading around it.

use coreplay_shared::event::{Event, Ns, OffReason};

use super::infer::{Gil, Mode, STATUS_EVERY_NS, Sampled, Thread, Unreadable, exited};
use super::procfs::{SchedStat, Stat, TaskFiles};
use crate::trace::{
    Recorder,
    clock::SwitchCounts,
    perf::{PerfSwitches, SwitchRecord},
};

/// `schedstat` (CPU time) of a thread without switch records is read this often; its state
/// (asleep or in I/O) at most this often, ns.
pub(super) const EXACT_POLL_NS: u64 = 10_000_000;

/// A thread's open switch records.
#[derive(Debug)]
pub(super) struct ExactTask {
    perf: PerfSwitches,
    records: Vec<SwitchRecord>,
    switches: Vec<Switched>,
}

impl ExactTask {
    /// Opens switch records on thread `os_tid`.
    pub fn open(os_tid: u32) -> std::io::Result<ExactTask> {
        Ok(ExactTask {
            perf: PerfSwitches::open_thread(os_tid)?,
            records: Vec::with_capacity(64),
            switches: Vec::with_capacity(64),
        })
    }
}

/// A GIL holder's unexplained sleep longer than this, ns, is taken as a blocking call (which
/// releases the GIL); shorter ones are the GIL's own hand-over.
const HOLDER_NAP_NS: Ns = 200_000;

/// A switch record on the run's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Switched {
    /// When (the run's clock).
    pub at: Ns,
    /// The CPU it happened on.
    pub cpu: u32,
    /// A switch out (else in).
    pub out: bool,
    /// Out while still runnable (preempted).
    pub preempted: bool,
}

/// One tick's records of a thread, and its `schedstat` when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExactSample<'a> {
    /// When (the run's clock).
    pub at: Ns,
    /// Whether `schedstat` was read this tick ([`Thread::exact_wants_sched`]).
    pub polled: bool,
    /// What it said (`Ok(None)`: not read, or the kernel has none).
    pub sched: Result<Option<SchedStat>, Unreadable>,
    /// The records drained this tick, oldest first.
    pub switches: &'a [Switched],
}

/// What a tick's records leave to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExactStep {
    /// Nothing: this is the sample's outcome.
    Done(Sampled),
    /// Its `stat` is to be read (and `status`, as [`ExactDetail::wants_status`] says), then
    /// given to [`Thread::exact_finish`].
    Detail(ExactDetail),
}

/// Where [`Thread::exact_step`] stopped to have `stat` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ExactDetail {
    at: Ns,
    last_out: Option<Ns>,
    refine: bool,
    had_records: bool,
}

impl ExactDetail {
    /// Whether `status` is to be read too: after switches (its counters), or when the thread
    /// exited (its last ones).
    pub fn wants_status(&self, stat: &Stat) -> bool {
        exited(stat.state) || self.had_records
    }
}

impl Thread {
    /// Whether `schedstat` is due at `at`: when records are `pending` (something happened),
    /// else now and then for the CPU time.
    pub fn exact_wants_sched(&self, at: Ns, pending: bool) -> bool {
        pending || at.max(self.last_read).saturating_sub(self.sched_at) >= EXACT_POLL_NS
    }

    /// One tick of a thread recorded exactly: its switch records become events; says whether
    /// its `stat` is wanted (to refine why it is off the CPU, or after switches, for its
    /// counters).
    pub fn exact_step(&mut self, sample: &ExactSample<'_>, out: &mut Vec<Event>) -> ExactStep {
        let t0 = self.last_read;
        let t1 = sample.at.max(t0);
        self.last_read = t1;
        if sample.polled {
            self.sched_at = t1;
        }
        let mut last_out: Option<Ns> = None;
        for r in sample.switches {
            let t = r.at.max(self.discovered);
            if r.out {
                if let Mode::On { since } = self.mode {
                    // The CPU it ran on, as the kernel says, even if the switch in was missed.
                    self.migrate(out, since, r.cpu);
                    self.close_slice(out, t);
                }
                self.switch(out, t, u64::from(!r.preempted), u64::from(r.preempted));
                self.mode = Mode::Off {
                    since: t,
                    reason: if r.preempted {
                        OffReason::Preempted
                    } else {
                        OffReason::Sleep
                    },
                };
                self.refined = r.preempted;
                last_out = Some(t);
            } else {
                // On already means the guess made when it was found was wrong: it was off.
                if let Mode::Off { since, reason } = self.mode {
                    // A holder back from a sleep whose reason was never read: one of a few µs
                    // is CPython's own hand-over dance around the GIL (it still holds it); a
                    // longer one was a blocking call, and blocking calls release the GIL.
                    if self.gil == Gil::Holding
                        && reason == OffReason::Sleep
                        && !self.refined
                        && t.saturating_sub(since) > HOLDER_NAP_NS
                    {
                        self.gil_released_at(since, out);
                    }
                    self.close_off(out, t, 0);
                }
                self.migrate(out, t, r.cpu);
                self.mode = Mode::On { since: t };
                if self.gil == Gil::Waiting {
                    // Back from a wait for the GIL: it took it.
                    self.gil_steps(out);
                }
                last_out = None;
            }
        }
        let had_records = !sample.switches.is_empty();
        // Why it is off is read now and then; at once for a thread whose process's GIL can be
        // seen (a GIL wait lasts a switch interval: waiting for the usual delay would show the
        // thread still holding the GIL while it waits).
        let refine =
            !self.refined && (self.gil_seen || t1.saturating_sub(self.refine_at) >= EXACT_POLL_NS);
        if refine {
            self.refined = true;
            self.refine_at = t1;
        }
        match sample.sched {
            Ok(Some(s)) => self.sched = s,
            Ok(None) => {}
            Err(Unreadable) => {
                return ExactStep::Done(Sampled::Gone(
                    last_out.unwrap_or(t0 + (t1 - t0) / 2),
                    None,
                ));
            }
        }
        let off = matches!(self.mode, Mode::Off { .. });
        let counters_due = t1.saturating_sub(self.status_at) >= STATUS_EVERY_NS;
        if (off && refine) || (had_records && counters_due) {
            ExactStep::Detail(ExactDetail {
                at: t1,
                last_out,
                refine,
                had_records,
            })
        } else {
            // Sampled every tick: draining the records costs no system call.
            ExactStep::Done(Sampled::Alive(true))
        }
    }

    /// The rest of an [`ExactStep::Detail`] tick, with the thread's `stat` and (when
    /// [`ExactDetail::wants_status`] said so) its switch counters.
    pub fn exact_finish(
        &mut self,
        detail: ExactDetail,
        stat: Result<Stat, Unreadable>,
        status: Option<Result<SwitchCounts, Unreadable>>,
        gil_wait: bool,
        out: &mut Vec<Event>,
    ) -> Sampled {
        let t1 = detail.at;
        let Ok(stat) = stat else {
            return Sampled::Gone(detail.last_out.unwrap_or(t1), None);
        };
        let zombie = exited(stat.state);
        self.renamed(out, &stat.comm, t1, zombie);
        if zombie {
            if let Some(Ok(counts)) = status {
                self.counts = counts;
            }
            let at = match self.mode {
                Mode::Off { since, .. } => since,
                Mode::On { .. } => t1,
            };
            return Sampled::Gone(at, stat.exit_code);
        }
        self.ticks = stat.cpu_ticks;
        if let Mode::Off {
            since,
            reason: OffReason::Sleep,
        } = self.mode
            && detail.refine
            && stat.state == b'D'
        {
            self.mode = Mode::Off {
                since,
                reason: OffReason::Io,
            };
        }
        if let Mode::Off {
            since,
            reason: OffReason::Sleep,
        } = self.mode
            && detail.refine
            && stat.state == b'S'
            && gil_wait
        {
            self.mode = Mode::Off {
                since,
                reason: OffReason::Lock,
            };
        }
        self.gil_steps(out);
        if detail.had_records
            && let Some(Ok(counts)) = status
        {
            self.counts = counts;
            self.status_at = t1;
        }
        Sampled::Alive(true)
    }
}

/// One tick of a thread recorded exactly: reads what [`Thread::exact_step`] needs (records
/// first: a thread without any is not read at all, but for its CPU time now and then; a thread
/// that exits leaves a last switch out) and turns it into events.
pub(super) fn sample(
    thread: &mut Thread,
    files: &mut TaskFiles,
    exact: &mut ExactTask,
    rec: &Recorder,
    gil: Option<&[u64]>,
    out: &mut Vec<Event>,
) -> Sampled {
    let at = rec.now();
    let polled = thread.exact_wants_sched(at, exact.perf.has_records());
    let sched = if polled {
        files.schedstat().map_err(|_| Unreadable)
    } else {
        Ok(None)
    };
    exact.records.clear();
    let lost_before = exact.perf.lost;
    exact.perf.drain(&mut exact.records);
    if exact.perf.lost > lost_before {
        rec.note_dropped(exact.perf.lost - lost_before);
    }
    exact.switches.clear();
    exact
        .switches
        .extend(exact.records.iter().map(|r| Switched {
            at: rec.at(r.time),
            cpu: r.cpu,
            out: r.out,
            preempted: r.preempted,
        }));
    let step = thread.exact_step(
        &ExactSample {
            at,
            polled,
            sched,
            switches: &exact.switches,
        },
        out,
    );
    let detail = match step {
        ExactStep::Done(sampled) => return sampled,
        ExactStep::Detail(detail) => detail,
    };
    let stat = files.stat().map_err(|_| Unreadable);
    let status = match &stat {
        Ok(s) if detail.wants_status(s) => {
            Some(files.status().map(|s| s.counts).map_err(|_| Unreadable))
        }
        _ => None,
    };
    // Asleep: on the GIL's futex, or on something else?
    let gil_wait = match (&stat, gil) {
        (Ok(s), Some(gil)) if s.state == b'S' => std::fs::read_to_string(format!(
            "/proc/{}/task/{}/syscall",
            thread.pid, thread.os_tid
        ))
        .is_ok_and(|text| super::python::waits_on_gil(&text, gil)),
        _ => false,
    };
    thread.exact_finish(detail, stat, status, gil_wait, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const TID: u32 = 3;

    fn stat(state: u8, cpu: u32) -> Stat {
        Stat {
            comm: "worker".into(),
            state,
            ppid: 1,
            cpu_ticks: 0,
            processor: cpu,
            exit_code: None,
        }
    }

    fn sched(run_ns: u64) -> SchedStat {
        SchedStat {
            run_ns,
            wait_ns: 0,
            slices: 10,
        }
    }

    /// A thread found at 0 in `state` on `cpu`, announced.
    fn started(state: u8, cpu: u32) -> Thread {
        let mut t = Thread::new(
            TID,
            40,
            41,
            0,
            &stat(state, cpu),
            SwitchCounts::default(),
            Some(sched(0)),
        );
        t.announce(&mut Vec::new());
        t
    }

    fn switched(at: Ns, cpu: u32, out: bool, preempted: bool) -> Switched {
        Switched {
            at,
            cpu,
            out,
            preempted,
        }
    }

    #[test]
    fn switch_records_are_slices_switches_and_migrations() {
        let mut t = started(b'R', 1);
        let mut out = Vec::new();
        let switches = [
            switched(2 * MS, 1, true, false),
            switched(5 * MS, 2, false, false),
            switched(7 * MS, 2, true, true),
        ];
        assert!(t.exact_wants_sched(MS, true));
        let step = t.exact_step(
            &ExactSample {
                at: 8 * MS,
                polled: true,
                sched: Ok(Some(sched(4 * MS))),
                switches: &switches,
            },
            &mut out,
        );
        // Counters not due yet, and a preempted thread's reason needs no refining.
        assert_eq!(step, ExactStep::Done(Sampled::Alive(true)));
        assert_eq!(
            out,
            vec![
                Event::OnCpu {
                    tid: TID,
                    cpu: 1,
                    start: 0,
                    end: 2 * MS
                },
                Event::Switch {
                    tid: TID,
                    at: 2 * MS,
                    voluntary: 1,
                    involuntary: 0
                },
                Event::OffCpu {
                    tid: TID,
                    start: 2 * MS,
                    end: 5 * MS,
                    reason: OffReason::Sleep
                },
                Event::Migrate {
                    tid: TID,
                    at: 5 * MS,
                    from: 1,
                    to: 2
                },
                Event::OnCpu {
                    tid: TID,
                    cpu: 2,
                    start: 5 * MS,
                    end: 7 * MS
                },
                Event::Switch {
                    tid: TID,
                    at: 7 * MS,
                    voluntary: 0,
                    involuntary: 1
                },
            ]
        );
        assert_eq!(t.sched, sched(4 * MS));
        assert_eq!(
            t.mode,
            Mode::Off {
                since: 7 * MS,
                reason: OffReason::Preempted
            }
        );
    }

    #[test]
    fn a_sleeper_in_uninterruptible_sleep_is_in_io() {
        let mut t = started(b'S', 0);
        let mut out = Vec::new();
        // Nothing happened and its CPU time is not due: nothing read.
        assert!(!t.exact_wants_sched(5 * MS, false));
        let quiet = ExactSample {
            at: 5 * MS,
            polled: false,
            sched: Ok(None),
            switches: &[],
        };
        assert_eq!(
            t.exact_step(&quiet, &mut out),
            ExactStep::Done(Sampled::Alive(true))
        );
        assert!(t.exact_wants_sched(EXACT_POLL_NS, false));
        let step = t.exact_step(
            &ExactSample {
                at: EXACT_POLL_NS,
                polled: true,
                sched: Ok(Some(sched(0))),
                switches: &[],
            },
            &mut out,
        );
        let ExactStep::Detail(detail) = step else {
            panic!("the reason is due for refining: {step:?}");
        };
        assert!(!detail.wants_status(&stat(b'D', 0)));
        let sampled = t.exact_finish(detail, Ok(stat(b'D', 0)), None, false, &mut out);
        assert_eq!(sampled, Sampled::Alive(true));
        assert_eq!(out, vec![]);
        t.end(20 * MS, true, 100, &mut out);
        assert_eq!(
            out,
            vec![
                Event::OffCpu {
                    tid: TID,
                    start: 0,
                    end: 20 * MS,
                    reason: OffReason::Io
                },
                Event::ThreadEnd {
                    tid: TID,
                    at: 20 * MS,
                    cpu_ns: 0,
                    kernel_voluntary: 0,
                    kernel_involuntary: 0
                }
            ]
        );
    }

    #[test]
    fn an_exited_thread_ends_at_its_last_switch_out() {
        let mut t = started(b'R', 0);
        let mut out = Vec::new();
        let switches = [switched(3 * MS, 0, true, false)];
        let step = t.exact_step(
            &ExactSample {
                at: STATUS_EVERY_NS,
                polled: true,
                sched: Ok(Some(sched(3 * MS))),
                switches: &switches,
            },
            &mut out,
        );
        let ExactStep::Detail(detail) = step else {
            panic!("counters are due after switches: {step:?}");
        };
        let mut zombie = stat(b'Z', 0);
        zombie.exit_code = Some(0);
        assert!(detail.wants_status(&zombie));
        let last = SwitchCounts {
            voluntary: 1,
            involuntary: 0,
        };
        let sampled = t.exact_finish(detail, Ok(zombie), Some(Ok(last)), false, &mut out);
        assert_eq!(sampled, Sampled::Gone(3 * MS, Some(0)));
        assert_eq!(t.counts, last);
        // Its schedstat unreadable: gone where it last left the CPU.
        let mut t = started(b'R', 0);
        let step = t.exact_step(
            &ExactSample {
                at: 4 * MS,
                polled: true,
                sched: Err(Unreadable),
                switches: &switches,
            },
            &mut Vec::new(),
        );
        assert_eq!(step, ExactStep::Done(Sampled::Gone(3 * MS, None)));
    }
}
